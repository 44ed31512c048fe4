package devhost

import (
	"context"
	"errors"
	"time"
)

// DeliverAuditBatch invokes the eventHubTrigger function with one batch,
// retrying under the function's retry policy (waits capped by MaxRetryDelay).
// It returns the last error when every attempt failed: the real host then
// moves past the batch.
func (h *Host) DeliverAuditBatch(ctx context.Context, events []string) error {
	f := h.auditFn
	if f == nil {
		return errors.New("devhost: no eventHubTrigger function")
	}
	h.mu.Lock()
	first := h.ehSeq
	h.ehSeq += int64(len(events))
	h.mu.Unlock()
	maxRetry, withRetry := 0, f.Retry != nil
	if withRetry {
		maxRetry = f.Retry.MaxRetryCount
	}
	delay := 50 * time.Millisecond
	var err error
	for attempt := 0; attempt <= maxRetry; attempt++ {
		payload := EventHubPayload(f.Name, f.Trigger().Name, "devhost.servicebus.windows.net", f.Trigger().EventHubName,
			events, first, attempt, maxRetry, withRetry, h.o.Now())
		if err = h.invoke(ctx, f.Name, payload); err == nil {
			return nil
		}
		if attempt == maxRetry {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(delay, h.o.MaxRetryDelay)):
		}
		delay *= 2
	}
	h.log.Warn("audit batch abandoned after retries", "events", len(events))
	return err
}
