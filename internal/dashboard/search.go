package dashboard

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// searchPage lists the requests a search found.
type searchPage struct {
	frame
	Rows []resultRow
	// Total is how many requests matched (Rows holds at most MaxResults).
	Total int
	// Indexed: the requester index was read (for the object ids of the
	// requester searched for); IndexMore: it had more than ListLimit.
	Indexed   bool
	IndexMore bool
	// Scanned is how many listed requests were looked through for the
	// ticket, id and requester; ScanMore: a listing had more than ListLimit,
	// so matches may be missing.
	Scanned  int
	ScanMore bool
	// DirectoryFailed: the directory could not resolve the UPN (the
	// listings were still searched).
	DirectoryFailed bool
}

type resultRow struct {
	ID      ref
	Who     person
	Profile text
	State   badge
	Ticket  text
	// When is the newest time the request carries (its end, else its
	// activation or request), WhenLabel says which.
	When      stamp
	WhenLabel string
	Matched   string
	at        time.Time
}

var objectIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// maxRequesterIDs bounds the requester index listings of one search.
const maxRequesterIDs = 3

func (h *handler) serveSearch(w http.ResponseWriter, r *http.Request, f frame, q query, now time.Time) {
	ctx := r.Context()
	text := q.search
	// An exact request id opens the request's page.
	if access.ValidRequestID(text) {
		req, err := h.o.Store.GetRequest(ctx, text)
		switch {
		case err == nil && req != nil && req.ID == text && req.State != access.Awaiting, fault.Unreadable(err):
			w.Header().Set("Location", "?"+url.Values{"request": {text}}.Encode())
			w.WriteHeader(http.StatusSeeOther)
			return
		case err != nil && !fault.NotFound(err):
			h.storeFailed(w, r, f.Nonce, err)
			return
		}
	}
	p, err := h.search(ctx, text, q.profile)
	if err != nil {
		h.storeFailed(w, r, f.Nonce, err)
		return
	}
	f.Refresh = refreshSeconds(h.o.Refresh)
	p.frame = f
	h.render(w, r, f.Nonce, "search", p)
}

// search finds the requests of a requester (UPN or object id) through the
// requester index, and those whose ticket or id contains text, or whose
// requester is text, among the dashboard's listings (the ticket has no
// index).
func (h *handler) search(ctx context.Context, text, profile string) (*searchPage, error) {
	res, err := h.listAll(ctx, profile, nil)
	if err != nil {
		return nil, err
	}
	p := &searchPage{}
	type hit struct {
		r       *access.Request
		matched []string
	}
	hits := map[string]*hit{}
	note := func(r *access.Request, why string) {
		if r == nil || r.State == access.Awaiting || profile != "" && r.Profile != profile {
			return
		}
		x := hits[r.ID]
		if x == nil {
			x = &hit{r: r}
			hits[r.ID] = x
		}
		if !slices.Contains(x.matched, why) {
			x.matched = append(x.matched, why)
		}
	}
	lower := strings.ToLower(text)
	var ids []string
	addID := func(id string) {
		id = strings.ToLower(strings.TrimSpace(id))
		if id != "" && !slices.Contains(ids, id) && len(ids) < maxRequesterIDs {
			ids = append(ids, id)
		}
	}
	if objectIDPattern.MatchString(text) {
		addID(text)
	}
	seen := map[string]bool{}
	for _, st := range listedStates {
		l := res[st]
		p.ScanMore = p.ScanMore || l.more
		for _, r := range l.items {
			if r == nil || r.State != st || seen[r.ID] {
				continue
			}
			seen[r.ID] = true
			p.Scanned++
			if strings.EqualFold(r.Requester, text) || strings.EqualFold(r.RequesterUPN, text) {
				note(r, "requester")
				addID(r.Requester)
			}
			if r.Ticket != "" && strings.Contains(strings.ToLower(r.Ticket), lower) {
				note(r, "ticket")
			}
			if strings.Contains(strings.ToLower(r.ID), lower) {
				note(r, "request id")
			}
		}
	}
	if strings.Contains(text, "@") && h.o.Users != nil {
		u, err := h.o.Users.LookupUser(ctx, text)
		switch {
		case err == nil:
			addID(u.ID)
		case fault.NotFound(err), fault.Permanent(err):
		default:
			h.log.WarnContext(ctx, "dashboard: directory lookup for a search failed", "kind", errKind(err))
			p.DirectoryFailed = true
		}
	}
	for _, id := range ids {
		l, err := h.list(ctx, broker.ListFilter{Requester: id, Profile: profile}, 1)
		if err != nil {
			return nil, err
		}
		p.Indexed = true
		p.IndexMore = p.IndexMore || l.more
		for _, r := range l.items {
			note(r, "requester")
		}
	}

	rows := make([]resultRow, 0, len(hits))
	for _, x := range hits {
		r := x.r
		row := resultRow{ID: newRef(r.ID), Who: requester(r), Profile: newText(r.Profile), State: stateBadge(r.State),
			Ticket: newText(r.Ticket), Matched: strings.Join(x.matched, ", ")}
		switch {
		case !r.EndedAt.IsZero():
			row.at, row.WhenLabel = r.EndedAt, "ended"
		case !r.ActivatedAt.IsZero():
			row.at, row.WhenLabel = r.ActivatedAt, "activated"
		default:
			row.at, row.WhenLabel = endTime(r), "requested"
		}
		row.When = newStamp(row.at)
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b resultRow) int {
		return cmp.Or(b.at.Compare(a.at), cmp.Compare(a.ID.ID, b.ID.ID))
	})
	p.Total = len(rows)
	p.Rows = rows[:min(len(rows), MaxResults)]
	return p, nil
}
