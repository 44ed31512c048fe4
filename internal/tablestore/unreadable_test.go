package tablestore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/azuritetest"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/tablestore"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUnreadableLayouts: rows the store cannot decode beyond a damaged
// body — a state row of another layout (no BodyParts, as a newer version
// might write), bookkeeping out of range, a damaged history row, a damaged
// rejection — fail no listing; each is named (Skipped) or left out, logged
// by id without its data, and reading it by id is fault.ErrUnreadable.
func TestUnreadableLayouts(t *testing.T) {
	cs := azuritetest.Start(t)
	prefix := azuritetest.Prefix(t)
	var logs syncBuffer
	s, err := tablestore.NewFromConnectionString(cs, tablestore.Options{Prefix: prefix, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
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
	raw := svc.NewClient(prefix + "requests")
	add := func(c *aztables.Client, pk, rk string, props map[string]any) {
		t.Helper()
		ent, _ := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: pk, RowKey: rk}, Properties: props})
		if _, err := c.UpsertEntity(ctx, ent, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeMerge}); err != nil {
			t.Fatal(err)
		}
	}
	const secret = "SECRET-free-text"
	for _, id := range []string{"ok-1", "odd-1"} {
		if err := s.SaveRequest(ctx, req(id, access.Active)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveRequest(ctx, req("ok-2", access.Expired)); err != nil {
		t.Fatal(err)
	}
	// A newer layout: no BodyParts.
	add(raw, "new-1", "state", map[string]any{"State": "expired", "Profile": "p1", "Requester": "u1", "HistoryLen": int32(0),
		"Layout": int32(3), "Data": secret})
	// Bookkeeping out of range (HistoryRows > HistoryLen) on a listed active request.
	add(raw, "odd-1", "state", map[string]any{"HistoryRows": int32(99)})
	// History in rows (the first layout), the second row damaged.
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	body, _ := json.Marshal(access.Request{ID: "hist-1", Source: access.SourceEvents, State: access.Expired, Requester: "u1", Profile: "p1", RequestedAt: at})
	add(raw, "hist-1", "state", map[string]any{"State": "expired", "Profile": "p1", "Requester": "u1", "Source": "events",
		"HistoryLen": int32(2), "BodyParts": int32(1), "Body": string(body)})
	hb, _ := json.Marshal(access.HistoryEntry{At: at, Type: access.HRequested})
	add(raw, "hist-1", "h-000001", map[string]any{"BodyParts": int32(1), "Body": string(hb)})
	add(raw, "hist-1", "h-000002", map[string]any{"BodyParts": int32(1), "Body": `{"at":"` + secret + `"}`})

	for id, problem := range map[string]string{
		"new-1":  "row state has no valid BodyParts",
		"odd-1":  "state row has no valid HistoryRows",
		"hist-1": "a value is malformed or out of range",
	} {
		_, err := s.GetRequest(ctx, id)
		var u *fault.UnreadableError
		if !fault.Unreadable(err) || !fault.Permanent(err) || !errors.As(err, &u) || u.ID != id || u.Problem != problem {
			t.Fatalf("GetRequest(%s) = %v, want unreadable: %s", id, err, problem)
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Fatalf("GetRequest(%s): %v quotes the data", id, err)
		}
	}

	list := func(f broker.ListFilter) ([]string, []string) {
		t.Helper()
		page, err := s.ListRequests(ctx, f)
		if err != nil {
			t.Fatalf("ListRequests(%+v): %v", f, err)
		}
		var ids []string
		for _, r := range page.Items {
			ids = append(ids, r.ID)
		}
		return ids, page.Skipped
	}
	if items, skipped := list(broker.ListFilter{State: access.Active}); !slices.Equal(items, []string{"ok-1"}) || !slices.Equal(skipped, []string{"odd-1"}) {
		t.Fatalf("active: %v skipped %v", items, skipped)
	}
	// A list item carries no history: the request whose history row is
	// damaged is still listed (reading it whole is what fails).
	if items, skipped := list(broker.ListFilter{State: access.Expired}); !slices.Equal(items, []string{"hist-1", "ok-2"}) || !slices.Equal(skipped, []string{"new-1"}) {
		t.Fatalf("expired: %v skipped %v", items, skipped)
	}
	if items, skipped := list(broker.ListFilter{}); !slices.Equal(items, []string{"hist-1", "ok-1", "ok-2"}) || !slices.Equal(skipped, []string{"new-1", "odd-1"}) {
		t.Fatalf("all: %v skipped %v", items, skipped)
	}

	// A damaged rejection is left out; the others are read.
	now := time.Now().UTC()
	if err := s.RecordRejection(ctx, access.Rejection{At: now, EventID: "ev-ok", Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	add(svc.NewClient(prefix+"rejections"), "rej-"+now.Format("20060102"), "0000000000000000001_bad", map[string]any{"BodyParts": int32(1), "Body": "{" + secret})
	rejs, err := s.RecentRejections(ctx, 10)
	if err != nil || len(rejs) != 1 || rejs[0].EventID != "ev-ok" {
		t.Fatalf("RecentRejections = %+v, %v", rejs, err)
	}

	out := logs.String()
	for _, want := range []string{`"id":"new-1"`, `"id":"odd-1"`, "_bad", "stored row cannot be read"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "SECRET") {
		t.Errorf("log quotes stored data:\n%s", out)
	}
}
