package broker_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// fakeBus records schedule/cancel calls and published notices, and can fail.
type fakeBus struct {
	mu        sync.Mutex
	scheduled map[int64]time.Time
	requestOf map[int64]string
	messageID map[int64]string // the message id returned for each sequence number
	cancelled []int64
	published []string // "<requestId> <type>"
	fail      error
	seq       int64
}

func newFakeBus() *fakeBus {
	return &fakeBus{scheduled: map[int64]time.Time{}, requestOf: map[int64]string{}, messageID: map[int64]string{}}
}

func (f *fakeBus) ScheduleExpire(_ context.Context, id string, at time.Time) (int64, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return 0, "", f.fail
	}
	f.seq++
	f.scheduled[f.seq], f.requestOf[f.seq] = at, id
	msgID := fmt.Sprintf("msg-%d", f.seq)
	f.messageID[f.seq] = msgID
	return f.seq, msgID, nil
}

func (f *fakeBus) CancelExpire(_ context.Context, seq int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.cancelled = append(f.cancelled, seq)
	return nil
}

func (f *fakeBus) Publish(_ context.Context, n access.Notice, r *access.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.published = append(f.published, r.ID+" "+n.Type)
	return nil
}

func (f *fakeBus) setFail(err error) { f.mu.Lock(); f.fail = err; f.mu.Unlock() }

func (f *fakeBus) notices(id string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.published {
		if len(p) > len(id) && p[:len(id)+1] == id+" " {
			out = append(out, p[len(id)+1:])
		}
	}
	return out
}

func newOutcomeEnv(t *testing.T, bus *fakeBus, lead time.Duration) *env {
	e := newEnv(t, nil)
	e.b = broker.New(e.store, e.dir, profiles{"aks-admin": adminProfile()}, e.clock,
		broker.Options{Scheduler: bus, Publisher: bus, ExpiringLead: lead})
	return e
}

// Activation schedules the expiry message at endsAt and stores its sequence
// number; the scheduled message ends the grant; every outcome is published.
func TestScheduledExpiryAndNotifications(t *testing.T) {
	bus := newFakeBus()
	e := newOutcomeEnv(t, bus, 10*time.Minute)
	r := e.activate("s-1", seed.UPN("n01"), "PT1H")
	if r.ExpireSeq == 0 || !bus.scheduled[r.ExpireSeq].Equal(r.EndsAt) || bus.requestOf[r.ExpireSeq] != "s-1" {
		t.Fatalf("not scheduled at endsAt: seq %d, %v", r.ExpireSeq, bus.scheduled)
	}
	if r.ExpireMessageID == "" || r.ExpireMessageID != bus.messageID[r.ExpireSeq] {
		t.Fatalf("message id %q stored, scheduler returned %q", r.ExpireMessageID, bus.messageID[r.ExpireSeq])
	}
	if got := bus.notices("s-1"); !slices.Equal(got, []string{access.NoticePending, access.NoticeActivated}) {
		t.Fatalf("notices %v", got)
	}
	if len(r.Outbox) != 0 {
		t.Fatalf("outbox not emptied: %v", r.Outbox)
	}
	// Ten minutes before the end the sweep sends "expiring", once.
	e.clock.Advance(49 * time.Minute)
	e.sweep()
	if got := bus.notices("s-1"); len(got) != 2 {
		t.Fatalf("expiring too early: %v", got)
	}
	e.clock.Advance(2 * time.Minute)
	e.sweep()
	e.sweep()
	if got := bus.notices("s-1"); !slices.Equal(got, []string{access.NoticePending, access.NoticeActivated, access.NoticeExpiring}) {
		t.Fatalf("notices %v", got)
	}
	// The scheduled message arrives at endsAt: the grant ends then, not at the next sweep.
	e.clock.Advance(9 * time.Minute)
	e.handle(body("expire-s-1", access.TypeExpire, map[string]any{"requestId": "s-1"}))
	r = e.want("s-1", access.Expired)
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatal("membership or sessions left")
	}
	if got := bus.notices("s-1"); got[len(got)-1] != access.NoticeEnded {
		t.Fatalf("notices %v", got)
	}
	if len(bus.cancelled) != 1 || r.ExpireSeq != 0 || r.ExpireMessageID != "" {
		t.Fatalf("cancel after the end: %v seq %d id %q", bus.cancelled, r.ExpireSeq, r.ExpireMessageID)
	}
}

// An early end cancels the scheduled message.
func TestEarlyEndCancelsScheduledExpiry(t *testing.T) {
	bus := newFakeBus()
	e := newOutcomeEnv(t, bus, 0)
	r := e.activate("c-1", seed.UPN("n01"), "PT1H")
	seq := r.ExpireSeq
	e.handle(body(e.nextID(), access.TypeRevoked, map[string]any{"requestId": "c-1", "by": seed.UPN("p01"), "reason": "done"}))
	r = e.want("c-1", access.Revoked)
	if !slices.Equal(bus.cancelled, []int64{seq}) || r.ExpireSeq != 0 || r.ExpireMessageID != "" {
		t.Fatalf("cancelled %v, seq %d id %q", bus.cancelled, r.ExpireSeq, r.ExpireMessageID)
	}
	// A late expire message for an ended grant is a no-op.
	e.handle(body("late", access.TypeExpire, map[string]any{"requestId": "c-1"}))
	if e.want("c-1", access.Revoked); e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatal("late expire revoked again")
	}
}

// A Service Bus outage never blocks or loses a state change: the grant is
// active, the outbox keeps the notices, and the sweep sends them later.
func TestPublishingFailureIsRetriedBySweep(t *testing.T) {
	bus := newFakeBus()
	bus.setFail(fault.Wrap(fault.ErrTransient, "publish", context.DeadlineExceeded))
	e := newOutcomeEnv(t, bus, 0)
	r := e.activate("p-1", seed.UPN("n01"), "PT1H")
	if len(r.Outbox) != 2 || r.ExpireSeq != 0 {
		t.Fatalf("outbox %v seq %d", r.Outbox, r.ExpireSeq)
	}
	if !r.DueAt.Before(r.EndsAt) {
		t.Fatalf("the sweep must come back for the outbox: due %v", r.DueAt)
	}
	bus.setFail(nil)
	e.clock.Advance(31 * time.Second)
	e.sweep()
	r = e.want("p-1", access.Active)
	if len(r.Outbox) != 0 || r.ExpireSeq == 0 || r.ExpireMessageID != bus.messageID[r.ExpireSeq] || !r.DueAt.Equal(r.EndsAt) {
		t.Fatalf("after sweep: outbox %v seq %d due %v ends %v", r.Outbox, r.ExpireSeq, r.DueAt, r.EndsAt)
	}
	if got := bus.notices("p-1"); !slices.Equal(got, []string{access.NoticePending, access.NoticeActivated}) {
		t.Fatalf("notices %v", got)
	}
	// Rejections and denials are published too.
	e.handle(e.requestBody("p-2", seed.UPN("x01"), ""))
	e.handle(e.requestBody("p-3", seed.UPN("n01"), ""))
	e.handle(body(e.nextID(), access.TypeDenied, map[string]any{"requestId": "p-3", "approver": seed.UPN("p01"), "reason": "no"}))
	if got := bus.notices("p-2"); !slices.Equal(got, []string{access.NoticeRejected}) {
		t.Fatalf("p-2 %v", got)
	}
	if got := bus.notices("p-3"); !slices.Equal(got, []string{access.NoticePending, access.NoticeDenied}) {
		t.Fatalf("p-3 %v", got)
	}
}
