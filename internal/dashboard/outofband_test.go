package dashboard

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

// The "Out-of-band members" card counts the findings whose member is still
// in the group (state active), not the rows being removed or removed. It
// once counted the rows whose badge read "still a member": rewording the
// badge would have made the card say 0 while members were there.
func TestOutOfBandMembersCount(t *testing.T) {
	oob := func(id string, st access.State, at time.Time) *access.Request {
		r := &access.Request{ID: id, Source: access.SourceOutOfBand, State: st, Requester: "9f9f9f9f-0000-4000-8000-0000000000" + id[len(id)-2:],
			Profile: "aks-admin", GroupID: "group-1", RequestedAt: at,
			History: []access.HistoryEntry{hist(at, access.HOutOfBand, "mallory@contoso.example", "added in the Entra portal")}}
		if st.Ended() {
			r.EndedAt = at.Add(time.Minute)
		}
		return r
	}
	store := &fakeLister{reqs: []*access.Request{
		oob("still-01", access.Active, now0.Add(-10*time.Minute)),
		oob("still-02", access.Active, now0.Add(-20*time.Minute)),
		oob("ending-03", access.Ending, now0.Add(-30*time.Minute)),
		oob("removed-04", access.Revoked, now0.Add(-40*time.Minute)),
	}}
	h := New(Options{Store: store, Profiles: profiles, Now: func() time.Time { return now0 }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_, body := get(t, h, "/api/dashboard")
	mustContain(t, "outofband", sectionHTML(t, body, "outofband"), "still-01", "still-02", "ending-03", "removed-04")
	mustContain(t, "counts", body, `<span class="n">2</span><span class="l">Out-of-band members</span>`)
}
