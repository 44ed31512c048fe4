package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/graphsim"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// exchange is one HTTP exchange as the Client's transport saw it.
type exchange struct {
	method, path string
	sent, recv   time.Time
	status       int
	retryAfter   time.Duration
}

// recorder is a transport under the Client's middleware that records every
// exchange (when it left, when its answer came, Retry-After).
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	ex   []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	x := exchange{method: req.Method, path: req.URL.Path, sent: time.Now()}
	resp, err := r.next.RoundTrip(req)
	x.recv = time.Now()
	if resp != nil {
		x.status = resp.StatusCode
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			x.retryAfter = time.Duration(n) * time.Second
		}
	}
	r.mu.Lock()
	r.ex = append(r.ex, x)
	r.mu.Unlock()
	return resp, err
}

func (r *recorder) exchanges() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.ex...)
}

func newRecordedEnv(t *testing.T, opts Options) (*env, *recorder) {
	t.Helper()
	rec := &recorder{next: http.DefaultTransport.(*http.Transport).Clone()}
	opts.HTTPClient = &http.Client{Transport: rec}
	e := newEnv(t, graphsim.Options{}, opts)
	e.warm(t)
	return e, rec
}

// gateClosed reports whether the identity quota's gate is closed now.
func (c *Client) gateClosed() bool {
	g := c.gates[identityQuota]
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.until.After(c.now())
}

// waitFor polls cond (every 5 ms) until it holds or the test's context ends.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctxT(t).Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// callsBetween lists the calls graphsim received strictly after from and
// before to.
func callsBetween(sim *graphsim.Sim, from, to time.Time) []graphsim.Call {
	var out []graphsim.Call
	for _, c := range sim.Calls() {
		if c.Time.After(from) && c.Time.Before(to) {
			out = append(out, c)
		}
	}
	return out
}

// One 429 closes the gate for every goroutine of the Client: routine calls
// made meanwhile fail at once, transient with the time left as RetryAfter,
// and are not sent; ending calls wait and then succeed; graphsim receives
// nothing until the Retry-After has passed.
func TestThrottleGateClosesForEveryGoroutine(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{MaxRetryWait: 10 * time.Second})
	e.warm(t)
	const ra = 2 * time.Second
	e.sim.FailNext("POST /revokeSignInSessions", 1, 429, ra)

	ctx := ctxT(t)
	first := make(chan error, 1)
	go func() { first <- e.c.RevokeSessions(ctx, seed.UserN01) }()
	waitFor(t, "the 429 to close the gate", e.c.gateClosed)
	throttled := e.sim.CallsTo("POST", "/revokeSignInSessions")
	if len(throttled) != 1 || throttled[0].Status != 429 {
		t.Fatalf("calls %+v", throttled)
	}
	t429 := throttled[0].Time

	routine := map[string]func() error{
		"LookupUser": func() error { _, err := e.c.LookupUser(ctx, seed.UserN02); return err },
		"MemberOfAny": func() error {
			_, err := e.c.MemberOfAny(ctx, seed.UserP01, []string{seed.GroupAKSDefault})
			return err
		},
		"AddMember":     func() error { _, err := e.c.AddMember(ctx, seed.GroupAKSAdmin, seed.UserX01); return err },
		"DirectMembers": func() error { _, err := e.c.DirectMembers(ctx, seed.GroupAKSAdmin); return err },
	}
	endingCalls := map[string]func() error{
		"RemoveMember": func() error {
			removed, err := e.c.RemoveMember(ctx, seed.GroupAKSAdmin, seed.UserS01)
			if err == nil && !removed {
				err = errors.New("not removed")
			}
			return err
		},
		"RevokeSessions N02": func() error { return e.c.RevokeSessions(ctx, seed.UserN02) },
		"RevokeSessions P01": func() error { return e.c.RevokeSessions(ctx, seed.UserP01) },
	}
	type result struct {
		name    string
		ending  bool
		err     error
		elapsed time.Duration
	}
	results := make(chan result, len(routine)+len(endingCalls))
	start := time.Now()
	for name, f := range routine {
		go func() { err := f(); results <- result{name, false, err, time.Since(start)} }()
	}
	for name, f := range endingCalls {
		go func() { err := f(); results <- result{name, true, err, time.Since(start)} }()
	}
	for range len(routine) + len(endingCalls) {
		r := <-results
		if !r.ending {
			var fe *fault.Error
			if !fault.Transient(r.err) || !errors.Is(r.err, errHeldBack) || !errors.As(r.err, &fe) {
				t.Errorf("%s while closed: want transient, not sent; got %v", r.name, r.err)
				continue
			}
			if fe.RetryAfter <= 0 || fe.RetryAfter > ra {
				t.Errorf("%s: RetryAfter %v, want the time left of %v", r.name, fe.RetryAfter, ra)
			}
			if r.elapsed > ra/2 {
				t.Errorf("%s waited %v: routine calls fail fast", r.name, r.elapsed)
			}
			continue
		}
		if r.err != nil {
			t.Errorf("%s: %v", r.name, r.err)
		}
	}
	if err := <-first; err != nil {
		t.Fatalf("the throttled call, after the wait: %v", err)
	}
	if early := callsBetween(e.sim, t429, t429.Add(ra)); len(early) != 0 {
		t.Fatalf("%d calls while the gate was closed: %+v", len(early), early)
	}
	var after []string
	for _, c := range e.sim.Calls() {
		if c.Time.After(t429) {
			after = append(after, fmt.Sprintf("%s %s %d", c.Method, c.Path, c.Status))
		}
	}
	if len(after) != 4 {
		t.Fatalf("after the 429, want the 4 ending calls only, got %q", after)
	}
	for _, a := range after {
		if !strings.HasSuffix(a, " 200") && !strings.HasSuffix(a, " 204") {
			t.Fatalf("after the gate: %q", after)
		}
	}
	if e.sim.RevokeCount(seed.UserN01) != 1 || e.sim.RevokeCount(seed.UserN02) != 1 || e.sim.RevokeCount(seed.UserP01) != 1 ||
		e.sim.IsDirectMember(seed.GroupAKSAdmin, seed.UserS01) || e.sim.IsDirectMember(seed.GroupAKSAdmin, seed.UserX01) {
		t.Fatal("effects wrong")
	}
	if s := e.c.ThrottleStats(); s.Throttled != 1 || s.HeldBack != len(routine) || s.Waits != 1+len(endingCalls) || s.OverBudget != 0 {
		t.Fatalf("stats %+v", s)
	}
	// Open again: routine calls go.
	if _, err := e.c.LookupUser(ctx, seed.UserN02); err != nil {
		t.Fatalf("after the gate: %v", err)
	}
}

