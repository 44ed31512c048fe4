package dashboard

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

// A grant still active more than one sweep interval past its end always
// needs attention (docs/design.md, real directory rule 4): the reported flood left one 8 minutes
// overdue while "Needs attention" said 0.
func TestOverdueEndNeedsAttention(t *testing.T) {
	store := &fakeLister{reqs: []*access.Request{
		{ID: "late-by-8m", State: access.Active, Requester: "u1", RequesterUPN: "n01@contoso.example", Profile: "aks-admin",
			ActivatedAt: now0.Add(-time.Hour), EndsAt: now0.Add(-8 * time.Minute)},
		{ID: "late-by-30s", State: access.Active, Requester: "u2", RequesterUPN: "n02@contoso.example", Profile: "aks-admin",
			ActivatedAt: now0.Add(-time.Hour), EndsAt: now0.Add(-30 * time.Second)},
		{ID: "on-time", State: access.Active, Requester: "u3", Profile: "aks-admin",
			ActivatedAt: now0.Add(-time.Hour), EndsAt: now0.Add(time.Hour)},
	}}
	h := New(Options{Store: store, Profiles: profiles, Now: func() time.Time { return now0 }, SweepInterval: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rec, body := get(t, h, "/api/dashboard")
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	att := sectionHTML(t, body, "attention")
	mustContain(t, "attention", att, "late-by-8m", "end overdue by 8m")
	mustNotContain(t, "attention", att, "late-by-30s", "on-time")
	mustContain(t, "attention", att, `<span class="count">1</span>`)
}
