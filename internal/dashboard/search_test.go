package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// fakeUsers resolves UPNs from a map; err, when set, is every answer.
type fakeUsers struct {
	ids   map[string]string
	err   error
	calls int
}

func (f *fakeUsers) LookupUser(_ context.Context, upn string) (broker.User, error) {
	f.calls++
	if f.err != nil {
		return broker.User{}, f.err
	}
	id, ok := f.ids[strings.ToLower(upn)]
	if !ok {
		return broker.User{}, fault.Wrap(fault.ErrNotFound, "lookup", nil)
	}
	return broker.User{ID: id, UPN: upn, Enabled: true}, nil
}

// resultIDs are the request ids of a search's result rows, in order.
func resultIDs(t *testing.T, body string) []string {
	t.Helper()
	var ids []string
	rows := sectionHTML(t, body, "results")
	for _, part := range strings.Split(rows, `<td class="rid"><a class="id" href="?request=`)[1:] {
		ids = append(ids, part[:strings.IndexByte(part, '"')])
	}
	return ids
}

func TestSearchByID(t *testing.T) {
	store := seed(now0)
	h := newTestHandler(store)
	rec, _ := get(t, h, "/api/dashboard?q=req-kept")
	if rec.Code != 303 || rec.Header().Get("Location") != "?request=req-kept" {
		t.Fatalf("exact id: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	rec, _ = get(t, h, "/api/dashboard?q=%20req-role%20")
	if rec.Code != 303 || rec.Header().Get("Location") != "?request=req-role" {
		t.Errorf("exact id with spaces: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if len(store.seen()) != 0 {
		t.Errorf("an exact id made %d listings", len(store.seen()))
	}
	// An id the store does not know is searched for as text.
	rec, body := get(t, h, "/api/dashboard?q=req-pending")
	if rec.Code != 200 {
		t.Fatalf("%d", rec.Code)
	}
	if got := resultIDs(t, body); strings.Join(got, " ") != "req-pending-1 req-pending-2" {
		t.Errorf("partial id: %v", got)
	}
	mustContain(t, "partial", body, "<td>request id</td>")
}

func TestSearchByRequester(t *testing.T) {
	store := seed(now0)
	h := newTestHandler(store)
	_, body := get(t, h, "/api/dashboard?q=N01%40Contoso.Example")
	if got := resultIDs(t, body); strings.Join(got, " ") != "req-kept req-active-xss req-expired" {
		t.Errorf("by UPN: %v", got)
	}
	mustContain(t, "by upn", body, "<td>requester</td>", `<span class="count">3</span>`, "read from the requester index",
		`value="N01@Contoso.Example"`, "ended ", "activated ")
	// The UPN matched among the listings gave the object id, and the
	// requester index was read with it (a single time).
	var byRequester []broker.ListFilter
	for _, f := range store.seen() {
		if f.Requester != "" {
			byRequester = append(byRequester, f)
		}
	}
	if len(byRequester) != 1 || byRequester[0].Requester != n01ID || byRequester[0].State != "" || byRequester[0].Limit != ListLimit {
		t.Errorf("requester listings: %+v", byRequester)
	}

	// An object id, in any case: the index only.
	store = &fakeLister{reqs: []*access.Request{
		{ID: "old-1", State: access.Expired, Requester: n01ID, Profile: "aks-admin", EndedAt: now0.Add(-90 * 24 * time.Hour)},
	}}
	h = newTestHandler(store)
	_, body = get(t, h, "/api/dashboard?q="+strings.ToUpper(n01ID))
	if got := resultIDs(t, body); len(got) != 1 || got[0] != "old-1" {
		t.Errorf("by object id: %v", got)
	}

	// A UPN no listed request has: the directory gives the object id.
	users := &fakeUsers{ids: map[string]string{"kim@contoso.example": "ID-K"}}
	store = seed(now0)
	for _, r := range store.reqs {
		if r.ID == "req-denied" {
			r.RequesterUPN = "" // listed without a UPN
			r.Requester = "id-k"
		}
	}
	h = New(Options{Store: store, Users: users, Profiles: profiles, Now: func() time.Time { return now0 }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_, body = get(t, h, "/api/dashboard?q=kim%40contoso.example")
	if got := resultIDs(t, body); len(got) != 1 || got[0] != "req-denied" {
		t.Errorf("through the directory: %v", got)
	}
	_, body = get(t, h, "/api/dashboard?q=nobody%40contoso.example")
	mustContain(t, "unknown", body, "No request matches <q>nobody@contoso.example</q>.")
	// A directory that fails: the listings are still searched, and the page says so.
	users.err = fault.Wrap(fault.ErrTransient, "lookup", errors.New("graph 503"))
	rec, body := get(t, h, "/api/dashboard?q=n01%40contoso.example")
	if rec.Code != 200 {
		t.Fatalf("%d", rec.Code)
	}
	mustContain(t, "directory down", body, "The directory did not answer", "req-kept")
	mustNotContain(t, "directory down", body, "graph 503")
	// Text without @ is not sent to the directory.
	calls := users.calls
	get(t, h, "/api/dashboard?q=INC-42")
	if users.calls != calls {
		t.Error("a ticket was looked up in the directory")
	}
}

func TestSearchByTicket(t *testing.T) {
	store := seed(now0)
	h := newTestHandler(store)
	_, body := get(t, h, "/api/dashboard?q=inc-4")
	if got := resultIDs(t, body); len(got) != 1 || got[0] != "req-active-xss" {
		t.Errorf("by ticket: %v", got)
	}
	mustContain(t, "ticket", body, "<td>ticket</td>", `<td class="why">INC-42</td>`,
		"Tickets have no index", "among the 19 requests the dashboard lists (at most 200 per state)")
	mustNotContain(t, "ticket", body, "some listings had more", "read from the requester index")
	// With a profile, only that profile's requests are listed.
	store.filters = nil
	_, body = get(t, h, "/api/dashboard?q=CHG&profile=aks-oncall")
	mustContain(t, "other profile", body, "No request matches <q>CHG</q>.", " in profile aks-oncall")
	for _, f := range store.seen() {
		if f.Profile != "aks-oncall" {
			t.Errorf("listing %+v", f)
		}
	}
	_, body = get(t, h, "/api/dashboard?q=CHG&profile=aks-admin")
	if got := resultIDs(t, body); len(got) != 1 || got[0] != "req-kept" {
		t.Errorf("profile aks-admin: %v", got)
	}
	mustContain(t, "refresh", body, `<meta http-equiv="refresh" content="15; url=?profile=aks-admin&amp;q=CHG">`)
}

func TestSearchBounds(t *testing.T) {
	store := &fakeLister{}
	for i := range ListLimit + MaxResults {
		store.reqs = append(store.reqs, &access.Request{ID: fmt.Sprintf("t%04d", i), State: access.Pending, Requester: "u",
			Profile: "aks-admin", Ticket: "OPS-1", RequestedAt: now0.Add(-time.Duration(i) * time.Minute)})
	}
	_, body := get(t, newTestHandler(store), "/api/dashboard?q=OPS-1")
	ids := resultIDs(t, body)
	if len(ids) != ListLimit || ids[0] != "t0000" {
		t.Errorf("%d rows, first %v", len(ids), ids[:1])
	}
	mustContain(t, "bounds", body, "<strong>some listings had more</strong>", `<span class="count">200</span>`)

	// More matches than MaxResults: the newest shown, and the count said.
	store = &fakeLister{}
	for _, st := range []access.State{access.Pending, access.Expired} {
		for i := range MaxResults {
			store.reqs = append(store.reqs, &access.Request{ID: fmt.Sprintf("%s-%04d", st, i), State: st, Requester: "u",
				Profile: "aks-admin", Ticket: "OPS-2", RequestedAt: now0.Add(-time.Duration(i) * time.Minute)})
		}
	}
	_, body = get(t, newTestHandler(store), "/api/dashboard?q=ops-2")
	mustContain(t, "cut", body, fmt.Sprintf("Showing the newest %d of %d matches.", MaxResults, 2*MaxResults))
}

func TestSearchEscaping(t *testing.T) {
	store := seed(now0)
	store.reqs[0].Ticket = xss
	h := newTestHandler(store)
	q := url.QueryEscape(`<script>alert(1)</script>`)
	rec, body := get(t, h, "/api/dashboard?q="+q)
	if rec.Code != 200 {
		t.Fatalf("%d", rec.Code)
	}
	mustContain(t, "escaped", body, `value="&lt;script&gt;alert(1)&lt;/script&gt;"`, "<q>&lt;script&gt;alert(1)&lt;/script&gt;</q>", xssText)
	mustNotContain(t, "escaped", body, "<img", "<script>alert")
	onlyTimeScript(t, "search", body)
	if got := resultIDs(t, body); len(got) != 1 || got[0] != "req-active-xss" {
		t.Errorf("%v", got)
	}
}

func TestSearchStoreDown(t *testing.T) {
	h := newTestHandler(&fakeLister{err: fault.Wrap(fault.ErrTransient, "list", errors.New("dial tcp: refused"))})
	for _, q := range []string{"req-1", "INC-1"} {
		rec, body := get(t, h, "/api/dashboard?q="+q)
		if rec.Code != 503 {
			t.Errorf("%s: %d", q, rec.Code)
		}
		mustNotContain(t, q, body, "dial tcp")
	}
}