// A 503 with Retry-After closes the gate like a 429; one without does not
// (the call retries it itself, with backoff, as before).
func TestThrottleGate503(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, graphsim.Options{}, Options{})
	e.sim.FailNext("GET /users/", 1, 503, time.Second)
	if _, err := e.c.LookupUser(ctx, seed.UserN01); !fault.Transient(err) {
		t.Fatalf("503 with Retry-After: %v", err)
	}
	if _, err := e.c.MemberOfAny(ctx, seed.UserN01, []string{seed.GroupAKSDefault}); !errors.Is(err, errHeldBack) {
		t.Fatalf("while closed: %v", err)
	}
	if n := len(e.sim.Calls()); n != 1 {
		t.Fatalf("%d calls, want the one 503", n)
	}

	e = newEnv(t, graphsim.Options{}, Options{})
	e.sim.FailNext("GET /users/", 1, 503, 0)
	if _, err := e.c.LookupUser(ctx, seed.UserN01); err != nil {
		t.Fatalf("503 without Retry-After, retried: %v", err)
	}
	if _, err := e.c.MemberOfAny(ctx, seed.UserN01, []string{seed.GroupAKSDefault}); err != nil {
		t.Fatalf("gate closed by a 503 without Retry-After: %v", err)
	}
	if s := e.c.ThrottleStats(); s.Throttled != 0 || s.HeldBack != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// Under graphsim's quota (a token bucket that also charges throttled
