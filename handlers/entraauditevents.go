package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/jitaccess/jitaccess/internal/telemetry"
)

// retryContext is Metadata.RetryContext, set by the host when the function
// has a retry policy (ScriptInvocationContextExtensions.SetRetryContext).
type retryContext struct {
	RetryCount    int `json:"RetryCount"`
	MaxRetryCount int `json:"MaxRetryCount"`
}

// decodeAuditBatch reads Data.events: with cardinality many and dataType
// string the host sends a JSON string holding a JSON array of strings, one
// per Event Hubs event. ok is false when the batch cannot be read at all.
func decodeAuditBatch(env *envelope) ([][]byte, bool) {
	if env == nil {
		return nil, false
	}
	v, ok := env.binding("events")
	if !ok {
		return nil, false
	}
	events, err := unwrapArray(v)
	if err != nil {
		return nil, false
	}
	return events, true
}

// oldestEnqueued is the earliest of Metadata.EnqueuedTimeUtcArray: when the
// batch's oldest event reached the audit hub (the Event Hubs trigger's
// binding data for cardinality many; the host sends the DateTime[] through
// JsonConvert, so a JSON string holding an array of dates). Zero when the
// host did not say.
func oldestEnqueued(env *envelope) time.Time {
	v, ok := env.meta("EnqueuedTimeUtcArray")
	if !ok {
		return time.Time{}
	}
	elems, err := unwrapArray([]byte(v))
	if err != nil {
		return time.Time{}
	}
	var oldest time.Time
	for _, e := range elems {
		if t := parseHostTime(string(e)); !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	return oldest
}

// entraAuditEvents handles POST /EntraAuditEvents. A batch that cannot be
// read is acknowledged (retrying cannot fix it; reconciliation recovers lost
// audit events); a transient failure of the handler fails the invocation so
// the function's retry policy applies.
func (s *server) entraAuditEvents(ctx context.Context, r *http.Request, c *call) error {
	_, env, problem := s.readInvocation(r)
	if problem != "" {
		c.add("problem", problem)
		return nil
	}
	events, ok := decodeAuditBatch(env)
	if !ok {
		c.add("problem", "the batch is not readable")
		return nil
	}
	var rc retryContext
	if !env.metaObject("RetryContext", &rc) {
		rc = retryContext{}
	}
	c.add(telemetry.FieldEvents, len(events), "retryCount", rc.RetryCount)
	if oldest := oldestEnqueued(env); !oldest.IsZero() {
		c.add(telemetry.FieldAuditHubLagSeconds, telemetry.Seconds(s.d.Now().Sub(oldest)))
	}
	if s.d.Audit == nil {
		c.add("audit", "not configured")
		return nil
	}
	return s.d.Audit.HandleAuditEvents(ctx, events)
}
