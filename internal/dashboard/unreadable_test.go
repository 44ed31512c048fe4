package dashboard

import (
	"context"
	"fmt"
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

// Stored requests the listings skip as unreadable are counted under "Needs
// attention" and named (at most MaxUnreadableShown of them); the rest of
// the page is shown as usual.
func TestUnreadableRequestsNeedAttention(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{1, MaxUnreadableShown + 5} {
		st := memstore.New()
		good := access.Observe("good-1", access.SourcePIM, access.Profile{Name: "aks-admin", TargetGroupID: "g1"}, "u", "good@contoso.example",
			now0, now0.Add(time.Hour), access.HObserved, "PIM", "", "audit:g")
		if err := st.SaveRequest(ctx, good); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			id := fmt.Sprintf("bad-%02d", i)
			if err := st.SaveRequest(ctx, &access.Request{ID: id, State: access.Active, Profile: "aks-admin"}); err != nil {
				t.Fatal(err)
			}
			if err := st.CorruptRequest(ctx, id, `{"justification":"<b>SECRET`); err != nil {
				t.Fatal(err)
			}
		}
		h := New(Options{Store: st, Profiles: profiles, Now: func() time.Time { return now0 }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		rec, body := get(t, h, "/")
		if rec.Code != 200 {
			t.Fatalf("%d: %d %s", n, rec.Code, body)
		}
		mustContain(t, "active", sectionHTML(t, body, "active"), "good@contoso.example")
		att := sectionHTML(t, body, "attention")
		mustNotContain(t, "attention", att, "Nothing needs attention", "SECRET")
		mustContain(t, "counts", body, fmt.Sprintf(`<span class="n">%d</span><span class="l">Need attention</span>`, n))
		if n == 1 {
			mustContain(t, "attention", att, "1 stored request could not be read", "<code>bad-00</code>", "it is left out")
		} else {
			mustContain(t, "attention", att, fmt.Sprintf("%d stored requests could not be read", n), "<code>bad-19</code>", "and 5 more", "they are left out")
			mustNotContain(t, "attention", att, "bad-20")
		}
	}
}
