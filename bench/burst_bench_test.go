package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/graph"
	"github.com/jitaccess/jitaccess/internal/graphsim"
	"github.com/jitaccess/jitaccess/internal/memstore"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// Issue 14: a burst of ends under Graph's identity write quota.
//
// BenchmarkBurstOfEnds activates JIT_BENCH_BURST grants (default 2,000;
// membership mode, sessions revoked at the end) through the broker, the
// real Graph client and graphsim over loopback, turns on Microsoft's
// documented identity and access quota (graphsim.DocumentedQuota), and then
// ends them all at once, driven as production drives ends:
//
//   - sweep: the ExpirySweep timer alone (broker.Sweep every
//     JIT_BENCH_BURST_SWEEP_SECONDS, default 60 as JIT_SWEEP_SCHEDULE's
//     default, on the multiples of the interval; a run that overruns its
//     tick delays the next to the following tick);
//   - events: the scheduled jit.access.expire messages all firing together,
//     delivered 8 at a time (host.json serviceBus.maxConcurrentCalls), a
//     transient failure redelivered as Service Bus and the handler do
//     (patience from the second delivery, dead-letter after 10), with the
//     sweep timer running beside them.
//
// The store is memstore: Table Storage's cost is measured elsewhere
// (BENCHMARKS.md); here the quota is the bottleneck by two orders of
// magnitude, and Azurite on the same two vCPUs would only add noise.
//
// JIT_BENCH_BURST_BUCKET says how much of the application's write quota is
// left when the ends start: "spent" (default; the burst comes after other
// work used the quota up: a reconciliation after an outage, the morning's
// activations; the floor is then N × writes per end ÷ the refill rate, the
// issue's formula) or "full" (a quiet tenant: the bucket's 3,000 writes go
// first). JIT_BENCH_BURST_DRIVERS picks the drivers (default "sweep,events").
func BenchmarkBurstOfEnds(b *testing.B) {
	n := burstGrants()
	for _, drv := range burstDrivers(b) {
		b.Run(drv, func(b *testing.B) {
			for range b.N {
				runBurst(b, n, drv, burstBucket(b))
			}
		})
	}
}

func burstGrants() int {
	if n, err := strconv.Atoi(os.Getenv("JIT_BENCH_BURST")); err == nil && n > 0 {
		return n
	}
	return 2000
}

func burstDrivers(b *testing.B) []string {
	spec := os.Getenv("JIT_BENCH_BURST_DRIVERS")
	if spec == "" {
		spec = "sweep,events"
	}
	var out []string
	for _, d := range strings.Split(spec, ",") {
		switch d = strings.TrimSpace(d); d {
		case "sweep", "events":
			out = append(out, d)
		default:
			b.Fatalf("JIT_BENCH_BURST_DRIVERS=%q: want sweep and/or events", spec)
		}
	}
	return out
}

func burstBucket(b *testing.B) string {
	switch v := os.Getenv("JIT_BENCH_BURST_BUCKET"); v {
	case "", "spent":
		return "spent"
	case "full":
		return "full"
	default:
		b.Fatalf("JIT_BENCH_BURST_BUCKET=%q: want spent or full", v)
	}
	return ""
}

func burstSweepInterval() time.Duration {
	if n, err := strconv.Atoi(os.Getenv("JIT_BENCH_BURST_SWEEP_SECONDS")); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return time.Minute
}

// shiftClock is the real clock moved on by a settable offset: the grants
// are activated now and all end when the offset jumps past their endsAt.
type shiftClock struct{ off atomic.Int64 }

func (c *shiftClock) Now() time.Time {
	return time.Now().UTC().Add(time.Duration(c.off.Load()))
}

// exchange is one request of the broker's Graph client, as its transport
// saw it.
type burstExchange struct {
	sent, recv time.Time
	status     int
	retryAfter time.Duration
}

type burstRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	ex   []burstExchange
}

func (r *burstRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	x := burstExchange{sent: time.Now()}
	resp, err := r.next.RoundTrip(req)
	x.recv = time.Now()
	if resp != nil {
		x.status = resp.StatusCode
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			x.retryAfter = time.Duration(s) * time.Second
		}
	}
	r.mu.Lock()
	r.ex = append(r.ex, x)
	r.mu.Unlock()
	return resp, err
}

// sentWhileClosed counts the requests that left while a Retry-After the
// client had received was still running, and the 429s received.
func (r *burstRecorder) sentWhileClosed() (sent, throttled int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	type window struct{ from, to time.Time }
	var ws []window
	for _, x := range r.ex {
		if x.status == http.StatusTooManyRequests || x.status == http.StatusServiceUnavailable && x.retryAfter > 0 {
			throttled++
			ws = append(ws, window{x.recv, x.recv.Add(x.retryAfter)})
		}
	}
	for _, x := range r.ex {
		for _, w := range ws {
			if !x.sent.Before(w.from) && x.sent.Before(w.to) {
				sent++
				break
			}
		}
	}
	return sent, throttled
}

