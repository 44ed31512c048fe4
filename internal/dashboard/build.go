package dashboard

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

// build lays out the dashboard page from what gather read: the sections,
// then the summary cards that count them. sweep is the sweep's interval
// (an active grant further past its end needs attention).
func build(g *gathered, profile string, win window, now time.Time, sweep time.Duration) *page {
	l := listings{res: g.lists, profile: profile, now: now}
	p := &page{}
	p.Active = activeSection(l)
	p.Pending = pendingSection(l)
	p.Attention = attentionSection(l, sweep)
	// Stored requests no listing could read: nobody can act on them but an
	// operator (docs/design.md, real directory rule 4: they break nothing, and they show).
	p.Unreadable = newUnreadable(skippedIDs(g.lists))
	p.Endings, p.Lingering = endingsSection(l, win)
	p.Denied = deniedSection(l, win, g.rejs)
	var stillThere int
	p.Findings, stillThere = findingsSection(l)
	p.Counts = counts(p, win, stillThere)
	return p
}

// listings are the listings gather read, as the sections use them.
type listings struct {
	res     map[access.State]listed
	profile string // the profile filter ("" for all)
	now     time.Time
}

// more reports whether a listing of the states had more than it returned.
func (l listings) more(states ...access.State) bool {
	for _, s := range states {
		if l.res[s].more {
			return true
		}
	}
	return false
}

// limit is the bound of the largest listing of the states.
func (l listings) limit(states ...access.State) int {
	n := ListLimit
	for _, s := range states {
		n = max(n, l.res[s].limit)
	}
	return n
}

// each calls fn for every shown request of the given states (a request
// listed under a state it is no longer in is shown under its own).
func (l listings) each(fn func(r *access.Request), states ...access.State) {
	for _, s := range states {
		for _, r := range l.res[s].items {
			if r == nil || r.State == access.Awaiting || r.State != s {
				continue
			}
			if l.profile != "" && r.Profile != l.profile {
				continue
			}
			fn(r)
		}
	}
}

// recent reports whether t is set and at most window ago.
func (l listings) recent(t time.Time, window time.Duration) bool {
	return !t.IsZero() && l.now.Sub(t) <= window
}

// timed is a row with the time it is sorted by.
type timed[T any] struct {
	row T
	at  time.Time
}

// newestFirst returns the rows, newest first (rows at the same time keep
// their order).
func newestFirst[T any](ts []timed[T]) []T {
	slices.SortStableFunc(ts, func(a, b timed[T]) int { return b.at.Compare(a.at) })
	var rows []T
	for _, t := range ts {
		rows = append(rows, t.row)
	}
	return rows
}

// activeSection: the active grants, the soonest to end first (out-of-band
// members have their own section).
func activeSection(l listings) section[grantRow] {
	var s section[grantRow]
	l.each(func(r *access.Request) {
		if r.Source != access.SourceOutOfBand {
			s.Rows = append(s.Rows, grantRowOf(r, l.now))
		}
	}, access.Active, access.Activating, access.Ending)
	slices.SortStableFunc(s.Rows, func(a, b grantRow) int { return cmp.Compare(a.Ends.ISO, b.Ends.ISO) })
	s.More, s.Limit = l.more(access.Active, access.Activating, access.Ending), ListLimit
	return s
}

func grantRowOf(r *access.Request, now time.Time) grantRow {
	row := grantRow{
		ID: newRef(r.ID), Who: requester(r), Profile: newText(r.Profile), Source: sourceLabel(r.Source),
		Approvers: approvers(r), Justification: newText(r.Justification), Ticket: newText(r.Ticket),
		Activated: newStamp(r.ActivatedAt), Ends: newStamp(r.EndsAt), State: stateBadge(r.State),
	}
	if r.EndsAt.IsZero() {
		row.Left = "—"
		return row
	}
	left := r.EndsAt.Sub(now)
	row.Overdue = left < 0 && r.State != access.Ending
	switch {
	case r.State == access.Ending:
		row.Left = "ending now"
	case left < 0:
		row.Left = "overdue " + span(left)
	default:
		row.Left = span(left)
	}
	return row
}

