package graph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/jitaccess/jitaccess/internal/fault"
)

// APIError is what the adapter keeps of a failed Graph answer: the status,
// Graph's error code and message (never the body, never a token). It is
// wrapped inside a *fault.Error; use errors.As to read it.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	switch {
	case e.Code != "" && e.Message != "":
		return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
	case e.Code != "":
		return fmt.Sprintf("HTTP %d %s", e.Status, e.Code)
	}
	return fmt.Sprintf("HTTP %d", e.Status)
}

// failure is a classified error of one attempt.
type failure struct {
	raw        error
	status     int // HTTP status; 0 when no answer
	code       string
	message    string
	retryAfter time.Duration // from Retry-After, or the wait we would have needed
	network    bool          // no answer: reset, refused, EOF
	timeout    bool          // attempt deadline or caller's context
	token      bool          // token acquisition failed
	heldBack   bool          // not sent: the throttle gate held it back (throttle.go)
}

// kind maps the failure to a fault kind (docs/design.md, rule 7 and Operations).
func (f *failure) kind() error {
	switch {
	case f.timeout, f.network, f.heldBack:
		return fault.ErrTransient
	case f.status == http.StatusNotFound:
		return fault.ErrNotFound
	case f.status == http.StatusTooManyRequests, f.status == http.StatusRequestTimeout,
		f.status >= 500 && f.status != http.StatusNotImplemented && f.status != http.StatusHTTPVersionNotSupported:
		return fault.ErrTransient
	}
	return fault.ErrPermanent
}

// err is the error returned to callers: a *fault.Error wrapping an
// *APIError (answers) or a short cause (no answer), never a URL or body.
func (f *failure) err(op string) error {
	var cause error
	switch {
	case f.status != 0:
		cause = &APIError{Status: f.status, Code: f.code, Message: f.message}
	case f.token:
		cause = fmt.Errorf("acquiring a token: %s", f.message)
	default:
		cause = f.raw
		var ue *url.Error
		if errors.As(cause, &ue) {
			cause = ue.Err // drop the URL: it may hold a UPN
		}
	}
	return &fault.Error{Kind: f.kind(), Op: "graph " + op, Err: cause, RetryAfter: f.retryAfter}
}

// inspect classifies err.
func inspect(err error, now time.Time) *failure {
	f := &failure{raw: err}
	var od *odataerrors.ODataError
	var ae abs.ApiErrorable
	var af *azidentity.AuthenticationFailedError
	var cu interface{ NonRetriable() }
	var hb *heldBackError
	switch {
	case errors.As(err, &hb):
		// Not sent: the gate closed between admit and the transport.
		f.raw = errHeldBack
		f.heldBack = true
		f.retryAfter = hb.retryAfter
	case errors.As(err, &od):
		f.status = od.GetStatusCode()
		if m := od.GetErrorEscaped(); m != nil {
			f.code = deref(m.GetCode())
			f.message = deref(m.GetMessage())
		}
		f.retryAfter = retryAfter(od.GetResponseHeaders(), now)
	case errors.As(err, &ae):
		f.status = ae.GetStatusCode()
		f.retryAfter = retryAfter(ae.GetResponseHeaders(), now)
	case errors.As(err, &af):
		f.token = true
		f.message = "authentication failed"
		if af.RawResponse != nil {
			st := af.RawResponse.StatusCode
			f.message = "token endpoint answered " + strconv.Itoa(st)
			// The token endpoint being throttled or down is transient.
			f.network = st == http.StatusTooManyRequests || st >= 500
		}
	case errors.As(err, &cu):
		f.token = true
		f.message = "no managed identity available"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		f.timeout = true
	default:
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			f.timeout = true
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
			errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
			errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
			errors.Is(err, net.ErrClosed):
			f.network = true
		default:
			var oe *net.OpError
			var ue *url.Error
			f.network = errors.As(err, &oe) || errors.As(err, &ue)
		}
	}
	return f
}

