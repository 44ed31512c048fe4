package storetest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/memstore"
	"github.com/jitaccess/jitaccess/internal/storetest"
)

// The decorator passes the whole suite when it injects nothing.
func TestFaultyPasses(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		mem := memstore.New()
		return faultyMem{storetest.NewFaulty(mem), mem}
	})
}

// faultyMem is a decorated memstore that can still be damaged behind the
// decorator (the suite's Corrupter).
type faultyMem struct {
	*storetest.Faulty
	mem *memstore.Store
}

func (s faultyMem) CorruptRequest(ctx context.Context, id, body string) error {
	return s.mem.CorruptRequest(ctx, id, body)
}

func TestFaultInjectionAndCounters(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	s := storetest.NewFaulty(mem)
	boom := fault.Wrap(fault.ErrTransient, "test", errors.New("storage down"))
	s.FailNext(storetest.OpSaveRequest, boom)
	r := &access.Request{ID: "r1", State: access.Pending}
	if err := s.SaveRequest(ctx, r); !errors.Is(err, boom) || !fault.Transient(err) {
		t.Fatalf("injected failure: %v", err)
	}
	if r.Version != "" || mem.Len() != 0 {
		t.Fatal("a failed save stored something")
	}
	if err := s.SaveRequest(ctx, r); err != nil {
		t.Fatalf("second save: %v", err)
	}
	s.FailNext(storetest.OpAny, boom)
	if _, err := s.GetLedger(ctx, "g", "u"); !errors.Is(err, boom) {
		t.Fatalf("OpAny: %v", err)
	}
	s.SetHook(func(op string) error {
		if op == storetest.OpPing {
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
	if n := s.OpCount(storetest.OpSaveRequest); n != 2 {
		t.Fatalf("SaveRequest count %d", n)
	}
	if ops := s.Ops(); ops[storetest.OpPing] != 2 || ops[storetest.OpGetLedger] != 1 {
		t.Fatalf("ops %v", ops)
	}
	s.ResetOps()
	if len(s.Ops()) != 0 {
		t.Fatal("ResetOps")
	}
}