// pendingSection: the pending approvals, the longest waiting first.
func pendingSection(l listings) section[pendingRow] {
	var s section[pendingRow]
	l.each(func(r *access.Request) {
		row := pendingRow{
			ID: newRef(r.ID), Who: requester(r), Profile: newText(r.Profile),
			Justification: newText(r.Justification), Ticket: newText(r.Ticket),
			Requested: newStamp(r.RequestedAt), Approvals: len(r.Approvals), Required: r.ApprovalsRequired,
			Approvers: approverNames(r),
		}
		if r.Duration > 0 {
			row.Duration = span(time.Duration(r.Duration))
		}
		if !r.RequestedAt.IsZero() {
			row.Age = span(l.now.Sub(r.RequestedAt))
		}
		s.Rows = append(s.Rows, row)
	}, access.Pending)
	slices.SortStableFunc(s.Rows, func(a, b pendingRow) int { return cmp.Compare(a.Requested.ISO, b.Requested.ISO) })
	s.More, s.Limit = l.more(access.Pending), ListLimit
	return s
}

// attentionSection: what needs attention, newest first — recent failures,
// Graph work left unfinished too long, and grants past their end by more
// than one sweep interval.
func attentionSection(l listings, sweep time.Duration) section[attentionRow] {
	var rows []timed[attentionRow]
	add := func(r *access.Request, problem string, since time.Time) {
		rows = append(rows, timed[attentionRow]{attentionRow{
			ID: newRef(r.ID), Who: requester(r), Profile: newText(r.Profile), State: stateBadge(r.State),
			Problem: newText(problem), Since: newStamp(since), Age: span(l.now.Sub(since)),
		}, since})
	}
	l.each(func(r *access.Request) {
		if at := endTime(r); l.recent(at, AttentionWindow) {
			add(r, nonEmpty(r.Reason, "failed without a recorded reason"), at)
		}
	}, access.Failed)
	l.each(func(r *access.Request) {
		if w := r.Work; w != nil && !w.Since.IsZero() && l.now.Sub(w.Since) >= StuckAfter {
			add(r, workProblem(w), w.Since)
		}
	}, access.Activating, access.Ending, access.Active, access.Pending)
	// A grant past its end by more than one sweep interval: the sweep has
	// not ended it (docs/design.md, real directory rule 4) — what an alert fires on.
	if sweep <= 0 {
		sweep = DefaultSweepInterval
	}
	l.each(func(r *access.Request) {
		if r.EndsAt.IsZero() || r.Work != nil || l.now.Sub(r.EndsAt) <= sweep {
			return
		}
		add(r, fmt.Sprintf("end overdue by %s (more than one sweep interval): the sweep has not ended this grant; see the log", span(l.now.Sub(r.EndsAt))), r.EndsAt)
	}, access.Active)
	return section[attentionRow]{Rows: newestFirst(rows), More: l.more(access.Failed, access.Activating, access.Ending), Limit: ListLimit}
}

// endingStates are the states of the recent endings (denials and
// rejections have their own section).
var endingStates = []access.State{access.Expired, access.Revoked, access.Cancelled, access.TimedOut}

// endingsSection: the grants and requests that ended within the window,
// newest first, and how many of them may still be used (accessGoneBy
// ahead).
func endingsSection(l listings, win window) (s section[endingRow], lingering int) {
	var rows []timed[endingRow]
	l.each(func(r *access.Request) {
		if r.Source == access.SourceOutOfBand {
			return
		}
		at := endTime(r)
		if !win.Contains(at) {
			return
		}
		row := endingRowOf(r, at, l.now)
		if row.Lingers {
			lingering++
		}
		rows = append(rows, timed[endingRow]{row, at})
	}, endingStates...)
	s.Rows = newestFirst(rows)
	s.More, s.Limit = l.more(endingStates...), l.limit(endingStates...)
	return s, lingering
}

func endingRowOf(r *access.Request, at, now time.Time) endingRow {
	by, detail := lastEntry(r, string(r.State))
	why := nonEmpty(r.Reason, detail)
	if why == "" && r.State == access.Expired {
		why = "the granted duration elapsed"
	}
	row := endingRow{
		ID: newRef(r.ID), Who: requester(r), Profile: newText(r.Profile), Outcome: stateBadge(r.State),
		Ended: newStamp(at), By: newText(nonEmpty(by, "—")), Why: newText(nonEmpty(why, "—")), Sessions: sessionsOf(r),
	}
	if !r.AccessGoneBy.IsZero() {
		row.GoneBy, row.Lingers = newStamp(r.AccessGoneBy), r.AccessGoneBy.After(now)
	}
	return row
}

