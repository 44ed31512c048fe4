package graph

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Throttling (docs/design.md, Operations): Graph's identity write quota per application and
// tenant is shared by every grant, so what one call learns about it is
// shared by every call of the Client. When Graph answers 429 (or 503 with
// Retry-After), the gate of that quota closes until the Retry-After has
// passed, for all goroutines:
//
//   - Ending work (RemoveMember, RevokeSessions, RemovePIM: the operations
//     whose priority is ending) waits for the gate to open, within its own
//     retry budget (Options.MaxRetries, Options.MaxRetryWait and the
//     caller's deadline); a wait beyond that budget is not started: the call
//     fails at once with fault.ErrTransient and RetryAfter set.
//   - Everything else (lookups, checkMemberGroups, member listing, AddMember,
//     AssignPIM, PIM reads: routine priority) is not sent while the gate is
//     closed, nor while ending calls wait (for the gate or for a place among
//     those in flight, below): it fails at once
//     with fault.ErrTransient and RetryAfter set, and it does not retry
//     after a 429 of its own. The quota that comes back goes to ends first.
//
// Nothing is sent while the gate is closed: the gate is checked when a call
// starts (admit) and again at the last hop before the network
// (gateTransport), which also closes it the moment a throttling answer
// arrives, before the SDK has parsed it. When it opens, the ending calls
// that waited do not all go at once: Graph charges throttled requests too
// (graphsim/quota.go), so a herd that finds the quota short again would
// prolong the throttling. After each throttled answer the ending calls in
// flight are limited to half of those that were in flight (at least one);
// the limit grows by one for each growEvery (since the gate last opened)
// of ending calls answered without throttling, and is lifted once it
// passes maxWindow.
//
// The quotas are per service: PIM for Groups (/identityGovernance) has its
// own, so it has its own gate.

// priority says whose calls get the quota first when Graph throttles.
type priority int

const (
	// routine calls fail fast while the gate is closed.
	routine priority = iota
	// ending calls (a grant's end: removal and session revocation) may wait
	// for the gate within their retry budget.
	ending
)

// quotaScope is the Graph quota an operation draws on; each has its gate.
type quotaScope int

const (
	identityQuota quotaScope = iota // users, groups, directoryObjects
	pimQuota                        // identityGovernance/privilegedAccess
	numQuotas
)

// operation is what the adapter knows of one kind of Graph call: its name
// (in errors), its priority, the quota it draws on and which failures may
// be retried in place.
type operation struct {
	name     string
	priority priority
	quota    quotaScope
	retry    retryPolicy
}

// The operations (docs/design.md, Operations). The priority belongs to the operation, not
// to the caller: callers (the broker's Directory port) pass nothing new.
var (
	opLookupUser   = operation{"lookup user", routine, identityQuota, retryAll}
	opCheckGroups  = operation{"check member groups", routine, identityQuota, retryAll}
	opListMembers  = operation{"list members", routine, identityQuota, retryAll}
	opAddMember    = operation{"add member", routine, identityQuota, retryUnprocessed}
	opRemoveMember = operation{"remove member", ending, identityQuota, retryUnprocessed}
	opRevoke       = operation{"revoke sign-in sessions", ending, identityQuota, retryAll}
	opAssignPIM    = operation{"pim adminAssign", routine, pimQuota, retryUnprocessed}
	opRemovePIM    = operation{"pim adminRemove", ending, pimQuota, retryUnprocessed}
	opPIMInstances = operation{"pim assignment instances", routine, pimQuota, retryAll}
)

const (
	// growEvery is how long ending calls must be answered without
	// throttling before one more may be in flight.
	growEvery = time.Second
	// maxWindow: a limit grown past it is lifted.
	maxWindow = 32
	// heldBackRetry is the RetryAfter of a routine call held back while the
	// gate is open but ending calls wait for a place.
	heldBackRetry = time.Second
)

