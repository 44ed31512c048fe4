// Package storetest is the one conformance suite that every implementation
// of broker.Store and broker.Lister passes (memstore always, tablestore on
// Azurite). Run it from a test of the implementation's package:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Store { return newStore(t) })
//	}
//
// newStore must return an empty, independent store for each call (each
// subtest calls it once).
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/dashboard"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/timetest"
)

// Store is what an implementation must provide.
type Store interface {
	broker.Store
	broker.Lister
	broker.Deployment
}

// Corrupter damages a stored request the way storage damage, a bug or a
// newer version of jitaccess would, so that the suite can prove that one
// bad row breaks nothing (docs/design.md, real directory rule 4). Every store under test must
// offer it: as fault injection (memstore) or through a wrapper its test
// builds (tablestore writes the row with a raw table client).
type Corrupter interface {
	// CorruptRequest replaces the stored JSON of request id by body,
	// keeping what the store lists and schedules the request by (state,
	// profile, requester, due time).
	CorruptRequest(ctx context.Context, id, body string) error
}

// MaxHistoryPerSave is the number of history entries a single save must
// accept; saves appending more than MaxHistoryRefused must be refused.
const (
	MaxHistoryPerSave = 20
	MaxHistoryRefused = 100
)

// Run runs the whole suite.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"DeepCopy", testDeepCopy},
		{"EveryTimeInUTC", testEveryTimeInUTC},
		{"NotFound", testNotFound},
		{"CreateTwiceConflicts", testCreateTwice},
		{"CompareAndSwap", testCAS},
		{"ConcurrentCAS", testConcurrentCAS},
		{"HistoryAppended", testHistory},
		{"HistoryBound", testHistoryBound},
		{"KeysAndSizeLimits", testLimits},
		{"DueIndex", testDue},
		{"DueIndexStaleTolerated", testDueStale},
		{"ListByState", testListByState},
		{"ListFilters", testListFilters},
		{"ListPagination", testListPagination},
		{"Rejections", testRejections},
		{"Ledger", testLedger},
		{"LedgerConcurrentCAS", testLedgerRace},
		{"Ping", testPing},
		{"FarObservedEnd", testFarObservedEnd},
		{"UnreadableRowBreaksNothing", testUnreadable},
		{"DeployedAt", testDeployedAt},
		{"DeployedAtConcurrentFirstCalls", testDeployedAtRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// base is a fixed, non-UTC instant with nanoseconds, so that both the zone
// normalisation and the precision are checked.
var base = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.FixedZone("CET", 3600))

func fullRequest(id string) *access.Request {
	return &access.Request{
		ID:            id,
		Source:        access.SourceEvents,
		State:         access.Active,
		Requester:     "5e5e0000-0000-4000-8000-000000000001",
		RequesterUPN:  "n01@example.test",
		Profile:       "aks-admin",
		GroupID:       "9a9a0000-0000-4000-8000-000000000002",
		Duration:      access.Duration(90 * time.Minute),
		Justification: "incident 42 — ünïcode and \"quotes\" and 'apostrophes' <b>",
		Ticket:        "INC-42",
		RequestedAt:   base,
		ActivatedAt:   base.Add(time.Minute),
		EndsAt:        base.Add(91 * time.Minute),
		EndedAt:       base.Add(92 * time.Minute),
		Reason:        "a reason",
		Approvals: []access.Approval{
			{Approver: "a1", ApproverUPN: "p01@example.test", At: base.Add(time.Minute), Comment: "ok"},
			{Approver: "a2", At: base.Add(2 * time.Minute)},
		},
		History: []access.HistoryEntry{
			{At: base, Type: access.HRequested, Actor: "n01", Detail: "requested", EventID: "ev-1"},
			{At: base.Add(time.Minute), Type: access.HApproved, Actor: "p01", EventID: "ev-2"},
		},
		Fingerprint: "sha256:abc",
		EventIDs:    []string{"ev-1", "ev-2"},
		Work: &access.Work{Goal: access.Active, Membership: access.OpAdd, MembershipDone: true, Removed: true,
			RevokeSessions: true, RevokeDone: true, Since: base.Add(time.Minute), Attempts: 3},
		Parked: []access.ParkedEvent{{
			Event: access.Event{ID: "ev-0", Type: access.TypeApproved, Source: "/x", Time: base.Add(-time.Hour),
				RequestID: id, Approver: "p01", Comment: "early"},
			Actor:    access.Actor{Asserted: "p01", ID: "a1", UPN: "p01@example.test", Found: true, Enabled: true},
			Received: base.Add(-time.Minute),
		}},
		DueAt:               base.Add(91 * time.Minute),
		RevokeSessionsOnEnd: true,
		ApprovalsRequired:   2,
	}
}

func simpleRequest(id string, st access.State) *access.Request {
	return &access.Request{
		ID: id, Source: access.SourceEvents, State: st, Requester: "user-1", Profile: "p1", GroupID: "g1",
		RequestedAt: base,
		History:     []access.HistoryEntry{{At: base, Type: access.HRequested, EventID: "e-" + id}},
		EventIDs:    []string{"e-" + id},
	}
}

// expectUTC returns what a store must give back for r: times in UTC.
func expectUTC(r *access.Request) *access.Request {
	c := r.Clone()
	b, _ := json.Marshal(c)
	var out access.Request
	_ = json.Unmarshal(b, &out)
	timetest.Each(&out, func(_ string, t *time.Time) {
		if !t.IsZero() {
			*t = t.UTC()
		}
	})
	out.Version, out.StoredHistory = r.Version, r.StoredHistory
	return &out
}

func mustSave(t *testing.T, s Store, r *access.Request) {
	t.Helper()
	if err := s.SaveRequest(ctx(t), r); err != nil {
		t.Fatalf("SaveRequest(%s): %v", r.ID, err)
	}
}

func mustGet(t *testing.T, s broker.Store, id string) *access.Request {
	t.Helper()
	r, err := s.GetRequest(ctx(t), id)
	if err != nil {
		t.Fatalf("GetRequest(%s): %v", id, err)
	}
	return r
}

func sameRequest(t *testing.T, what string, got, want *access.Request) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("%s: request differs\n got: %s (version %q, stored %d)\nwant: %s (version %q, stored %d)",
			what, g, got.Version, got.StoredHistory, w, want.Version, want.StoredHistory)
	}
	checkUTC(t, what, got)
}

