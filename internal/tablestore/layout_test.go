package tablestore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/azuritetest"
	"github.com/jitaccess/jitaccess/internal/tablestore"
)

// openRaw opens a store and a raw client of its requests table.
func openRaw(t *testing.T) (*tablestore.Store, *aztables.Client) {
	t.Helper()
	s, table := openTables(t)
	return s, table("requests")
}

// openTables opens a store and returns raw clients of its tables by name.
func openTables(t *testing.T) (*tablestore.Store, func(name string) *aztables.Client) {
	t.Helper()
	cs := azuritetest.Start(t)
	prefix := azuritetest.Prefix(t)
	s := counted(t, cs, tablestore.Options{Prefix: prefix})
	ctx := bg(t)
	if err := s.EnsureTables(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.DeleteTables(ctx)
	})
	svc, err := aztables.NewServiceClientFromConnectionString(cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, func(name string) *aztables.Client { return svc.NewClient(prefix + name) }
}

// rowKeys lists the RowKeys of a request's partition.
func rowKeys(t *testing.T, c *aztables.Client, id string) []string {
	t.Helper()
	var keys []string
	pager := c.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: to.Ptr("PartitionKey eq '" + id + "'"), Select: to.Ptr("RowKey")})
	for pager.More() {
		page, err := pager.NextPage(bg(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range page.Entities {
			var e aztables.EDMEntity
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, e.RowKey)
		}
	}
	slices.Sort(keys)
	return keys
}

func sameEntry(a, b access.HistoryEntry) bool {
	ta, tb := a.At, b.At
	a.At, b.At = time.Time{}, time.Time{}
	return a == b && ta.Equal(tb)
}

func entry(i int, detail string) access.HistoryEntry {
	return access.HistoryEntry{At: time.Date(2026, 12, 1, 0, 0, 0, i, time.UTC), Type: access.HRefused, Actor: fmt.Sprint("a", i), Detail: detail}
}

