// Package telemetry is what an Azure operator sees of jitaccess: the fields
// every log line carries, the lines of an invocation handed back to the
// Functions host, the counters of Graph and ARM calls, and the metric lines
// the alert rules and the workbook in infra/ query (README "Telemetry").
//
// Every log line stays JSON on stdout (the host records it as a trace of
// category Host.Function.Console, complete but linked to no invocation). A
// Scope started for an invocation adds its invocation id, function and —
// once known — request id to every line logged with its context, and keeps a
// bounded copy of the invocation's lines for the answer's Logs: the host logs
// those through the function's own logger (category Function.<Name>.User),
// in the invocation's scope, so Application Insights links them to the
// invocation (azure-functions-host DefaultHttpWorkerService
// .ProcessLogsFromHttpResponse).
//
// Metrics are log lines with numeric fields, not a metrics SDK: the Functions
// host offers a custom handler nothing else (README "Telemetry" says why and
// cites the sources), and log search alerts read them.
//
// Nothing here adds content to a line: a line holds what its caller logged
// (ids, profile, types, states, generated reasons — docs/design.md, Semantics) plus ids and
// counters this package knows. The answer's Logs are copies of those lines.
package telemetry

import (
	"context"
	"sync"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

// Field names: the KQL of the alert rules and of the workbook
// (infra/modules/alerts.bicep, infra/modules/workbook.json) reads these;
// infra/infra_test.go checks that every field a query reads is declared here.
const (
	// On every line logged within an invocation.
	FieldInvocationID = "invocationId"
	FieldFunction     = "function"
	FieldRequestID    = "requestId"
	FieldState        = "state"

	// On the invocation's last line ("invocation done" / "invocation failed").
	FieldOutcome        = "outcome"
	FieldStatus         = "status"
	FieldDurationMs     = "durationMs"
	FieldGraphRequests  = "graphRequests"
	FieldGraphFailed    = "graphFailed"
	FieldGraphThrottled = "graphThrottled"
	FieldARMRequests    = "armRequests"
	FieldARMFailed      = "armFailed"
	FieldARMThrottled   = "armThrottled"
	FieldLogsOmitted    = "logsOmitted"
	// On a line about a failure: transient, timeout, cancelled,
	// permanent-unrecorded, unexpected (the error's text is FieldError).
	FieldErrorKind = "errorKind"
	// AccessRequests: how long the message waited in the queue.
	FieldQueueLagSeconds = "queueLagSeconds"
	// EntraAuditEvents: how long the oldest event of the batch waited in the
	// audit hub (now − its EnqueuedTimeUtc), and the batch size.
	FieldAuditHubLagSeconds = "auditHubLagSeconds"
	FieldEvents             = "events"

	// The sweep's metrics line (MsgMetrics).
	FieldActiveGrants         = "activeGrants"
	FieldPendingApprovals     = "pendingApprovals"
	FieldOutOfBandActive      = "outOfBandActive"
	FieldEndsOverdue          = "endsOverdue"
	FieldOldestOverdueSeconds = "oldestOverdueSeconds"
	FieldStuckWork            = "stuckWork"
	FieldTruncated            = "truncated"
	FieldSweepIntervalSeconds = "sweepIntervalSeconds"

	// A grant's end (MsgGrantEnded).
	FieldProfile              = "profile"
	FieldActivation           = "activation"
	FieldSource               = "source"
	FieldEndsAt               = "endsAt"
	FieldEndedAt              = "endedAt"
	FieldAccessRemovedAt      = "accessRemovedAt"
	FieldRevocationLagSeconds = "revocationLagSeconds"
)

// Messages of the lines the queries select.
const (
	MsgInvocationDone   = "invocation done"
	MsgInvocationFailed = "invocation failed"
	MsgHTTPDone         = "http function done"
	MsgMetrics          = "metrics"
	MsgMetricsFailed    = "metrics unavailable"
	MsgGrantEnded       = "grant ended"
	MsgLogsOmitted      = "log lines left out of the answer"
)

// MaxEndedPerInvocation bounds the grants whose end one invocation reports.
const MaxEndedPerInvocation = 20

// Scope is one invocation's telemetry. It is safe for concurrent use.
type Scope struct {
	function     string
	invocationID string

	mu        sync.Mutex
	requestID string
	logs      *collector // nil: lines are not collected (HTTP functions)
	calls     [numServices]callCounts
	ended     []string
	seenEnded map[string]bool
	closed    bool
}

type scopeKey struct{}

// Start returns ctx carrying a new Scope for an invocation of function.
// collect: keep the invocation's lines for the answer's Logs.
func Start(ctx context.Context, function, invocationID string, collect bool) (context.Context, *Scope) {
	s := &Scope{function: function, invocationID: invocationID}
	if collect {
		s.logs = &collector{}
	}
	return context.WithValue(ctx, scopeKey{}, s), s
}

// FromContext returns the invocation's Scope, or nil outside an invocation.
func FromContext(ctx context.Context) *Scope {
	if ctx == nil {
		return nil
	}
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	return s
}

// SetRequestID records the request the invocation is about: every later line
// logged with ctx carries it (unless the line names a request itself). Only
// a valid request id is taken (access.ValidRequestID: letters, digits and
// . _ : @ -), so nothing a sender wrote beyond an id can reach the log.
func SetRequestID(ctx context.Context, id string) {
	s := FromContext(ctx)
	if s == nil || !access.ValidRequestID(id) {
		return
	}
	s.mu.Lock()
	s.requestID = id
	s.mu.Unlock()
}

// Function is the function the scope was started for.
func (s *Scope) Function() string { return s.function }

// InvocationID is the host's invocation id.
func (s *Scope) InvocationID() string { return s.invocationID }

// RequestID is the request id set so far ("" when none).
func (s *Scope) RequestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requestID
}