func checkUTC(t *testing.T, what string, r *access.Request) {
	t.Helper()
	timetest.Each(r, func(path string, tm *time.Time) {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Fatalf("%s: %s = %v is not in UTC", what, path, *tm)
		}
	})
}

func testRoundTrip(t *testing.T, s Store) {
	r := fullRequest("rt-1")
	mustSave(t, s, r)
	if r.Version == "" || r.StoredHistory != 2 {
		t.Fatalf("after create: Version %q StoredHistory %d, want a version and 2", r.Version, r.StoredHistory)
	}
	got := mustGet(t, s, "rt-1")
	sameRequest(t, "store", got, expectUTC(r))
	got2, err := broker.Lister(s).GetRequest(ctx(t), "rt-1")
	if err != nil {
		t.Fatal(err)
	}
	sameRequest(t, "lister", got2, expectUTC(r))

	// A minimal request: zero times stay zero, nil stays nil.
	m := &access.Request{ID: "rt-2", State: access.Awaiting}
	mustSave(t, s, m)
	got = mustGet(t, s, "rt-2")
	sameRequest(t, "minimal", got, expectUTC(m))
	if got.Work != nil || got.History != nil || got.Approvals != nil || !got.RequestedAt.IsZero() {
		t.Fatalf("minimal request came back with extra content: %+v", got)
	}
}

func testDeepCopy(t *testing.T, s Store) {
	r := fullRequest("dc-1")
	mustSave(t, s, r)
	want := expectUTC(r)
	// The caller changes everything it still holds.
	r.History[0].Detail = "changed"
	r.Approvals[0].Comment = "changed"
	r.EventIDs[0] = "changed"
	r.Work.Attempts = 99
	r.Parked[0].Actor.UPN = "changed"
	got := mustGet(t, s, "dc-1")
	sameRequest(t, "after changing the saved value", got, want)
	// And what it got back.
	got.History[1].Type = "changed"
	got.Approvals[1].Approver = "changed"
	got.EventIDs[1] = "changed"
	got.Work.Goal = "changed"
	got.Parked[0].Event.Comment = "changed"
	again := mustGet(t, s, "dc-1")
	sameRequest(t, "after changing a loaded value", again, want)
}

func testNotFound(t *testing.T, s Store) {
	_, err := s.GetRequest(ctx(t), "no-such-request")
	if !fault.NotFound(err) {
		t.Fatalf("GetRequest(unknown) = %v, want fault.ErrNotFound", err)
	}
	_, err = broker.Lister(s).GetRequest(ctx(t), "no-such-request")
	if !fault.NotFound(err) {
		t.Fatalf("Lister.GetRequest(unknown) = %v, want fault.ErrNotFound", err)
	}
	l, err := s.GetLedger(ctx(t), "g-none", "u-none")
	if err != nil || l.Version != "" || l.GroupID != "g-none" || l.UserID != "u-none" || len(l.Grants) != 0 {
		t.Fatalf("GetLedger(unknown) = %+v, %v; want an empty ledger", l, err)
	}
}

func testCreateTwice(t *testing.T, s Store) {
	mustSave(t, s, simpleRequest("ct-1", access.Pending))
	again := simpleRequest("ct-1", access.Active)
	err := s.SaveRequest(ctx(t), again)
	if !fault.Conflict(err) {
		t.Fatalf("second create = %v, want fault.ErrConflict", err)
	}
	if again.Version != "" || again.StoredHistory != 0 {
		t.Fatalf("failed save changed the caller's request: version %q stored %d", again.Version, again.StoredHistory)
	}
	if got := mustGet(t, s, "ct-1"); got.State != access.Pending {
		t.Fatalf("state = %s after a conflicting create, want pending", got.State)
	}
	// Saving with a version for a request that does not exist is a conflict too.
	ghost := simpleRequest("ct-ghost", access.Pending)
	ghost.Version = mustGet(t, s, "ct-1").Version
	ghost.StoredHistory = 1
	if err := s.SaveRequest(ctx(t), ghost); !fault.Conflict(err) {
		t.Fatalf("update of a missing request = %v, want fault.ErrConflict", err)
	}
}

func testCAS(t *testing.T, s Store) {
	r := simpleRequest("cas-1", access.Pending)
	mustSave(t, s, r)
	v1 := r.Version
	a := mustGet(t, s, "cas-1")
	b := mustGet(t, s, "cas-1")
	if a.Version != v1 || b.Version != v1 {
		t.Fatalf("loaded versions %q, %q; want %q", a.Version, b.Version, v1)
	}
	a.State = access.Active
	a.History = append(a.History, access.HistoryEntry{At: base.Add(time.Second), Type: access.HActivated})
	mustSave(t, s, a)
	if a.Version == v1 || a.Version == "" || a.StoredHistory != 2 {
		t.Fatalf("after CAS: version %q (was %q), stored %d", a.Version, v1, a.StoredHistory)
	}
	b.State = access.Denied
	b.History = append(b.History, access.HistoryEntry{At: base.Add(time.Second), Type: access.HDenied})
	if err := s.SaveRequest(ctx(t), b); !fault.Conflict(err) {
		t.Fatalf("stale save = %v, want fault.ErrConflict", err)
	}
	if b.Version != v1 || b.StoredHistory != 1 {
		t.Fatalf("failed save changed the caller's request: version %q stored %d", b.Version, b.StoredHistory)
	}
	got := mustGet(t, s, "cas-1")
	if got.State != access.Active || len(got.History) != 2 || got.History[1].Type != access.HActivated {
		t.Fatalf("after a lost CAS: %s %+v", got.State, got.History)
	}
	// The winner can save again with its new version, without new history.
	v2 := a.Version
	a.Reason = "second"
	mustSave(t, s, a)
	if a.Version == v2 {
		t.Fatal("version did not change on a save without history")
	}
	got = mustGet(t, s, "cas-1")
	if got.Reason != "second" || got.Version != a.Version || got.StoredHistory != 2 {
		t.Fatalf("after second save: reason %q version %q stored %d", got.Reason, got.Version, got.StoredHistory)
	}
}