// errHeldBack is the cause of a call that was not sent because of the gate.
var errHeldBack = errors.New("not sent: Graph is throttling this application (Retry-After); ending work goes first")

// ThrottleStats counts what the gates did since the Client was made.
type ThrottleStats struct {
	// Throttled is the answers that closed a gate (429, or 503 with
	// Retry-After).
	Throttled int
	// HeldBack is the routine calls that were not sent because a gate was
	// closed or ending calls were waiting.
	HeldBack int
	// Waits is how many times an ending call waited for a gate or a place.
	Waits int
	// OverBudget is the ending calls that were not sent because the wait
	// would have exceeded their retry budget or deadline.
	OverBudget int
}

// gate is what the Client's calls know about one Graph quota.
type gate struct {
	mu       sync.Mutex
	until    time.Time     // closed until (the latest Retry-After)
	limit    int           // ending calls in flight at once; 0: no limit
	inflight int           // ending calls in flight
	waiting  int           // ending calls waiting for the gate or a place
	cutAt    time.Time     // when limit was last lowered
	grewAt   time.Time     // when limit was last raised
	wake     chan struct{} // closed (and replaced) when a place frees or the limit changes
	stats    ThrottleStats
}

func newGate() *gate { return &gate{wake: make(chan struct{})} }

// ticket is one admitted attempt.
type ticket struct {
	g      *gate
	ending bool      // holds a place among the ending calls in flight
	sent   time.Time // when it was admitted
}

// throttles reports whether the answer closes the gate: 429 always (the
// quota is the application's), 503 when Graph says how long to wait.
func (f *failure) throttles() bool {
	return !f.token && (f.status == http.StatusTooManyRequests ||
		f.status == http.StatusServiceUnavailable && f.retryAfter > 0)
}

// heldBack is the failure of a call that was not sent.
func heldBack(retryAfter time.Duration, timeout bool) *failure {
	return &failure{raw: errHeldBack, retryAfter: retryAfter, heldBack: true, timeout: timeout}
}

// admit lets an attempt of op through its gate, or says why not. Routine
// calls never wait. Ending calls wait for the gate to open and for a place
// among the ending calls in flight, as long as what is left of their budget
// and of ctx allows. waited is the time spent waiting.
func (c *Client) admit(ctx context.Context, op operation, budget time.Duration) (t ticket, waited time.Duration, refused *failure) {
	g := c.gates[op.quota]
	counted := false
	for {
		now := c.now()
		g.mu.Lock()
		closed := g.until.Sub(now)
		if op.priority == routine {
			if closed > 0 || g.waiting > 0 {
				g.stats.HeldBack++
				g.mu.Unlock()
				return ticket{}, waited, heldBack(max(closed, heldBackRetry), false)
			}
			g.mu.Unlock()
			return ticket{g: g, sent: now}, waited, nil
		}
		if closed <= 0 && (g.limit == 0 || g.inflight < g.limit) {
			g.inflight++
			g.mu.Unlock()
			return ticket{g: g, ending: true, sent: now}, waited, nil
		}
		left := budget - waited
		if dl, ok := ctx.Deadline(); ok {
			left = min(left, dl.Sub(now))
		}
		if closed > left || left <= 0 {
			g.stats.OverBudget++
			g.mu.Unlock()
			return ticket{}, waited, heldBack(max(closed, heldBackRetry), false)
		}
		if !counted {
			g.stats.Waits++
			counted = true
		}
		g.waiting++
		wake := g.wake
		g.mu.Unlock()

		// A wait for the gate counts as the Retry-After it honours (as a
		// wait between attempts does), a wait for a place as it lasted.
		var err error
		if closed > 0 {
			err = c.sleep(ctx, closed)
			waited += closed
		} else {
			err = waitWake(ctx, wake, left)
			waited += c.now().Sub(now)
		}
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
		if err != nil {
			return ticket{}, waited, heldBack(max(closed, heldBackRetry), ctx.Err() != nil)
		}
	}
}

