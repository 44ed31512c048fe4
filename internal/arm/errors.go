package arm

import (
	"context"
	"encoding/json"
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

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/jitaccess/jitaccess/internal/fault"
)

// APIError is what the adapter keeps of a failed ARM answer: the status,
// ARM's error code and message (never the body, the URL or a token). It is
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

// ARM error codes the adapter interprets (see the package comment).
const (
	CodeRoleAssignmentExists             = "RoleAssignmentExists"
	CodePrincipalNotFound                = "PrincipalNotFound"
	CodeRoleDefinitionDoesNotExist       = "RoleDefinitionDoesNotExist"
	CodeRoleAssignmentUpdateNotPermitted = "RoleAssignmentUpdateNotPermitted"
)

// maxMessage bounds the ARM message kept in an error.
const maxMessage = 512

// failure is a classified error of one attempt.
type failure struct {
	raw        error
	status     int // HTTP status; 0 when no answer
	code       string
	message    string
	retryAfter time.Duration // from Retry-After, or the wait we would have needed
	network    bool          // no answer: reset, refused, EOF
	timeout    bool          // attempt deadline or caller's context
	token      bool          // getting a token failed (nothing was sent)
}

// kind maps the failure to a fault kind.
func (f *failure) kind() error {
	switch {
	case f.timeout, f.network:
		return fault.ErrTransient
	case f.code == CodePrincipalNotFound:
		// A principal created moments ago is not yet visible to ARM
		// (replication delay, RBAC troubleshooting guide).
		return fault.ErrTransient
	case f.code == CodeRoleDefinitionDoesNotExist:
		return fault.ErrPermanent // a profile's role, whatever the status
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
			cause = ue.Err // drop the URL
		}
	}
	return &fault.Error{Kind: f.kind(), Op: "arm " + op, Err: cause, RetryAfter: f.retryAfter}
}

// tokenError marks an error of the credential: the request was not sent.
// The SDK's bearer policy wraps every token error as non-retriable, so the
// adapter marks them itself (markedCredential) to tell them apart.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// markedCredential is the caller's credential with its errors marked.
type markedCredential struct{ cred azcore.TokenCredential }

func (m markedCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tk, err := m.cred.GetToken(ctx, o)
	if err != nil {
		return tk, &tokenError{err}
	}
	return tk, nil
}

// errForeignHost: a request (a nextLink) for another host than the base
// URL's; it is not sent, so the token never leaves for it.
var errForeignHost = errors.New("refused to send a request outside the ARM base URL")

// hostGuard is a per-call policy (it runs before the bearer token policy)
// that lets only requests for the base URL's origin through.
type hostGuard struct{ origin string }

func (g hostGuard) Do(req *policy.Request) (*http.Response, error) {
	if origin(req.Raw().URL) != g.origin {
		return nil, errForeignHost
	}
	return req.Next()
}

// origin is scheme://host:port of u, lower case, with the scheme's default
// port made explicit (a nextLink may name :443 where the base URL does not).
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// inspect classifies err.
func inspect(err error, now time.Time) *failure {
	f := &failure{raw: err}
	var re *azcore.ResponseError
	var te *tokenError
	switch {
	case errors.As(err, &re):
		f.status = re.StatusCode
		f.code = re.ErrorCode
		if re.RawResponse != nil {
			code, msg := errorBody(re.RawResponse)
			if code != "" {
				f.code = code
			}
			f.message = msg
			f.retryAfter = retryAfter(re.RawResponse.Header, now)
		}
	case errors.As(err, &te):
		f.token = true
		var af *azidentity.AuthenticationFailedError
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			f.timeout = true
			f.message = "timed out"
		case errors.As(err, &af):
			f.message = "authentication failed"
			if af.RawResponse != nil {
				st := af.RawResponse.StatusCode
				f.message = "token endpoint answered " + strconv.Itoa(st)
				// The token endpoint being throttled or down is transient.
				f.network = st == http.StatusTooManyRequests || st >= 500
			}
		default:
			// CredentialUnavailableError and the like: no managed
			// identity here; retrying will not help.
			f.message = "no managed identity available"
		}
	case errors.Is(err, errForeignHost):
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

// errorBody reads ARM's {"error":{"code","message"}} (the SDK has buffered
// the body).
func errorBody(resp *http.Response) (code, message string) {
	b, err := runtime.Payload(resp)
	if err != nil || len(b) == 0 {
		return "", ""
	}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil {
		return "", ""
	}
	msg := e.Error.Message
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	return e.Error.Code, msg
}

// retryAfter reads Retry-After (seconds or an HTTP date), or ARM's
// retry-after-ms / x-ms-retry-after-ms.
func retryAfter(h http.Header, now time.Time) time.Duration {
	for _, k := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if v := strings.TrimSpace(h.Get(k)); v != "" {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return time.Duration(n) * time.Millisecond
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
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

// retryPolicy decides whether a failure may be retried in place.
type retryPolicy func(*failure) bool

// retryAll: reads (listings); any transient failure.
func retryAll(f *failure) bool { return f.kind() == fault.ErrTransient }

// retryUnprocessed: writes. Only answers that say the request was not
// processed are retried in place: 429 (ARM: a throttled request "isn't
// processed"), 503, and PrincipalNotFound (refused before anything was
// written); a token failure happens before the request is sent. A timeout,
// a reset or a 500/502/504 after the request left is ambiguous and is
// returned to the caller as transient (the broker's redelivery tries
// again; the PUT by name and the DELETE are safe to repeat then, and the
// caller reads their answers with that in mind).
func retryUnprocessed(f *failure) bool {
	if f.token {
		return f.kind() == fault.ErrTransient
	}
	return f.status == http.StatusTooManyRequests || f.status == http.StatusServiceUnavailable ||
		f.code == CodePrincipalNotFound
}

// call runs fn with bounded retries and returns nil or the last failure.
func (c *Client) call(ctx context.Context, may retryPolicy, fn func(context.Context) error) *failure {
	var waited time.Duration
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
		err := fn(actx)
		attemptDone := actx.Err() != nil
		cancel()
		if err == nil {
			return nil
		}
		f := inspect(err, time.Now())
		if ctx.Err() != nil {
			f.timeout = true // the caller gave up: transient, no retry
			return f
		}
		if attemptDone && f.status == 0 {
			f.timeout = true // the attempt's own deadline cut it
		}
		if attempt >= c.opts.MaxRetries || !may(f) {
			return f
		}
		wait := f.retryAfter
		if wait <= 0 {
			wait = c.opts.BaseBackoff << attempt
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

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