func testConcurrentCAS(t *testing.T, s Store) {
	const workers, rounds = 8, 4
	mustSave(t, s, simpleRequest("race-1", access.Pending))
	for round := range rounds {
		loaded := mustGet(t, s, "race-1")
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := loaded.Clone()
				r.Reason = fmt.Sprintf("round %d worker %d", round, w)
				r.History = append(r.History, access.HistoryEntry{At: base, Type: access.HRefused, Detail: r.Reason})
				switch err := s.SaveRequest(ctx(t), r); {
				case err == nil:
					wins.Add(1)
				case fault.Conflict(err):
					conflicts.Add(1)
				default:
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: unexpected error %v", round, err)
		}
		if wins.Load() != 1 || conflicts.Load() != workers-1 {
			t.Fatalf("round %d: %d wins and %d conflicts, want exactly 1 and %d", round, wins.Load(), conflicts.Load(), workers-1)
		}
		got := mustGet(t, s, "race-1")
		if len(got.History) != round+2 || got.History[round+1].Detail != got.Reason {
			t.Fatalf("round %d: history %+v, reason %q", round, got.History, got.Reason)
		}
	}
}

func testHistory(t *testing.T, s Store) {
	r := simpleRequest("hist-1", access.Pending)
	mustSave(t, s, r)
	want := slices.Clone(r.History)
	for i := range 30 {
		cur := mustGet(t, s, "hist-1")
		if cur.StoredHistory != len(want) {
			t.Fatalf("save %d: StoredHistory %d, want %d", i, cur.StoredHistory, len(want))
		}
		for j := range i%3 + 1 {
			h := access.HistoryEntry{At: base.Add(time.Duration(i*10+j) * time.Second), Type: access.HRefused,
				Actor: fmt.Sprintf("a%d", i), Detail: fmt.Sprintf("save %d entry %d", i, j), EventID: fmt.Sprintf("ev-%d-%d", i, j)}
			cur.History = append(cur.History, h)
			want = append(want, h)
		}
		cur.EventIDs = append(cur.EventIDs, fmt.Sprintf("ev-%d", i))
		mustSave(t, s, cur)
		if cur.StoredHistory != len(want) {
			t.Fatalf("save %d: StoredHistory after save %d, want %d", i, cur.StoredHistory, len(want))
		}
	}
	// One save with many entries at once.
	cur := mustGet(t, s, "hist-1")
	for j := range MaxHistoryPerSave {
		h := access.HistoryEntry{At: base.Add(time.Hour + time.Duration(j)*time.Millisecond), Type: access.HSessionsRevoked, Detail: strings.Repeat("x", j)}
		cur.History = append(cur.History, h)
		want = append(want, h)
	}
	mustSave(t, s, cur)
	got := mustGet(t, s, "hist-1")
	if got.StoredHistory != len(want) || len(got.History) != len(want) {
		t.Fatalf("history length %d (stored %d), want %d", len(got.History), got.StoredHistory, len(want))
	}
	for i := range want {
		w := want[i]
		w.At = w.At.UTC()
		if got.History[i] != w {
			t.Fatalf("history[%d] = %+v, want %+v", i, got.History[i], w)
		}
	}
	if len(got.EventIDs) != 31 {
		t.Fatalf("EventIDs has %d entries, want 31", len(got.EventIDs))
	}
}

func testHistoryBound(t *testing.T, s Store) {
	r := simpleRequest("hb-1", access.Pending)
	mustSave(t, s, r)
	cur := mustGet(t, s, "hb-1")
	for j := range MaxHistoryRefused {
		cur.History = append(cur.History, access.HistoryEntry{At: base, Type: access.HRefused, Detail: fmt.Sprint(j)})
	}
	err := s.SaveRequest(ctx(t), cur)
	if err == nil || fault.Conflict(err) || fault.Transient(err) {
		t.Fatalf("save appending %d entries = %v, want a permanent refusal", MaxHistoryRefused, err)
	}
	if got := mustGet(t, s, "hb-1"); len(got.History) != 1 || got.Version != r.Version {
		t.Fatalf("refused save changed the request: %d entries", len(got.History))
	}
	// StoredHistory beyond the history is refused, not silently accepted.
	bad := mustGet(t, s, "hb-1")
	bad.StoredHistory = 5
	if err := s.SaveRequest(ctx(t), bad); err == nil {
		t.Fatal("save with StoredHistory beyond History succeeded")
	}
}

func testLimits(t *testing.T, s Store) {
	// Ids that cannot be storage keys cannot exist.
	for _, id := range []string{"", "a/b", "a#b", "a?b", `a\b`, "a'b", "a\x01b", strings.Repeat("x", 600)} {
		if _, err := s.GetRequest(ctx(t), id); !fault.NotFound(err) {
			t.Errorf("GetRequest(%q) = %v, want not found", id, err)
		}
		if err := s.SaveRequest(ctx(t), simpleRequest(id, access.Pending)); !fault.Permanent(err) {
			t.Errorf("SaveRequest(%q) = %v, want a permanent refusal", id, err)
		}
	}
	if err := s.SaveLedger(ctx(t), &access.Ledger{GroupID: "g/1", UserID: "u", ClaimedBy: "r"}); !fault.Permanent(err) {
		t.Errorf("SaveLedger with a bad key = %v, want a permanent refusal", err)
	}
	// A large request (multi-byte and non-BMP text) is stored whole.
	big := simpleRequest("big-1", access.Pending)
	for i := range 2000 {
		big.EventIDs = append(big.EventIDs, strings.Repeat("😀", 20)+strings.Repeat("é", 40)+fmt.Sprint(i))
	}
	mustSave(t, s, big)
	got := mustGet(t, s, "big-1")
	if !slices.Equal(got.EventIDs, big.EventIDs) {
		t.Fatal("large request came back different")
	}
	// A request over the bound is refused, not truncated.
	huge := simpleRequest("huge-1", access.Pending)
	huge.Justification = strings.Repeat("x", 2<<20)
	if err := s.SaveRequest(ctx(t), huge); !fault.Permanent(err) {
		t.Fatalf("2 MB request = %v, want a permanent refusal", err)
	}
	if _, err := s.GetRequest(ctx(t), "huge-1"); !fault.NotFound(err) {
		t.Fatalf("refused request was stored: %v", err)
	}
}

func due(t *testing.T, s Store, now time.Time, limit int) []string {
	t.Helper()
	ids, err := s.DueRequests(ctx(t), now, limit)
	if err != nil {
		t.Fatalf("DueRequests: %v", err)
	}
	return ids
}

