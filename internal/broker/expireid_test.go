package broker_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/seed"
	"github.com/jitaccess/jitaccess/internal/servicebus"
)

// sbQueue is the requests queue as Service Bus runs it for jitaccess
// (infra/modules/servicebus.bicep): duplicate detection on MessageId with a
// one-hour window, scheduled messages included — a message sent with a
// MessageId logged within the window is accepted (a scheduled one even gets
// a sequence number) and dropped. It is the servicebus.Sender of the real
// servicebus.Scheduler; the tests hand what it delivers to the broker, as
// the Functions host would.
type sbQueue struct {
	mu        sync.Mutex
	now       func() time.Time
	window    time.Duration
	logged    map[string]time.Time // MessageId → when it was sent
	seq       int64
	scheduled map[int64]sbMessage // accepted, not yet due
	dropped   []string            // MessageIds dropped as duplicates
	fail      error
}

type sbMessage struct {
	id   string
	body []byte
	at   time.Time
}

var _ servicebus.Sender = (*sbQueue)(nil)

func newSBQueue(now func() time.Time) *sbQueue {
	return &sbQueue{now: now, window: time.Hour, logged: map[string]time.Time{}, scheduled: map[int64]sbMessage{}}
}

// accept logs id and reports whether the message is kept (not a duplicate).
func (q *sbQueue) accept(id string) bool {
	now := q.now()
	if t, ok := q.logged[id]; ok && now.Sub(t) < q.window {
		q.dropped = append(q.dropped, id)
		return false
	}
	q.logged[id] = now
	return true
}

func (q *sbQueue) SendMessage(context.Context, *azservicebus.Message, *azservicebus.SendMessageOptions) error {
	return errors.New("the scheduler only schedules")
}

func (q *sbQueue) ScheduleMessages(_ context.Context, ms []*azservicebus.Message, at time.Time, _ *azservicebus.ScheduleMessagesOptions) ([]int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return nil, q.fail
	}
	var seqs []int64
	for _, m := range ms {
		q.seq++
		seqs = append(seqs, q.seq)
		if q.accept(*m.MessageID) {
			q.scheduled[q.seq] = sbMessage{id: *m.MessageID, body: m.Body, at: at}
		}
	}
	return seqs, nil
}

func (q *sbQueue) CancelScheduledMessages(_ context.Context, seqs []int64, _ *azservicebus.CancelScheduledMessagesOptions) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, s := range seqs {
		delete(q.scheduled, s)
	}
	return nil
}

func (q *sbQueue) setFail(err error) { q.mu.Lock(); q.fail = err; q.mu.Unlock() }

// send is a sender's message: delivered at once unless it is a duplicate.
func (q *sbQueue) send(e *env, messageID string, b []byte) {
	e.t.Helper()
	q.mu.Lock()
	ok := q.accept(messageID)
	q.mu.Unlock()
	if ok {
		e.handle(b)
	}
}

// deliverDue delivers the scheduled messages that are due, in order.
func (q *sbQueue) deliverDue(e *env) int {
	e.t.Helper()
	q.mu.Lock()
	var due []sbMessage
	for _, s := range slices.Sorted(maps.Keys(q.scheduled)) {
		if m := q.scheduled[s]; !m.at.After(q.now()) {
			due = append(due, m)
			delete(q.scheduled, s)
		}
	}
	q.mu.Unlock()
	for _, m := range due {
		e.handle(m.body)
	}
	return len(due)
}

func newQueueEnv(t *testing.T) (*env, *sbQueue) {
	e := newEnv(t, nil)
	q := newSBQueue(e.clock.Now)
	e.b = broker.New(e.store, e.dir, profiles{"aks-admin": adminProfile()}, e.clock,
		broker.Options{Scheduler: servicebus.NewScheduler(q, e.clock.Now)})
	return e, q
}

// predictableID is the expire message id jitaccess used to build from what
// the read API shows (the request id and endsAt).
func predictableID(r *access.Request) string {
	return "expire-" + r.ID + "-" + r.EndsAt.UTC().Format("20060102T150405.000000000")
}