func runBurst(b *testing.B, n int, driver, bucket string) {
	b.StopTimer()
	ctx := ctxTimeout(b, 60*time.Minute)
	ten := newTenant(b, n)
	tenantUsers := n + 11 // the seeded tenant's 11 users (internal/seed)
	q := graphsim.DocumentedQuota(tenantUsers)

	rec := &burstRecorder{next: http.DefaultTransport.(*http.Transport).Clone()}
	// The production client: default retries (3) and budget (30 s).
	dir, err := graph.New(ten.cred, graph.Options{BaseURL: ten.sim.BaseURL(), HTTPClient: &http.Client{Transport: rec}})
	if err != nil {
		b.Fatal(err)
	}
	clk := &shiftClock{}
	store := memstore.New(memstore.WithClock(clk.Now))
	opts := broker.Options{Logger: quietLogger(), PIM: dir, Members: dir,
		ReconcileMaxGraphCalls: 20, // config.DefaultReconcileMaxGraphCalls: drift reconciliation on, as in production
		SelfLookup: func(ctx context.Context) (broker.Self, error) {
			s, err := dir.Self(ctx)
			return broker.Self{AppID: s.AppID, ObjectID: s.ObjectID}, err
		}}
	brk := broker.New(store, dir, benchProfiles(b), clk, opts)

	// Activate n grants (auto-approved, one hour), quota off.
	run := time.Now().UnixNano()
	ids := make([]string, n)
	bodies := make([][]byte, n)
	for i := range n {
		ids[i] = fmt.Sprintf("burst-%d-%d", run, i)
		bodies[i] = requested(b, ids[i], ten.users[i], "aks-admin-oncall", "PT1H")
	}
	setup := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var setupErr atomic.Value
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || setupErr.Load() != nil {
					return
				}
				if err := brk.HandleEvent(ctx, bodies[i]); err != nil {
					setupErr.Store(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := setupErr.Load(); err != nil {
		b.Fatalf("activating: %v", err)
	}
	var lastEnd time.Time
	for i, id := range ids {
		r, err := store.GetRequest(ctx, id)
		if err != nil || r.State != access.Active || !ten.sim.IsDirectMember(seed.GroupAKSAdmin, ten.users[i]) {
			b.Fatalf("grant %d not active: %+v %v", i, r, err)
		}
		if r.EndsAt.After(lastEnd) {
			lastEnd = r.EndsAt
		}
	}
	b.Logf("%d grants activated in %v", n, time.Since(setup).Round(time.Millisecond))

	// The quota; then, for "spent", another instance of the app (its own
	// Client, so its gate tells the broker's nothing) spends the write
	// bucket until Graph says 429.
	quotaOn := time.Now()
	ten.sim.SetQuota(q)
	if bucket == "spent" {
		spendWrites(b, ctx, ten)
	}

	// All end now: the broker's clock moves past every endsAt.
	callsFrom := time.Now()
	iv := burstSweepInterval()
	// The ends start now, on a tick of the sweep timer.
	t0 := time.Now()
	clk.off.Store(int64(lastEnd.Sub(time.Now().UTC()) + time.Millisecond))
	level0 := writeLevel(q, quotaOn, ten.sim.Calls(), t0)
	b.StartTimer()

	stop := make(chan struct{})
	dctx, cancelDrivers := context.WithCancel(ctx)
	defer cancelDrivers()
	var drivers sync.WaitGroup
	var sweeps, sweepErrs atomic.Int64
	drivers.Add(1)
	go func() { // the ExpirySweep timer
		defer drivers.Done()
		tick := t0
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Until(tick)):
			}
			sctx, cancel := context.WithTimeout(dctx, 5*time.Minute) // host.json functionTimeout
			if err := brk.Sweep(sctx); err != nil {
				sweepErrs.Add(1)
			}
			cancel()
			sweeps.Add(1)
			for !tick.After(time.Now()) {
				tick = tick.Add(iv)
			}
		}
	}()
	var deadLettered, redelivered atomic.Int64
	if driver == "events" {
		type msg struct {
			body  []byte
			count int
		}
		queue := make(chan msg, n)
		for _, id := range ids {
			queue <- msg{body: expire(b, id), count: 1}
		}
		var left atomic.Int64
		left.Store(int64(n))
		for range 8 {
			drivers.Add(1)
			go func() {
				defer drivers.Done()
				for {
					var m msg
					select {
					case <-stop:
						return
					case m = <-queue:
					}
					err := brk.HandleEvent(dctx, m.body)
					// handlers.accessRequests: from the second delivery, a
					// transient failure is retried in the invocation for
					// JIT_REDELIVERY_PATIENCE (default 2 min) with backoff.
					if fault.Transient(err) && m.count >= 2 {
						deadline := time.Now().Add(2 * time.Minute)
						for wait := time.Second; fault.Transient(err) && time.Now().Add(wait).Before(deadline); wait = min(2*wait, 15*time.Second) {
							select {
							case <-stop:
								return
							case <-time.After(wait):
							}
							err = brk.HandleEvent(dctx, m.body)
						}
					}
					switch {
					case err == nil || !fault.Transient(err):
						left.Add(-1)
					case m.count >= 10: // maxDeliveryCount: the sweep is left
						deadLettered.Add(1)
						left.Add(-1)
					default:
						redelivered.Add(1)
						queue <- msg{m.body, m.count + 1}
					}
				}
			}()
		}
	}

	// Until every user is out of the group and revoked (or a deadline far
	// past the floor).
	writesPerEnd := 2.0
	rate := float64(q.Writes) / q.WriteWindow.Seconds()
	floor := time.Duration(float64(n) * writesPerEnd / rate * float64(time.Second))
	deadline := t0.Add(3*floor + 2*iv + 2*time.Minute)
	users := ten.users[:n]
	for {
		done := 0
		for _, u := range users {
			if !ten.sim.IsDirectMember(seed.GroupAKSAdmin, u) && ten.sim.RevokeCount(u) > 0 {
				done++
			}
		}
		if done == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	b.StopTimer()
	close(stop)
	cancelDrivers()
	drivers.Wait()

	// The call log.
	type firsts struct {
		removed, revoked       time.Time
		removals, revocations  int // successful
		notMember, revokeCalls int
	}
	per := map[string]*firsts{}
	for _, u := range users {
		per[u] = &firsts{}
	}
	var lastRevoke time.Time
	var throttledAll, writeCalls, readCalls int
	for _, c := range ten.sim.Calls() {
		if c.Time.Before(callsFrom) {
			continue
		}
		if c.Status == http.StatusTooManyRequests {
			throttledAll++
		}
		seg := strings.Split(strings.Trim(c.Path, "/"), "/")
		switch {
		case c.Method == "DELETE" && len(seg) == 5 && seg[0] == "groups":
			writeCalls++
			if f := per[strings.ToLower(seg[3])]; f != nil {
				switch c.Status {
				case http.StatusNoContent:
					f.removals++
					if f.removed.IsZero() {
						f.removed = c.Time
					}
				case http.StatusNotFound:
					f.notMember++
				}
			}
		case c.Method == "POST" && len(seg) == 3 && seg[2] == "revokeSignInSessions":
			writeCalls++
			if f := per[strings.ToLower(seg[1])]; f != nil {
				f.revokeCalls++
				if c.Status == http.StatusOK {
					f.revocations++
					if f.revoked.IsZero() {
						f.revoked = c.Time
					}
					if c.Time.After(lastRevoke) {
						lastRevoke = c.Time
					}
				}
			}
		case c.Method == "GET":
			readCalls++
		default:
			if c.WriteUnits > 0 {
				writeCalls++
			}
		}
	}
	var lost, misordered, dupRemovals, dupRevocations, notMember int
	var lostIDs, dupIDs []string
	for i, u := range users {
		f := per[u]
		member := ten.sim.IsDirectMember(seed.GroupAKSAdmin, u)
		r, err := store.GetRequest(ctx, ids[i])
		ended := err == nil && r.State == access.Expired
		if member || f.revocations == 0 || !ended {
			lost++
			if len(lostIDs) < 5 {
				state := access.State("?")
				if r != nil {
					state = r.State
				}
				lostIDs = append(lostIDs, fmt.Sprintf("%s (member %v, revoked %d, state %s)", ids[i], member, f.revocations, state))
			}
		}
		if !f.revoked.IsZero() && (f.removed.IsZero() || f.revoked.Before(f.removed)) {
			misordered++
		}
		if f.removals > 1 {
			dupRemovals += f.removals - 1
		}
		if f.revocations > 1 {
			dupRevocations += f.revocations - 1
			if len(dupIDs) < 3 {
				var h []string
				if r != nil {
					for _, e := range r.History {
						h = append(h, e.At.Sub(clk.Now().Add(-time.Since(t0))).Round(time.Millisecond).String()+" "+e.Type)
					}
				}
				var cs []string
				for _, c := range ten.sim.Calls() {
					if strings.Contains(c.Path, u) && !c.Time.Before(callsFrom) {
						cs = append(cs, fmt.Sprintf("%v %s %s %d", c.Time.Sub(t0).Round(time.Millisecond), c.Method, c.Path[len(c.Path)-22:], c.Status))
					}
				}
				dupIDs = append(dupIDs, fmt.Sprintf("%s: calls %q; history %q", ids[i], cs, h))
			}
		}
		notMember += f.notMember
	}
	sentClosed, throttled := rec.sentWhileClosed()
	stats := dir.ThrottleStats()

	elapsed := lastRevoke.Sub(t0)
	// The floor: the quota's refill has to supply every write beyond what
	// the bucket held when the ends started.
	adj := time.Duration(math.Max(0, float64(n)*writesPerEnd-level0) / rate * float64(time.Second))
	b.ReportMetric(elapsed.Seconds(), "s-to-last-revocation")
	b.ReportMetric(floor.Seconds(), "floor-s")
	b.ReportMetric(elapsed.Seconds()/floor.Seconds(), "x-floor")
	if adj > 0 {
		b.ReportMetric(elapsed.Seconds()/adj.Seconds(), "x-bucket-floor")
	}
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(float64(misordered), "revoked-before-removal")
	b.ReportMetric(float64(dupRemovals+dupRevocations), "duplicates")
	b.ReportMetric(float64(throttled), "429s")
	b.ReportMetric(float64(sentClosed), "sent-while-closed")
	b.Logf("%s, bucket %s: %d grants in a tenant of %d users; quota %d writes per %v (%.0f/s) per app+tenant, %d per %v per tenant, %d resource units per %v (graphsim.DocumentedQuota)",
		driver, bucket, n, tenantUsers, q.Writes, q.WriteWindow, rate, q.TenantWrites, q.TenantWriteWindow, q.ResourceUnits, q.ResourceWindow)
	b.Logf("first end → last revocation %v; floor N×%.0f÷%.0f/s = %v (×%.2f); with the bucket's %.0f writes at the start: %v (×%.2f)",
		elapsed.Round(time.Millisecond), writesPerEnd, rate, floor, elapsed.Seconds()/floor.Seconds(), level0, adj.Round(time.Millisecond), elapsed.Seconds()/adj.Seconds())
	b.Logf("lost %d, revoked before removal %d, duplicate removals %d (404 'not a member' answers %d), duplicate revocations %d; lost: %v",
		lost, misordered, dupRemovals, notMember, dupRevocations, lostIDs)
	b.Logf("Graph: %d write calls (%.2f per end; %d needed), %d reads; 429s: %d to the broker's client (graphsim: %d); requests sent while a Retry-After ran: %d; gate: %+v",
		writeCalls, float64(writeCalls)/float64(n), 2*n, readCalls, throttled, throttledAll, sentClosed, stats)
	b.Logf("sweeps %d (%d with errors) every %v; events redelivered %d, dead-lettered %d", sweeps.Load(), sweepErrs.Load(), iv, redelivered.Load(), deadLettered.Load())
	for _, d := range dupIDs {
		b.Logf("duplicate: %s", d)
	}
	if lost > 0 || misordered > 0 || dupRemovals > 0 || dupRevocations > 0 {
		b.Errorf("lost %d, misordered %d, duplicates %d/%d", lost, misordered, dupRemovals, dupRevocations)
	}
}