// reallyDue filters ids the way a caller does: re-read, keep those due.
func reallyDue(t *testing.T, s Store, now time.Time, ids []string) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		r := mustGet(t, s, id)
		if !r.DueAt.IsZero() && !r.DueAt.After(now) {
			out = append(out, id)
		}
	}
	return out
}

func setDue(t *testing.T, s Store, id string, at time.Time) {
	t.Helper()
	r := mustGet(t, s, id)
	r.DueAt = at
	mustSave(t, s, r)
}

func testDue(t *testing.T, s Store) {
	now := time.Now().UTC()
	mk := func(id string, at time.Time) {
		r := simpleRequest(id, access.Pending)
		r.DueAt = at
		mustSave(t, s, r)
	}
	if got := due(t, s, now, 10); len(got) != 0 {
		t.Fatalf("empty store: due %v", got)
	}
	mk("due-a", now.Add(-time.Minute))
	mk("due-b", now.Add(-2*time.Minute))
	mk("due-c", now.Add(time.Hour))
	mk("due-d", time.Time{})
	mk("due-e", now) // due exactly now counts
	check := func(what string, limit int, want ...string) {
		t.Helper()
		got := due(t, s, now, limit)
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("%s: DueRequests = %v, want %v", what, got, want)
		}
	}
	check("initial", 10, "due-b", "due-a", "due-e")
	check("limit", 1, "due-b")
	check("limit 2", 2, "due-b", "due-a")
	check("zero limit", 0)
	setDue(t, s, "due-c", now.Add(-3*time.Minute))
	check("moved earlier", 10, "due-c", "due-b", "due-a", "due-e")
	setDue(t, s, "due-b", now.Add(time.Hour))
	check("moved later", 10, "due-c", "due-a", "due-e")
	setDue(t, s, "due-a", time.Time{})
	check("cleared", 10, "due-c", "due-e")
	setDue(t, s, "due-d", now.Add(-time.Second))
	check("set", 10, "due-c", "due-d", "due-e")
	// Later, more is due.
	got := due(t, s, now.Add(2*time.Hour), 10)
	if !slices.Equal(got, []string{"due-c", "due-d", "due-e", "due-b"}) {
		t.Fatalf("two hours later: %v", got)
	}
	// Ties are broken by id.
	mk("due-t2", now.Add(-10*time.Minute))
	mk("due-t1", now.Add(-10*time.Minute))
	check("ties", 3, "due-t1", "due-t2", "due-c")
	// A state change without a due change keeps the entry.
	r := mustGet(t, s, "due-c")
	r.State = access.Active
	mustSave(t, s, r)
	check("state change", 3, "due-t1", "due-t2", "due-c")
}

func testDueStale(t *testing.T, s Store) {
	now := time.Now().UTC()
	r := simpleRequest("stale-1", access.Pending)
	r.DueAt = now.Add(-time.Minute)
	mustSave(t, s, r)
	loser := mustGet(t, s, "stale-1")
	winner := mustGet(t, s, "stale-1")
	winner.DueAt = now.Add(time.Hour)
	mustSave(t, s, winner)
	loser.DueAt = now.Add(-30 * time.Minute)
	loser.State = access.Active
	if err := s.SaveRequest(ctx(t), loser); !fault.Conflict(err) {
		t.Fatalf("stale save = %v, want conflict", err)
	}
	// Whatever a lost save left behind, a caller that re-reads finds nothing due.
	got := due(t, s, now, 10)
	for _, id := range got {
		if id != "stale-1" {
			t.Fatalf("unknown id %q due", id)
		}
	}
	if rd := reallyDue(t, s, now, got); len(rd) != 0 {
		t.Fatalf("really due after a lost save: %v", rd)
	}
	// A later winner can move it back; then it is due.
	cur := mustGet(t, s, "stale-1")
	cur.DueAt = now.Add(-30 * time.Minute)
	mustSave(t, s, cur)
	if rd := reallyDue(t, s, now, due(t, s, now, 10)); !slices.Equal(rd, []string{"stale-1"}) {
		t.Fatalf("after moving back: %v", rd)
	}
	// And in the future it is found once its time comes.
	cur = mustGet(t, s, "stale-1")
	cur.DueAt = now.Add(time.Hour)
	mustSave(t, s, cur)
	if rd := reallyDue(t, s, now.Add(2*time.Hour), due(t, s, now.Add(2*time.Hour), 10)); !slices.Equal(rd, []string{"stale-1"}) {
		t.Fatalf("in two hours: %v", rd)
	}
	if rd := reallyDue(t, s, now, due(t, s, now, 10)); len(rd) != 0 {
		t.Fatalf("now: %v", rd)
	}
}

// allStates are the public and the in-flight states.
var allStates = append(slices.Clone(access.PublicStates), access.Awaiting, access.Activating, access.Ending)

func list(t *testing.T, s Store, f broker.ListFilter) []*access.Request {
	t.Helper()
	var all []*access.Request
	seen := map[string]bool{}
	for range 1000 {
		page, err := s.ListRequests(ctx(t), f)
		if err != nil {
			t.Fatalf("ListRequests(%+v): %v", f, err)
		}
		if f.Limit > 0 && len(page.Items) > f.Limit {
			t.Fatalf("page of %d items for limit %d", len(page.Items), f.Limit)
		}
		for _, it := range page.Items {
			if seen[it.ID] {
				t.Fatalf("request %s listed twice", it.ID)
			}
			seen[it.ID] = true
			if it.History != nil {
				t.Fatalf("list item %s carries history", it.ID)
			}
			all = append(all, it)
		}
		if page.Next == "" {
			return all
		}
		if page.Next == f.After {
			t.Fatalf("Next %q does not advance", page.Next)
		}
		f.After = page.Next
	}
	t.Fatal("pagination does not end")
	return nil
}

