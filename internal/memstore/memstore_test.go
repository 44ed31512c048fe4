package memstore_test

import (
	"bytes"
	"context"
	"errors"
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

func TestFaultInjectionAndCounters(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	boom := fault.Wrap(fault.ErrTransient, "test", errors.New("storage down"))
	s.FailNext(memstore.OpSaveRequest, boom)
	r := &access.Request{ID: "r1", State: access.Pending}
	if err := s.SaveRequest(ctx, r); !errors.Is(err, boom) || !fault.Transient(err) {
		t.Fatalf("injected failure: %v", err)
	}
	if r.Version != "" || s.Len() != 0 {
		t.Fatal("a failed save stored something")
	}
	if err := s.SaveRequest(ctx, r); err != nil {
		t.Fatalf("second save: %v", err)
	}
	s.FailNext(memstore.OpAny, boom)
	if _, err := s.GetLedger(ctx, "g", "u"); !errors.Is(err, boom) {
		t.Fatalf("OpAny: %v", err)
	}
	s.SetHook(func(op string) error {
		if op == memstore.OpPing {
			return boom
		}
		return nil
	})
	if err := s.Ping(ctx); !errors.Is(err, boom) {
		t.Fatalf("hook: %v", err)
	}
	s.SetHook(nil)
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.OpCount(memstore.OpSaveRequest); n != 2 {
		t.Fatalf("SaveRequest count %d", n)
	}
	if ops := s.Ops(); ops[memstore.OpPing] != 2 || ops[memstore.OpGetLedger] != 1 {
		t.Fatalf("ops %v", ops)
	}
	s.ResetOps()
	if len(s.Ops()) != 0 {
		t.Fatal("ResetOps")
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