// TestInlineHistory: the history lives in the state row (one entity, one
// point read) until it outgrows it; then the oldest entries move to history
// rows, and the request still reads back whole and in order.
func TestInlineHistory(t *testing.T) {
	s, raw := openRaw(t)
	// 200 saves of a body growing to ~400 KB: on a loaded 2-core machine
	// Azurite takes more than bg's minute (seen in a full make test run).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	r := req("inl-1", access.Pending)
	r.History[0].At = r.History[0].At.UTC()
	want := slices.Clone(r.History)
	if err := s.SaveRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := rowKeys(t, raw, "inl-1"); !slices.Equal(got, []string{"state"}) {
		t.Fatalf("rows after create: %v, want only the state row", got)
	}
	// ~2 KB entries: the row outgrows its inline budget after ~60 of them.
	for i := range 200 {
		cur, err := s.GetRequest(ctx, "inl-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(cur.History) != len(want) {
			t.Fatalf("save %d: %d entries read, want %d", i, len(cur.History), len(want))
		}
		e := entry(i, strings.Repeat("é", 1000))
		cur.History = append(cur.History, e)
		want = append(want, e)
		if err := s.SaveRequest(ctx, cur); err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	keys := rowKeys(t, raw, "inl-1")
	if len(keys) < 2 || keys[len(keys)-1] != "state" || !strings.HasPrefix(keys[0], "h-") {
		t.Fatalf("rows after 200 large entries: %d (%v…), want history rows and the state row", len(keys), keys[:min(3, len(keys))])
	}
	got, err := s.GetRequest(ctx, "inl-1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if i >= len(got.History) || !sameEntry(got.History[i], want[i]) {
			t.Fatalf("history read back differs at %d: %d entries, want %d\ngot  %d %v\nwant %v", i, len(got.History), len(want), len(got.History[i].Detail), strings.ReplaceAll(got.History[i].Detail, "é", ""), want[i].At)
		}
	}
	// It can still be saved: a compare-and-swap with a spilled history.
	got.State = access.Active
	got.History = append(got.History, entry(999, "x"))
	if err := s.SaveRequest(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, err := s.GetRequest(ctx, "inl-1")
	if err != nil || again.State != access.Active || len(again.History) != len(want)+1 {
		t.Fatalf("after saving a spilled request: %v, %d entries", err, len(again.History))
	}
}

// TestStoredHistoryIsAppendOnly: a caller that changes entries it read
// cannot rewrite them, inline or not; its new entries are kept.
func TestStoredHistoryIsAppendOnly(t *testing.T) {
	s, _ := openRaw(t)
	ctx := bg(t)
	r := req("ao-1", access.Pending)
	r.History = append(r.History, entry(1, "first"))
	if err := s.SaveRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	cur, err := s.GetRequest(ctx, "ao-1")
	if err != nil {
		t.Fatal(err)
	}
	cur.History[1].Detail = "rewritten"
	cur.History = append(cur.History, entry(2, "second"))
	before := roundTrips(t, s)
	if err := s.SaveRequest(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if n := roundTrips(t, s) - before; n != 2 {
		t.Errorf("save with a changed stored entry: %d round trips, want 2 (re-read, write)", n)
	}
	got, err := s.GetRequest(ctx, "ao-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.History) != 3 || got.History[1].Detail != "first" || got.History[2].Detail != "second" {
		t.Fatalf("history after the save: %+v", got.History)
	}
	// A changed stored entry with a stale version is a conflict, not a rewrite.
	stale := *cur
	stale.History = slices.Clone(cur.History[:2])
	stale.Version, stale.StoredHistory = r.Version, 2
	stale.History[1].Detail = "again"
	if err := s.SaveRequest(ctx, &stale); err == nil {
		t.Fatal("stale save with a changed stored entry succeeded")
	}
}

// TestFirstLayoutRows: requests written before history went inline (the
// state row without HistoryRows, every entry in a history row) are read
// whole, saved, and read again.
func TestFirstLayoutRows(t *testing.T) {
	s, raw := openRaw(t)
	ctx := bg(t)
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	body, _ := json.Marshal(access.Request{ID: "old-1", Source: access.SourceEvents, State: access.Expired, Requester: "u1", Profile: "p1", GroupID: "g1", RequestedAt: at})
	state, _ := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: "old-1", RowKey: "state"}, Properties: map[string]any{
		"State": "expired", "Profile": "p1", "Requester": "u1", "Source": "events", "HistoryLen": int32(2),
		"RequestedAt": aztables.EDMDateTime(at), "BodyParts": int32(1), "Body": string(body)}})
	if _, err := raw.AddEntity(ctx, state, nil); err != nil {
		t.Fatal(err)
	}
	hist := []access.HistoryEntry{{At: at, Type: access.HRequested}, {At: at.Add(time.Hour), Type: access.HExpired}}
	for i, h := range hist {
		hb, _ := json.Marshal(h)
		ent, _ := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: "old-1", RowKey: fmt.Sprintf("h-%06d", i+1)}, Properties: map[string]any{
			"At": aztables.EDMDateTime(h.At), "Type": h.Type, "BodyParts": int32(1), "Body": string(hb)}})
		if _, err := raw.AddEntity(ctx, ent, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetRequest(ctx, "old-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != access.Expired || len(got.History) != 2 || !sameEntry(got.History[0], hist[0]) || !sameEntry(got.History[1], hist[1]) || got.StoredHistory != 2 {
		t.Fatalf("old row read as %s with %+v (stored %d)", got.State, got.History, got.StoredHistory)
	}
	got.History = append(got.History, access.HistoryEntry{At: at.Add(2 * time.Hour), Type: access.HNote, Detail: "later"})
	if err := s.SaveRequest(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, err := s.GetRequest(ctx, "old-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(again.History) != 3 || !sameEntry(again.History[0], hist[0]) || again.History[2].Detail != "later" {
		t.Fatalf("after a save: %+v", again.History)
	}
	if keys := rowKeys(t, raw, "old-1"); len(keys) != 3 {
		t.Fatalf("rows: %v (the old history rows stay, the new entry inline)", keys)
	}
}

// TestNonASCIIInLargeBodies: multi-byte text in entities larger than one
// chunk of a request body (single-entity writes and $batch) comes back
// intact (Azure/Azurite#2670 corrupts it unless the body is ASCII).
func TestNonASCIIInLargeBodies(t *testing.T) {
	s, _ := openRaw(t)
	ctx := bg(t)
	text := strings.Repeat("é", 997) + "😀" + strings.Repeat("ü€", 300)
	for _, n := range []int{10, 40, 90} {
		r := req(fmt.Sprintf("na-%d", n), access.Pending)
		for i := range n {
			r.History = append(r.History, entry(i, text))
		}
		if err := s.SaveRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetRequest(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i, h := range got.History[1:] {
			if h.Detail != text {
				t.Fatalf("%d entries: entry %d came back changed (%d bytes)", n, i, len(h.Detail))
			}
		}
	}
}

// TestDeferredIndexDeletes: saves into in-flight states leave their
// superseded index entries to the next save; however many in-flight saves
// (retries move the due entry each time), the final save leaves no index
// entry behind.
func TestDeferredIndexDeletes(t *testing.T) {
	s, table := openTables(t)
	ctx := bg(t)
	r := req("def-1", access.Pending)
	r.DueAt = time.Now().Add(time.Hour)
	if err := s.SaveRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	for i, st := range []access.State{access.Activating, access.Active, access.Ending, access.Ending, access.Ending,
		access.Ending, access.Ending, access.Ending, access.Ending, access.Ending, access.Ending, access.Ending, access.Expired} {
		r.State = st
		r.DueAt = time.Now().Add(time.Duration(i+1) * time.Minute)
		if st == access.Expired {
			r.DueAt = time.Time{}
		}
		r.History = append(r.History, entry(i, string(st)))
		if err := s.SaveRequest(ctx, r); err != nil {
			t.Fatalf("save %d (%s): %v", i, st, err)
		}
		if got, err := s.GetRequest(ctx, "def-1"); err != nil || got.State != st {
			t.Fatalf("save %d: read %v, %v", i, got, err)
		}
	}
	idx := table("index")
	pager := idx.NewListEntitiesPager(nil)
	var left []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Entities {
			var e aztables.EDMEntity
			_ = json.Unmarshal(b, &e)
			left = append(left, e.RowKey)
		}
	}
	if len(left) != 0 {
		t.Fatalf("index entries left after the end: %v", left)
	}
}