func ids(rs []*access.Request) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func testListByState(t *testing.T, s Store) {
	want := map[access.State][]string{}
	for i, st := range allStates {
		for j := range i%3 + 1 {
			id := fmt.Sprintf("ls-%s-%d", st, j)
			r := simpleRequest(id, st)
			mustSave(t, s, r)
			want[st] = append(want[st], id)
		}
	}
	check := func(what string) {
		t.Helper()
		var every []string
		for _, st := range allStates {
			got := list(t, s, broker.ListFilter{State: st, Limit: 100})
			sort.Strings(want[st])
			if !slices.Equal(ids(got), want[st]) && !(len(got) == 0 && len(want[st]) == 0) {
				t.Fatalf("%s: list %s = %v, want %v", what, st, ids(got), want[st])
			}
			for _, it := range got {
				if it.State != st || it.Version == "" {
					t.Fatalf("%s: listed as %s: %+v", what, st, it)
				}
			}
			every = append(every, want[st]...)
		}
		sort.Strings(every)
		if got := list(t, s, broker.ListFilter{Limit: 1000}); !slices.Equal(ids(got), every) {
			t.Fatalf("%s: list all = %v, want %v", what, ids(got), every)
		}
	}
	check("initial")
	// Move requests through states: the indexes follow.
	move := func(id string, from, to access.State) {
		r := mustGet(t, s, id)
		r.State = to
		r.History = append(r.History, access.HistoryEntry{At: base, Type: string(to)})
		mustSave(t, s, r)
		want[from] = slices.DeleteFunc(want[from], func(x string) bool { return x == id })
		want[to] = append(want[to], id)
	}
	move("ls-pending-0", access.Pending, access.Activating)
	move("ls-activating-0", access.Activating, access.Active)
	move("ls-active-0", access.Active, access.Ending)
	move("ls-ending-0", access.Ending, access.Expired)
	move("ls-awaiting-0", access.Awaiting, access.Pending)
	move("ls-failed-0", access.Failed, access.Active) // not a domain move, but a store must follow it
	check("after moves")
	// A listed item can be loaded and saved like any request once reloaded.
	got := list(t, s, broker.ListFilter{State: access.Active, Limit: 1})
	if len(got) == 0 {
		t.Fatal("no active request listed")
	}
	full := mustGet(t, s, got[0].ID)
	if full.Version != got[0].Version {
		t.Fatalf("list version %q, get version %q", got[0].Version, full.Version)
	}
}

func testListFilters(t *testing.T, s Store) {
	type spec struct {
		id, profile, requester string
		state                  access.State
	}
	specs := []spec{
		{"lf-1", "p1", "u1", access.Pending},
		{"lf-2", "p1", "u2", access.Pending},
		{"lf-3", "p2", "u1", access.Pending},
		{"lf-4", "p1", "u1", access.Active},
		{"lf-5", "p2", "u2", access.Expired},
		{"lf-6", "p1", "u1", access.Expired},
		{"lf-7", "p'q", "u'1", access.Expired}, // quotes must not break a filter
	}
	for _, sp := range specs {
		r := simpleRequest(sp.id, sp.state)
		r.Profile, r.Requester = sp.profile, sp.requester
		mustSave(t, s, r)
	}
	cases := []struct {
		f    broker.ListFilter
		want []string
	}{
		{broker.ListFilter{Profile: "p1"}, []string{"lf-1", "lf-2", "lf-4", "lf-6"}},
		{broker.ListFilter{Requester: "u1"}, []string{"lf-1", "lf-3", "lf-4", "lf-6"}},
		{broker.ListFilter{Profile: "p1", Requester: "u1"}, []string{"lf-1", "lf-4", "lf-6"}},
		{broker.ListFilter{State: access.Pending, Profile: "p1"}, []string{"lf-1", "lf-2"}},
		{broker.ListFilter{State: access.Pending, Requester: "u1"}, []string{"lf-1", "lf-3"}},
		{broker.ListFilter{State: access.Pending, Profile: "p2", Requester: "u1"}, []string{"lf-3"}},
		{broker.ListFilter{State: access.Expired, Profile: "p1"}, []string{"lf-6"}},
		{broker.ListFilter{State: access.Expired, Requester: "u2"}, []string{"lf-5"}},
		{broker.ListFilter{Profile: "p'q"}, []string{"lf-7"}},
		{broker.ListFilter{State: access.Expired, Requester: "u'1"}, []string{"lf-7"}},
		{broker.ListFilter{Profile: "unknown"}, nil},
		{broker.ListFilter{State: access.Active, Profile: "unknown"}, nil},
		{broker.ListFilter{State: access.Denied}, nil},
	}
	for _, tc := range cases {
		for _, limit := range []int{1, 2, 100} {
			f := tc.f
			f.Limit = limit
			got := ids(list(t, s, f))
			if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Fatalf("list %+v = %v, want %v", f, got, tc.want)
			}
		}
	}
}

func testListPagination(t *testing.T, s Store) {
	var pending, expired, all []string
	for i := range 23 {
		id := fmt.Sprintf("pg-%03d", i)
		st := access.Pending
		if i%3 == 0 {
			st = access.Expired
			expired = append(expired, id)
		} else {
			pending = append(pending, id)
		}
		all = append(all, id)
		r := simpleRequest(id, st)
		// History rows must not show up as list items or break paging.
		for j := range 3 {
			r.History = append(r.History, access.HistoryEntry{At: base, Type: access.HRefused, Detail: fmt.Sprint(j)})
		}
		mustSave(t, s, r)
	}
	for _, tc := range []struct {
		f    broker.ListFilter
		want []string
	}{
		{broker.ListFilter{}, all},
		{broker.ListFilter{State: access.Pending}, pending},
		{broker.ListFilter{State: access.Expired}, expired},
		{broker.ListFilter{Profile: "p1"}, all},
	} {
		for _, limit := range []int{1, 4, 7, 23, 1000} {
			f := tc.f
			f.Limit = limit
			got := list(t, s, f)
			if !slices.Equal(ids(got), tc.want) {
				t.Fatalf("paged list %+v = %v, want %v", f, ids(got), tc.want)
			}
			// A full page signals more when more remain.
			f.After = ""
			page, err := s.ListRequests(ctx(t), f)
			if err != nil {
				t.Fatal(err)
			}
			if limit < len(tc.want) && (len(page.Items) != limit || page.Next == "") {
				t.Fatalf("first page of %+v: %d items, next %q; want %d items and a continuation", f, len(page.Items), page.Next, limit)
			}
		}
	}
	// Next round-trips as a string (the caller wraps it).
	page, err := s.ListRequests(ctx(t), broker.ListFilter{Limit: 5})
	if err != nil || page.Next == "" {
		t.Fatalf("first page: %v, next %q", err, page.Next)
	}
	next := string([]byte(page.Next))
	page2, err := s.ListRequests(ctx(t), broker.ListFilter{Limit: 5, After: next})
	if err != nil || len(page2.Items) == 0 || page2.Items[0].ID != all[5] {
		t.Fatalf("second page: %v %v", err, ids(page2.Items))
	}
}

