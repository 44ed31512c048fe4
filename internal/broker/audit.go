package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/audit"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// pimEndSlack: a PIM-initiated removal of the member this close to (or
// after) the grant's end is its natural expiry.
const pimEndSlack = time.Minute

// HandleAuditEvents handles one Event Hubs batch of Entra audit events
// (DESIGN §2 EntraAuditEvents, §6a). Every event is decoded and every record
// classified; noise (other activities, other groups, unreadable records) is
// counted and logged, never blocking the good records. Each applied record's
// id is remembered on the request it affected, so a redelivered batch changes
// nothing. It returns a transient error (the batch is retried) when Graph or
// the store failed transiently for some record; permanent failures are
// logged and the batch is acknowledged.
func (b *Broker) HandleAuditEvents(ctx context.Context, events [][]byte) error {
	gp, ok := b.profiles.(GroupProfiles)
	if !ok {
		b.log.WarnContext(ctx, "audit batch ignored: profiles cannot tell target groups")
		return nil
	}
	self, err := b.self(ctx)
	if err != nil {
		return err
	}
	isTarget := func(g string) bool { return len(gp.ForGroup(g)) > 0 }
	var records, noise, problems, applied, own int
	var errs []error
	var findings []audit.Finding
	for i, ev := range events {
		recs, probs := audit.Decode(ev)
		for _, p := range probs {
			problems++
			b.log.InfoContext(ctx, "audit event problem", "event", i, "problem", p.String())
		}
		for _, rec := range recs {
			records++
			f := audit.Classify(rec, audit.Self{AppID: self.AppID, ObjectID: self.ObjectID}, isTarget)
			if f.Kind == audit.Ignore {
				if f.Problem != "" {
					problems++
					b.log.InfoContext(ctx, "audit record about a target group not usable", "recordId", safeID(f.RecordID), "problem", f.Problem)
				} else {
					noise++
				}
				continue
			}
			if f.Initiator == audit.BySelf {
				own++
				continue
			}
			findings = append(findings, f)
		}
	}
	// PIM's own activation records first: they carry the PIM request id the
	// observed grant is named after, and the MS-PIM directory change of the
	// same activation (usually in the same batch) then attaches to it.
	slices.SortStableFunc(findings, func(a, c audit.Finding) int {
		return cmpBool(a.Kind != audit.PIMActivated, c.Kind != audit.PIMActivated)
	})
	for _, f := range findings {
		profiles := gp.ForGroup(f.GroupID)
		if len(profiles) == 0 {
			noise++
			continue
		}
		if err := b.applyFinding(ctx, f, profiles); err != nil {
			if fault.Transient(err) || errors.Is(err, ErrTooManyConflicts) || ctx.Err() != nil {
				errs = append(errs, err)
			}
			b.log.WarnContext(ctx, "audit record not applied", "recordId", safeID(f.RecordID), "kind", string(f.Kind), "error", err.Error())
			continue
		}
		applied++
	}
	b.log.InfoContext(ctx, "audit batch done", "events", len(events), "records", records, "noise", noise,
		"problems", problems, "own", own, "applied", applied, "failed", len(errs))
	if len(errs) > 0 {
		return fault.Wrap(fault.ErrTransient, "audit batch", errors.Join(errs...))
	}
	return nil
}

// self returns jitaccess's own identity: Options.Self, else looked up once
// through Options.SelfLookup.
func (b *Broker) self(ctx context.Context) (Self, error) {
	b.selfMu.Lock()
	defer b.selfMu.Unlock()
	if b.selfKnown {
		return b.selfID, nil
	}
	s := b.opts.Self
	if s.ObjectID == "" && b.opts.SelfLookup != nil {
		got, err := b.opts.SelfLookup(ctx)
		switch {
		case err == nil:
			if s.AppID == "" {
				s.AppID = got.AppID
			}
			s.ObjectID = got.ObjectID
		case s.AppID == "":
			return Self{}, fault.Wrap(fault.ErrTransient, "own identity", err)
		default:
			b.log.WarnContext(ctx, "own object id not readable; recognising own changes by client id only", "error", err.Error())
		}
	}
	s.AppID, s.ObjectID = strings.ToLower(s.AppID), strings.ToLower(s.ObjectID)
	b.selfID, b.selfKnown = s, true
	return s, nil
}