// The scheduled expire message's id is random, stored with the grant, and
// the message ends the grant at endsAt even when a sender, who can read the
// request id and endsAt, sent events under the id jitaccess used to derive
// from them: after the queue's duplicate-detection window (so the queue
// accepts them) an invalid approval and an early expire, both with that
// CloudEvent id. Before, the broker took the real expire for a duplicate of
// the rejected approval and the grant lasted until the next sweep
// (docs/design.md, real directory rule 4).
func TestSenderCannotPreemptScheduledExpire(t *testing.T) {
	e, q := newQueueEnv(t)
	r := e.activate("g-1", seed.UPN("n01"), "PT2H")
	m, ok := q.scheduled[r.ExpireSeq]
	if r.ExpireSeq == 0 || !ok || !m.at.Equal(r.EndsAt) {
		t.Fatalf("not scheduled at endsAt: seq %d, %+v", r.ExpireSeq, q.scheduled)
	}
	ev, err := access.DecodeEvent(m.body)
	if err != nil || r.ExpireMessageID == "" || r.ExpireMessageID != m.id || ev.ID != m.id || ev.Type != access.TypeExpire {
		t.Fatalf("stored message id %q, scheduled MessageId %q, CloudEvent id %q (%v)", r.ExpireMessageID, m.id, ev.ID, err)
	}
	guess := predictableID(r)
	e.clock.Advance(61 * time.Minute)
	q.send(e, guess, body(guess, access.TypeApproved, map[string]any{"requestId": "g-1", "approver": 7}))
	q.send(e, guess+"-2", body(guess, access.TypeExpire, map[string]any{"requestId": "g-1"}))
	if r := e.want("g-1", access.Active); r.ExpireMessageID != m.id {
		t.Fatalf("the stored message id changed: %q", r.ExpireMessageID)
	}
	e.clock.Set(r.EndsAt)
	if n := q.deliverDue(e); n != 1 {
		t.Fatalf("%d scheduled messages delivered at endsAt, want 1 (dropped: %v)", n, q.dropped)
	}
	r = e.want("g-1", access.Expired)
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatalf("member %v, sessions revoked %d times", e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01), e.dir.RevokedFor(seed.UserN01))
	}
	if r.ExpireSeq != 0 || r.ExpireMessageID != "" {
		t.Fatalf("after the end: seq %d, message id %q", r.ExpireSeq, r.ExpireMessageID)
	}
}

// When scheduling fails at activation, the sweep schedules again later; by
// then endsAt is readable, and a sender may have sent a message under the
// id jitaccess used to derive from it. Service Bus accepts the schedule and
// drops it as a duplicate, so with that id no expire message ever came. The
// new schedule draws a new id, which no sender can have used.
func TestRetriedScheduleCannotBePreempted(t *testing.T) {
	e, q := newQueueEnv(t)
	q.setFail(&azservicebus.Error{Code: azservicebus.CodeConnectionLost})
	r := e.activate("g-2", seed.UPN("n01"), "PT1H")
	if r.ExpireSeq != 0 || r.ExpireMessageID != "" {
		t.Fatalf("scheduled while Service Bus failed: seq %d id %q", r.ExpireSeq, r.ExpireMessageID)
	}
	guess := predictableID(r)
	q.send(e, guess, body(guess, access.TypeApproved, map[string]any{"requestId": "g-2", "approver": 7}))
	q.setFail(nil)
	e.clock.Advance(31 * time.Second)
	e.sweep()
	r = e.want("g-2", access.Active)
	m, ok := q.scheduled[r.ExpireSeq]
	if r.ExpireSeq == 0 || !ok || r.ExpireMessageID != m.id || r.ExpireMessageID == guess {
		t.Fatalf("rescheduled: seq %d, stored id %q, kept %v, dropped %v", r.ExpireSeq, r.ExpireMessageID, ok, q.dropped)
	}
	e.clock.Set(r.EndsAt)
	if n := q.deliverDue(e); n != 1 {
		t.Fatalf("%d scheduled messages delivered at endsAt, want 1 (dropped: %v)", n, q.dropped)
	}
	e.want("g-2", access.Expired)
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatal("membership or sessions left at endsAt")
	}
}
