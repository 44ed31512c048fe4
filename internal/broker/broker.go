package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// Profiles is what the broker needs of the profile set: a profile by name
// (events), the profiles of a target group and all target groups (audit
// handling and drift reconciliation). policy.Set implements it.
type Profiles interface {
	Profile(name string) (access.Profile, bool)
	ForGroup(groupID string) []access.Profile
	TargetGroups() []string
	// All is every profile (the azure-role targets are found among them).
	All() []access.Profile
}

// Options tune the broker; zero values take the defaults.
type Options struct {
	// MaxConflictRetries bounds compare-and-swap retries per step (default 8).
	MaxConflictRetries int
	// SweepLimit is how many due requests the sweep reads at a time
	// (default 500); it takes batch after batch while SweepBudget lasts.
	SweepLimit int
	// SweepBudget bounds how long one sweep works (default DefaultSweepBudget,
	// under host.json's functionTimeout of 5 minutes); what is left waits
	// for the next run.
	SweepBudget time.Duration
	// Logger receives JSON logs; never free text, bodies or tokens.
	Logger *slog.Logger
	// Scheduler, when set, schedules jit.access.expire at each grant's end.
	Scheduler ExpiryScheduler
	// Publisher, when set, publishes outcome notifications.
	Publisher Publisher
	// ExpiringLead is how long before the end the "expiring" notification is
	// sent (0: none).
	ExpiringLead time.Duration

	// PIM, when set, serves PIM-mode grants and reads the end of observed
	// PIM activations (assignmentScheduleInstances).
	PIM PIM
	// Members, when set, lets the sweep reconcile the target groups' real
	// direct members with the store (drift reconciliation).
	Members Members
	// Self is jitaccess's own identity (own changes in audit records are
	// ignored); when empty, SelfLookup is asked once.
	Self       Self
	SelfLookup func(ctx context.Context) (Self, error)
	// ReconcileMaxGraphCalls bounds the Graph calls drift reconciliation
	// makes per sweep (default 20; negative: no reconciliation, the only
	// way to turn it off).
	ReconcileMaxGraphCalls int
	// ApproverCacheTTL is how long a positive approver resolution (user
	// found, enabled, not a guest, in the profile's approver groups) is
	// reused for approved/denied/revoked events (default 1 minute; negative:
	// no cache). Refusals are never cached.
	ApproverCacheTTL time.Duration
	// ReplicationWindow is how long a directory read may lag a write
	// (docs/design.md, real directory rule 1): a read made less than this after a write decides
	// nothing, and an audit record is checked against Graph this long after
	// it arrived (default DefaultReplicationWindow).
	ReplicationWindow time.Duration
	// Deployment, when set, tells when this deployment first ran: audit
	// records older than that are not acted on (docs/design.md, real directory rule 3).
	Deployment Deployment
	// ARM, when set, serves azure-role grants (role assignments).
	ARM RoleAssignments
	// AssignmentNamespace qualifies the request ids role assignments are
	// named after (the table prefix: deployments sharing a tenant do not
	// collide; assignment names are unique across subscriptions).
	AssignmentNamespace string
	// TokenLifetime bounds an Entra access token's life: a group grant's
	// access is gone by its end plus this (default DefaultTokenLifetime).
	TokenLifetime time.Duration
	// RBACPropagation bounds how long a deleted role assignment may still
	// authorize: an azure-role grant's access is gone by its end plus this
	// (default DefaultRBACPropagation).
	RBACPropagation time.Duration
}

// DefaultSweepBudget is Options.SweepBudget's default: four of the five
// minutes host.json gives an invocation.
const DefaultSweepBudget = 4 * time.Minute

// Defaults of Options.TokenLifetime and RBACPropagation (README "How long
// access lasts after the end").
const (
	DefaultTokenLifetime   = 90 * time.Minute
	DefaultRBACPropagation = 10 * time.Minute
)

// DefaultReplicationWindow is Options.ReplicationWindow's default: Microsoft
// describes Entra's replication as typically completing within seconds
// (README "The real directory"); a minute is ten times that, and a longer
// window only delays conclusions drawn from reads, never an end.
const DefaultReplicationWindow = time.Minute