// spendWrites makes the application's write calls (revokeSignInSessions of
// a user outside the benchmark, 8 at a time, through a Client of its own)
// until Graph throttles them.
func spendWrites(b *testing.B, ctx context.Context, ten *tenant) {
	c, err := graph.New(ten.cred, graph.Options{BaseURL: ten.sim.BaseURL(), MaxRetries: -1})
	if err != nil {
		b.Fatal(err)
	}
	var throttled atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	var sent atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !throttled.Load() {
				sent.Add(1)
				if err := c.RevokeSessions(ctx, seed.UserX01); err != nil {
					if !fault.Transient(err) {
						b.Errorf("spending: %v", err)
					}
					throttled.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	b.Logf("write quota spent: %d calls in %v", sent.Load(), time.Since(start).Round(time.Millisecond))
}

// writeLevel replays graphsim's application+tenant write bucket (full at
// SetQuota, refilled continuously, every write call charged, throttled or
// not: graphsim/quota.go) over the recorded calls up to at.
func writeLevel(q graphsim.Quota, from time.Time, calls []graphsim.Call, at time.Time) float64 {
	size := float64(q.Writes)
	rate := size / q.WriteWindow.Seconds()
	level, t := size, from
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].Time.Before(calls[j].Time) })
	for _, c := range calls {
		if c.WriteUnits == 0 || c.Time.Before(from) || c.Time.After(at) {
			continue
		}
		level = math.Min(size, level+c.Time.Sub(t).Seconds()*rate)
		t = c.Time
		level -= float64(c.WriteUnits)
	}
	return math.Min(size, level+at.Sub(t).Seconds()*rate)
}
