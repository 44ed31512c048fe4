package access

import (
	"fmt"
	"time"
)

// Outcome notification types (published to the notifications topic).
const (
	NoticePending   = "jit.access.pending"
	NoticeActivated = "jit.access.activated"
	NoticeExpiring  = "jit.access.expiring"
	NoticeEnded     = "jit.access.ended"
	NoticeDenied    = "jit.access.denied"
	NoticeRejected  = "jit.access.rejected"
	NoticeFailed    = "jit.access.failed"
	NoticeOutOfBand = "jit.access.outofband"
)

// Notice is an outcome notification waiting to be published. It is part of
// the request's stored state (an outbox), so a failure to publish never
// loses it and never blocks the state change: the sweep retries it.
type Notice struct {
	ID     string    `json:"id"`
	Type   string    `json:"type"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// noticeFor says which notification a state reached deserves.
func noticeFor(s State) string {
	switch s {
	case Pending:
		return NoticePending
	case Active:
		return NoticeActivated
	case Expired, Revoked, Cancelled, TimedOut:
		return NoticeEnded
	case Denied:
		return NoticeDenied
	case Rejected:
		return NoticeRejected
	case Failed:
		return NoticeFailed
	}
	return ""
}

// QueueNotices adds to the outbox the notification for the state the request
// has now reached, unless it was already queued for that state. Call it
// after every change; it is idempotent.
func (r *Request) QueueNotices(now time.Time) {
	typ := noticeFor(r.State)
	if typ == "" || r.State == r.NotifiedState {
		return
	}
	if r.Source == SourceOutOfBand && r.State == Active {
		typ = NoticeOutOfBand
	}
	r.NotifiedState = r.State
	r.Outbox = append(r.Outbox, Notice{ID: fmt.Sprintf("%s-%d", string(r.State), len(r.History)), Type: typ, At: now, Reason: r.Reason})
}

// QueueExpiring queues the "expiring" notification once, when an active
// grant is within lead of its end.
func (r *Request) QueueExpiring(now time.Time, lead time.Duration) bool {
	if r.State != Active || r.ExpiringNotified || lead <= 0 || now.Before(r.EndsAt.Add(-lead)) {
		return false
	}
	r.ExpiringNotified = true
	r.Outbox = append(r.Outbox, Notice{ID: "expiring", Type: NoticeExpiring, At: now})
	return true
}

// Published removes delivered notices from the outbox.
func (r *Request) Published(ids []string) {
	keep := r.Outbox[:0]
	for _, n := range r.Outbox {
		done := false
		for _, id := range ids {
			if n.ID == id {
				done = true
			}
		}
		if !done {
			keep = append(keep, n)
		}
	}
	r.Outbox = keep
	if len(r.Outbox) == 0 {
		r.Outbox = nil
	}
}
