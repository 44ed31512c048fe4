package memstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jitaccess/jitaccess/internal/access"
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
