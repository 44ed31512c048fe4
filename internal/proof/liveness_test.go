package proof

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/memstore"
	"github.com/jitaccess/jitaccess/internal/seed"
	"github.com/jitaccess/jitaccess/internal/storetest"
)

// Liveness (docs/design.md, real directory rule 4): no sender input, storage or Graph outage,
// throttling or stored-data problem keeps a membership past its end longer
// than the outage or throttling lasts plus one sweep interval.
//
// Each run is a random interleaving, on simulated time, of grants (each
// requested, approved, and given its scheduled expire event at its end, as
// Service Bus would: redelivered while it fails, dead-lettered after 10
// deliveries), floods of invalid and refused events and forged audit
// records aimed at them, storage outages (every store operation fails) and
// Graph throttling (every Graph call fails), with the sweep every minute
// and a directory whose reads lag. After every step the checker asserts:
// every grant whose end, plus the outage and throttling it met, plus one
// sweep interval (and WorkGrace, for a claim whose invocation could not give
// it up during an outage), has passed, has its member gone from the group
// and its sessions revoked.

const (
	livenessStep  = 5 * time.Second
	sweepInterval = time.Minute
)

type window struct{ from, to time.Time }

type windows []window

func (w window) String() string {
	return w.from.Format(time.TimeOnly) + "–" + w.to.Format(time.TimeOnly)
}

func (ws windows) active(t time.Time) bool {
	for _, w := range ws {
		if !t.Before(w.from) && t.Before(w.to) {
			return true
		}
	}
	return false
}

// overlap is how much of [from, to) the windows cover.
func (ws windows) overlap(from, to time.Time) time.Duration {
	var d time.Duration
	for _, w := range ws {
		a, b := max(from.UnixNano(), w.from.UnixNano()), min(to.UnixNano(), w.to.UnixNano())
		if b > a {
			d += time.Duration(b - a)
		}
	}
	return d
}

// delivery is a message in the simulated queue.
type delivery struct {
	at    time.Time
	body  []byte
	count int
}

type livenessRun struct {
	t        *testing.T
	r        *rand.Rand
	clock    *brokertest.Clock
	store    *storetest.Faulty
	dir      *brokertest.Dir
	b        *broker.Broker
	outages  windows
	throttle windows
	queue    []*delivery
	grants   map[string]string // request id → requester
	ends     map[string]time.Time
	dead     int
	stats    struct{ steps, deliveries, redeliveries, floods, forged, sweeps int }
}

func (lr *livenessRun) enqueue(at time.Time, b []byte) {
	lr.queue = append(lr.queue, &delivery{at: at, body: b})
}

// deliverDue hands every due message to the broker; a failed one comes back
// at the next step, up to 10 deliveries (Service Bus's default).
func (lr *livenessRun) deliverDue(ctx context.Context) {
	now := lr.clock.Now()
	var keep []*delivery
	for _, d := range lr.queue {
		if d.at.After(now) {
			keep = append(keep, d)
			continue
		}
		d.count++
		lr.stats.deliveries++
		if err := lr.b.HandleEvent(ctx, d.body); err != nil {
			if !fault.Transient(err) {
				lr.t.Fatalf("non-transient error: %v", err)
			}
			if d.count >= 10 {
				lr.dead++
				continue
			}
			lr.stats.redeliveries++
			d.at = now.Add(livenessStep)
			keep = append(keep, d)
		}
	}
	lr.queue = keep
}

func forgedRemoval(id, user string, at time.Time) []byte {
	b, _ := json.Marshal(map[string]any{"records": []any{map[string]any{
		"time": at.Format(time.RFC3339Nano), "operationName": "Remove member from group", "category": "AuditLogs",
		"properties": map[string]any{
			"id": id, "activityDisplayName": "Remove member from group", "activityDateTime": at.Format(time.RFC3339Nano),
			"loggedByService": "Core Directory", "result": "success",
			"initiatedBy": map[string]any{"user": map[string]any{"id": seed.UserX01, "userPrincipalName": "x01@" + seed.Domain}},
			"targetResources": []any{
				map[string]any{"id": user, "type": "User"},
				map[string]any{"id": seed.GroupAKSAdmin, "type": "Group"},
			},
		},
	}}})
	return b
}

