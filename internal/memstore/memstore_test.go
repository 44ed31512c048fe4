package memstore_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/memstore"
	"github.com/jitaccess/jitaccess/internal/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return memstore.New() })
}

// A done context fails an operation as transient, before it does anything.
func TestCancelledContext(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	if err := s.SaveRequest(ctx, &access.Request{ID: "r1", State: access.Pending}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.GetRequest(cctx, "r1"); !fault.Transient(err) {
		t.Fatalf("cancelled context: %v", err)
	}
}

// A damaged request is logged by id, without its data, when a listing
// leaves it out; CorruptRequest of an unknown id is not found.
func TestUnreadableIsLogged(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	s := memstore.New(memstore.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	if err := s.SaveRequest(ctx, &access.Request{ID: "bad-1", State: access.Active}); err != nil {
		t.Fatal(err)
	}
	if err := s.CorruptRequest(ctx, "bad-1", `{"justification":"SECRET`); err != nil {
		t.Fatal(err)
	}
	if err := s.CorruptRequest(ctx, "nope", "{}"); !fault.NotFound(err) {
		t.Fatalf("CorruptRequest(unknown) = %v", err)
	}
	page, err := s.ListRequests(ctx, broker.ListFilter{State: access.Active})
	if err != nil || len(page.Items) != 0 || len(page.Skipped) != 1 || page.Skipped[0] != "bad-1" {
		t.Fatalf("list: %+v %v", page, err)
	}
	out := logs.String()
	if !strings.Contains(out, `"requestId":"bad-1"`) || !strings.Contains(out, "invalid JSON") || strings.Contains(out, "SECRET") {
		t.Fatalf("log: %s", out)
	}
}
