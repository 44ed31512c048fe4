package broker

import (
	"context"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// ExpiryScheduler schedules the app's own jit.access.expire message at the
// end of a grant (Service Bus scheduled messages), so access ends on time to
// the second; the sweep stays the backstop. The message's id (MessageId and
// CloudEvent id) is chosen at random by the scheduler at each call and
// returned with the sequence number: senders can read the request id and
// endsAt, so an id derived from them could be sent first and have the real
// message dropped as a duplicate (docs/design.md, real directory rule 4).
type ExpiryScheduler interface {
	ScheduleExpire(ctx context.Context, requestID string, at time.Time) (seq int64, messageID string, err error)
	CancelExpire(ctx context.Context, seq int64) error
}

// Publisher publishes outcome notifications (jit.access.pending, activated,
// expiring, ended, denied, rejected, failed, outofband).
type Publisher interface {
	Publish(ctx context.Context, n access.Notice, r *access.Request) error
}

// outboxRetry is how soon the sweep retries notifications or a schedule
// that could not be sent.
const outboxRetry = 30 * time.Second

// persist is the one place a request's new state is written. Beside the
// state it records what must follow it (stampOutcomes), so that the write
// and its outcomes cannot part: after persist the caller sends them with
// flushOutcomes, and what that cannot send stays recorded for the sweep.
func (b *Broker) persist(ctx context.Context, r *access.Request) error {
	b.stampOutcomes(r, b.now())
	return b.store.SaveRequest(ctx, r)
}

// stampOutcomes prepares r for its write: it queues the notification of
// the state reached (an outbox), sets when the sweep must look at it next
// (the natural due time, or a retry of outcomes still to send), and, when
// an end is carried out now, the latest moment access may linger
// (AccessGoneBy).
func (b *Broker) stampOutcomes(r *access.Request, now time.Time) {
	if b.opts.Publisher != nil {
		r.QueueNotices(now)
	}
	if r.Work == nil {
		if due := r.NaturalDue(b.expiringLead()); r.State == access.Active && !due.IsZero() {
			r.DueAt = due
		}
	}
	if b.outcomesPending(r) && (r.DueAt.IsZero() || r.DueAt.After(now.Add(outboxRetry))) {
		r.DueAt = now.Add(outboxRetry)
	}
	if r.State.Ended() && !r.ActivatedAt.IsZero() && r.AccessGoneBy.IsZero() {
		// The end is carried out now: what the grant gave lasts at most
		// the access token's life (group modes) or the authorization
		// caches' (azure-role) after it (docs/design.md, The read API).
		bound := b.opts.TokenLifetime
		if r.AzureRole() {
			bound = b.opts.RBACPropagation
		}
		r.AccessGoneBy = now.Add(bound)
	}
}

func (b *Broker) expiringLead() time.Duration {
	if b.opts.Publisher == nil {
		return 0
	}
	return b.opts.ExpiringLead
}

func (b *Broker) needsSchedule(r *access.Request) bool {
	return b.opts.Scheduler != nil && r.State == access.Active && r.ExpireSeq == 0 && r.EndsAt.After(b.now())
}

func (b *Broker) needsCancel(r *access.Request) bool {
	return b.opts.Scheduler != nil && r.ExpireSeq != 0 && !r.State.Holds()
}

// outcomesPending reports whether notifications or the expiry message are
// still to be sent for r.
func (b *Broker) outcomesPending(r *access.Request) bool {
	return (b.opts.Publisher != nil && len(r.Outbox) > 0) || b.needsSchedule(r) || b.needsCancel(r)
}

// flushOutcomes sends what persist recorded (notifications, the expiry
// message to schedule or cancel) and saves what was sent; sends never block
// or undo the state change. Failures are logged and left for
// the sweep; a lost compare-and-swap means someone else has the newer
// request and will flush it.
func (b *Broker) flushOutcomes(ctx context.Context, r *access.Request) {
	if !b.outcomesPending(r) {
		return
	}
	next := r.Clone()
	changed := false
	if b.needsSchedule(next) {
		seq, msgID, err := b.opts.Scheduler.ScheduleExpire(ctx, next.ID, next.EndsAt)
		if err != nil {
			b.log.WarnContext(ctx, "scheduling the expiry message failed; the sweep is the backstop", "requestId", next.ID, "error", err.Error())
		} else {
			next.ExpireSeq, next.ExpireMessageID, changed = seq, msgID, true
		}
	}
	if b.needsCancel(next) {
		if err := b.opts.Scheduler.CancelExpire(ctx, next.ExpireSeq); err != nil {
			b.log.WarnContext(ctx, "cancelling the expiry message failed; it will be a no-op", "requestId", next.ID, "error", err.Error())
			if fault.Permanent(err) {
				next.ExpireSeq, next.ExpireMessageID, changed = 0, "", true
			}
		} else {
			next.ExpireSeq, next.ExpireMessageID, changed = 0, "", true
		}
	}
	if b.opts.Publisher != nil {
		var done []string
		for _, n := range next.Outbox {
			if err := b.opts.Publisher.Publish(ctx, n, next); err != nil {
				b.log.WarnContext(ctx, "publishing a notification failed; the sweep retries it", "requestId", next.ID, "notice", n.Type, "error", err.Error())
				break
			}
			done = append(done, n.ID)
		}
		if len(done) > 0 {
			next.Published(done)
			changed = true
		}
	}
	if !changed {
		return
	}
	if next.Work == nil && !b.outcomesPending(next) {
		next.DueAt = next.NaturalDue(b.expiringLead())
	}
	if err := b.store.SaveRequest(ctx, next); err != nil {
		b.log.InfoContext(ctx, "outcome bookkeeping not saved; the sweep will catch up", "requestId", next.ID, "error", err.Error())
		return
	}
	*r = *next
}
