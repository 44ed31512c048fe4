package devhost

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// The Service Bus queue of the serviceBusTrigger function.

// DeadLetter is a message that failed MaxDeliveryCount deliveries.
type DeadLetter struct {
	Message
	Body   string    `json:"body"`
	Reason string    `json:"reason"`
	At     time.Time `json:"deadLetteredAt"`
}

// QueueName is the resolved queue of the serviceBusTrigger function ("" if none).
func (h *Host) QueueName() string {
	if h.queueFn == nil {
		return ""
	}
	return h.queueFn.Trigger().QueueName
}

func messageIDOf(body []byte) string {
	var ev struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &ev) == nil && ev.ID != "" && len(ev.ID) <= 128 {
		return ev.ID
	}
	return uuid.NewString()
}

// Enqueue sends a message to the requests queue and returns its message id
// (the CloudEvent id when the body has one, as `jitaccess send` sets it).
// With duplicate detection, a message whose id was sent within the window is
// accepted and dropped.
func (h *Host) Enqueue(body []byte) string {
	m := h.newMessage(body)
	if h.duplicate(m.MessageID) {
		return m.MessageID
	}
	h.push(m)
	return m.MessageID
}

// duplicate logs a sent MessageId and reports whether it was sent within the
// duplicate-detection window (the message is then dropped). The window runs
// from the send that was kept; a dropped duplicate does not extend it (the
// Service Bus docs do not say; this is the stand-in's choice).
func (h *Host) duplicate(id string) bool {
	w := h.o.DuplicateDetectionWindow
	if w <= 0 {
		return false
	}
	now := h.o.Now()
	h.mu.Lock()
	for len(h.sentOrder) > 0 {
		old := h.sentOrder[0]
		if t, ok := h.sentIDs[old]; ok && now.Sub(t) < w {
			break
		}
		delete(h.sentIDs, old)
		h.sentOrder = h.sentOrder[1:]
	}
	if t, ok := h.sentIDs[id]; ok && now.Sub(t) < w {
		h.dupes = append(h.dupes, id)
		h.mu.Unlock()
		h.log.Info("duplicate message dropped", "messageId", id)
		return true
	}
	h.sentIDs[id] = now
	h.sentOrder = append(h.sentOrder, id)
	h.mu.Unlock()
	return false
}

// Duplicates returns the MessageIds dropped by duplicate detection, in order.
func (h *Host) Duplicates() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.dupes...)
}

func (h *Host) newMessage(body []byte) *Message {
	h.mu.Lock()
	h.seq++
	seq := h.seq
	h.mu.Unlock()
	return &Message{MessageID: messageIDOf(body), SequenceNumber: seq, Body: append([]byte(nil), body...),
		ContentType: "application/cloudevents+json; charset=utf-8"}
}

func (h *Host) push(m *Message) {
	h.mu.Lock()
	m.EnqueuedTime = h.o.Now().UTC()
	h.queue = append(h.queue, m)
	h.inflight++
	h.mu.Unlock()
	h.signal()
}

func (h *Host) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Schedule enqueues body at the given time (a scheduled message) and returns
// its sequence number, usable with CancelScheduled. With duplicate
// detection, a message whose id was sent within the window is accepted (it
// gets a sequence number, as Service Bus answers) and dropped.
func (h *Host) Schedule(body []byte, at time.Time) int64 {
	m := h.newMessage(body)
	if h.duplicate(m.MessageID) {
		return m.SequenceNumber
	}
	d := at.Sub(h.o.Now())
	if d < 0 {
		d = 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.scheduled[m.SequenceNumber] = time.AfterFunc(d, func() {
		h.mu.Lock()
		_, still := h.scheduled[m.SequenceNumber]
		delete(h.scheduled, m.SequenceNumber)
		stopped := h.stopped
		h.mu.Unlock()
		if still && !stopped {
			h.push(m)
		}
	})
	return m.SequenceNumber
}

// CancelScheduled cancels a scheduled message; false when it is unknown or
// already enqueued.
func (h *Host) CancelScheduled(seq int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.scheduled[seq]
	if !ok {
		return false
	}
	t.Stop()
	delete(h.scheduled, seq)
	return true
}

// ScheduledCount is the number of scheduled messages not yet enqueued.
func (h *Host) ScheduledCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.scheduled)
}

// DeadLetters returns the dead-lettered messages, oldest first.
func (h *Host) DeadLetters() []DeadLetter {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]DeadLetter(nil), h.dead...)
}

// WaitIdle waits until every enqueued message is completed or dead-lettered
// (scheduled messages not yet due do not count).
func (h *Host) WaitIdle(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		h.mu.Lock()
		h.idle.Broadcast()
		h.mu.Unlock()
	})
	defer stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.inflight > 0 && ctx.Err() == nil && !h.stopped {
		h.idle.Wait()
	}
	return ctx.Err()
}

// startWorkers starts the Concurrency queue workers and wakes one (messages
// may have been enqueued before Start).
func (h *Host) startWorkers(ctx context.Context) {
	for range h.o.Concurrency {
		h.wg.Add(1)
		go h.worker(ctx)
	}
	h.signal()
}

func (h *Host) worker(ctx context.Context) {
	defer h.wg.Done()
	for {
		h.mu.Lock()
		var m *Message
		if len(h.queue) > 0 {
			m, h.queue = h.queue[0], h.queue[1:]
		}
		more := len(h.queue) > 0
		h.mu.Unlock()
		if more {
			h.signal()
		}
		if m == nil {
			select {
			case <-ctx.Done():
				return
			case <-h.wake:
				continue
			}
		}
		h.deliver(ctx, m)
	}
}

func (h *Host) done() {
	h.mu.Lock()
	h.inflight--
	h.idle.Broadcast()
	h.mu.Unlock()
}

func (h *Host) deliver(ctx context.Context, m *Message) {
	if h.queueFn == nil {
		h.deadLetter(m, "no serviceBusTrigger function")
		return
	}
	m.DeliveryCount++
	ns := h.o.Settings["ServiceBusConnection__fullyQualifiedNamespace"]
	if ns == "" {
		ns = "devhost.servicebus.windows.net"
	}
	payload := ServiceBusPayload(h.queueFn.Name, h.queueFn.Trigger().Name, ns, *m, h.o.Now())
	err := h.invoke(ctx, h.queueFn.Name, payload)
	if err == nil {
		h.done()
		return
	}
	if ctx.Err() != nil {
		h.done()
		return
	}
	if m.DeliveryCount >= h.o.MaxDeliveryCount {
		h.deadLetter(m, "MaxDeliveryCountExceeded: "+err.Error())
		return
	}
	h.log.Info("redelivering", "messageId", m.MessageID, "deliveryCount", m.DeliveryCount)
	time.AfterFunc(h.o.RedeliveryDelay, func() {
		h.mu.Lock()
		if h.stopped {
			h.inflight--
			h.idle.Broadcast()
			h.mu.Unlock()
			return
		}
		h.queue = append(h.queue, m)
		h.mu.Unlock()
		h.signal()
	})
}

func (h *Host) deadLetter(m *Message, reason string) {
	h.log.Warn("dead-lettered", "messageId", m.MessageID, "deliveryCount", m.DeliveryCount)
	h.mu.Lock()
	h.dead = append(h.dead, DeadLetter{Message: *m, Body: string(m.Body), Reason: reason, At: h.o.Now().UTC()})
	h.inflight--
	h.idle.Broadcast()
	h.mu.Unlock()
}