// retryAfter parses Retry-After (seconds or an HTTP date).
func retryAfter(h *abs.ResponseHeaders, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	for _, k := range []string{"Retry-After", "retry-after"} {
		if vs := h.Get(k); len(vs) > 0 {
			return parseRetryAfter(vs[0], now)
		}
	}
	return 0
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// retryPolicy decides whether a transient failure may be retried for an
// operation.
type retryPolicy func(*failure) bool

// retryAll: reads and idempotent actions whose answer does not depend on
// whether an earlier attempt got through (lookups, checkMemberGroups, member
// listing, revokeSignInSessions).
func retryAll(f *failure) bool { return f.kind() == fault.ErrTransient }

// retryUnprocessed: writes whose answer would change if an earlier attempt
// got through (add/remove member). Only answers that say the request was not
// processed are retried: 429 and 503. A token failure happens before the
// request is sent, so it is safe too.
func retryUnprocessed(f *failure) bool {
	if f.token {
		return f.kind() == fault.ErrTransient
	}
	return f.status == http.StatusTooManyRequests || f.status == http.StatusServiceUnavailable
}

// call runs fn, an attempt of op, with bounded retries and returns nil or
// the last failure. Every attempt passes op's throttle gate first
// (throttle.go): a routine call is not sent while the gate is closed, an
// ending call waits for it within the budget. The budget is the same for
// every wait, for the gate or between attempts: at most MaxRetries retries
// and MaxRetryWait of waiting in total, within ctx's deadline.
func (c *Client) call(ctx context.Context, op operation, fn func(context.Context) error) *failure {
	var waited time.Duration
	var last *failure // the last answer, if an attempt was sent
	for attempt := 0; ; attempt++ {
		t, w, refused := c.admit(ctx, op, c.opts.MaxRetryWait-waited)
		waited += w
		if refused != nil {
			if last == nil {
				return refused
			}
			// Graph's own answer says more than "not sent".
			last.retryAfter = max(last.retryAfter, refused.retryAfter)
			last.timeout = last.timeout || refused.timeout
			return last
		}
		actx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
		err := fn(actx)
		attemptDone := actx.Err() != nil
		cancel()
		if err == nil {
			c.release(t, nil, 0)
			return nil
		}
		f := inspect(err, c.now())
		backoff := c.opts.BaseBackoff << attempt
		c.release(t, f, backoff)
		if f.heldBack && ctx.Err() == nil {
			// Not sent (the gate closed after admit let it through): not
			// an attempt. Routine work fails fast, ending work waits.
			if op.priority == routine {
				c.gates[op.quota].count(func(s *ThrottleStats) { s.HeldBack++ })
				return f
			}
			attempt--
			continue
		}
		last = f
		if ctx.Err() != nil {
			// The caller gave up (deadline or cancel): transient, no retry.
			f.timeout = true
			return f
		}
		if attemptDone && f.status == 0 {
			// The attempt's own deadline cut it. azidentity reports a token
			// request cut that way as an AuthenticationFailedError without
			// a response (the context error flattened into its text), which
			// would otherwise read as permanent: it is a timeout. A token
			// failure stays retryable for writes (nothing was sent yet).
			f.timeout = true
		}
		if f.throttles() {
			if f.retryAfter <= 0 {
				f.retryAfter = backoff // the gate's pause
			}
			if op.priority == routine {
				// The gate is closed now: what comes back goes to ends.
				return f
			}
		}
		if attempt >= c.opts.MaxRetries || !op.retry(f) {
			return f
		}
		if f.throttles() {
			continue // admit waits for the gate, within the budget
		}
		wait := f.retryAfter
		if wait <= 0 {
			wait = backoff
		}
		if waited+wait > c.opts.MaxRetryWait {
			f.retryAfter = wait
			return f
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			f.retryAfter = wait
			return f
		}
		if err := c.sleep(ctx, wait); err != nil {
			f.timeout = true
			f.retryAfter = wait
			return f
		}
		waited += wait
	}
}
