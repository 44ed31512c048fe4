package telemetry

import (
	"context"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
)

// Gauges are the sweep's metrics: what is open now, read from the store's
// open-state indexes (their size is what is open, not all history).
type Gauges struct {
	// ActiveGrants: grants in force or in flight (active, activating,
	// ending), out-of-band findings apart.
	ActiveGrants int
	// PendingApprovals: requests waiting for approvals.
	PendingApprovals int
	// OutOfBandActive: out-of-band members recorded and still present.
	OutOfBandActive int
	// EndsOverdue: grants still active or ending more than one sweep
	// interval after their end (docs/design.md, real directory rule 4: the sweep has not ended them;
	// the dashboard lists them under "needs attention").
	EndsOverdue int
	// OldestOverdue: how far past its end the oldest of those is.
	OldestOverdue time.Duration
	// StuckWork: Graph/ARM work (add, remove, revoke sessions) recorded and
	// unfinished for longer than StuckAfter: steps failing again and again.
	StuckWork int
	// Truncated: a state had more requests than the reader's limit; the
	// counts are lower bounds.
	Truncated bool
	// SweepInterval the overdue count was judged with.
	SweepInterval time.Duration
}

// StuckAfter is how old unfinished work must be to count as stuck (the
// dashboard's "needs attention" uses the same five minutes).
const StuckAfter = 5 * time.Minute

// DefaultGaugeLimit bounds the requests read per state.
const DefaultGaugeLimit = 5000

// StoreGauges reads Gauges from the store.
type StoreGauges struct {
	Store broker.Lister
	// SweepInterval is the time between two sweeps (config.SweepInterval);
	// default one minute.
	SweepInterval time.Duration
	// Limit bounds the requests read per state (default DefaultGaugeLimit).
	Limit int
}

var gaugeStates = []access.State{access.Active, access.Activating, access.Ending, access.Pending}

// Attrs renders g as slog key-value pairs for the MsgMetrics line.
func (g Gauges) Attrs() []any {
	return []any{
		FieldActiveGrants, g.ActiveGrants,
		FieldPendingApprovals, g.PendingApprovals,
		FieldOutOfBandActive, g.OutOfBandActive,
		FieldEndsOverdue, g.EndsOverdue,
		FieldOldestOverdueSeconds, Seconds(g.OldestOverdue),
		FieldStuckWork, g.StuckWork,
		FieldTruncated, g.Truncated,
		FieldSweepIntervalSeconds, Seconds(g.SweepInterval),
	}
}

// Read lists the open states and counts. A page's unreadable rows are not
// counted (the dashboard names them).
func (s StoreGauges) Read(ctx context.Context, now time.Time) (Gauges, error) {
	limit := s.Limit
	if limit <= 0 {
		limit = DefaultGaugeLimit
	}
	g := Gauges{SweepInterval: s.SweepInterval}
	if g.SweepInterval <= 0 {
		g.SweepInterval = time.Minute
	}
	for _, st := range gaugeStates {
		after, seen := "", 0
		for {
			page, err := s.Store.ListRequests(ctx, broker.ListFilter{State: st, Limit: min(1000, limit-seen), After: after})
			if err != nil {
				return Gauges{}, err
			}
			for _, r := range page.Items {
				if r != nil && r.State == st {
					g.add(r, now)
				}
			}
			seen += len(page.Items) + len(page.Skipped)
			if page.Next == "" {
				break
			}
			if seen >= limit {
				g.Truncated = true
				break
			}
			after = page.Next
		}
	}
	return g, nil
}

func (g *Gauges) add(r *access.Request, now time.Time) {
	if r.State == access.Pending {
		g.PendingApprovals++
	} else if r.Source == access.SourceOutOfBand {
		g.OutOfBandActive++
	} else {
		g.ActiveGrants++
	}
	if (r.State == access.Active || r.State == access.Ending) && !r.EndsAt.IsZero() {
		if late := now.Sub(r.EndsAt); late > g.SweepInterval {
			g.EndsOverdue++
			g.OldestOverdue = max(g.OldestOverdue, late)
		}
	}
	if w := r.Work; w != nil && !w.Since.IsZero() && now.Sub(w.Since) >= StuckAfter {
		g.StuckWork++
	}
}

// EndedAttrs describes how a grant ended, for the MsgGrantEnded line: ids,
// profile, activation mode, state and times, and the revocation lag — from
// the moment access should have gone (the end for an expiry, the decision
// for a revoke or cancel) to the last removal step jitaccess recorded
// (membership or role assignment removed, sessions revoked), or to the end's
// record when there was nothing to remove. A failed request has no lag.
// ok is false for a request that has not ended.
func EndedAttrs(r *access.Request) (attrs []any, ok bool) {
	if r == nil || !endedGrantState(string(r.State)) {
		return nil, false
	}
	attrs = []any{
		FieldRequestID, r.ID, FieldState, string(r.State), FieldProfile, r.Profile,
		FieldSource, string(r.Source),
	}
	if r.Activation != "" {
		attrs = append(attrs, FieldActivation, r.Activation)
	}
	if !r.EndsAt.IsZero() {
		attrs = append(attrs, FieldEndsAt, r.EndsAt.UTC().Format(time.RFC3339))
	}
	if !r.EndedAt.IsZero() {
		attrs = append(attrs, FieldEndedAt, r.EndedAt.UTC().Format(time.RFC3339))
	}
	if r.State == access.Failed {
		return attrs, true
	}
	due := r.EndedAt
	if r.State == access.Expired && !r.EndsAt.IsZero() {
		due = r.EndsAt
	}
	removed := r.EndedAt
	for _, h := range r.History {
		if (h.Type == access.HMembershipRemoved || h.Type == access.HSessionsRevoked) && h.At.After(removed) {
			removed = h.At
		}
	}
	if !removed.IsZero() {
		attrs = append(attrs, FieldAccessRemovedAt, removed.UTC().Format(time.RFC3339))
	}
	if !due.IsZero() && !removed.IsZero() {
		attrs = append(attrs, FieldRevocationLagSeconds, Seconds(removed.Sub(due)))
	}
	return attrs, true
}

// RecentlyEnded reports whether r's end was carried out within window of
// now, so that a later line about an old end does not report it again.
func RecentlyEnded(r *access.Request, now time.Time, window time.Duration) bool {
	last := r.EndedAt
	for _, h := range r.History {
		if h.At.After(last) {
			last = h.At
		}
	}
	return !last.IsZero() && now.Sub(last) <= window
}