func testRejections(t *testing.T, s Store) {
	now := time.Now().UTC()
	var want []access.Rejection
	for i := range 6 {
		rej := access.Rejection{At: now.Add(-time.Duration(6-i) * time.Second).In(time.FixedZone("X", -7200)),
			EventID: fmt.Sprintf("rej-ev-%d", i), Type: access.TypeApproved, Reason: fmt.Sprintf("reason %d: \"quoted\"", i)}
		if i%2 == 0 {
			rej.RequestID = fmt.Sprintf("req-%d", i)
		}
		if err := s.RecordRejection(ctx(t), rej); err != nil {
			t.Fatalf("RecordRejection: %v", err)
		}
		rej.At = rej.At.UTC()
		want = append(want, rej)
	}
	// One without an event id, and an old one that is not recent.
	anon := access.Rejection{At: now.Add(-10 * time.Second), Reason: "not JSON"}
	old := access.Rejection{At: now.Add(-72 * time.Hour), EventID: "old", Reason: "old"}
	for _, r := range []access.Rejection{anon, old} {
		if err := s.RecordRejection(ctx(t), r); err != nil {
			t.Fatalf("RecordRejection: %v", err)
		}
	}
	// The same rejection recorded twice (a redelivery of the same answer) is kept once.
	if err := s.RecordRejection(ctx(t), anon); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(want)
	got, err := s.RecentRejections(ctx(t), 3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want[:3]) {
		t.Fatalf("RecentRejections(3) = %+v\nwant %+v", got, want[:3])
	}
	for _, r := range got {
		if r.At.Location() != time.UTC {
			t.Fatalf("rejection time %v not UTC", r.At)
		}
	}
	got, err = s.RecentRejections(ctx(t), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 || !reflect.DeepEqual(got[:6], want) || got[6].Reason != "not JSON" || got[6].EventID != "" {
		t.Fatalf("RecentRejections(100) = %+v", got)
	}
}

func testLedger(t *testing.T, s Store) {
	const g, u = "9a9a0000-0000-4000-8000-000000000002", "5e5e0000-0000-4000-8000-000000000001"
	l, err := s.GetLedger(ctx(t), g, u)
	if err != nil || l.Version != "" {
		t.Fatalf("GetLedger = %+v, %v", l, err)
	}
	since := base
	l.Grants, l.ClaimedBy, l.ClaimOp, l.ClaimedAt, l.Probed = []string{"r1"}, "r1", access.OpAdd, since, true
	if err := s.SaveLedger(ctx(t), l); err != nil {
		t.Fatalf("create: %v", err)
	}
	if l.Version == "" {
		t.Fatal("no version after create")
	}
	dup := &access.Ledger{GroupID: g, UserID: u, Grants: []string{"other"}}
	if err := s.SaveLedger(ctx(t), dup); !fault.Conflict(err) {
		t.Fatalf("second create = %v, want conflict", err)
	}
	got, err := s.GetLedger(ctx(t), g, u)
	if err != nil {
		t.Fatal(err)
	}
	want := *l
	want.ClaimedAt = since.UTC()
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("GetLedger = %+v, want %+v", got, &want)
	}
	stale := *got
	stale.Grants = slices.Clone(got.Grants)
	got.ClaimedBy, got.ClaimOp, got.ClaimedAt = "", "", time.Time{}
	got.Grants = append(got.Grants, "r2")
	v1 := got.Version
	if err := s.SaveLedger(ctx(t), got); err != nil {
		t.Fatalf("CAS: %v", err)
	}
	if got.Version == v1 {
		t.Fatal("ledger version did not change")
	}
	stale.Grants = nil
	if err := s.SaveLedger(ctx(t), &stale); !fault.Conflict(err) {
		t.Fatalf("stale save = %v, want conflict", err)
	}
	if stale.Version != v1 {
		t.Fatal("failed save changed the caller's version")
	}
	// Emptying deletes.
	got.Grants = nil
	if err := s.SaveLedger(ctx(t), got); err != nil {
		t.Fatalf("empty save: %v", err)
	}
	if got.Version != "" {
		t.Fatalf("version %q after delete, want empty", got.Version)
	}
	after, err := s.GetLedger(ctx(t), g, u)
	if err != nil || after.Version != "" || len(after.Grants) != 0 || after.Probed {
		t.Fatalf("after delete: %+v, %v", after, err)
	}
	// Deleting with a stale version is a conflict.
	stale.Version = v1
	if err := s.SaveLedger(ctx(t), &stale); !fault.Conflict(err) {
		t.Fatalf("stale delete = %v, want conflict", err)
	}
	// PreExisting alone, or a claim alone, keeps a ledger.
	for i, keep := range []access.Ledger{{PreExisting: true, Probed: true}, {ClaimedBy: "r9", ClaimOp: access.OpRemove}} {
		k := keep
		k.GroupID, k.UserID = g, fmt.Sprintf("user-%d", i)
		if err := s.SaveLedger(ctx(t), &k); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetLedger(ctx(t), k.GroupID, k.UserID)
		if err != nil || got.Version == "" || got.Version != k.Version || got.PreExisting != k.PreExisting || got.ClaimedBy != k.ClaimedBy {
			t.Fatalf("kept ledger %d: %+v, %v", i, got, err)
		}
	}
	// Ledgers are per (group, user).
	other, err := s.GetLedger(ctx(t), "other-group", u)
	if err != nil || other.Version != "" {
		t.Fatalf("other group: %+v %v", other, err)
	}
}

func testLedgerRace(t *testing.T, s Store) {
	const g, u, workers = "g-race", "u-race", 6
	l := &access.Ledger{GroupID: g, UserID: u, Grants: []string{"r0"}}
	if err := s.SaveLedger(ctx(t), l); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		loaded, err := s.GetLedger(ctx(t), g, u)
		if err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		var mu sync.Mutex
		var other []error
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := *loaded
				c.Grants = append(slices.Clone(loaded.Grants), fmt.Sprintf("r%d-%d", round, w))
				switch err := s.SaveLedger(ctx(t), &c); {
				case err == nil:
					wins.Add(1)
				case !fault.Conflict(err):
					mu.Lock()
					other = append(other, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(other...); err != nil {
			t.Fatal(err)
		}
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d winners", round, wins.Load())
		}
		got, _ := s.GetLedger(ctx(t), g, u)
		if len(got.Grants) != round+2 {
			t.Fatalf("round %d: grants %v", round, got.Grants)
		}
	}
}

