package dashboard

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

func build(p *page, res map[access.State]listed, rejs []access.Rejection, profile string, win window, now time.Time, sweep time.Duration) {
	more := func(states ...access.State) bool {
		for _, s := range states {
			if res[s].more {
				return true
			}
		}
		return false
	}
	// limit is the bound of the largest listing of the states.
	limit := func(states ...access.State) int {
		n := ListLimit
		for _, s := range states {
			n = max(n, res[s].limit)
		}
		return n
	}
	// each calls fn for every shown request of the given states (a request
	// listed under a state it is no longer in is shown under its own).
	each := func(fn func(r *access.Request), states ...access.State) {
		for _, s := range states {
			for _, r := range res[s].items {
				if r == nil || r.State == access.Awaiting || r.State != s {
					continue
				}
				if profile != "" && r.Profile != profile {
					continue
				}
				fn(r)
			}
		}
	}
	recent := func(t time.Time, window time.Duration) bool { return !t.IsZero() && now.Sub(t) <= window }

	// Active grants (out-of-band members have their own section).
	each(func(r *access.Request) {
		if r.Source == access.SourceOutOfBand {
			return
		}
		row := grantRow{
			ID: newRef(r.ID), Who: requester(r), Profile: newText(r.Profile), Source: sourceLabel(r.Source),
			Approvers: approvers(r), Justification: newText(r.Justification), Ticket: newText(r.Ticket),
			Activated: newStamp(r.ActivatedAt), Ends: newStamp(r.EndsAt), State: stateBadge(r.State),
		}
		if !r.EndsAt.IsZero() {
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
		} else {
			row.Left = "—"
		}
		p.Active.Rows = append(p.Active.Rows, row)
	}, access.Active, access.Activating, access.Ending)
	slices.SortStableFunc(p.Active.Rows, func(a, b grantRow) int { return cmp.Compare(a.Ends.ISO, b.Ends.ISO) })
	p.Active.More, p.Active.Limit = more(access.Active, access.Activating, access.Ending), ListLimit

	// Pending approvals, the longest waiting first.
	each(func(r *access.Request) {
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
			row.Age = span(now.Sub(r.RequestedAt))
		}
		p.Pending.Rows = append(p.Pending.Rows, row)
	}, access.Pending)
	slices.SortStableFunc(p.Pending.Rows, func(a, b pendingRow) int { return cmp.Compare(a.Requested.ISO, b.Requested.ISO) })
	p.Pending.More, p.Pending.Limit = more(access.Pending), ListLimit

	// Needs attention: failures, and Graph work left unfinished too long.
	type att struct {
		row attentionRow
		at  time.Time
	}
	var atts []att
	each(func(r *access.Request) {
		at := endTime(r)
		if !recent(at, AttentionWindow) {
			return
		}
		atts = append(atts, att{attentionRow{
			ID: newRef(r.ID), Who: requester(r), Profile: newText(r.Profile), State: stateBadge(r.State),
			Problem: newText(nonEmpty(r.Reason, "failed without a recorded reason")), Since: newStamp(at), Age: span(now.Sub(at)),
		}, at})
	}, access.Failed)
	each(func(r *access.Request) {
		w := r.Work
		if w == nil || w.Since.IsZero() || now.Sub(w.Since) < StuckAfter {
			return
		}
		atts = append(atts, att{attentionRow{
			ID: newRef(r.ID), Who: requester(r), Profile: newText(r.Profile), State: stateBadge(r.State),
			Problem: newText(workProblem(w)), Since: newStamp(w.Since), Age: span(now.Sub(w.Since)),
		}, w.Since})
	}, access.Activating, access.Ending, access.Active, access.Pending)
	// A grant past its end by more than one sweep interval: the sweep has
	// not ended it (DESIGN §6b.4) — what an alert fires on.
	if sweep <= 0 {
		sweep = DefaultSweepInterval
	}
	each(func(r *access.Request) {
		if r.EndsAt.IsZero() || r.Work != nil || now.Sub(r.EndsAt) <= sweep {
			return
		}
		atts = append(atts, att{attentionRow{
			ID: newRef(r.ID), Who: requester(r), Profile: newText(r.Profile), State: stateBadge(r.State),
			Problem: newText(fmt.Sprintf("end overdue by %s (more than one sweep interval): the sweep has not ended this grant; see the log", span(now.Sub(r.EndsAt)))),
			Since:   newStamp(r.EndsAt), Age: span(now.Sub(r.EndsAt)),
		}, r.EndsAt})
	}, access.Active)
	slices.SortStableFunc(atts, func(a, b att) int { return b.at.Compare(a.at) })
	for _, a := range atts {
		p.Attention.Rows = append(p.Attention.Rows, a.row)
	}
	p.Attention.More, p.Attention.Limit = more(access.Failed, access.Activating, access.Ending), ListLimit
	// Stored requests no listing could read: nobody can act on them but an
	// operator (DESIGN §6b point 4: they break nothing, and they show).
	p.Unreadable = newUnreadable(skippedIDs(res))

	// Recent endings.
	type end struct {
		row endingRow
		at  time.Time
	}
	var ends []end
	each(func(r *access.Request) {
		if r.Source == access.SourceOutOfBand {
			return
		}
		at := endTime(r)
		if !win.Contains(at) {
			return
		}
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
			if row.Lingers {
				p.Lingering++
			}
		}
		ends = append(ends, end{row, at})
	}, access.Expired, access.Revoked, access.Cancelled, access.TimedOut)
	slices.SortStableFunc(ends, func(a, b end) int { return b.at.Compare(a.at) })
	for _, e := range ends {
		p.Endings.Rows = append(p.Endings.Rows, e.row)
	}
	p.Endings.More = more(access.Expired, access.Revoked, access.Cancelled, access.TimedOut)
	p.Endings.Limit = limit(access.Expired, access.Revoked, access.Cancelled, access.TimedOut)

	// Denied and rejected: requests, then rejected events without a request.
	type den struct {
		row deniedRow
		at  time.Time
	}
	var dens []den
	each(func(r *access.Request) {
		at := endTime(r)
		if !win.Contains(at) {
			return
		}
		by, _ := lastEntry(r, string(r.State))
		dens = append(dens, den{deniedRow{
			At: newStamp(at), Kind: stateBadge(r.State), ID: newRef(r.ID), Who: requester(r).Label,
			Profile: newText(r.Profile), By: newText(nonEmpty(by, "—")), Reason: newText(nonEmpty(r.Reason, "—")),
		}, at})
	}, access.Denied, access.Rejected)
	for _, j := range rejs {
		if !win.Contains(j.At) {
			continue
		}
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
		dens = append(dens, den{deniedRow{
			At: newStamp(j.At), Kind: badge{"rejected event", "bad", "an event without a usable request id"}, ID: ref{Label: newText(id)},
			Who: newText("—"), Profile: newText("—"), By: newText(by), Reason: newText(nonEmpty(j.Reason, "—")),
		}, j.At})
	}
	slices.SortStableFunc(dens, func(a, b den) int { return b.at.Compare(a.at) })
	for _, d := range dens {
		p.Denied.Rows = append(p.Denied.Rows, d.row)
	}
	p.Denied.More, p.Denied.Limit = more(access.Denied, access.Rejected), limit(access.Denied, access.Rejected)

	// Out-of-band findings: members still there, and those removed lately.
	type fnd struct {
		row findingRow
		at  time.Time
	}
	var fnds []fnd
	stillThere := 0 // members still in the group (state active)
	each(func(r *access.Request) {
		if r.Source != access.SourceOutOfBand {
			return
		}
		if r.State.Ended() && !recent(endTime(r), AttentionWindow) {
			return
		}
		at := cmp.Or(r.RequestedAt, r.ActivatedAt)
		b := stateBadge(r.State)
		switch r.State {
		case access.Active:
			b = badge{"still a member", "bad", "added outside jitaccess and PIM; the profile records it"}
			stillThere++
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
		fnds = append(fnds, fnd{findingRow{
			ID: newRef(r.ID), Member: requester(r), Profile: newText(r.Profile), Group: newText(r.GroupID),
			Observed: newStamp(at), State: b, Detail: newText(nonEmpty(d, "—")),
		}, at})
	}, access.Active, access.Activating, access.Ending, access.Revoked)
	slices.SortStableFunc(fnds, func(a, b fnd) int { return b.at.Compare(a.at) })
	for _, f := range fnds {
		p.Findings.Rows = append(p.Findings.Rows, f.row)
	}
	p.Findings.More, p.Findings.Limit = more(access.Active, access.Revoked), ListLimit

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
	p.Counts = []count{
		{"Active grants", n(len(p.Active.Rows), p.Active.More), "active", tone(len(p.Active.Rows), "ok")},
		{"Pending approvals", n(len(p.Pending.Rows), p.Pending.More), "pending", tone(len(p.Pending.Rows), "info")},
		{"Need attention", n(p.AttentionCount(), p.Attention.More), "attention", tone(p.AttentionCount(), "bad")},
		{"Ended (" + win.Short() + ")", n(len(p.Endings.Rows), p.Endings.More), "endings", tone(len(p.Endings.Rows), "muted")},
		{"Denied / rejected (" + win.Short() + ")", n(len(p.Denied.Rows), p.Denied.More), "denied", tone(len(p.Denied.Rows), "muted")},
		{"Out-of-band members", n(stillThere, p.Findings.More), "outofband", tone(stillThere, "bad")},
	}
}
