package handlers

import (
	"context"
	"net/http"
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
	b := AuditBatch{InvocationID: invocationID(r)}
	var rc retryContext
	if env.metaObject("RetryContext", &rc) {
		b.RetryCount, b.MaxRetryCount = rc.RetryCount, rc.MaxRetryCount
	}
	c.add("events", len(events), "retryCount", b.RetryCount)
	if s.d.Audit == nil {
		c.add("audit", "not configured")
		return nil
	}
	return s.d.Audit.HandleAuditEvents(ctx, events, b)
}