func testPing(t *testing.T, s Store) {
	if err := s.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := broker.Lister(s).Ping(ctx(t)); err != nil {
		t.Fatalf("Lister.Ping: %v", err)
	}
}

// testFarObservedEnd: an observed PIM activation whose end is more than a
// year away (a legitimate value to store; the broker decides whether to
// clamp it when it observes it) is stored and read back whole, listed among
// the active requests, and not due before its time.
func testFarObservedEnd(t *testing.T, s Store) {
	now := time.Now().UTC().Truncate(time.Second)
	p := access.Profile{Name: "p1", TargetGroupID: "g1"}
	cases := []struct {
		id  string
		end time.Time
	}{
		{"far-400d", now.Add(400 * 24 * time.Hour)},
		{"far-30y", now.AddDate(30, 0, 0)},
		{"far-9999", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)}, // past time.Duration's range and UnixNano's
	}
	for _, c := range cases {
		r := access.Observe(c.id, access.SourcePIM, p, "user-1", "u1@example.test", now, c.end,
			access.HObserved, "PIM", "observed", "audit:"+c.id)
		mustSave(t, s, r)
		got := mustGet(t, s, c.id)
		sameRequest(t, c.id, got, expectUTC(r))
		if !got.EndsAt.Equal(c.end) || got.Duration != r.Duration {
			t.Fatalf("%s: ends %v duration %v, want %v and %v", c.id, got.EndsAt, got.Duration, c.end, r.Duration)
		}
	}
	if got := ids(list(t, s, broker.ListFilter{State: access.Active})); !slices.Equal(got, []string{"far-30y", "far-400d", "far-9999"}) {
		t.Fatalf("active: %v", got)
	}
	if got := ids(list(t, s, broker.ListFilter{})); len(got) != 3 {
		t.Fatalf("all: %v", got)
	}
	if got := due(t, s, now.Add(time.Hour), 10); len(got) != 0 {
		t.Fatalf("due now: %v", got)
	}
	if got := reallyDue(t, s, now.Add(401*24*time.Hour), due(t, s, now.Add(401*24*time.Hour), 10)); !slices.Equal(got, []string{"far-400d"}) {
		t.Fatalf("due in 401 days: %v", got)
	}
}

// secret marks free text in the damaged rows: it must never show in an
// error (errors are logged).
const secret = "SECRET-free-text"