func runLiveness(t *testing.T, seedN uint64) (grants, dead int) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seedN, 14))
	clock := brokertest.NewClock(t0)
	dir, users := newTenant(16)
	withLag(dir, clock, seedN)
	lr := &livenessRun{t: t, r: r, clock: clock, store: storetest.NewFaulty(memstore.New(memstore.WithClock(clock.Now))), dir: dir,
		grants: map[string]string{}, ends: map[string]time.Time{}}
	opts := brokerOptions(dir)
	opts.PIM = dir
	opts.Self = broker.Self{AppID: "0a0a0a0a-1111-4222-8333-444455556666"}
	opts.Deployment = lr.store
	lr.b = broker.New(lr.store, dir, testProfiles(), clock, opts)
	if _, err := lr.store.DeployedAt(ctx, t0); err != nil {
		t.Fatal(err)
	}

	// Disruptions in the first 30 minutes.
	span := 30 * time.Minute
	for range 1 + r.IntN(3) {
		from := t0.Add(time.Duration(r.Int64N(int64(span))))
		lr.outages = append(lr.outages, window{from, from.Add(20*time.Second + time.Duration(r.Int64N(int64(3*time.Minute))))})
	}
	for range 1 + r.IntN(3) {
		from := t0.Add(time.Duration(r.Int64N(int64(span))))
		lr.throttle = append(lr.throttle, window{from, from.Add(20*time.Second + time.Duration(r.Int64N(int64(3*time.Minute))))})
	}
	lr.store.SetHook(func(string) error {
		if lr.outages.active(clock.Now()) {
			return fault.Wrap(fault.ErrTransient, "store", fmt.Errorf("storage unavailable (injected)"))
		}
		return nil
	})
	dir.SetHook(func(method string, _ ...string) error {
		if lr.throttle.active(clock.Now()) {
			return fault.Wrap(fault.ErrTransient, method, fmt.Errorf("429 TooManyRequests (injected)"))
		}
		return nil
	})

	// Grants: one per user (no overlap, so each grant's member is its own).
	seq := 0
	id := func() string { seq++; return fmt.Sprintf("lv-%d-%d", seedN, seq) }
	for i, u := range users[1:] {
		rid := fmt.Sprintf("g-%d", i)
		lr.grants[rid] = u
		at := t0.Add(time.Duration(r.Int64N(int64(20 * time.Minute))))
		d := fmt.Sprintf("PT%dM", 1+r.IntN(6))
		lr.enqueue(at, body(id(), access.TypeRequested, map[string]any{"requestId": rid, "requester": u, "profile": "aks-admin", "justification": "liveness", "duration": d}))
		lr.enqueue(at.Add(livenessStep), body(id(), access.TypeApproved, map[string]any{"requestId": rid, "approver": seed.UPN("p01")}))
	}
	scheduled := map[string]bool{}
	end := t0.Add(50 * time.Minute)
	for now := t0; now.Before(end); now = clock.Advance(livenessStep) {
		lr.stats.steps++
		// Hostile input at random: a flood of invalid and refused events,
		// or a forged removal record, aimed at a random grant.
		if r.IntN(12) == 0 {
			rid := fmt.Sprintf("g-%d", r.IntN(len(users)-1))
			for k := range 20 {
				lr.enqueue(now, body(id()+strings.Repeat("z", 200), access.TypeApproved, map[string]any{"requestId": rid, "approver": k}))
				lr.enqueue(now, body(id(), access.TypeApproved, map[string]any{"requestId": rid, "approver": lr.grants[rid]}))
			}
			lr.stats.floods++
		}
		if r.IntN(20) == 0 {
			u := users[1+r.IntN(len(users)-1)]
			_ = lr.b.HandleAuditEvents(ctx, [][]byte{forgedRemoval(id(), u, now)})
			lr.stats.forged++
		}
		lr.deliverDue(ctx)
		if now.Sub(t0)%sweepInterval == 0 {
			lr.stats.sweeps++
			_ = lr.b.Sweep(ctx)
		}
		// Schedule each grant's expire message once it is active (read
		// beside the outage: the checker's view, not the broker's).
		lr.store.SetHook(nil)
		for rid := range lr.grants {
			if scheduled[rid] {
				continue // its end is known
			}
			got, err := lr.store.GetRequest(ctx, rid)
			if err != nil {
				continue
			}
			if !got.EndsAt.IsZero() && got.ActivatedAt.Before(now.Add(time.Second)) {
				lr.ends[rid] = got.EndsAt
				if !scheduled[rid] {
					scheduled[rid] = true
					lr.enqueue(got.EndsAt, body(id(), access.TypeExpire, map[string]any{"requestId": rid}))
				}
			}
		}
		lr.store.SetHook(func(string) error {
			if lr.outages.active(clock.Now()) {
				return fault.Wrap(fault.ErrTransient, "store", fmt.Errorf("storage unavailable (injected)"))
			}
			return nil
		})
		// The property.
		for rid, endsAt := range lr.ends {
			u := lr.grants[rid]
			deadline := endsAt
			for {
				next := endsAt.Add(lr.outages.overlap(endsAt, deadline) + lr.throttle.overlap(endsAt, deadline) +
					sweepInterval + access.WorkGrace + livenessStep)
				if !next.After(deadline) {
					break
				}
				deadline = next
			}
			if now.Before(deadline) {
				continue
			}
			if dir.IsDirectMember(seed.GroupAKSAdmin, u) || dir.RevokedFor(u) < 1 {
				lr.store.SetHook(nil)
				got, _ := lr.store.GetRequest(ctx, rid)
				var hist []string
				for _, h := range got.History {
					hist = append(hist, h.At.Format(time.TimeOnly)+" "+h.Type+" "+h.Detail)
				}
				l, _ := lr.store.GetLedger(ctx, seed.GroupAKSAdmin, u)
				t.Logf("state %s due %s work %+v ledger %+v\n  %s", got.State, got.DueAt.Format(time.TimeOnly), got.Work, l, strings.Join(hist, "\n  "))
				t.Fatalf("seed %d: grant %s ended at %s, deadline %s (outages %v, throttling %v), now %s: member %v, revocations %d",
					seedN, rid, endsAt.Format(time.TimeOnly), deadline.Format(time.TimeOnly), lr.outages, lr.throttle,
					now.Format(time.TimeOnly), dir.IsDirectMember(seed.GroupAKSAdmin, u), dir.RevokedFor(u))
			}
		}
	}
	return len(lr.ends), lr.dead
}

func TestLiveness(t *testing.T) {
	runs := 20 // JIT_LIVENESS_RUNS for more (RELIABILITY.md: 200 explored)
	if n, err := strconv.Atoi(os.Getenv("JIT_LIVENESS_RUNS")); err == nil && n > 0 {
		runs = n
	}
	total, dead := 0, 0
	for s := range uint64(runs) {
		s += livenessSeedBase()
		g, d := runLiveness(t, s)
		total += g
		dead += d
	}
	t.Logf("%d runs, %d grants ended under floods, forged records, storage outages and Graph throttling (%d messages dead-lettered); every member gone and sessions revoked by its end + the disruption it met + one sweep interval + WorkGrace", runs, total, dead)
}

// livenessSeedBase shifts the seeds (JIT_LIVENESS_SEED_BASE) for longer
// explorations than make test's.
func livenessSeedBase() uint64 {
	n, _ := strconv.ParseUint(os.Getenv("JIT_LIVENESS_SEED_BASE"), 10, 64)
	return n
}
