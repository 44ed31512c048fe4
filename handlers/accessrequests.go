package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/telemetry"
)

// accessRequests handles POST /AccessRequests: one Service Bus message of the
// requests queue. The event is read from Data.message only (see envelope.go);
// the delivery facts from Metadata. Input that cannot be decoded is handed to
// HandleEvent as raw bytes, or to RejectDelivery when there is no body at
// all, so that it is recorded as rejected and acknowledged — bad input never
// answers 500.
func (s *server) accessRequests(ctx context.Context, r *http.Request, c *call) error {
	if s.d.Events == nil {
		// Nothing would record the event: fail so Service Bus keeps it.
		return errors.New("no event processor is configured")
	}
	body, d := s.decodeAccessRequest(r)
	c.add("messageId", clip(d.messageID, 128), "deliveryCount", d.deliveryCount)
	if !d.enqueuedTime.IsZero() {
		c.add(telemetry.FieldQueueLagSeconds, telemetry.Seconds(s.d.Now().Sub(d.enqueuedTime)))
	}
	process := func() error { return s.d.Events.HandleEvent(ctx, body) }
	if d.problem != "" {
		c.add("problem", d.problem)
		process = func() error { return s.d.Events.RejectDelivery(ctx, d.messageID, d.problem) }
	}
	// From here on every line carries the request id (when the body names a
	// valid one; the processor still validates the whole event).
	telemetry.SetRequestID(ctx, peekRequestID(body))
	err := process()
	if err == nil || s.d.RedeliveryPatience <= 0 || d.deliveryCount < 2 || !fault.Transient(err) {
		return err
	}
	// A redelivery that fails again: the dependency is down for longer than
	// a blip. Keep the message (its lock is renewed by the host) and retry
	// here with backoff instead of burning through maxDeliveryCount.
	deadline := s.d.Now().Add(s.d.RedeliveryPatience)
	wait := min(time.Second, s.d.RedeliveryPatience/8)
	tries := 1
	for fault.Transient(err) && s.d.Now().Add(wait).Before(deadline) {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			c.add("patienceTries", tries)
			return err
		case <-t.C:
		}
		tries++
		err = process()
		wait = min(2*wait, 15*time.Second)
	}
	c.add("patienceTries", tries)
	return err
}

// peekRequestID reads data.requestId of a CloudEvent body for the log: only
// a valid request id (access.ValidRequestID), never anything else of the
// body; "" when there is none.
func peekRequestID(body []byte) string {
	var ev struct {
		Data struct {
			RequestID json.RawMessage `json:"requestId"`
		} `json:"data"`
	}
	if len(body) == 0 || json.Unmarshal(body, &ev) != nil {
		return ""
	}
	var id string
	if json.Unmarshal(ev.Data.RequestID, &id) != nil || !access.ValidRequestID(id) {
		return ""
	}
	return id
}

// decodeAccessRequest extracts the message body and the delivery facts.
func (s *server) decodeAccessRequest(r *http.Request) ([]byte, delivery) {
	var d delivery
	raw, env, problem := s.readInvocation(r)
	if problem != "" {
		d.problem = problem
		return nil, d
	}
	if env == nil {
		return raw, d // not an envelope: the processor rejects it
	}
	d.messageID, _ = env.meta("MessageId")
	d.messageID = clip(d.messageID, 256)
	d.deliveryCount = env.metaInt("DeliveryCount")
	d.enqueuedTime = env.metaTime("EnqueuedTimeUtc")
	msg, ok := env.binding("message")
	if !ok {
		return raw, d
	}
	body, _ := unwrapBody(msg)
	return body, d
}
