package storetest

import (
	"context"
	"sync"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
)

// Operation names, as used by Faulty's FailNext, SetHook and Ops.
const (
	OpGetRequest       = "GetRequest"
	OpSaveRequest      = "SaveRequest"
	OpDueRequests      = "DueRequests"
	OpRecordRejection  = "RecordRejection"
	OpGetLedger        = "GetLedger"
	OpSaveLedger       = "SaveLedger"
	OpPing             = "Ping"
	OpListRequests     = "ListRequests"
	OpRecentRejections = "RecentRejections"
	OpDeployedAt       = "DeployedAt"
	// OpAny in FailNext matches whichever operation comes next.
	OpAny = "*"
)

// Faulty wraps a store with fault injection and operation counters for
// tests: every operation is counted, then fails with an error queued by
// FailNext or returned by the hook (SetHook) without reaching the store, or
// else is passed on. It is a Store itself, so a broker, a handler or the
// dashboard can be given it in place of the store. It is safe for
// concurrent use.
type Faulty struct {
	s Store

	mu   sync.Mutex
	fail map[string][]error
	hook func(op string) error
	ops  map[string]int
}

var (
	_ Store        = (*Faulty)(nil)
	_ broker.Store = (*Faulty)(nil)
)

// NewFaulty wraps s.
func NewFaulty(s Store) *Faulty {
	return &Faulty{s: s, fail: map[string][]error{}, ops: map[string]int{}}
}

// FailNext makes the next call of op (or of any operation, with OpAny) fail
// with err instead of doing anything. Calls queue up: FailNext twice fails
// the next two calls.
func (f *Faulty) FailNext(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[op] = append(f.fail[op], err)
}

// SetHook installs a function called at the start of every operation (no
// lock held: it may call the store); a non-nil error is returned by the
// operation, which then does nothing. nil removes the hook.
func (f *Faulty) SetHook(h func(op string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// Ops returns how many times each operation was called (including calls
// that failed by injection).
func (f *Faulty) Ops() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.ops))
	for k, v := range f.ops {
		out[k] = v
	}
	return out
}

// OpCount returns how many times op was called.
func (f *Faulty) OpCount(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops[op]
}

// ResetOps sets every counter back to zero.
func (f *Faulty) ResetOps() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.ops)
}

// enter counts op and returns the fault injected into it, if any.
func (f *Faulty) enter(op string) error {
	f.mu.Lock()
	f.ops[op]++
	hook := f.hook
	var injected error
	for _, k := range []string{op, OpAny} {
		if q := f.fail[k]; len(q) > 0 {
			injected = q[0]
			f.fail[k] = q[1:]
			break
		}
	}
	f.mu.Unlock()
	if injected != nil {
		return injected
	}
	if hook != nil {
		return hook(op)
	}
	return nil
}

func (f *Faulty) GetRequest(ctx context.Context, id string) (*access.Request, error) {
	if err := f.enter(OpGetRequest); err != nil {
		return nil, err
	}
	return f.s.GetRequest(ctx, id)
}

func (f *Faulty) SaveRequest(ctx context.Context, r *access.Request) error {
	if err := f.enter(OpSaveRequest); err != nil {
		return err
	}
	return f.s.SaveRequest(ctx, r)
}

func (f *Faulty) DueRequests(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if err := f.enter(OpDueRequests); err != nil {
		return nil, err
	}
	return f.s.DueRequests(ctx, now, limit)
}

func (f *Faulty) RecordRejection(ctx context.Context, rej access.Rejection) error {
	if err := f.enter(OpRecordRejection); err != nil {
		return err
	}
	return f.s.RecordRejection(ctx, rej)
}

func (f *Faulty) GetLedger(ctx context.Context, groupID, userID string) (*access.Ledger, error) {
	if err := f.enter(OpGetLedger); err != nil {
		return nil, err
	}
	return f.s.GetLedger(ctx, groupID, userID)
}

func (f *Faulty) SaveLedger(ctx context.Context, l *access.Ledger) error {
	if err := f.enter(OpSaveLedger); err != nil {
		return err
	}
	return f.s.SaveLedger(ctx, l)
}

func (f *Faulty) Ping(ctx context.Context) error {
	if err := f.enter(OpPing); err != nil {
		return err
	}
	return f.s.Ping(ctx)
}

func (f *Faulty) ListRequests(ctx context.Context, lf broker.ListFilter) (broker.ListPage, error) {
	if err := f.enter(OpListRequests); err != nil {
		return broker.ListPage{}, err
	}
	return f.s.ListRequests(ctx, lf)
}

func (f *Faulty) RecentRejections(ctx context.Context, limit int) ([]access.Rejection, error) {
	if err := f.enter(OpRecentRejections); err != nil {
		return nil, err
	}
	return f.s.RecentRejections(ctx, limit)
}

func (f *Faulty) DeployedAt(ctx context.Context, now time.Time) (time.Time, error) {
	if err := f.enter(OpDeployedAt); err != nil {
		return time.Time{}, err
	}
	return f.s.DeployedAt(ctx, now)
}
