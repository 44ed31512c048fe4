package handlers

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
)

// FuzzEntraAuditEventsPayload: whatever the host posts to EntraAuditEvents
// is answered 200 (bad events are the use case's to record or skip; an
// unreadable batch is acknowledged) with a host answer, and the events handed
// on are exactly the batch's elements.
func FuzzEntraAuditEventsPayload(f *testing.F) {
	if b, err := os.ReadFile("testdata/eventhub_batch.json"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{`{"Data":{"events":["a","{\"records\":[]}"]},"Metadata":{}}`, `{"Data":{"events":"nope"}}`,
		`{"Data":{"events":"[\"x\"]"}}`, `{"Data":{}}`, `{}`, `[]`, `"x"`, ``, `{"Data":{"events":[1,{"a":2},null]}}`,
		`{"Data":{"events":["` + strings.Repeat("\\\"", 64) + `"]},"Metadata":{"RetryContext":{"RetryCount":"x"}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		a := &fakeAudit{}
		h := New(Deps{Audit: a, Logger: slog.New(slog.DiscardHandler)})
		rec := post(h, "/EntraAuditEvents", in)
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var res map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res == nil {
			t.Fatalf("not a host answer: %s", rec.Body)
		}
		for _, ev := range a.events {
			if ev == nil {
				t.Fatal("a nil event handed on")
			}
		}
	})
}

// FuzzExpirySweepPayload: the timer's payload is never read for anything
// but logs; every invocation runs the sweep once and answers 200.
func FuzzExpirySweepPayload(f *testing.F) {
	if b, err := os.ReadFile("testdata/timer.json"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{`{}`, ``, `{"Data":{"timer":"x"}}`, `{"Data":{"timer":{"IsPastDue":"yes"}}}`, `[1,2]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &fakeSweeper{}
		h := New(Deps{Sweeper: s, Logger: slog.New(slog.DiscardHandler)})
		if rec := post(h, "/ExpirySweep", in); rec.Code != 200 || s.n != 1 {
			t.Fatalf("status %d, %d sweeps", rec.Code, s.n)
		}
	})
}

// FuzzListQuery: any query string on GET /api/requests is answered 200 with
// a page or 400 with a JSON error, never 5xx; a 200 passed the store only a
// valid filter; a continuation is only accepted if this server signed it.
func FuzzListQuery(f *testing.F) {
	key := []byte("0123456789abcdef")
	signer := New(Deps{Store: &fakeLister{page: broker.ListPage{Items: []*access.Request{sampleRequest()}, Next: "pos-2"}},
		ContinuationKey: key, Logger: slog.New(slog.DiscardHandler), ReadAuth: signedIn})
	rec := get(signer, "/api/requests?state=active&limit=1")
	var out struct {
		Continuation string `json:"continuation"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	for _, q := range []string{"", "state=active", "state=pending&profile=aks-admin&limit=10", "limit=1000", "limit=0", "limit=-1",
		"limit=1e3", "state=bogus", "state=awaiting", "requester=5e5e0000-0000-4000-8000-000000000001", "requester=n01@contoso.com",
		"continuation=abc", "state=active&limit=1&continuation=" + url.QueryEscape(out.Continuation), "foo=1", "state=active&state=ended",
		"profile=%00", "profile=" + strings.Repeat("a", 300), "code=abc&state=expired", "%zz", "limit=1&limit=2"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		st := &fakeLister{page: broker.ListPage{Items: []*access.Request{sampleRequest()}, Next: "pos-2"}}
		h := New(Deps{Store: st, ContinuationKey: key, Logger: slog.New(slog.DiscardHandler), ReadAuth: signedIn})
		req := asReader(httptest.NewRequest(http.MethodGet, "/api/requests", nil))
		req.URL.RawQuery = q
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200:
			f := st.lastF
			if f.Limit < 1 || f.Limit > 1000 || (f.State != "" && !validListState(f.State)) {
				t.Fatalf("%q: filter %+v passed to the store", q, f)
			}
			if f.After != "" && f.After != "pos-2" {
				t.Fatalf("%q: a position the server never signed: %q", q, f.After)
			}
		case 400:
			var e struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Fatalf("%q: 400 without a JSON error: %s", q, rec.Body)
			}
		default:
			t.Fatalf("%q: status %d", q, rec.Code)
		}
	})
}

func validListState(s access.State) bool {
	switch s {
	case access.Pending, access.Active, access.Activating, access.Ending, access.TimedOut,
		access.Denied, access.Cancelled, access.Revoked, access.Expired, access.Failed, access.Rejected:
		return true
	}
	return false
}

// FuzzGetRequestID: any id on GET /api/requests/{id} is answered 200, 400 or
// 404 with JSON (or the router's redirect to a canonical path), never 5xx,
// and only ids the store holds are found.
func FuzzGetRequestID(f *testing.F) {
	for _, id := range []string{"r-1", "CHG0031337", "..", "%2F", "a/b", "\x00", strings.Repeat("x", 600), "ünï", "pim-x"} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if id == "" || strings.HasPrefix(id, "?") {
			return // GET /api/requests/ is the list
		}
		st := &fakeLister{reqs: map[string]*access.Request{"r-1": sampleRequest()}}
		h := New(Deps{Store: st, Logger: slog.New(slog.DiscardHandler), ReadAuth: signedIn})
		req := asReader(httptest.NewRequest(http.MethodGet, "/api/requests/x", nil))
		req.URL.Path = "/api/requests/" + id
		req.URL.RawPath = ""
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(context.Background()))
		if rec.Code >= 500 {
			t.Fatalf("%q: %d", id, rec.Code)
		}
		if rec.Code == 200 && id != "r-1" {
			t.Fatalf("%q found", id)
		}
		if rec.Code/100 == 3 {
			return // the router's canonical-path redirect ("..", "//"): no request is read
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%q: not JSON: %s", id, rec.Body)
		}
	})
}
