package handlers

import (
	"context"
	"encoding/json"
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