func (b *Broker) applyFinding(ctx context.Context, f audit.Finding, profiles []access.Profile) error {
	switch {
	case f.Kind == audit.PIMActivated, f.Kind == audit.MemberAdded && f.Initiator == audit.ByPIM:
		return b.observePIM(ctx, f, profiles[0])
	case f.Kind == audit.PIMEnded:
		return b.pimEnded(ctx, f)
	case f.Kind == audit.MemberRemoved && f.Initiator == audit.ByPIM:
		return b.pimRemovedMember(ctx, f)
	case f.Kind == audit.MemberAdded:
		return b.outOfBand(ctx, f, profiles[0])
	case f.Kind == audit.MemberRemoved:
		return b.removedByOther(ctx, f)
	}
	return nil
}

// recordKey is the dedupe key of an audit record: its id, else a hash of
// what identifies it.
func recordKey(f audit.Finding) string {
	if f.RecordID != "" && len(f.RecordID) <= 64 {
		return "audit:" + strings.ToLower(f.RecordID)
	}
	return "audit:" + hashOf(f.RecordID, f.Activity, f.At.UTC().Format(time.RFC3339Nano), f.GroupID, f.UserID)
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s|", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// safeID keeps ids loggable (GUID-ish, bounded).
func safeID(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

// holders loads the requests the ledger of (group, user) lists as holding
// the membership (missing requests are skipped).
func (b *Broker) holders(ctx context.Context, g, u string) ([]*access.Request, error) {
	l, err := b.store.GetLedger(ctx, g, u)
	if err != nil {
		return nil, err
	}
	var out []*access.Request
	for _, id := range l.Grants {
		r, err := b.load(ctx, id)
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// claim records id in the ledger of (group, user) as holding the membership,
// so that ending another grant never removes it (DESIGN §6 rule 5).
func (b *Broker) claim(ctx context.Context, g, u, id string) error {
	for range b.opts.MaxConflictRetries {
		l, err := b.store.GetLedger(ctx, g, u)
		if err != nil {
			return err
		}
		if slices.Contains(l.Grants, id) {
			return nil
		}
		l.Grants = append(l.Grants, id)
		if err := b.store.SaveLedger(ctx, l); err != nil {
			if fault.Conflict(err) {
				continue
			}
			return err
		}
		return nil
	}
	return ErrTooManyConflicts
}

// remember adds an audit record id to r (a finding that changes nothing
// else), so a redelivery is a no-op.
func (b *Broker) remember(ctx context.Context, r *access.Request, key string) error {
	if slices.Contains(r.EventIDs, key) {
		return nil
	}
	next := r.Clone()
	next.RememberEvent(key)
	return b.save(ctx, next)
}

// observePIM records a PIM activation jitaccess did not make (DESIGN §6a
// "Observed portal activations"). One observed grant per user and group is
// active at a time: later records of the same activation (the MS-PIM
// directory change and PIM's own record) attach to it.
func (b *Broker) observePIM(ctx context.Context, f audit.Finding, p access.Profile) error {
	key := recordKey(f)
	for range b.opts.MaxConflictRetries {
		hs, err := b.holders(ctx, f.GroupID, f.UserID)
		if err != nil {
			return err
		}
		attached := false
		for _, h := range hs {
			if slices.Contains(h.EventIDs, key) {
				return nil
			}
			if h.State.Holds() && h.PIMManaged() {
				// The same activation seen again, or a PIM-mode grant of ours.
				err = b.remember(ctx, h, key)
				attached = true
				break
			}
		}
		if attached {
			if fault.Conflict(err) {
				continue
			}
			return err
		}
		id := "pim-" + f.PIMRequestID
		if f.PIMRequestID == "" {
			start := f.StartTime
			if start.IsZero() {
				start = f.At
			}
			id = "pim-" + hashOf(f.UserID, f.GroupID, start.UTC().Format(time.RFC3339))
		}
		existing, err := b.load(ctx, id)
		if err != nil {
			return err
		}
		if existing != nil {
			if err := b.remember(ctx, existing, key); fault.Conflict(err) {
				continue
			} else {
				return err
			}
		}
		endsAt := f.ExpirationTime
		if b.opts.PIM != nil {
			end, ok, err := b.opts.PIM.PIMEndTime(ctx, f.GroupID, f.UserID)
			switch {
			case err != nil && (fault.Transient(err) || ctx.Err() != nil):
				return err
			case err != nil:
				b.log.WarnContext(ctx, "PIM end time not readable; using the audit record's", "requestId", id, "error", err.Error())
			case ok && !end.IsZero():
				endsAt = end
			case !ok && f.PIMRequestID == "":
				// Only PIM's directory change, without a request id, and PIM
				// has no such activation (any more): a late or repeated
				// record of an activation already recorded and ended under
				// its PIM request id. Nothing to observe.
				b.log.InfoContext(ctx, "PIM membership change without an active PIM assignment: ignored", "groupId", f.GroupID, "userId", f.UserID)
				return nil
			}
		}
		now := b.now()
		detail := "PIM for Groups activation observed in the audit log"
		if f.AdminAssignment {
			detail = "PIM for Groups assignment observed in the audit log"
		}
		if f.PIMRequestID != "" {
			detail += "; PIM request " + f.PIMRequestID
		}
		actor := f.Actor.String()
		if actor == "" || f.Initiator == audit.ByPIM && !f.AdminAssignment {
			actor = f.UserID
			if f.UserUPN != "" {
				actor = f.UserUPN
			}
		}
		r := access.Observe(id, access.SourcePIM, p, f.UserID, f.UserUPN, now, endsAt, access.HObserved, actor, detail, key)
		if err := b.claim(ctx, f.GroupID, f.UserID, id); err != nil {
			return err
		}
		if err := b.save(ctx, r); err != nil {
			if fault.Conflict(err) {
				continue
			}
			return err
		}
		b.log.InfoContext(ctx, "PIM activation observed", "requestId", id, "groupId", f.GroupID, "userId", f.UserID)
		return nil
	}
	return ErrTooManyConflicts
}

// endHolders ends every active grant of (group, user) selected by pick
// with goal, without removing anything (the membership is gone or PIM's),
// then carries out the session revocation.
func (b *Broker) endHolders(ctx context.Context, f audit.Finding, pick func(*access.Request) (access.State, string, bool)) error {
	key := recordKey(f)
	hs, err := b.holders(ctx, f.GroupID, f.UserID)
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hs {
		if err := b.endOne(ctx, h.ID, key, pick); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (b *Broker) endOne(ctx context.Context, id, key string, pick func(*access.Request) (access.State, string, bool)) error {
	for range b.opts.MaxConflictRetries {
		r, err := b.load(ctx, id)
		if err != nil || r == nil {
			return err
		}
		if slices.Contains(r.EventIDs, key) {
			if r.Work != nil {
				return b.runWork(ctx, r)
			}
			return nil
		}
		if r.State != access.Active {
			return nil // not (or no longer) holding: nothing to end
		}
		goal, reason, ok := pick(r)
		if !ok {
			return nil
		}
		next := r.Clone()
		actor := reasonActor(reason)
		next.EndWithoutRemoval(b.now(), goal, actor.actor, actor.reason, key)
		if err := b.save(ctx, next); err != nil {
			if fault.Conflict(err) {
				continue
			}
			return err
		}
		b.log.InfoContext(ctx, "grant ended by audit record", "requestId", id, "state", string(goal))
		if err := b.withdrawClaim(ctx, next); err != nil {
			return err
		}
		if next.Work != nil {
			return b.runWork(ctx, next)
		}
		return nil
	}
	return ErrTooManyConflicts
}

type actorReason struct{ actor, reason string }

// reasonActor splits "actor\x00reason".
func reasonActor(s string) actorReason {
	a, r, _ := strings.Cut(s, "\x00")
	return actorReason{a, r}
}

// pimEnded: PIM ended an activation or assignment (expiry, the user's
// deactivation, an administrator's removal).
func (b *Broker) pimEnded(ctx context.Context, f audit.Finding) error {
	return b.endHolders(ctx, f, func(r *access.Request) (access.State, string, bool) {
		if !r.PIMManaged() {
			return "", "", false
		}
		switch {
		case f.Deactivated:
			who := f.UserUPN
			if who == "" {
				who = f.UserID
			}
			return access.Cancelled, who + "\x00deactivated in PIM by the user", true
		case f.AdminAssignment && f.Initiator == audit.ByOther:
			return access.Revoked, f.Actor.String() + "\x00PIM assignment removed outside jitaccess", true
		}
		return access.Expired, "PIM\x00", true
	})
}

// pimRemovedMember: MS-PIM removed the member. Near or after the end this is
// the natural expiry; earlier, the PIM record (deactivation or removal) says
// what happened and the drift reconciliation is the backstop.
func (b *Broker) pimRemovedMember(ctx context.Context, f audit.Finding) error {
	now := b.now()
	return b.endHolders(ctx, f, func(r *access.Request) (access.State, string, bool) {
		if !r.PIMManaged() || r.EndsAt.IsZero() || now.Before(r.EndsAt.Add(-pimEndSlack)) {
			return "", "", false
		}
		return access.Expired, "PIM\x00", true
	})
}

// removedByOther: someone other than jitaccess and PIM removed a member whose
// grant jitaccess holds: the grant ends as revoked with the actor recorded.
func (b *Broker) removedByOther(ctx context.Context, f audit.Finding) error {
	actor := f.Actor.String()
	if actor == "" {
		actor = "unknown"
	}
	return b.endHolders(ctx, f, func(r *access.Request) (access.State, string, bool) {
		return access.Revoked, actor + "\x00member removed from the group outside jitaccess by " + actor, true
	})
}

// outOfBand: someone other than jitaccess and PIM added a member to a target
// group (DESIGN §6a "Out-of-band findings").
func (b *Broker) outOfBand(ctx context.Context, f audit.Finding, p access.Profile) error {
	key := recordKey(f)
	hs, err := b.holders(ctx, f.GroupID, f.UserID)
	if err != nil {
		return err
	}
	for _, h := range hs {
		if h.State.Holds() || slices.Contains(h.EventIDs, key) {
			// Held by a grant jitaccess knows: not out-of-band.
			return nil
		}
	}
	id := "oob-" + strings.TrimPrefix(key, "audit:")
	for range b.opts.MaxConflictRetries {
		r, err := b.load(ctx, id)
		if err != nil {
			return err
		}
		if r != nil {
			if r.Work != nil {
				return b.runWork(ctx, r)
			}
			return nil
		}
		actor := f.Actor.String()
		if actor == "" {
			actor = "unknown"
		}
		now := b.now()
		r = access.Observe(id, access.SourceOutOfBand, p, f.UserID, f.UserUPN, now, time.Time{}, access.HOutOfBand, actor,
			"added to the group outside jitaccess and PIM by "+actor, key)
		if p.OutOfBand == access.OutOfBandRemove {
			r.End(now, access.Revoked, access.System, "out-of-band member removed (profile outOfBand: remove)", "")
		}
		if err := b.claim(ctx, f.GroupID, f.UserID, id); err != nil {
			return err
		}
		if err := b.save(ctx, r); err != nil {
			if fault.Conflict(err) {
				continue
			}
			return err
		}
		b.log.InfoContext(ctx, "out-of-band member recorded", "requestId", id, "groupId", f.GroupID, "userId", f.UserID, "state", string(r.State))
		if r.Work != nil {
			return b.runWork(ctx, r)
		}
		return nil
	}
	return ErrTooManyConflicts
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// pimExtended is asked by the sweep before it ends an observed PIM
// activation at its recorded end: when PIM says the activation now ends
// later (the user extended it), the grant's end moves and nothing ends.
func (b *Broker) pimExtended(ctx context.Context, r *access.Request, now time.Time) (bool, error) {
	if b.opts.PIM == nil || r.Source != access.SourcePIM || r.State != access.Active || r.EndsAt.IsZero() || now.Before(r.EndsAt) {
		return false, nil
	}
	end, ok, err := b.opts.PIM.PIMEndTime(ctx, r.GroupID, r.Requester)
	switch {
	case err != nil && (fault.Transient(err) || ctx.Err() != nil):
		return false, err
	case err != nil, !ok, end.IsZero(), !end.After(now):
		return false, nil
	}
	next := r.Clone()
	next.EndsAt = end
	next.Duration = access.Duration(end.Sub(next.ActivatedAt))
	next.DueAt = end
	if err := b.save(ctx, next); err != nil {
		return false, err
	}
	b.log.InfoContext(ctx, "observed PIM activation extended", "requestId", r.ID)
	return true, nil
}
