package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/telemetry"
)

// This file is the ONE place that maps an error to the host's answer.
//
// Invocations (POST /<FunctionName>):
//
//   - nil → 200 application/json {"Outputs":{},"Logs":[...],"ReturnValue":null}:
//     the invocation succeeded, Service Bus completes the message, Event Hubs
//     moves on. Never an empty body: the host parses the answer as JSON. Logs
//     holds the invocation's own JSON log lines (the same lines as stdout,
//     bounded; package telemetry), which the host logs as the function's.
//   - any error → 500 with the same JSON shape, Logs ending with a fixed,
//     safe message (never the body, never the error's text; the host does
//     not read the Logs of a non-2xx answer): the invocation fails,
//     Service Bus redelivers (then dead-letters after maxDeliveryCount), Event
//     Hubs retries under the function's retry policy.
//
// That an error means "retry" is deliberate: errors wrapping
// fault.ErrTransient are the expected ones, and an unexpected error (a context
// deadline, a bug) is safer retried than lost. fault.ErrPermanent and invalid
// input are NOT errors at this level: the use case records them (rejected,
// refused, failed — docs/design.md, rule 7) and returns nil, so a malformed event is
// acknowledged and never retried forever.
//
// HTTP functions (forwarded /api/...) answer plain HTTP with JSON errors
// {"error": "..."}: 400 bad input, 404 unknown, 503 storage unavailable
// (transient), 500 a stored request that cannot be decoded (fault.ErrUnreadable;
// the error says so, the log says why) or anything else.

// invocationResult is the custom handler's answer (HttpScriptInvocationResult
// in azure-functions-host).
type invocationResult struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// Outcomes written to the log.
const (
	outcomeAcknowledged = "acknowledged"
	outcomeRetry        = "retry"
)

// answer writes the host's answer for err and returns the status and outcome.
// logs are the invocation's own lines (telemetry.Scope.Logs): the host logs
// each entry of a 2xx answer's Logs through the function's logger, in the
// invocation's scope, so Application Insights links them to the invocation
// (azure-functions-host DefaultHttpWorkerService.ProcessLogsFromHttpResponse;
// it reads no Logs from a non-2xx answer, whose lines stay on stdout only).
func answer(w http.ResponseWriter, err error, logs []string) (int, string) {
	res := invocationResult{Outputs: map[string]any{}, Logs: logs}
	if res.Logs == nil {
		res.Logs = []string{}
	}
	if err == nil {
		writeJSON(w, http.StatusOK, res)
		return http.StatusOK, outcomeAcknowledged
	}
	res.Logs = append(res.Logs, safeMessage(err))
	writeJSON(w, http.StatusInternalServerError, res)
	return http.StatusInternalServerError, outcomeRetry
}

// statusOf is answer's status and outcome for err, before anything is written.
func statusOf(err error) (int, string) {
	if err == nil {
		return http.StatusOK, outcomeAcknowledged
	}
	return http.StatusInternalServerError, outcomeRetry
}

// errorKind classifies err for logs and the host's Logs.
func errorKind(err error) string {
	switch {
	case err == nil:
		return ""
	case fault.Transient(err):
		return "transient"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case fault.Permanent(err):
		// A use case should have recorded it and returned nil; retrying is
		// the safe reading of a permanent error that escaped.
		return "permanent-unrecorded"
	}
	return "unexpected"
}

// safeMessage is a fixed text per kind: error texts may quote what a sender
// wrote, so they never go to the host's Logs.
func safeMessage(err error) string {
	switch errorKind(err) {
	case "transient":
		return "jitaccess: transient failure; the invocation will be retried"
	case "timeout":
		return "jitaccess: timed out; the invocation will be retried"
	case "cancelled":
		return "jitaccess: cancelled (shutting down); the invocation will be retried"
	}
	return "jitaccess: unexpected failure; the invocation will be retried"
}

// call collects what an invocation logs.
type call struct {
	attrs []any
}

func (c *call) add(kv ...any) { c.attrs = append(c.attrs, kv...) }