// deniedSection: the requests denied or rejected within the window, and
// the rejected events without a request, newest first.
func deniedSection(l listings, win window, rejs []access.Rejection) section[deniedRow] {
	var rows []timed[deniedRow]
	l.each(func(r *access.Request) {
		at := endTime(r)
		if !win.Contains(at) {
			return
		}
		by, _ := lastEntry(r, string(r.State))
		rows = append(rows, timed[deniedRow]{deniedRow{
			At: newStamp(at), Kind: stateBadge(r.State), ID: newRef(r.ID), Who: requester(r).Label,
			Profile: newText(r.Profile), By: newText(nonEmpty(by, "—")), Reason: newText(nonEmpty(r.Reason, "—")),
		}, at})
	}, access.Denied, access.Rejected)
	for _, j := range rejs {
		if win.Contains(j.At) {
			rows = append(rows, timed[deniedRow]{rejectionRow(j), j.At})
		}
	}
	return section[deniedRow]{Rows: newestFirst(rows), More: l.more(access.Denied, access.Rejected), Limit: l.limit(access.Denied, access.Rejected)}
}

// rejectionRow shows a rejected event without a request.
func rejectionRow(j access.Rejection) deniedRow {
	what := "event"
	if j.Type != "" {
		what = strings.TrimPrefix(j.Type, "jit.access.") + " event"
	}
	id := what + ", no request id"
	if j.RequestID != "" {
		id = what + " for unknown request " + j.RequestID
	}
	// Not a request id: shown, never linked.
	by := "—"
	if j.EventID != "" {
		by = "event " + j.EventID
	}
	return deniedRow{
		At: newStamp(j.At), Kind: badge{"rejected event", "bad", "an event without a usable request id"}, ID: ref{Label: newText(id)},
		Who: newText("—"), Profile: newText("—"), By: newText(by), Reason: newText(nonEmpty(j.Reason, "—")),
	}
}

// findingsSection: the out-of-band findings, newest first — members still
// there, and those removed lately — and how many members are still in the
// group (state active).
func findingsSection(l listings) (s section[findingRow], stillThere int) {
	var rows []timed[findingRow]
	l.each(func(r *access.Request) {
		if r.Source != access.SourceOutOfBand {
			return
		}
		if r.State.Ended() && !l.recent(endTime(r), AttentionWindow) {
			return
		}
		if r.State == access.Active {
			stillThere++
		}
		at := cmp.Or(r.RequestedAt, r.ActivatedAt)
		rows = append(rows, timed[findingRow]{findingRowOf(r, at), at})
	}, access.Active, access.Activating, access.Ending, access.Revoked)
	s.Rows = newestFirst(rows)
	s.More, s.Limit = l.more(access.Active, access.Revoked), ListLimit
	return s, stillThere
}

func findingRowOf(r *access.Request, at time.Time) findingRow {
	b := stateBadge(r.State)
	switch r.State {
	case access.Active:
		b = badge{"still a member", "bad", "added outside jitaccess and PIM; the profile records it"}
	case access.Ending:
		b = badge{"being removed", "busy", ""}
	case access.Revoked:
		b = badge{"removed", "ok", ""}
	}
	actor, detail := lastEntry(r, access.HOutOfBand)
	d := detail
	if actor != "" && actor != access.System {
		d = "added by " + actor
		if detail != "" {
			d += " — " + detail
		}
	}
	return findingRow{
		ID: newRef(r.ID), Member: requester(r), Profile: newText(r.Profile), Group: newText(r.GroupID),
		Observed: newStamp(at), State: b, Detail: newText(nonEmpty(d, "—")),
	}
}

// counts are the summary cards: how many rows each section has ("12+" when
// a listing had more), and the out-of-band members still there.
func counts(p *page, win window, stillThere int) []count {
	n := func(k int, m bool) string {
		if m {
			return fmt.Sprintf("%d+", k)
		}
		return fmt.Sprint(k)
	}
	tone := func(k int, t string) string {
		if k == 0 {
			return "zero"
		}
		return t
	}
	return []count{
		{"Active grants", n(len(p.Active.Rows), p.Active.More), "active", tone(len(p.Active.Rows), "ok")},
		{"Pending approvals", n(len(p.Pending.Rows), p.Pending.More), "pending", tone(len(p.Pending.Rows), "info")},
		{"Need attention", n(p.AttentionCount(), p.Attention.More), "attention", tone(p.AttentionCount(), "bad")},
		{"Ended (" + win.Short() + ")", n(len(p.Endings.Rows), p.Endings.More), "endings", tone(len(p.Endings.Rows), "muted")},
		{"Denied / rejected (" + win.Short() + ")", n(len(p.Denied.Rows), p.Denied.More), "denied", tone(len(p.Denied.Rows), "muted")},
		{"Out-of-band members", n(stillThere, p.Findings.More), "outofband", tone(stillThere, "bad")},
	}
}
