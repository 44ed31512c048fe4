package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/timetest"
)

// testEveryTimeInUTC: every time a request or a ledger holds comes back in
// UTC, whichever way it is read. The times are found by reflection, not
// listed by hand: each store once kept its own list of the request's times
// to normalise (and this suite a third), and the lists fell behind the
// types (ApprovalDeadline, AccessGoneBy, the check, the outbox's notices
// and the ledger's LastWrite came back in the zone they were saved in); a
// field added later is covered without anyone remembering this test.
func testEveryTimeInUTC(t *testing.T, s Store) {
	zone := time.FixedZone("UTC-7", -7*3600)
	n := 0
	next := func() time.Time {
		n++
		return base.In(zone).Add(time.Duration(n) * time.Minute)
	}

	r := &access.Request{ID: "utc-1", Source: access.SourceEvents, State: access.Active, Requester: "user-1", Profile: "p1"}
	timetest.Fill(r, next)
	want := timesOf(r)
	mustSave(t, s, r)
	got := mustGet(t, s, r.ID)
	allInUTC(t, "GetRequest", got, want, true)
	got, err := broker.Lister(s).GetRequest(ctx(t), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	allInUTC(t, "Lister.GetRequest", got, want, true)
	// Listed through the state index and through the requests table (items
	// carry no history).
	for _, f := range []broker.ListFilter{{State: access.Active, Limit: 10}, {Limit: 10}} {
		items := list(t, s, f)
		if len(items) != 1 {
			t.Fatalf("ListRequests(%+v) = %d items, want 1", f, len(items))
		}
		allInUTC(t, fmt.Sprintf("ListRequests(state %q)", f.State), items[0], want, false)
	}

	l := &access.Ledger{GroupID: "g-utc", UserID: "u-utc", Grants: []string{r.ID}, ClaimedBy: r.ID, ClaimOp: access.OpAdd}
	timetest.Fill(l, next)
	wantL := timesOf(l)
	if err := s.SaveLedger(ctx(t), l); err != nil {
		t.Fatal(err)
	}
	gotL, err := s.GetLedger(ctx(t), l.GroupID, l.UserID)
	if err != nil {
		t.Fatal(err)
	}
	allInUTC(t, "GetLedger", gotL, wantL, true)
}

// allInUTC checks that every time got holds is in UTC and is the instant
// saved at the same place; complete: got holds every time saved.
func allInUTC(t *testing.T, what string, got any, want map[string]time.Time, complete bool) {
	t.Helper()
	seen := 0
	timetest.Each(got, func(path string, tm *time.Time) {
		if tm.IsZero() {
			return
		}
		seen++
		if tm.Location() != time.UTC {
			t.Errorf("%s: %s = %v, not in UTC", what, path, *tm)
		}
		if w, ok := want[path]; !ok || !tm.Equal(w) {
			t.Errorf("%s: %s = %v, saved %v", what, path, *tm, w)
		}
	})
	if complete && seen != len(want) {
		t.Errorf("%s: %d times came back, %d were saved", what, seen, len(want))
	}
}

// timesOf returns the non-zero times v (a pointer) holds by path.
func timesOf(v any) map[string]time.Time {
	m := map[string]time.Time{}
	timetest.Each(v, func(path string, tm *time.Time) {
		if !tm.IsZero() {
			m[path] = *tm
		}
	})
	return m
}
