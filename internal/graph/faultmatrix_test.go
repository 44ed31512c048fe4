package graph

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/graphsim"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// callSite is one Graph operation (docs/design.md, Operations) as the adapter makes it.
type callSite struct {
	name  string
	match string // graphsim fault rule match
	write bool
	setup func(t *testing.T, e *env)
	call  func(ctx context.Context, e *env) error
	// done reports whether the operation's effect is there (writes) or its
	// answer was right (reads; then call checks the answer and done is nil).
	done func(e *env) bool
}

func callSites() []callSite {
	pimPolicy := func(t *testing.T, e *env) {
		e.sim.SetPIMPolicy(seed.GroupAKSOps, graphsim.PIMPolicy{MaxDuration: 8 * time.Hour})
	}
	pimAssigned := func(t *testing.T, e *env) {
		pimPolicy(t, e)
		if _, _, err := e.c.AssignPIM(ctxT(t), seed.GroupAKSOps, seed.UserN01, time.Hour, "INC-1"); err != nil {
			t.Fatalf("setup assign: %v", err)
		}
	}
	return []callSite{
		{name: "LookupUser", match: "GET /users/", call: func(ctx context.Context, e *env) error {
			u, err := e.c.LookupUser(ctx, seed.UPN("n01"))
			if err == nil && u.ID != seed.UserN01 {
				return fmt.Errorf("wrong user %+v", u)
			}
			return err
		}},
		{name: "MemberOfAny", match: "POST /checkMemberGroups", call: func(ctx context.Context, e *env) error {
			got, err := e.c.MemberOfAny(ctx, seed.UserN01, []string{seed.GroupAKSDefault, seed.GroupAKSApprovers})
			if err == nil && !slices.Equal(got, []string{seed.GroupAKSDefault}) {
				return fmt.Errorf("wrong groups %v", got)
			}
			return err
		}},
		{name: "AddMember", match: "POST /members/$ref", write: true,
			call: func(ctx context.Context, e *env) error {
				_, err := e.c.AddMember(ctx, seed.GroupAKSAdmin, seed.UserN01)
				return err
			},
			done: func(e *env) bool { return e.sim.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) }},
		{name: "RemoveMember", match: "DELETE /members/", write: true,
			setup: func(t *testing.T, e *env) { e.sim.AddMember(seed.GroupAKSAdmin, seed.UserN01) },
			call: func(ctx context.Context, e *env) error {
				_, err := e.c.RemoveMember(ctx, seed.GroupAKSAdmin, seed.UserN01)
				return err
			},
			done: func(e *env) bool { return !e.sim.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) }},
		{name: "RevokeSessions", match: "POST /revokeSignInSessions", write: true,
			call: func(ctx context.Context, e *env) error { return e.c.RevokeSessions(ctx, seed.UserN01) },
			done: func(e *env) bool { return e.sim.RevokeCount(seed.UserN01) > 0 }},
		{name: "DirectMembers", match: "GET /members",
			setup: func(t *testing.T, e *env) { e.sim.AddMember(seed.GroupAKSAdmin, seed.UserN01) },
			call: func(ctx context.Context, e *env) error {
				got, err := e.c.DirectMembers(ctx, seed.GroupAKSAdmin)
				if err == nil && !slices.Contains(got, seed.UserN01) {
					return fmt.Errorf("member missing from %v", got)
				}
				return err
			}},
		{name: "AssignPIM", match: "POST /assignmentScheduleRequests", write: true, setup: pimPolicy,
			call: func(ctx context.Context, e *env) error {
				_, _, err := e.c.AssignPIM(ctx, seed.GroupAKSOps, seed.UserN01, time.Hour, "INC-1")
				return err
			},
			done: func(e *env) bool { return e.sim.IsDirectMember(seed.GroupAKSOps, seed.UserN01) }},
		{name: "RemovePIM", match: "POST /assignmentScheduleRequests", write: true, setup: pimAssigned,
			call: func(ctx context.Context, e *env) error { return e.c.RemovePIM(ctx, seed.GroupAKSOps, seed.UserN01) },
			done: func(e *env) bool { return !e.sim.IsDirectMember(seed.GroupAKSOps, seed.UserN01) }},
		{name: "PIMEndTime", match: "GET /assignmentScheduleInstances", setup: pimAssigned,
			call: func(ctx context.Context, e *env) error {
				_, ok, err := e.c.PIMEndTime(ctx, seed.GroupAKSOps, seed.UserN01)
				if err == nil && !ok {
					return fmt.Errorf("assignment not found")
				}
				return err
			}},
	}
}

// graphFault is one way Graph can fail.
type graphFault struct {
	name       string
	persistent bool // fails every attempt until cleared
	permanent  bool // the caller must see a permanent failure
	inject     func(e *env, match string)
}