// testUnreadable plants rows the store cannot decode — JSON cut short, a
// field of another type (as a newer version might write), a value out of
// range — and checks that listings (each way a store lists, paged or not),
// due requests, rejections and the dashboard still work, that the bad rows
// are named in ListPage.Skipped exactly once, and that reading one by id
// fails with fault.ErrUnreadable without quoting the data.
func testUnreadable(t *testing.T, s Store) {
	c, ok := s.(Corrupter)
	if !ok {
		t.Fatalf("%T does not implement storetest.Corrupter", s)
	}
	now := time.Now().UTC()
	past := now.Add(-time.Minute)
	type row struct {
		id   string
		st   access.State
		due  time.Time
		body string // "" = a good request
	}
	rows := []row{
		{"ur-a1", access.Active, past, ""},
		{"ur-a2", access.Active, past.Add(-time.Second), `{"state":"active","justification":"` + secret}, // due first
		{"ur-a3", access.Active, past.Add(time.Second), ""},
		{"ur-e1", access.Expired, time.Time{}, ""},
		{"ur-e2", access.Expired, time.Time{}, `{"state":"expired","duration":"P1Y","justification":"` + secret + `"}`},
		{"ur-p1", access.Pending, time.Time{}, ""},
		{"ur-p2", access.Pending, time.Time{}, `{"state":"pending","approvals":"` + secret + `","history":{}}`},
	}
	for _, r := range rows {
		req := simpleRequest(r.id, r.st)
		req.DueAt = r.due
		mustSave(t, s, req)
		if r.body != "" {
			if err := c.CorruptRequest(ctx(t), r.id, r.body); err != nil {
				t.Fatalf("CorruptRequest(%s): %v", r.id, err)
			}
		}
	}

	// Reading a damaged request by id: a permanent, unreadable error that
	// names the id and quotes nothing.
	for _, id := range []string{"ur-a2", "ur-e2", "ur-p2"} {
		for what, get := range map[string]func(context.Context, string) (*access.Request, error){
			"Store": s.GetRequest, "Lister": broker.Lister(s).GetRequest} {
			_, err := get(ctx(t), id)
			if !fault.Unreadable(err) || !fault.Permanent(err) || fault.NotFound(err) || fault.Transient(err) {
				t.Fatalf("%s.GetRequest(%s) = %v, want fault.ErrUnreadable inside fault.ErrPermanent", what, id, err)
			}
			if msg := err.Error(); !strings.Contains(msg, id) || strings.Contains(msg, "SECRET") {
				t.Fatalf("%s.GetRequest(%s): error %q must name the id and quote no data", what, id, msg)
			}
		}
	}
	if r := mustGet(t, s, "ur-a1"); r.State != access.Active {
		t.Fatalf("good neighbour: %+v", r)
	}

	// Listings: each way, whole and paged, every bad row named once.
	for _, tc := range []struct {
		f              broker.ListFilter
		items, skipped []string
	}{
		{broker.ListFilter{State: access.Active}, []string{"ur-a1", "ur-a3"}, []string{"ur-a2"}},
		{broker.ListFilter{State: access.Pending}, []string{"ur-p1"}, []string{"ur-p2"}},
		{broker.ListFilter{State: access.Expired}, []string{"ur-e1"}, []string{"ur-e2"}},
		{broker.ListFilter{State: access.Active, Profile: "p1"}, []string{"ur-a1", "ur-a3"}, []string{"ur-a2"}},
		{broker.ListFilter{}, []string{"ur-a1", "ur-a3", "ur-e1", "ur-p1"}, []string{"ur-a2", "ur-e2", "ur-p2"}},
		{broker.ListFilter{Requester: "user-1"}, []string{"ur-a1", "ur-a3", "ur-e1", "ur-p1"}, []string{"ur-a2", "ur-e2", "ur-p2"}},
	} {
		for _, limit := range []int{1, 2, 100} {
			f := tc.f
			f.Limit = limit
			items, skipped := listSkipping(t, s, f)
			sort.Strings(skipped)
			if !slices.Equal(ids(items), tc.items) || !slices.Equal(skipped, tc.skipped) {
				t.Fatalf("list %+v: items %v skipped %v, want %v and %v", f, ids(items), skipped, tc.items, tc.skipped)
			}
		}
	}

	// Due requests: the good ones, in order; a damaged one is never an error.
	good := func(got []string) []string {
		return slices.DeleteFunc(slices.Clone(got), func(id string) bool { return id == "ur-a2" })
	}
	if got := due(t, s, now, 10); !slices.Equal(good(got), []string{"ur-a1", "ur-a3"}) {
		t.Fatalf("due now: %v", got)
	}
	// Long overdue, the store checks entries against their rows: the damaged
	// one (which nobody can act on) must not take a slot of the limit.
	later := now.Add(time.Hour)
	if got := due(t, s, later, 10); !slices.Equal(got, []string{"ur-a1", "ur-a3"}) {
		t.Fatalf("due in an hour: %v", got)
	}
	if got := due(t, s, later, 1); !slices.Equal(got, []string{"ur-a1"}) {
		t.Fatalf("due in an hour, limit 1: %v", got)
	}
	if rd := reallyDue(t, s, later, due(t, s, later, 10)); !slices.Equal(rd, []string{"ur-a1", "ur-a3"}) {
		t.Fatalf("really due: %v", rd)
	}

	// The rest of the store goes on working.
	if err := s.RecordRejection(ctx(t), access.Rejection{At: now, EventID: "ur-ev", Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	if rejs, err := s.RecentRejections(ctx(t), 10); err != nil || len(rejs) != 1 {
		t.Fatalf("RecentRejections: %v %v", rejs, err)
	}
	next := mustGet(t, s, "ur-a3")
	next.State = access.Expired
	mustSave(t, s, next)
	mustSave(t, s, simpleRequest("ur-new", access.Pending))

	// The dashboard shows the page, and says what it could not read.
	h := dashboard.New(dashboard.Options{Store: s, Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/dashboard", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("dashboard: %d\n%s", rec.Code, body)
	}
	for _, want := range []string{"3 stored requests could not be read", "ur-a2", "ur-e2", "ur-p2", "ur-a1", "ur-new"} {
		if !strings.Contains(body, want) {
			t.Fatalf("dashboard lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "SECRET") {
		t.Fatal("dashboard shows data of a damaged row")
	}
}

// listSkipping pages through a listing and returns its items and the ids
// it skipped.
func listSkipping(t *testing.T, s Store, f broker.ListFilter) (items []*access.Request, skipped []string) {
	t.Helper()
	seen := map[string]bool{}
	for range 1000 {
		page, err := s.ListRequests(ctx(t), f)
		if err != nil {
			t.Fatalf("ListRequests(%+v): %v", f, err)
		}
		if len(page.Items) > f.Limit {
			t.Fatalf("page of %d items for limit %d", len(page.Items), f.Limit)
		}
		for _, id := range append(ids(page.Items), page.Skipped...) {
			if seen[id] {
				t.Fatalf("list %+v: %s listed or skipped twice", f, id)
			}
			seen[id] = true
		}
		items = append(items, page.Items...)
		skipped = append(skipped, page.Skipped...)
		if page.Next == "" {
			return items, skipped
		}
		f.After = page.Next
	}
	t.Fatal("pagination does not end")
	return nil, nil
}

// testDeployedAt: the first call records its now (UTC, to the microsecond);
// every later call returns that time, whatever its own now.
func testDeployedAt(t *testing.T, s Store) {
	first := time.Date(2026, 11, 23, 10, 4, 5, 123456789, time.FixedZone("CET", 3600))
	want := first.UTC().Truncate(time.Microsecond)
	deployed := func(now time.Time) time.Time {
		t.Helper()
		at, err := s.DeployedAt(ctx(t), now)
		if err != nil {
			t.Fatalf("DeployedAt(%v): %v", now, err)
		}
		if at.Location() != time.UTC {
			t.Fatalf("DeployedAt = %v, not in UTC", at)
		}
		return at
	}
	if got := deployed(first); !got.Equal(want) || got != want {
		t.Fatalf("first call: %v, want %v", got, want)
	}
	for _, now := range []time.Time{first.Add(time.Hour), first.AddDate(1, 0, 0), first.Add(-time.Hour), first} {
		if got := deployed(now); got != want {
			t.Fatalf("a later call with now %v: %v, want the first %v", now, got, want)
		}
	}
	if _, err := s.DeployedAt(ctx(t), time.Time{}); !fault.Permanent(err) {
		t.Fatalf("DeployedAt(zero) = %v, want a permanent refusal", err)
	}
	// Requests and the rest of the store are not disturbed by it.
	mustSave(t, s, simpleRequest("dep-1", access.Active))
	if got := ids(list(t, s, broker.ListFilter{})); !slices.Equal(got, []string{"dep-1"}) {
		t.Fatalf("list after DeployedAt: %v", got)
	}
	if got := due(t, s, time.Now().Add(24*time.Hour), 10); len(got) != 0 {
		t.Fatalf("due after DeployedAt: %v", got)
	}
}

// testDeployedAtRace: first calls racing (instances starting together) all
// return the same time, one of their nows, and so does every later call.
func testDeployedAtRace(t *testing.T, s Store) {
	const workers = 8
	base := time.Now().UTC().Truncate(time.Microsecond)
	var wg sync.WaitGroup
	got := make([]time.Time, workers)
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() {
			got[i], errs[i] = s.DeployedAt(ctx(t), base.Add(time.Duration(i)*time.Millisecond))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("racing first calls disagree: %v", got)
		}
	}
	if d := got[0].Sub(base); d < 0 || d >= workers*time.Millisecond || d%time.Millisecond != 0 {
		t.Fatalf("DeployedAt = %v, not one of the callers' nows (%v + i ms)", got[0], base)
	}
	if later, err := s.DeployedAt(ctx(t), base.Add(time.Hour)); err != nil || later != got[0] {
		t.Fatalf("later call: %v %v, want %v", later, err, got[0])
	}
}