var errWaitOver = errors.New("no place within the budget")

// waitWake waits until wake is closed, d has passed (errWaitOver) or ctx
// ends.
func waitWake(ctx context.Context, wake <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-wake:
		return nil
	case <-t.C:
		return errWaitOver
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release records the answer to an admitted attempt (f nil: success). A
// throttling answer closes the gate until its Retry-After (pause when it
// had none) and, unless the attempt was sent before the last cut (then
// its answer is no news), halves the ending calls allowed in flight.
func (c *Client) release(t ticket, f *failure, pause time.Duration) {
	g := t.g
	if g == nil {
		return
	}
	now := c.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.inflight
	if t.ending {
		g.inflight--
	}
	changed := t.ending
	switch {
	case f != nil && f.throttles():
		g.stats.Throttled++
		ra := f.retryAfter
		if ra <= 0 {
			ra = pause
		}
		if u := now.Add(ra); u.After(g.until) {
			g.until = u
		}
		if !t.sent.Before(g.cutAt) {
			w := n
			if g.limit > 0 {
				w = min(w, g.limit)
			}
			g.limit = max(1, w/2)
			g.cutAt = now
		}
		changed = true
	case f == nil && t.ending && g.limit > 0:
		since := g.cutAt
		if g.until.After(since) {
			since = g.until
		}
		if g.grewAt.After(since) {
			since = g.grewAt
		}
		if now.Sub(since) >= growEvery {
			g.limit++
			g.grewAt = now
			if g.limit > maxWindow {
				g.limit = 0
			}
		}
	}
	if changed {
		close(g.wake)
		g.wake = make(chan struct{})
	}
}

// ThrottleStats sums what the Client's gates did (see ThrottleStats).
func (c *Client) ThrottleStats() ThrottleStats {
	var s ThrottleStats
	for _, g := range c.gates {
		g.mu.Lock()
		s.Throttled += g.stats.Throttled
		s.HeldBack += g.stats.HeldBack
		s.Waits += g.stats.Waits
		s.OverBudget += g.stats.OverBudget
		g.mu.Unlock()
	}
	return s
}

// count updates the gate's stats.
func (g *gate) count(f func(*ThrottleStats)) {
	g.mu.Lock()
	f(&g.stats)
	g.mu.Unlock()
}

// quotaOf is the quota a request URL path draws on.
func quotaOf(path string) quotaScope {
	if strings.Contains(path, "/identityGovernance/") {
		return pimQuota
	}
	return identityQuota
}

// heldBackError is what gateTransport answers instead of sending.
type heldBackError struct{ retryAfter time.Duration }

func (e *heldBackError) Error() string { return errHeldBack.Error() }

// gateTransport wraps the last hop before the network with the gates: a
// request is not sent while its gate is closed, and a throttling answer
// closes the gate the moment it arrives, before the SDK has read it, so
// that no call of another goroutine leaves in between. (admit decides who
// waits and who fails fast; release learns the rest from the answer.)
func (c *Client) gateTransport(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		g := c.gates[quotaOf(req.URL.Path)]
		now := c.now()
		g.mu.Lock()
		closed := g.until.Sub(now)
		g.mu.Unlock()
		if closed > 0 {
			if req.Body != nil {
				_ = req.Body.Close()
			}
			return nil, &heldBackError{retryAfter: closed}
		}
		resp, err := next.RoundTrip(req)
		if err != nil || resp == nil {
			return resp, err
		}
		ra := parseRetryAfter(resp.Header.Get("Retry-After"), now)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable && ra > 0 {
			if ra <= 0 {
				ra = c.opts.BaseBackoff
			}
			until := c.now().Add(ra)
			g.mu.Lock()
			if until.After(g.until) {
				g.until = until
			}
			g.mu.Unlock()
		}
		return resp, nil
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