// invocation wraps a non-HTTP function. Every line logged with the
// invocation's context carries its invocation id, function and (once known)
// request id (telemetry.Handler); the grants whose end the invocation carried
// out are reported with their revocation lag (telemetry.MsgGrantEnded); the
// last line gives the outcome, the status, the duration and the Graph/ARM
// call counters (never the body). The answer's Logs hold the invocation's
// lines (bounded: telemetry.MaxLogLines, MaxLogBytes). A panic is answered
// like an unexpected error.
func (s *server) invocation(function string, fn func(ctx context.Context, r *http.Request, c *call) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.d.Now()
		ctx, scope := telemetry.Start(r.Context(), function, invocationID(r), true)
		r = r.WithContext(ctx)
		c := &call{}
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic in %s: %v", function, p)
				}
			}()
			err = fn(ctx, r, c)
		}()
		s.reportEnded(ctx, scope)
		code, outcome := statusOf(err)
		attrs := append([]any{
			telemetry.FieldOutcome, outcome,
			telemetry.FieldStatus, code,
			telemetry.FieldDurationMs, s.d.Now().Sub(start).Milliseconds(),
		}, c.attrs...)
		attrs = append(attrs, scope.CounterAttrs()...)
		if err != nil {
			attrs = append(attrs, telemetry.FieldErrorKind, errorKind(err), telemetry.FieldError, clip(err.Error(), 300))
			s.log.WarnContext(ctx, telemetry.MsgInvocationFailed, attrs...)
		} else {
			s.log.InfoContext(ctx, telemetry.MsgInvocationDone, attrs...)
		}
		logs, _ := scope.Logs()
		answer(w, err, logs)
	})
}

// endedWindow: a grant whose end was carried out longer ago than this is not
// reported again by a later line that names it.
const endedWindow = time.Hour

// reportEnded logs a telemetry.MsgGrantEnded line for each grant whose end
// a line of this invocation reported (at most
// telemetry.MaxEndedPerInvocation, one store read each, bounded in time).
func (s *server) reportEnded(ctx context.Context, scope *telemetry.Scope) {
	ids := scope.Ended()
	if len(ids) == 0 || s.d.Store == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	now := s.d.Now()
	for _, id := range ids {
		req, err := s.d.Store.GetRequest(rctx, id)
		if err != nil {
			s.log.DebugContext(ctx, "grant end not reported", telemetry.FieldRequestID, id, "errorKind", errorKind(err))
			continue
		}
		if !telemetry.RecentlyEnded(req, now, endedWindow) {
			continue
		}
		if attrs, ok := telemetry.EndedAttrs(req); ok {
			s.log.InfoContext(ctx, telemetry.MsgGrantEnded, attrs...)
		}
	}
}

// http wraps an HTTP function: logs function, invocation id, status and
// duration; every line logged with the request's context carries the
// invocation id and function (and the request id of /api/requests/{id}).
// Query strings are not logged (they may carry the function key). Forwarded
// HTTP answers have no Logs: these lines are on stdout only.
func (s *server) http(function string, fn http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.d.Now()
		ctx, scope := telemetry.Start(r.Context(), function, invocationID(r), false)
		r = r.WithContext(ctx)
		telemetry.SetRequestID(ctx, r.PathValue("id"))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				s.log.ErrorContext(ctx, "http function panicked", "panic", clip(fmt.Sprint(p), 300))
				if !rec.wrote {
					writeError(rec, http.StatusInternalServerError, "internal error")
				}
			}
			attrs := append([]any{telemetry.FieldStatus, rec.status,
				telemetry.FieldDurationMs, s.d.Now().Sub(start).Milliseconds()}, scope.CounterAttrs()...)
			s.log.InfoContext(ctx, telemetry.MsgHTTPDone, attrs...)
		}()
		fn(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if !s.wrote {
		s.wrote = true
	}
	return s.ResponseWriter.Write(b)
}

// invocationID is the host's invocation id header, bounded for logs.
func invocationID(r *http.Request) string {
	return clip(r.Header.Get("X-Azure-Functions-InvocationId"), 64)
}

// readError answers an HTTP function's failure to read the store.
func readError(w http.ResponseWriter, log *slog.Logger, r *http.Request, err error) {
	switch {
	case fault.NotFound(err):
		writeError(w, http.StatusNotFound, "not found")
	case fault.Unreadable(err):
		// The error names the record and the kind of problem, never its data.
		log.ErrorContext(r.Context(), "stored data cannot be read", "errorKind", "unreadable", "error", clip(err.Error(), 300))
		writeError(w, http.StatusInternalServerError, "this request is stored but cannot be read (damaged, or written by a newer "+
			"version of jitaccess); listings leave it out and nothing acts on it until an operator repairs or removes it; the log says what is wrong")
	case fault.Transient(err), errors.Is(err, context.DeadlineExceeded):
		log.WarnContext(r.Context(), "read failed", "errorKind", errorKind(err), "error", clip(err.Error(), 300))
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "storage is unavailable; retry later")
	default:
		log.ErrorContext(r.Context(), "read failed", "errorKind", errorKind(err), "error", clip(err.Error(), 300))
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