// Logs returns the invocation's lines for the answer (nil when the scope
// does not collect), within MaxLogLines and MaxLogBytes: when lines had to be
// left out, the first ones are kept, then a line saying how many were left
// out, then the last line (the invocation's outcome). omitted is that count.
func (s *Scope) Logs() (lines []string, omitted int) {
	if s == nil || s.logs == nil {
		return nil, 0
	}
	return s.logs.snapshot(s.invocationID, s.function)
}

// CounterAttrs are the non-zero call counters as slog key-value pairs.
func (s *Scope) CounterAttrs() []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []any
	for svc, c := range s.calls {
		if c.calls == 0 {
			continue
		}
		names := counterNames[svc]
		out = append(out, names[0], c.calls, names[1], c.failed, names[2], c.throttled)
	}
	return out
}

// Ended returns the requests that lines of this invocation reported in an
// ended grant state (expired, revoked, cancelled, failed), at most
// MaxEndedPerInvocation, and stops noting more: the caller reports them.
func (s *Scope) Ended() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return append([]string(nil), s.ended...)
}

// noteState is called for every line that names a request and a state.
func (s *Scope) noteState(requestID, state string) {
	if !endedGrantState(state) || !access.ValidRequestID(requestID) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.seenEnded[requestID] || len(s.ended) >= MaxEndedPerInvocation {
		return
	}
	if s.seenEnded == nil {
		s.seenEnded = map[string]bool{}
	}
	s.seenEnded[requestID] = true
	s.ended = append(s.ended, requestID)
}

// endedGrantState: the states a grant (or a request that failed on its way
// to one) ends in. Denied, timed out and rejected requests never granted
// anything.
func endedGrantState(s string) bool {
	switch access.State(s) {
	case access.Expired, access.Revoked, access.Cancelled, access.Failed:
		return true
	}
	return false
}

// Seconds renders a duration as whole seconds for a metric field (never
// negative).
func Seconds(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}
