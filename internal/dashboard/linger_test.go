package dashboard

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

// Ended grants whose accessGoneBy is still ahead are shown as lingering
// (docs/design.md, The read API): the end of a group grant leaves the user's access token
// its groups claim for up to its lifetime.
func TestAccessMayLinger(t *testing.T) {
	store := &fakeLister{reqs: []*access.Request{
		{ID: "ended-lingering", State: access.Expired, Requester: "u1", Profile: "aks-admin",
			ActivatedAt: now0.Add(-2 * time.Hour), EndedAt: now0.Add(-10 * time.Minute), AccessGoneBy: now0.Add(80 * time.Minute)},
		{ID: "ended-gone", State: access.Revoked, Requester: "u2", Profile: "aks-admin",
			ActivatedAt: now0.Add(-5 * time.Hour), EndedAt: now0.Add(-3 * time.Hour), AccessGoneBy: now0.Add(-90 * time.Minute)},
	}}
	h := New(Options{Store: store, Profiles: profiles, Now: func() time.Time { return now0 }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_, body := get(t, h, "/api/dashboard")
	ends := sectionHTML(t, body, "endings")
	mustContain(t, "endings", ends, "1 ended grant may still be used", "access may linger until", "Access gone by")
	if n := strings.Count(ends, "access may linger until"); n != 1 {
		t.Fatalf("%d lingering rows, want 1", n)
	}
}
