package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/handlers"
	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/cli"
	"github.com/jitaccess/jitaccess/internal/devhost"
	"github.com/jitaccess/jitaccess/internal/memstore"
	"github.com/jitaccess/jitaccess/internal/servicebus"
)

// hostScheduler schedules jit.access.expire on the host stand-in's queue, as
// Service Bus scheduled messages do in Azure (the sandbox's devhostScheduler).
type hostScheduler struct{ host *devhost.Host }

func (d *hostScheduler) ScheduleExpire(_ context.Context, requestID string, at time.Time) (int64, string, error) {
	if d.host == nil {
		return 0, "", fmt.Errorf("host not started")
	}
	id := servicebus.NewMessageID()
	body, err := cli.BuildEvent(id, access.TypeExpire, servicebus.Source, time.Now(), map[string]string{"requestId": requestID})
	if err != nil {
		return 0, "", err
	}
	return d.host.Schedule(body, at), id, nil
}

func (d *hostScheduler) CancelExpire(_ context.Context, seq int64) error {
	if d.host != nil {
		d.host.CancelScheduled(seq)
	}
	return nil
}

// sandboxRig is the sandbox's wiring: handler (handlers.New) over HTTP,
// broker, in-memory store, real Graph client against the simulator, and the
// Functions host stand-in delivering queue messages and firing the sweep.
type sandboxRig struct {
	ten   *tenant
	store *memstore.Store
	host  *devhost.Host
}

func newSandboxRig(b *testing.B, nUsers int, scheduled bool, sweepCron string) *sandboxRig {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ten := newTenant(b, nUsers)
	store := memstore.New()
	sched := &hostScheduler{}
	opts := broker.Options{Logger: quietLogger()}
	if scheduled {
		opts.Scheduler = sched
	}
	brk := broker.New(store, ten.dir, benchProfiles(b), broker.SystemClock{}, opts)
	h := handlers.New(handlers.Deps{
		Events: brk, Sweeper: brk, Store: store, Logger: quietLogger(),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = handlers.ServeListener(ctx, ln, h) }()
	host, err := devhost.New(devhost.Options{
		Dir:        repoRoot(),
		Settings:   map[string]string{"JIT_SWEEP_SCHEDULE": sweepCron},
		HandlerURL: "http://" + ln.Addr().String(),
		Addr:       "127.0.0.1:0",
		Logger:     quietLogger(),
		Client:     &http.Client{Timeout: 2 * time.Minute},
	})
	if err != nil {
		b.Fatal(err)
	}
	sched.host = host
	if err := host.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); host.Wait() })
	return &sandboxRig{ten: ten, store: store, host: host}
}

// lagGrants is JIT_BENCH_LAG_GRANTS (default 200).
func lagGrants() int {
	if n, err := strconv.Atoi(os.Getenv("JIT_BENCH_LAG_GRANTS")); err == nil && n > 0 {
		return n
	}
	return 200
}

// sweepSeconds is JIT_BENCH_SWEEP_SECONDS (default 10): the sweep interval
// of the sweep-only run.
func sweepSeconds() int {
	if n, err := strconv.Atoi(os.Getenv("JIT_BENCH_SWEEP_SECONDS")); err == nil && n > 0 && n < 60 {
		return n
	}
	return 10
}

// measureLag grants access to n users (auto-approved profile, duration d,
// all requested at once through the host's queue), then measures for each
// grant the time from its endsAt to the revokeSignInSessions call the Graph
// simulator received for the user.
//
// The requests are sent evenly over spread (0: all at once, the burst case).
func measureLag(b *testing.B, rig *sandboxRig, n int, d, spread, wait time.Duration) []time.Duration {
	b.Helper()
	ctx := ctxTimeout(b, 5*time.Minute)
	run := time.Now().UnixNano()
	ids := make([]string, n)
	start := time.Now()
	for i := range n {
		if spread > 0 {
			time.Sleep(time.Until(start.Add(spread * time.Duration(i) / time.Duration(n))))
		}
		ids[i] = fmt.Sprintf("lag-%d-%d", run, i)
		rig.host.Enqueue(requested(b, ids[i], rig.ten.users[i], "aks-admin-oncall", fmt.Sprintf("PT%dS", int(d.Seconds()))))
	}
	ends := map[string]time.Time{} // user id -> endsAt
	deadline := start.Add(d + spread + 30*time.Second)
	for len(ends) < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d grants activated", len(ends), n)
		}
		for i, id := range ids {
			if _, ok := ends[rig.ten.users[i]]; ok {
				continue
			}
			if r, err := rig.store.GetRequest(ctx, id); err == nil && !r.EndsAt.IsZero() {
				ends[rig.ten.users[i]] = r.EndsAt
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	var last time.Time
	for _, e := range ends {
		if e.After(last) {
			last = e
		}
	}
	lags := map[string]time.Duration{}
	stop := last.Add(wait)
	for len(lags) < n && time.Now().Before(stop) {
		time.Sleep(100 * time.Millisecond)
		for _, c := range rig.ten.sim.CallsTo("POST", "/revokeSignInSessions") {
			seg := strings.Split(strings.Trim(c.Path, "/"), "/")
			if len(seg) != 3 || c.Status != http.StatusNoContent && c.Status != http.StatusOK {
				continue
			}
			u := strings.ToLower(seg[1])
			e, ok := ends[u]
			if _, seen := lags[u]; ok && !seen {
				lags[u] = c.Time.Sub(e)
			}
		}
	}
	if len(lags) < n {
		b.Fatalf("only %d of %d sessions revoked within %v of the last endsAt", len(lags), n, wait)
	}
	out := make([]time.Duration, 0, n)
	for _, l := range lags {
		out = append(out, l)
	}
	return out
}

func reportLag(b *testing.B, lags []time.Duration) {
	p50, p99, max := percentile(lags, 0.50), percentile(lags, 0.99), percentile(lags, 1)
	b.ReportMetric(p50.Seconds(), "p50-lag-s")
	b.ReportMetric(p99.Seconds(), "p99-lag-s")
	b.ReportMetric(max.Seconds(), "max-lag-s")
	b.Logf("%d grants: endsAt → revokeSignInSessions p50 %v, p99 %v, max %v", len(lags), p50, p99, max)
}

// BenchmarkRevocationLagScheduled: expiry by scheduled message (Service Bus
// in Azure, the host stand-in's scheduled queue here), the sweep off.
func BenchmarkRevocationLagScheduled(b *testing.B) {
	n := lagGrants()
	rig := newSandboxRig(b, n*b.N, true, "0 0 0 1 1 *")
	for i := 0; i < b.N; i++ {
		reportLag(b, measureLag(b, rig, n, 15*time.Second, 0, 60*time.Second))
	}
}

// BenchmarkRevocationLagSweepOnly: no Service Bus; the sweep timer alone
// ends grants (every JIT_BENCH_SWEEP_SECONDS, on the wall-clock multiples as
// the Functions timer does).
func BenchmarkRevocationLagSweepOnly(b *testing.B) {
	n := lagGrants()
	iv := sweepSeconds()
	rig := newSandboxRig(b, n, false, fmt.Sprintf("*/%d * * * * *", iv))
	for i := 0; i < b.N; i++ {
		// endsAt spread evenly over two sweep intervals: every phase of
		// the timer is sampled.
		spread := 2 * time.Duration(iv) * time.Second
		lags := measureLag(b, rig, n, 15*time.Second, spread, time.Duration(iv)*time.Second+60*time.Second)
		b.ReportMetric(float64(iv), "sweep-interval-s")
		reportLag(b, lags)
	}
}
