package dashboard

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
)

var stdout = os.Stdout

// text is a free-text value as displayed: Short is at most MaxText
// characters; when it was cut, Full holds the whole text for the title.
type text struct {
	Short string
	Full  string
}

// Cut reports whether the displayed text is shortened.
func (t text) Cut() bool { return t.Full != "" }

func newText(s string) text {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= MaxText {
		return text{Short: s}
	}
	return text{Short: clipRunes(s, MaxText-1) + "…", Full: s}
}

func clipRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// stamp is a point in time as displayed: the text is UTC with the year
// ("23 Nov 2026 10:04 UTC"); the page's script replaces it by the same time
// in the viewer's zone, and Title keeps the UTC time to the second.
type stamp struct {
	ISO   string // RFC 3339 UTC, for <time datetime>
	Show  string // "23 Nov 2026 10:04 UTC" (Secs: "… 10:04:05 UTC"), no-break spaces but one
	Title string // "2026-11-23 10:04:05 UTC"
	Secs  bool   // shown to the second (the request's page, the timeline)
}

// showDate lays out the date of a stamp; no-break spaces keep the date and
// the clock each in one piece, while a narrow column may wrap between them.
const (
	nbsp     = "\u00a0"
	showDate = "2" + nbsp + "Jan" + nbsp + "2006"
)

func newStamp(t time.Time) stamp {
	if t.IsZero() {
		return stamp{}
	}
	t = t.UTC()
	return stamp{ISO: t.Format(time.RFC3339), Show: t.Format(showDate+" 15:04") + nbsp + "UTC", Title: t.Format("2006-01-02 15:04:05") + " UTC"}
}

func newStampSecs(t time.Time) stamp {
	s := newStamp(t)
	if s.ISO != "" {
		s.Show, s.Secs = t.UTC().Format(showDate+" 15:04:05")+nbsp+"UTC", true
	}
	return s
}

// span formats a duration for people: "2d 3h", "1h 05m", "12m 30s", "45s".
func span(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	hours, s := s/3600, s%3600
	mins, secs := s/60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh %02dm", hours, mins)
	case mins > 0:
		return fmt.Sprintf("%dm %02ds", mins, secs)
	}
	return fmt.Sprintf("%ds", secs)
}

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

// listed is what the listing of one state returned.
type listed struct {
	items   []*access.Request
	more    bool
	skipped []string
	// limit is how many items the listing could return at most.
	limit int
}

var listedStates = []access.State{
	access.Active, access.Activating, access.Ending, access.Pending, access.Failed,
	access.Expired, access.Revoked, access.Cancelled, access.TimedOut, access.Denied, access.Rejected,
}

// rangedStates are the states whose sections follow the date range.
var rangedStates = []access.State{access.Expired, access.Revoked, access.Cancelled, access.TimedOut, access.Denied, access.Rejected}

// list reads up to pages pages of ListLimit of one listing.
func (h *handler) list(ctx context.Context, f broker.ListFilter, pages int) (listed, error) {
	l := listed{limit: pages * ListLimit}
	f.Limit = ListLimit
	for range pages {
		pg, err := h.o.Store.ListRequests(ctx, f)
		if err != nil {
			return listed{}, err
		}
		l.items = append(l.items, pg.Items...)
		l.skipped = append(l.skipped, pg.Skipped...)
		l.more = pg.Next != ""
		if !l.more {
			break
		}
		f.After = pg.Next
	}
	return l, nil
}

// listAll makes one bounded listing per state, concurrently; pages says how
// many pages a state's listing reads (default 1).
func (h *handler) listAll(ctx context.Context, profile string, pages func(access.State) int) (map[access.State]listed, error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
		res  = make(map[access.State]listed, len(listedStates))
	)
	for _, st := range listedStates {
		wg.Go(func() {
			n := 1
			if pages != nil {
				n = max(pages(st), 1)
			}
			l, err := h.list(ctx, broker.ListFilter{State: st, Profile: profile}, n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("list %s: %w", st, err))
				return
			}
			res[st] = l
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", errStore, errs[0])
	}
	return res, nil
}