func graphFaults() []graphFault {
	once := func(status int, retryAfter time.Duration) func(e *env, match string) {
		return func(e *env, match string) { e.sim.FailNext(match, 1, status, retryAfter) }
	}
	return []graphFault{
		{name: "429 Retry-After 2s", inject: once(429, 2*time.Second)},
		{name: "500", inject: once(500, 0)},
		{name: "503", inject: once(503, 0)},
		{name: "504", inject: once(504, 0)},
		{name: "reset", inject: func(e *env, m string) { e.sim.ResetNext(m, 1) }},
		{name: "timeout", inject: func(e *env, m string) { e.sim.Delay(m, 5*time.Second) }, persistent: true},
		{name: "503 always", inject: func(e *env, m string) { e.sim.FailNext(m, -1, 503, 0) }, persistent: true},
		{name: "429 always", inject: func(e *env, m string) { e.sim.FailNext(m, -1, 429, time.Second) }, persistent: true},
		{name: "403", inject: func(e *env, m string) { e.sim.FailNext(m, 1, 403, 0) }, persistent: true, permanent: true},
	}
}

// TestFaultAtEveryCallSite injects every fault kind at every Graph call
// site. A transient fault is either absorbed by the adapter's bounded
// retries (reads, and writes whose failure says they were not applied: 429,
// 503, resets before an answer; a 429 only for ending work, routine work
// leaves the quota to it: throttle.go) or handed to the caller as fault.ErrTransient
// (then the host redelivers: the call is made again and must complete, with
// the effect exactly once — writes are idempotent). A permanent fault is
// fault.ErrPermanent. In no case is an effect half applied: after a failed
// write, the effect is either absent, or present and the repeat reports it
// as already done.
func TestFaultAtEveryCallSite(t *testing.T) {
	var mu sync.Mutex
	table := map[string]map[string]string{}
	for _, site := range callSites() {
		for _, f := range graphFaults() {
			t.Run(site.name+"/"+f.name, func(t *testing.T) {
				// Attempts are cut at 500 ms only where a timeout is the
				// fault; elsewhere a loaded machine must not cut them.
				attempt := 20 * time.Second
				if f.name == "timeout" {
					attempt = 500 * time.Millisecond
				}
				e := newEnv(t, graphsim.Options{}, Options{MaxRetries: 2, AttemptTimeout: attempt})
				e.warm(t)
				var waits []time.Duration
				var wmu sync.Mutex
				// Record waits, do not wait: the Client's clock moves on
				// instead (the throttle gate reads it).
				var skipped atomic.Int64
				e.c.now = func() time.Time { return time.Now().Add(time.Duration(skipped.Load())) }
				e.c.sleep = func(ctx context.Context, d time.Duration) error {
					wmu.Lock()
					waits = append(waits, d)
					wmu.Unlock()
					skipped.Add(int64(d))
					return ctx.Err()
				}
				if site.setup != nil {
					site.setup(t, e)
				}
				e.sim.ResetCalls()
				f.inject(e, site.match)
				err := site.call(ctxT(t), e)
				attempts := e.sim.CountCalls("", "")
				var outcome string
				switch {
				case err == nil && f.persistent:
					t.Fatalf("a persistent %s was not reported (%d attempts)", f.name, attempts)
				case err == nil:
					outcome = fmt.Sprintf("absorbed (%d attempts)", attempts)
				case f.permanent:
					if !fault.Permanent(err) {
						t.Fatalf("want permanent, got %v", err)
					}
					outcome = "permanent"
				case !fault.Transient(err):
					t.Fatalf("want transient, got %v", err)
				default:
					outcome = fmt.Sprintf("transient after %d attempts", attempts)
				}
				if strings.HasPrefix(f.name, "429") {
					wmu.Lock()
					// A wait for the gate runs from the answer's arrival:
					// a hair under the Retry-After by the time it starts.
					honoured := slices.ContainsFunc(waits, func(d time.Duration) bool { return d >= 900*time.Millisecond })
					wmu.Unlock()
					if attempts > 1 && !honoured {
						t.Fatalf("Retry-After not honoured: waits %v", waits)
					}
				}
				// A write refused every time must have no effect. (After a
				// timeout the effect may or may not be there: the repeat
				// below must then complete it exactly once.)
				if err != nil && f.persistent && f.name != "timeout" && site.done != nil && site.done(e) {
					t.Fatalf("failed with %s but the effect is there", f.name)
				}
				// The host redelivers: the same call again, faults gone.
				e.sim.ClearFaults()
				e.c.opts.AttemptTimeout = 20 * time.Second
				if err != nil {
					// The host comes back after the Retry-After it was given.
					var fe *fault.Error
					if errors.As(err, &fe) {
						skipped.Add(int64(fe.RetryAfter))
					}
					if err2 := site.call(ctxT(t), e); err2 != nil {
						t.Fatalf("redelivery after %s: %v", f.name, err2)
					}
					if f.permanent {
						outcome += " (recorded as failed; ok once the cause is fixed)"
					} else {
						outcome += " → redelivery ok"
					}
				}
				if site.done != nil && !site.done(e) {
					t.Fatalf("effect missing after %s", outcome)
				}
				mu.Lock()
				if table[site.name] == nil {
					table[site.name] = map[string]string{}
				}
				table[site.name][f.name] = outcome
				mu.Unlock()
			})
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		var sites []string
		for s := range table {
			sites = append(sites, s)
		}
		sort.Strings(sites)
		var b strings.Builder
		n := 0
		for _, s := range sites {
			for _, f := range graphFaults() {
				if o, ok := table[s][f.name]; ok {
					fmt.Fprintf(&b, "| %s | %s | %s |\n", s, f.name, o)
					n++
				}
			}
		}
		t.Logf("%d call site × fault cases:\n%s", n, b.String())
	})
}
