package handlers

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/memstore"
)

// An observed PIM activation whose end is more than a year away (reported:
// GET /api/requests?state=active answered 500) is read and listed like any
// other request.
func TestFarObservedEndIsListed(t *testing.T) {
	st := memstore.New()
	at := t0.UTC()
	p := access.Profile{Name: "aks-admin", TargetGroupID: "g1"}
	r := access.Observe("pim-far", access.SourcePIM, p, "user-1", "n01@contoso.com", at, at.Add(400*24*time.Hour),
		access.HObserved, "PIM", "observed", "audit:1")
	if err := st.SaveRequest(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	h, _ := newTestServer(t, Deps{Store: st})
	rec := get(h, "/api/requests?state=active")
	if rec.Code != 200 {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	var out listView
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out.Items) != 1 || out.Items[0].Duration != "P400D" {
		t.Fatalf("list: %s", rec.Body)
	}
	if rec := get(h, "/api/requests/pim-far"); rec.Code != 200 {
		t.Fatalf("get: %d %s", rec.Code, rec.Body)
	}
}

// A stored request that cannot be decoded fails neither the listing (it is
// named in "unreadable") nor, obscurely, a read by id: the answer says what
// is wrong, and the log names the id without the data.
func TestUnreadableRequest(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	for _, id := range []string{"req-1", "req-2", "req-3"} {
		r := sampleRequest()
		r.ID = id
		if err := st.SaveRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CorruptRequest(ctx, "req-2", `{"state":"active","justification":"SECRET`); err != nil {
		t.Fatal(err)
	}
	h, logs := newTestServer(t, Deps{Store: st, ContinuationKey: []byte("0123456789abcdef")})
	for _, target := range []string{"/api/requests?state=active", "/api/requests"} {
		rec := get(h, target)
		var out listView
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil || len(out.Items) != 2 ||
			len(out.Unreadable) != 1 || out.Unreadable[0] != "req-2" {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
	}
	// Paged: the damaged one is named once, on the page whose range holds it.
	var unreadable []string
	target := "/api/requests?state=active&limit=1"
	for range 5 {
		rec := get(h, target)
		var out listView
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
		unreadable = append(unreadable, out.Unreadable...)
		if out.Continuation == "" {
			break
		}
		target = "/api/requests?state=active&limit=1&continuation=" + url.QueryEscape(out.Continuation)
	}
	if len(unreadable) != 1 || unreadable[0] != "req-2" {
		t.Fatalf("paged: unreadable %v", unreadable)
	}
	rec := get(h, "/api/requests/req-2")
	var e map[string]string
	if rec.Code != 500 || json.Unmarshal(rec.Body.Bytes(), &e) != nil || !strings.Contains(e["error"], "stored but cannot be read") {
		t.Fatalf("get: %d %s", rec.Code, rec.Body)
	}
	if rec := get(h, "/api/requests/req-1"); rec.Code != 200 {
		t.Fatalf("neighbour: %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "req-2") || strings.Contains(logs.String(), "SECRET") || strings.Contains(rec.Body.String(), "SECRET") {
		t.Fatalf("log: %s", logs)
	}
}
