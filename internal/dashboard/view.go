package dashboard

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

type profileOption struct {
	Name     string
	Selected bool
}

type count struct {
	Label, Value, Anchor, Tone string
}

type person struct {
	Label text   // UPN, else object id
	ID    string // object id, for the title when a UPN is shown
}

func requester(r *access.Request) person {
	if r.RequesterUPN != "" {
		return person{Label: newText(r.RequesterUPN), ID: r.Requester}
	}
	if r.Requester == "" {
		return person{Label: newText("unknown")}
	}
	return person{Label: newText(r.Requester)}
}

// ref is a request id as displayed: a link to the request's page when it
// is a valid request id, plain text otherwise.
type ref struct {
	ID    string // the id (the link's parameter)
	Label text
}

func newRef(id string) ref { return ref{ID: id, Label: newText(id)} }

// Link reports whether the id can be linked (valid request ids only: an id
// that is not one has no page).
func (r ref) Link() bool { return access.ValidRequestID(r.ID) }

type badge struct {
	Label, Class, Hint string
}

func stateBadge(s access.State) badge {
	switch s {
	case access.Active:
		return badge{"active", "ok", "the membership is in place"}
	case access.Activating:
		return badge{"activating", "busy", "approved; the membership is being added"}
	case access.Ending:
		return badge{"ending", "busy", "ended; the membership is being removed and sessions revoked"}
	case access.Pending:
		return badge{"pending", "info", "waiting for approval"}
	case access.Failed:
		return badge{"failed", "bad", "could not be carried out"}
	case access.Denied, access.Rejected:
		return badge{string(s), "bad", ""}
	case access.TimedOut:
		return badge{"timed out", "muted", "no decision within the approval timeout"}
	}
	return badge{string(s), "muted", ""}
}

type grantRow struct {
	ID            ref
	Who           person
	Profile       text
	Source        string
	Approvers     text
	Justification text
	Ticket        text
	Activated     stamp
	Ends          stamp
	Left          string
	Overdue       bool
	State         badge
}

type pendingRow struct {
	ID            ref
	Who           person
	Profile       text
	Duration      string
	Justification text
	Ticket        text
	Requested     stamp
	Age           string
	Approvals     int
	Required      int
	Approvers     text
}

type attentionRow struct {
	ID      ref
	Who     person
	Profile text
	State   badge
	Problem text
	Since   stamp
	Age     string
}

type endingRow struct {
	ID       ref
	Who      person
	Profile  text
	Outcome  badge
	Ended    stamp
	By       text
	Why      text
	Sessions sessionsView
	// GoneBy is the grant's accessGoneBy (zero: none); Lingers: still
	// ahead — "access may linger until …".
	GoneBy  stamp
	Lingers bool
}

type deniedRow struct {
	At      stamp
	Kind    badge
	ID      ref
	Who     text
	Profile text
	By      text
	Reason  text
}

type findingRow struct {
	ID       ref
	Member   person
	Profile  text
	Group    text
	Observed stamp
	State    badge
	Detail   text
}

// section is one table of the page; More is set when a listing it is built
// from had more than Limit items (only the first Limit were considered).
type section[T any] struct {
	Rows  []T
	More  bool
	Limit int
}

// frame is what every page shares: the header, the forms and the refresh.
type frame struct {
	Nonce string
	// Refresh is the reload interval in seconds (0: the page does not
	// reload); Self is the page's own address, without any key, that the
	// reload goes to.
	Refresh int
	Self    string
	Now     stamp
	// The forms: the profile filter and the endings' range, the search.
	Profile  string
	Profiles []profileOption
	Search   string
	Win      window
}

type page struct {
	frame
	Counts []count

	Active    section[grantRow]
	Pending   section[pendingRow]
	Attention section[attentionRow]
	// Lingering counts the endings shown whose access may still be used
	// (accessGoneBy ahead: a token issued before the end, or the RBAC
	// caches).
	Lingering int
	Endings   section[endingRow]
	Denied    section[deniedRow]
	Findings  section[findingRow]

	// Unreadable are the ids of stored requests the listings skipped because
	// they cannot be decoded (shown under needs attention).
	Unreadable unreadable
}

// AttentionCount is how many things need attention: rows and unreadable
// requests.
func (p *page) AttentionCount() int { return len(p.Attention.Rows) + p.Unreadable.N() }

// unreadable is what the page says about stored requests it could not read.
type unreadable struct {
	IDs  []ref // the first MaxUnreadableShown ids
	More int   // how many more there are
}

// N is how many there are.
func (u unreadable) N() int { return len(u.IDs) + u.More }

// Noun is "request" or "requests" for N.
func (u unreadable) Noun() string {
	if u.N() == 1 {
		return "request"
	}
	return "requests"
}

func newUnreadable(ids []string) unreadable {
	var u unreadable
	for i, id := range ids {
		if i == MaxUnreadableShown {
			u.More = len(ids) - i
			break
		}
		u.IDs = append(u.IDs, newRef(id))
	}
	return u
}

type errorPage struct {
	Nonce   string
	Status  int
	Title   string
	Message string
	Refresh int
	// Home: link back to the dashboard.
	Home bool
}

func sourceLabel(s access.Source) string {
	switch s {
	case access.SourcePIM:
		return "PIM portal"
	case access.SourceOutOfBand:
		return "out of band"
	}
	return ""
}

func approverNames(r *access.Request) text {
	names := make([]string, 0, len(r.Approvals))
	for _, a := range r.Approvals {
		names = append(names, nonEmpty(a.ApproverUPN, a.Approver))
	}
	return newText(strings.Join(names, ", "))
}

func approvers(r *access.Request) text {
	switch {
	case len(r.Approvals) > 0:
		return approverNames(r)
	case r.Source == access.SourcePIM:
		return newText("PIM (activated in the portal)")
	case r.ApprovalsRequired == 0:
		return newText("auto-approved")
	}
	return newText("—")
}

// endTime is when a request ended (or, for records without EndedAt, the
// newest time it carries).
func endTime(r *access.Request) time.Time {
	if !r.EndedAt.IsZero() {
		return r.EndedAt
	}
	if n := len(r.History); n > 0 && !r.History[n-1].At.IsZero() {
		return r.History[n-1].At
	}
	return cmp.Or(r.ActivatedAt, r.RequestedAt)
}

// lastEntry returns the actor and detail of the newest history entry of typ.
func lastEntry(r *access.Request, typ string) (actor, detail string) {
	for i := len(r.History) - 1; i >= 0; i-- {
		if r.History[i].Type == typ {
			return r.History[i].Actor, r.History[i].Detail
		}
	}
	return "", ""
}

func workProblem(w *access.Work) string {
	var step string
	switch {
	case w.Membership == access.OpAdd && !w.MembershipDone:
		step = "adding the group membership"
	case w.Membership == access.OpRemove && !w.MembershipDone:
		step = "removing the group membership"
	case w.NeedsRevoke():
		step = "revoking sign-in sessions"
	default:
		step = "finishing the " + string(w.Goal) + " step"
	}
	s := "Graph work unfinished: " + step
	if w.Attempts > 0 {
		s += fmt.Sprintf(" (%d attempts)", w.Attempts)
	}
	return s
}