// calls), concurrent ending calls all succeed, each exactly once, and no
// request leaves the Client while a Retry-After it received is running:
// neither by the Client's clock (its transport) nor by graphsim's (which
// may only still receive what was in flight when the 429 came back).
func TestThrottleQuotaRetryAfterHonoured(t *testing.T) {
	e, rec := newRecordedEnv(t, Options{MaxRetries: 10, MaxRetryWait: 20 * time.Second})
	e.sim.SetQuota(graphsim.Quota{Writes: 2, WriteWindow: time.Second}) // 2 at once, then 2 a second
	users := []string{seed.UserN01, seed.UserN02, seed.UserP01, seed.UserP02, seed.UserA01, seed.UserP03}
	ctx := ctxT(t)
	errs := make(chan error, len(users))
	for _, u := range users {
		go func() { errs <- e.c.RevokeSessions(ctx, u) }()
	}
	for range users {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range users {
		if n := e.sim.RevokeCount(u); n != 1 {
			t.Fatalf("%s revoked %d times", u, n)
		}
	}
	ex := rec.exchanges()
	throttled := 0
	for _, x := range ex {
		if x.status != 429 {
			continue
		}
		throttled++
		if x.retryAfter <= 0 {
			t.Fatalf("429 without Retry-After: %+v", x)
		}
		until := x.recv.Add(x.retryAfter)
		for _, y := range ex {
			if !y.sent.Before(x.recv) && y.sent.Before(until) {
				t.Fatalf("sent at %v, %v after a 429 that said wait %v", y.sent, y.sent.Sub(x.recv), x.retryAfter)
			}
		}
		// graphsim may still receive what was in flight when the 429
		// came back, nothing more.
		inFlight := 0
		for _, y := range ex {
			if y.sent.Before(x.recv) && y.recv.After(x.recv) {
				inFlight++
			}
		}
		if early := callsBetween(e.sim, x.recv, until); len(early) > inFlight {
			t.Fatalf("graphsim got %d calls within a Retry-After, %d were in flight: %+v", len(early), inFlight, early)
		}
	}
	if throttled == 0 || throttled != e.sim.CountThrottled() || e.c.ThrottleStats().Throttled != throttled {
		t.Fatalf("429s: transport %d, graphsim %d, stats %+v", throttled, e.sim.CountThrottled(), e.c.ThrottleStats())
	}
	t.Logf("%d ending calls, %d throttled answers, %d exchanges", len(users), throttled, len(ex))
}

// When the gate opens, the ending calls that waited go one at a time (the
// limit after a throttled answer with one call in flight), not as a herd.
func TestThrottleEndingCallsGoOneAtATimeAfterTheGate(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{MaxRetryWait: 10 * time.Second})
	e.warm(t)
	const ra = time.Second
	e.sim.FailNext("POST /revokeSignInSessions", 1, 429, ra)
	ctx := ctxT(t)
	errs := make(chan error, 5)
	go func() { errs <- e.c.RevokeSessions(ctx, seed.UserN01) }()
	waitFor(t, "the gate to close", e.c.gateClosed)
	t429 := e.sim.Calls()[0].Time
	const answer = 100 * time.Millisecond
	e.sim.Delay("POST /revokeSignInSessions", answer)
	for _, u := range []string{seed.UserN02, seed.UserP01, seed.UserP02, seed.UserA01} {
		go func() { errs <- e.c.RevokeSessions(ctx, u) }()
	}
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	calls := e.sim.CallsTo("POST", "/revokeSignInSessions")[1:]
	if len(calls) != 5 {
		t.Fatalf("%d calls after the 429, want 5", len(calls))
	}
	if calls[0].Time.Before(t429.Add(ra)) {
		t.Fatalf("first call %v after the 429, Retry-After %v", calls[0].Time.Sub(t429), ra)
	}
	// The limit may grow one second after the gate opened; the first four
	// are answered (100 ms each) before that on any machine fit to test.
	for i := 1; i < 4; i++ {
		if gap := calls[i].Time.Sub(calls[i-1].Time); gap < answer {
			t.Fatalf("calls %d and %d %v apart: sent before the previous answer (%v)", i-1, i, gap, answer)
		}
	}
}