// gather reads everything the dashboard shows: one bounded listing per state
// (RangePages for the ended states with a date range) and one of the
// rejections, concurrently.
func (h *handler) gather(ctx context.Context, q query, now time.Time) (*page, error) {
	var (
		res     map[access.State]listed
		rejs    []access.Rejection
		listErr error
		rejErr  error
		wg      sync.WaitGroup
	)
	wg.Go(func() {
		res, listErr = h.listAll(ctx, q.profile, func(st access.State) int {
			if q.win.Custom() && slices.Contains(rangedStates, st) {
				return RangePages
			}
			return 1
		})
	})
	if q.profile == "" {
		// Rejections without request id have no profile; they are shown on
		// the unfiltered page only.
		wg.Go(func() { rejs, rejErr = h.o.Store.RecentRejections(ctx, RejectionLimit) })
	}
	wg.Wait()
	if listErr != nil {
		return nil, listErr
	}
	if rejErr != nil {
		return nil, fmt.Errorf("%w: rejections: %w", errStore, rejErr)
	}
	h.withHistory(ctx, res, q.win, now)
	p := &page{}
	build(p, res, rejs, q.profile, q.win, now, h.o.SweepInterval)
	return p, nil
}

// skippedIDs are the ids the listings skipped as unreadable, once each, in
// order.
func skippedIDs(res map[access.State]listed) []string {
	var ids []string
	for _, l := range res {
		ids = append(ids, l.skipped...)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// withHistory replaces listed requests whose history the listing left out
// (stores may list without it) by the full request, for the rows whose
// "who" and "sessions" columns come from the history: recent endings and
// denials of the window and out-of-band findings. At most HistoryLookups requests, newest
// first, are read, HistoryParallel at a time, so the cost stays bounded. A
// failed read only leaves that row without the history details.
func (h *handler) withHistory(ctx context.Context, res map[access.State]listed, win window, now time.Time) {
	type slot struct {
		items []*access.Request
		i     int
		at    time.Time
	}
	var todo []slot
	for st, l := range res {
		for i, r := range l.items {
			if r == nil || r.State != st || len(r.History) > 0 {
				continue
			}
			at := endTime(r)
			switch {
			case r.Source == access.SourceOutOfBand && (!st.Ended() || now.Sub(at) <= AttentionWindow):
			case r.Source != access.SourceOutOfBand && win.Contains(at) &&
				(st == access.Expired || st == access.Revoked || st == access.Cancelled || st == access.Denied):
			default:
				continue
			}
			todo = append(todo, slot{l.items, i, at})
		}
	}
	slices.SortFunc(todo, func(a, b slot) int { return b.at.Compare(a.at) })
	todo = todo[:min(len(todo), HistoryLookups)]
	sem := make(chan struct{}, HistoryParallel)
	var wg sync.WaitGroup
	failed := 0
	var mu sync.Mutex
	for _, s := range todo {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			full, err := h.o.Store.GetRequest(ctx, s.items[s.i].ID)
			if err != nil || full == nil || full.ID != s.items[s.i].ID || full.State != s.items[s.i].State {
				mu.Lock()
				failed++
				mu.Unlock()
				return
			}
			s.items[s.i] = full // distinct slots: no two goroutines write one
		})
	}
	wg.Wait()
	if failed > 0 {
		h.log.WarnContext(ctx, "dashboard: some request histories could not be read", "count", failed)
	}
}

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
	stillThere := 0
	for _, f := range fnds {
		if f.row.State.Label == "still a member" {
			stillThere++
		}
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

func nonEmpty(s, alt string) string {
	if strings.TrimSpace(s) != "" {
		return s
	}
	return alt
}