// Broker runs the use cases.
type Broker struct {
	store    Store
	dir      Directory
	profiles Profiles
	clock    Clock
	log      *slog.Logger
	opts     Options

	selfMu    sync.Mutex
	selfID    Self
	selfKnown bool
	// deployed caches Options.Deployment's answer (it never changes).
	deployed time.Time
	// approvers caches positive approver resolutions (nil: off).
	approvers *approverCache
	// reconcileNext is where drift reconciliation resumes (round robin).
	reconcileMu   sync.Mutex
	reconcileNext int
}

// New wires a broker.
func New(store Store, dir Directory, profiles Profiles, clock Clock, opts Options) *Broker {
	if opts.MaxConflictRetries <= 0 {
		opts.MaxConflictRetries = 8
	}
	if opts.SweepLimit <= 0 {
		opts.SweepLimit = 500
	}
	if opts.ReconcileMaxGraphCalls == 0 {
		opts.ReconcileMaxGraphCalls = 20
	}
	if opts.SweepBudget <= 0 {
		opts.SweepBudget = DefaultSweepBudget
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = DefaultTokenLifetime
	}
	if opts.RBACPropagation <= 0 {
		opts.RBACPropagation = DefaultRBACPropagation
	}
	if opts.ReplicationWindow <= 0 {
		opts.ReplicationWindow = DefaultReplicationWindow
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if clock == nil {
		clock = SystemClock{}
	}
	return &Broker{store: store, dir: dir, profiles: profiles, clock: clock, log: opts.Logger, opts: opts,
		approvers: newApproverCache(opts.ApproverCacheTTL)}
}

// errLookAgain makes retryOnConflict load the request again (the sweep sent
// its pending outcomes and looks at what is stored now).
var errLookAgain = fault.Wrap(fault.ErrConflict, "sweep", errors.New("outcomes sent; look at the request again"))

// HandleEvent processes one request event (the body of a Service Bus
// message). It returns nil when the event is done with — applied, recorded as
// rejected or refused, or a duplicate — and a transient error when the
// delivery must be retried. Permanent Graph failures are recorded on the
// request and return nil.
func (b *Broker) HandleEvent(ctx context.Context, body []byte) error {
	ev, err := access.DecodeEvent(body)
	if err != nil {
		var inv *access.InvalidError
		if !errors.As(err, &inv) {
			inv = &access.InvalidError{Reason: err.Error()}
		}
		return b.reject(ctx, inv)
	}
	var out access.Outcome
	applied := false
	r, err := b.updateRequest(ctx, ev.RequestID, func(cur *access.Request) (*access.Request, error) {
		applied = false
		in, err := b.resolve(ctx, ev, cur)
		if err != nil {
			return nil, err
		}
		if cur != nil && cur.State == access.Awaiting && ev.Type == access.TypeRequested && in.Profile != nil {
			if cur, err = b.resolveParked(ctx, cur, in.Profile); err != nil {
				return nil, err
			}
		}
		var next *access.Request
		next, out = access.Apply(cur, in)
		if out.Duplicate || !out.Changed {
			return nil, nil
		}
		applied = true
		return next, nil
	})
	if err != nil {
		return err
	}
	if out.Unrecorded {
		// Past the request's bound (access.MaxRecordedRefusals,
		// MaxParked): recorded in the rejections log, the request untouched.
		b.log.InfoContext(ctx, "event refused or rejected past the request's bound", "eventId", ev.ID, "requestId", ev.RequestID, "type", ev.Type)
		return b.store.RecordRejection(ctx, access.Rejection{At: b.now(), EventID: ev.ID, Type: safeType(ev.Type), RequestID: ev.RequestID, Reason: out.Reason})
	}
	if !applied {
		b.log.InfoContext(ctx, "event duplicate or no-op", "eventId", ev.ID, "requestId", ev.RequestID, "type", ev.Type)
	} else {
		b.log.InfoContext(ctx, "event applied", "eventId", ev.ID, "requestId", r.ID, "type", ev.Type,
			"state", string(r.State), "rejected", out.Rejected, "refused", out.Refused)
	}
	// Run the work this event recorded; work recorded earlier only when no
	// other invocation is on it (its first attempt failed, or it is due:
	// the sweep's own rule). A duplicate delivery arriving while another
	// invocation carries the work out would otherwise repeat its steps — a
	// second session revocation, under throttling seconds apart.
	if r != nil && r.Work != nil && (applied || r.Work.Attempts > 0 || !b.now().Before(r.DueAt)) {
		return b.runWork(ctx, r)
	}
	return nil
}

// load returns the stored request or nil when there is none.
func (b *Broker) load(ctx context.Context, id string) (*access.Request, error) {
	r, err := b.store.GetRequest(ctx, id)
	if fault.NotFound(err) {
		return nil, nil
	}
	return r, err
}

// resolve looks up the profile and the acting identity for an event.
func (b *Broker) resolve(ctx context.Context, ev access.Event, r *access.Request) (access.Input, error) {
	in := access.Input{Event: ev, Now: b.clock.Now()}
	name := ev.Profile
	if r != nil && r.State != access.Awaiting {
		name = r.Profile
	}
	if p, ok := b.profiles.Profile(name); ok {
		in.Profile = &p
	}
	if r != nil && r.State != access.Awaiting && r.Seen(ev.ID) {
		return in, nil // a duplicate: no lookups needed
	}
	if ev.Type == access.TypeExpire {
		return in, nil
	}
	asserted := ev.Actor()
	if in.Profile == nil {
		// No profile yet (an event before its request, or an unknown
		// profile): the identity is resolved when it can be judged.
		in.Actor = access.Actor{Asserted: asserted}
		if ev.Type == access.TypeRequested {
			a, err := b.resolveActor(ctx, asserted, nil)
			if err != nil {
				return in, err
			}
			in.Actor = a
		}
		return in, nil
	}
	if ev.Type == access.TypeRequested && r != nil && r.State != access.Awaiting {
		// A repeated requestId: resolve the requester only to compare content.
		a, err := b.resolveActor(ctx, asserted, nil)
		in.Actor = a
		return in, err
	}
	a, err := b.resolveFor(ctx, asserted, ev.Type, *in.Profile)
	in.Actor = a
	return in, err
}

// resolveParked resolves the identities of events that arrived before their
// request, now that the profile is known.
func (b *Broker) resolveParked(ctx context.Context, r *access.Request, p *access.Profile) (*access.Request, error) {
	r = r.Clone()
	for i, pe := range r.Parked {
		if pe.Event.Type == access.TypeExpire {
			continue
		}
		a, err := b.resolveFor(ctx, pe.Actor.Asserted, pe.Event.Type, *p)
		if err != nil {
			return nil, err
		}
		r.Parked[i].Actor = a
	}
	return r, nil
}

func groupsFor(typ string, p access.Profile) []string {
	switch typ {
	case access.TypeRequested:
		return p.EligibleGroupIDs
	case access.TypeApproved, access.TypeDenied, access.TypeRevoked:
		return p.ApproverGroupIDs
	}
	return nil
}

// resolveFor resolves the actor of an event of type typ under profile p. The
// approver groups' answer (approved, denied, revoked) may come from the
// approver cache: positive answers only, for at most ApproverCacheTTL.
func (b *Broker) resolveFor(ctx context.Context, asserted, typ string, p access.Profile) (access.Actor, error) {
	groups := groupsFor(typ, p)
	approver := typ == access.TypeApproved || typ == access.TypeDenied || typ == access.TypeRevoked
	if !approver || len(groups) == 0 {
		return b.resolveActor(ctx, asserted, groups)
	}
	now := b.clock.Now()
	if a, ok := b.approvers.get(asserted, groups, now); ok {
		return a, nil
	}
	a, err := b.resolveActor(ctx, asserted, groups)
	if err == nil {
		b.approvers.put(asserted, groups, a, now)
	}
	return a, err
}

// resolveActor resolves an asserted identity to an object id and checks its
// transitive membership of groups (when given). Unknown users are not an
// error: the domain refuses or rejects them with a reason.
func (b *Broker) resolveActor(ctx context.Context, asserted string, groups []string) (access.Actor, error) {
	a := access.Actor{Asserted: asserted}
	if asserted == "" {
		return a, nil
	}
	u, err := b.dir.LookupUser(ctx, asserted)
	switch {
	case fault.NotFound(err), fault.Permanent(err):
		return a, nil
	case err != nil:
		return a, err
	}
	a.ID, a.UPN, a.Found, a.Enabled, a.Guest = strings.ToLower(u.ID), u.UPN, true, u.Enabled, u.Guest
	if len(groups) > 0 && u.Enabled {
		got, err := b.dir.MemberOfAny(ctx, a.ID, groups)
		if err != nil && !fault.NotFound(err) {
			return a, err
		}
		a.InGroups = len(got) > 0
	}
	return a, nil
}

// reject records an event that could not be decoded or validated.
func (b *Broker) reject(ctx context.Context, inv *access.InvalidError) error {
	now := b.clock.Now()
	b.log.InfoContext(ctx, "event rejected", "eventId", inv.EventID, "requestId", inv.RequestID, "type", safeType(inv.Type))
	if inv.RequestID == "" {
		return b.store.RecordRejection(ctx, access.Rejection{At: now, EventID: inv.EventID, Type: safeType(inv.Type), Reason: inv.Reason})
	}
	keepApart := false
	_, err := b.updateRequest(ctx, inv.RequestID, func(r *access.Request) (*access.Request, error) {
		keepApart = false
		var next *access.Request
		switch {
		case r == nil && inv.Type == access.TypeRequested:
			next = &access.Request{ID: inv.RequestID, Source: access.SourceEvents, State: access.Rejected,
				Reason: inv.Reason, RequestedAt: now, EndedAt: now}
		case r == nil || r.State == access.Awaiting:
			// Not a request (yet): keep the rejection apart, so the request
			// can still arrive.
			keepApart = true
			return nil, nil
		default:
			if inv.EventID != "" && r.Seen(inv.EventID) {
				return nil, nil
			}
			next = r.Clone()
		}
		if !next.RecordRefusal(now, access.HRejected, "", inv.Reason, inv.EventID) {
			// Past the request's bound: the rejections log keeps it, and
			// the request (and its end) is not touched.
			keepApart = true
			return nil, nil
		}
		return next, nil
	})
	if err == nil && keepApart {
		return b.store.RecordRejection(ctx, access.Rejection{At: now, EventID: inv.EventID, Type: safeType(inv.Type), RequestID: inv.RequestID, Reason: inv.Reason})
	}
	return err
}

// Sweep ends due grants, times out stale approvals, rejects events whose
// request never came and finishes work a crash or a failure left undone. It
// handles every due request even when some fail, and then reports the
// failures (joined) so the invocation shows them. A request whose membership
// another live invocation is changing is no failure: it stays due.
func (b *Broker) Sweep(ctx context.Context) error {
	start := b.clock.Now()
	budget := b.opts.SweepBudget
	var errs []error
	done, due, busy := 0, 0, 0
	seen := map[string]bool{}
	// Batches of SweepLimit due requests, as long as the run has time left
	// (SweepBudget): a burst of ends is worked through at the pace the Graph
	// adapter's throttling allows, not capped at one batch a run. A request
	// handled in this run is not taken again (a failed end stays due).
	for {
		ids, err := b.store.DueRequests(ctx, b.clock.Now(), b.opts.SweepLimit)
		if err != nil {
			errs = append(errs, err)
			break
		}
		fresh := 0
		for _, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			fresh++
			if ctx.Err() != nil || b.clock.Now().Sub(start) > budget {
				break
			}
			err := b.sweepOne(ctx, id)
			if errors.Is(err, errBusy) {
				// Another live invocation is changing this membership (a
				// redelivery, another grant of the same user): not a failure.
				// The request stays due; a later sweep finishes it, or takes
				// the claim over once it is older than WorkGrace.
				b.log.InfoContext(ctx, "sweep left a membership another invocation is changing", "requestId", id)
				busy++
				continue
			}
			if err != nil {
				b.log.WarnContext(ctx, "sweep step failed", "requestId", id, "error", err.Error())
				errs = append(errs, fmt.Errorf("request %s: %w", id, err))
				continue
			}
			done++
		}
		due += fresh
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if len(ids) < b.opts.SweepLimit || fresh == 0 || b.clock.Now().Sub(start) > budget {
			break
		}
	}
	b.log.InfoContext(ctx, "sweep done", "due", due, "handled", done, "busy", busy, "failed", len(errs))
	if b.clock.Now().Sub(start) > budget {
		b.log.InfoContext(ctx, "sweep budget spent; reconciliation and the rest wait for the next run")
		return errors.Join(errs...)
	}
	if err := b.Reconcile(ctx); err != nil {
		b.log.WarnContext(ctx, "drift reconciliation failed", "error", err.Error())
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (b *Broker) sweepOne(ctx context.Context, id string) error {
	flushed := false
	var work, ending *access.Request
	err := b.retryOnConflict(ctx, func() error {
		work, ending = nil, nil
		r, err := b.load(ctx, id)
		if err != nil || r == nil {
			return err
		}
		now := b.clock.Now()
		if r.Work != nil {
			if now.Before(r.DueAt) {
				return nil // the invocation that recorded it is still on it
			}
			work = r
			return nil
		}
		if !flushed && b.outcomesPending(r) {
			flushed = true
			b.flushOutcomes(ctx, r)
			return errLookAgain
		}
		// A pending check is decided before the grant's end, never instead
		// of it: past the end, the end comes first (it clears the check),
		// so that a check Graph cannot answer now never holds an end up.
		if r.Check != nil && !now.Before(r.Check.Due) && (r.EndsAt.IsZero() || now.Before(r.EndsAt) || r.State != access.Active) {
			next, err := b.runCheck(ctx, r, now)
			if err != nil || next == nil {
				return err
			}
			if err := b.persist(ctx, next); err != nil {
				return err
			}
			b.flushOutcomes(ctx, next)
			b.log.InfoContext(ctx, "check decided", "requestId", id, "state", string(next.State))
			if next.Work != nil {
				work = next
			}
			return nil
		}
		if extended, err := b.followPIMExtension(ctx, r, now); err != nil || extended {
			return err
		}
		base := r.Clone()
		expiring := b.opts.Publisher != nil && base.QueueExpiring(now, b.opts.ExpiringLead)
		next, out := access.Tick(base, now)
		if next.State == access.Ending && next.Work != nil {
			ending = next
		}
		if !out.Changed && !expiring {
			if r.DueAt.Equal(now) || r.DueAt.Before(now) {
				// Nothing to do although due (e.g. a notice retried above):
				// move the due time on so the sweep does not spin.
				if due := r.NaturalDue(b.expiringLead()); !due.Equal(r.DueAt) {
					fix := r.Clone()
					fix.DueAt = due
					_ = b.store.SaveRequest(ctx, fix)
				}
			}
			return nil
		}
		if err := b.persist(ctx, next); err != nil {
			return err
		}
		b.flushOutcomes(ctx, next)
		b.log.InfoContext(ctx, "sweep applied", "requestId", id, "state", string(next.State))
		if next.Work != nil {
			work = next
		}
		return nil
	})
	if unsavable(err) && ending != nil {
		// The end was decided but cannot be recorded: carry it out all the
		// same (docs/design.md, real directory rule 4).
		return b.endUnsaved(ctx, ending, err, false)
	}
	if err != nil || work == nil {
		return err
	}
	return b.runWork(ctx, work)
}

// safeType keeps only known event types for logs and records.
func safeType(t string) string {
	switch t {
	case access.TypeRequested, access.TypeApproved, access.TypeDenied, access.TypeCancelled, access.TypeRevoked, access.TypeExpire:
		return t
	case "":
		return ""
	}
	return "unknown"
}

// now is a shorthand for the injected clock.
func (b *Broker) now() time.Time { return b.clock.Now() }

// RejectDelivery records a delivery that could not be read at all (over the
// size limit, an unreadable invocation): there is no event to decode, only a
// reason. It returns nil (acknowledged) unless the store fails.
func (b *Broker) RejectDelivery(ctx context.Context, messageID, reason string) error {
	return b.reject(ctx, &access.InvalidError{EventID: messageID, Reason: reason})
}