// Nothing is retried past the budget: with every answer a 429, each ending
// call makes at most 1+MaxRetries attempts and then fails transient with
// RetryAfter; a Retry-After beyond what is left of the budget is not waited.
func TestThrottleNothingPastTheBudget(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{MaxRetries: 2, MaxRetryWait: 10 * time.Second})
	e.warm(t)
	e.sim.FailNext("POST /revokeSignInSessions", -1, 429, time.Second)
	users := []string{seed.UserN01, seed.UserN02, seed.UserP01, seed.UserP02}
	ctx := ctxT(t)
	errs := make(chan error, len(users))
	start := time.Now()
	for _, u := range users {
		go func() { errs <- e.c.RevokeSessions(ctx, u) }()
	}
	for range users {
		err := <-errs
		var fe *fault.Error
		if !fault.Transient(err) || !errors.As(err, &fe) || fe.RetryAfter <= 0 {
			t.Fatalf("want transient with RetryAfter, got %v", err)
		}
	}
	for _, u := range users {
		n := 0
		for _, c := range e.sim.CallsTo("POST", "/revokeSignInSessions") {
			if strings.Contains(c.Path, u) {
				n++
			}
		}
		if n < 1 || n > 3 {
			t.Fatalf("%s: %d attempts, want 1 to 1+MaxRetries", u, n)
		}
	}
	if el := time.Since(start); el > 15*time.Second {
		t.Fatalf("took %v", el)
	}

	// A Retry-After beyond the budget: not waited, not retried, and the
	// next ending call is not sent.
	e = newEnv(t, graphsim.Options{}, Options{MaxRetryWait: 5 * time.Second})
	e.sim.FailNext("DELETE", 1, 429, 60*time.Second)
	e.sim.AddMember(seed.GroupAKSAdmin, seed.UserN01)
	t0 := time.Now()
	_, err := e.c.RemoveMember(ctx, seed.GroupAKSAdmin, seed.UserN01)
	var fe *fault.Error
	if !fault.Transient(err) || !errors.As(err, &fe) || fe.RetryAfter != 60*time.Second {
		t.Fatalf("got %v", err)
	}
	if _, err := e.c.RemoveMember(ctx, seed.GroupAKSAdmin, seed.UserN01); !errors.Is(err, errHeldBack) || !errors.As(err, &fe) || fe.RetryAfter < 55*time.Second {
		t.Fatalf("second call: %v", err)
	}
	if n := e.sim.CountCalls("DELETE", ""); n != 1 || time.Since(t0) > 5*time.Second {
		t.Fatalf("%d calls in %v", n, time.Since(t0))
	}
	if s := e.c.ThrottleStats(); s.OverBudget != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// hookCred runs hook before each token request (kiota asks for the token
// while it builds each request, after admit and before the transport).
type hookCred struct {
	azcore.TokenCredential
	hook func()
}

func (h hookCred) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	h.hook()
	return h.TokenCredential.GetToken(ctx, o)
}

// A gate that closes after a call was admitted (another goroutine's 429
// arrived while this request was being built) still keeps the request
// from leaving: the transport holds it back. A routine call fails fast; an
// ending call waits, and the request that was not sent is not an attempt.
func TestThrottleGateHeldAtTheTransport(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	e.warm(t)
	var mu sync.Mutex
	var n int
	var closedAt time.Time
	const pause = 300 * time.Millisecond
	cred := hookCred{TokenCredential: e.c.cred, hook: func() {
		mu.Lock()
		defer mu.Unlock()
		if n++; n <= 2 { // the first two requests: the routine one, then the ending one
			g := e.c.gates[identityQuota]
			g.mu.Lock()
			closedAt = time.Now()
			g.until = closedAt.Add(pause)
			g.mu.Unlock()
		}
	}}
	c, err := New(cred, Options{BaseURL: e.sim.BaseURL(), MaxRetries: -1, AttemptTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	ctx := ctxT(t)
	if _, err := c.LookupUser(ctx, seed.UserN01); !errors.Is(err, errHeldBack) || !fault.Transient(err) {
		t.Fatalf("routine: %v", err)
	}
	if n := len(e.sim.Calls()); n != 0 {
		t.Fatalf("%d calls sent while the gate was closed", n)
	}
	waitFor(t, "the gate to open", func() bool { return !c.gateClosed() })
	if err := c.RevokeSessions(ctx, seed.UserN01); err != nil {
		t.Fatalf("ending, no retries allowed: %v", err)
	}
	calls := e.sim.Calls()
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 || calls[0].Time.Before(closedAt.Add(pause)) || n != 3 {
		t.Fatalf("calls %+v (gate closed at %v for %v), %d requests built", calls, closedAt, pause, n)
	}
	if s := c.ThrottleStats(); s.HeldBack != 1 || s.Waits != 1 {
		t.Fatalf("stats %+v", s)
	}
}
