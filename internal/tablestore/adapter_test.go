package tablestore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/azuritetest"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/tablestore"
)

func bg(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func req(id string, st access.State) *access.Request {
	now := time.Now().UTC()
	return &access.Request{ID: id, Source: access.SourceEvents, State: st, Requester: "u1", Profile: "p1", GroupID: "g1",
		RequestedAt: now, History: []access.HistoryEntry{{At: now, Type: access.HRequested}}}
}

// rt runs fn and returns how many HTTP requests it sent.
func rt(t *testing.T, s *tablestore.Store, fn func() error) int64 {
	t.Helper()
	before := roundTrips(t, s)
	if err := fn(); err != nil {
		t.Fatal(err)
	}
	return roundTrips(t, s) - before
}

// TestRoundTrips pins what each operation costs in storage round trips.
func TestRoundTrips(t *testing.T) {
	s := open(t, tablestore.Options{})
	ctx := bg(t)
	r := req("rt-1", access.Pending)
	r.DueAt = time.Now().Add(time.Hour)
	check := func(what string, want int64, fn func() error) {
		t.Helper()
		if got := rt(t, s, fn); got != want {
			t.Errorf("%s: %d round trips, want %d", what, got, want)
		}
	}
	// create: due entry + state index entry (one index transaction) + the request transaction
	check("create (due, pending)", 2, func() error { return s.SaveRequest(ctx, r) })
	var got *access.Request
	check("GetRequest", 1, func() error { var err error; got, err = s.GetRequest(ctx, "rt-1"); return err })
	got.Approvals = append(got.Approvals, access.Approval{Approver: "a", At: time.Now()})
	got.History = append(got.History, access.HistoryEntry{At: time.Now(), Type: access.HApproved})
	check("save, same state and due", 1, func() error { return s.SaveRequest(ctx, got) })
	got.State = access.Active
	got.DueAt = time.Now().Add(2 * time.Hour)
	for range 20 {
		got.History = append(got.History, access.HistoryEntry{At: time.Now(), Type: access.HRefused})
	}
	// new due + new index (one transaction), request transaction, delete old due + old index (one transaction)
	check("save, state and due change, 20 entries", 3, func() error { return s.SaveRequest(ctx, got) })
	// An in-flight state (intent before a Graph call): the superseded
	// entries are left for the next save, which deletes them with its own.
	got.State = access.Ending
	got.DueAt = time.Now().Add(30 * time.Second)
	check("save into an in-flight state", 2, func() error { return s.SaveRequest(ctx, got) })
	check("list active while ending (stale entry skipped)", 2, func() error {
		p, err := s.ListRequests(ctx, broker.ListFilter{State: access.Active})
		if err == nil && len(p.Items) != 0 {
			err = errors.New("ending request listed as active")
		}
		return err
	})
	got.State = access.Expired
	got.DueAt = time.Time{}
	// request transaction, delete the entries of active and of ending (one transaction)
	check("save to a final state", 2, func() error { return s.SaveRequest(ctx, got) })
	// The superseded entries were really deleted: listing the active ones
	// finds no entry to check (no point read) and DueRequests nothing.
	check("list active after the end (no stale entry)", 1, func() error {
		p, err := s.ListRequests(ctx, broker.ListFilter{State: access.Active})
		if err == nil && len(p.Items) != 0 {
			err = errors.New("ended request listed as active")
		}
		return err
	})
	check("due after the end (no stale entry)", 1, func() error {
		ids, err := s.DueRequests(ctx, time.Now().Add(3*time.Hour), 10)
		if err == nil && len(ids) != 0 {
			err = fmt.Errorf("ended request due: %v", ids)
		}
		return err
	})
	check("GetRequest with 22 history entries (inline)", 1, func() error {
		r, err := s.GetRequest(ctx, "rt-1")
		if err == nil && len(r.History) != 22 {
			err = errors.New("history lost")
		}
		return err
	})
	stale := *got
	stale.Reason = "x"
	mustConflict := func() error {
		stale.Version = r.Version
		stale.StoredHistory = 1
		stale.History = stale.History[:1]
		if err := s.SaveRequest(ctx, &stale); !fault.Conflict(err) {
			return errors.New("expected conflict")
		}
		return nil
	}
	check("lost CAS", 1, mustConflict)
	check("DueRequests (nothing old)", 1, func() error { _, err := s.DueRequests(ctx, time.Now(), 10); return err })
	check("GetLedger", 1, func() error { _, err := s.GetLedger(ctx, "g", "u"); return err })
	l := &access.Ledger{GroupID: "g", UserID: "u", Grants: []string{"rt-1"}}
	check("SaveLedger create", 1, func() error { return s.SaveLedger(ctx, l) })
	l.Grants = nil
	check("SaveLedger delete", 1, func() error { return s.SaveLedger(ctx, l) })
	check("RecordRejection", 1, func() error { return s.RecordRejection(ctx, access.Rejection{At: time.Now(), Reason: "r"}) })
	check("Ping", 1, func() error { return s.Ping(ctx) })
	check("ListRequests final state", 1, func() error {
		_, err := s.ListRequests(ctx, broker.ListFilter{State: access.Expired, Limit: 10})
		return err
	})
	for i := range 3 {
		if err := s.SaveRequest(ctx, req("rt-p"+string(rune('a'+i)), access.Pending)); err != nil {
			t.Fatal(err)
		}
	}
	check("ListRequests pending (index query + 3 point reads)", 4, func() error {
		p, err := s.ListRequests(ctx, broker.ListFilter{State: access.Pending, Limit: 10})
		if err == nil && len(p.Items) != 3 {
			err = errors.New("wrong count")
		}
		return err
	})
}

func TestBadTokensAndVersions(t *testing.T) {
	s := open(t, tablestore.Options{})
	ctx := bg(t)
	for _, tok := range []string{"garbage", "i.AA.AA", "x.YQ.Yg", "r..", "r.!!.!!"} {
		if _, err := s.ListRequests(ctx, broker.ListFilter{After: tok}); !fault.Permanent(err) {
			t.Errorf("ListRequests(After %q) = %v, want permanent", tok, err)
		}
	}
	r := req("v-1", access.Pending)
	if err := s.SaveRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Version = "not-a-version"
	if err := s.SaveRequest(ctx, r); !fault.Conflict(err) {
		t.Errorf("foreign version = %v, want conflict", err)
	}
}

func TestOptionsAndSecrets(t *testing.T) {
	for _, p := range []string{"1abc", "ab-c", "", strings.Repeat("a", 54)} {
		if p == "" {
			continue // default
		}
		if _, err := tablestore.NewFromConnectionString(azuritetest.ConnString("http://127.0.0.1:1/devstoreaccount1"), tablestore.Options{Prefix: p}); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	secret := "c2VjcmV0LWtleS1tdXN0LW5vdC1sZWFr!!"
	_, err := tablestore.NewFromConnectionString("DefaultEndpointsProtocol=http;AccountName=a;AccountKey="+secret+";TableEndpoint=http://127.0.0.1:1/a;", tablestore.Options{})
	if err == nil {
		t.Fatal("bad key accepted")
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatalf("error repeats the key: %v", err)
	}
	if _, err := tablestore.NewFromConnectionString("nonsense", tablestore.Options{}); err == nil || strings.Contains(err.Error(), "nonsense") {
		t.Fatalf("nonsense connection string: %v", err)
	}
}

// TestStorageDown stops Azurite under a store: every operation is transient
// (never permanent, never not-found), and all works again once it is back,
// with the data (the dedicated Azurite persists to disk).
func TestStorageDown(t *testing.T) {
	srv := azuritetest.New(t)
	s, err := tablestore.NewFromConnectionString(srv.ConnString(), tablestore.Options{Prefix: azuritetest.Prefix(t), TryTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := bg(t)
	if err := s.EnsureTables(ctx); err != nil {
		t.Fatal(err)
	}
	r := req("down-1", access.Pending)
	if err := s.SaveRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	ops := map[string]func() error{
		"GetRequest":       func() error { _, err := s.GetRequest(ctx, "down-1"); return err },
		"SaveRequest":      func() error { c := *r; return s.SaveRequest(ctx, &c) },
		"DueRequests":      func() error { _, err := s.DueRequests(ctx, time.Now(), 5); return err },
		"GetLedger":        func() error { _, err := s.GetLedger(ctx, "g", "u"); return err },
		"SaveLedger":       func() error { return s.SaveLedger(ctx, &access.Ledger{GroupID: "g", UserID: "u", ClaimedBy: "x"}) },
		"RecordRejection":  func() error { return s.RecordRejection(ctx, access.Rejection{At: time.Now(), Reason: "r"}) },
		"RecentRejections": func() error { _, err := s.RecentRejections(ctx, 5); return err },
		"ListRequests":     func() error { _, err := s.ListRequests(ctx, broker.ListFilter{State: access.Pending}); return err },
		"Ping":             func() error { return s.Ping(ctx) },
	}
	for name, op := range ops {
		start := time.Now()
		err := op()
		if !fault.Transient(err) {
			t.Errorf("%s with storage down = %v, want transient", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %v to fail", name, d)
		}
		if err != nil && strings.Contains(err.Error(), azuritetest.AccountKey) {
			t.Errorf("%s error contains the account key", name)
		}
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRequest(ctx, "down-1")
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	got.State = access.Active
	if err := s.SaveRequest(ctx, got); err != nil {
		t.Fatalf("save after restart: %v", err)
	}
}

// TestTablesRecreated: a store whose tables vanished answers transient and
// recreates them, so a deployment started before its storage recovers.
func TestTablesRecreated(t *testing.T) {
	s := open(t, tablestore.Options{})
	ctx := bg(t)
	if err := s.DeleteTables(ctx); err != nil {
		t.Fatal(err)
	}
	// The store knows (DeleteTables); a second store on the same tables does not.
	other, err := tablestore.NewFromConnectionString(azuritetest.Start(t), tablestore.Options{Prefix: s.Prefix()})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Ping(ctx); err != nil { // creates them on first use
		t.Fatalf("first Ping: %v", err)
	}
	if err := s.DeleteTables(ctx); err != nil {
		t.Fatal(err)
	}
	// Azurite needs a moment before a deleted table name can be reused.
	var lastErr error
	for range 50 {
		_, lastErr = other.GetRequest(ctx, "x")
		if fault.NotFound(lastErr) {
			return
		}
		if !fault.Transient(lastErr) {
			t.Fatalf("GetRequest on vanished tables = %v, want transient", lastErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("tables never came back: %v", lastErr)
}

// TestStaleIndexCleanup: index entries left by lost saves are skipped and,
// once older than StaleAfter, deleted.
func TestStaleIndexCleanup(t *testing.T) {
	clock := time.Now()
	s := open(t, tablestore.Options{StaleAfter: time.Minute, Now: func() time.Time { return clock }})
	ctx := bg(t)
	now := time.Now().UTC()
	r := req("st-1", access.Pending)
	r.DueAt = now.Add(-time.Hour)
	if err := s.SaveRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	a, _ := s.GetRequest(ctx, "st-1")
	b, _ := s.GetRequest(ctx, "st-1")
	a.State, a.DueAt = access.Expired, time.Time{}
	if err := s.SaveRequest(ctx, a); err != nil {
		t.Fatal(err)
	}
	b.State, b.DueAt = access.Active, now.Add(-2*time.Hour) // lost: leaves stale entries
	if err := s.SaveRequest(ctx, b); !fault.Conflict(err) {
		t.Fatalf("want conflict, got %v", err)
	}
	// Old due entries are checked: nothing due, nothing active.
	if ids, err := s.DueRequests(ctx, now, 10); err != nil || len(ids) != 0 {
		t.Fatalf("DueRequests = %v, %v", ids, err)
	}
	if p, err := s.ListRequests(ctx, broker.ListFilter{State: access.Active}); err != nil || len(p.Items) != 0 {
		t.Fatalf("active = %v, %v", p.Items, err)
	}
	// Later the stale entries are deleted: the next calls cost no point reads.
	clock = clock.Add(2 * time.Minute)
	if _, err := s.DueRequests(ctx, now, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListRequests(ctx, broker.ListFilter{State: access.Active}); err != nil {
		t.Fatal(err)
	}
	if n := rt(t, s, func() error { _, err := s.DueRequests(ctx, now, 10); return err }); n != 1 {
		t.Errorf("DueRequests after cleanup: %d round trips, want 1", n)
	}
	if n := rt(t, s, func() error { _, err := s.ListRequests(ctx, broker.ListFilter{State: access.Active}); return err }); n != 1 {
		t.Errorf("ListRequests after cleanup: %d round trips, want 1", n)
	}
}
