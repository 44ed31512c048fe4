package dashboard

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/memstore"
)

// An observed PIM activation whose end is more than a year away (reported:
// the dashboard answered 503 "Storage is unreachable") is shown as an active
// grant.
func TestFarObservedEndIsShown(t *testing.T) {
	st := memstore.New()
	p := access.Profile{Name: "aks-admin", TargetGroupID: "g1"}
	r := access.Observe("pim-far", access.SourcePIM, p, "user-1", "far@contoso.example", now0, now0.Add(400*24*time.Hour),
		access.HObserved, "PIM", "observed", "audit:1")
	if err := st.SaveRequest(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	h := New(Options{Store: st, Profiles: profiles, Now: func() time.Time { return now0 }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rec, body := get(t, h, "/")
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, body)
	}
	mustContain(t, "active", sectionHTML(t, body, "active"), "far@contoso.example", "400d 0h")
}
