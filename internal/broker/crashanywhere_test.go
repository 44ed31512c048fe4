package broker_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// killer numbers every fault point of a run — before each store operation,
// before each directory call, after each directory write took effect — and
// kills the "process" at point k: from then on every store operation and
// directory call fails, until restart. A real crash gives the host no answer
// (a timeout or a reset connection), so the message comes back; a failing
// call here stands for that.
type killer struct {
	mu     sync.Mutex
	k      int // the point to die at (0: never)
	n      int // points passed
	dead   bool
	paused bool   // the test's own reads are no fault points
	killed string // what point k was
}

var errKilled = fault.Wrap(fault.ErrTransient, "crash", errors.New("process killed (injected)"))

func (c *killer) point(what string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused {
		return nil
	}
	if c.dead {
		return errKilled
	}
	c.n++
	if c.n == c.k {
		c.dead, c.killed = true, what
		return errKilled
	}
	return nil
}

func (c *killer) restart() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dead = false
}

func (c *killer) pause(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = on
}

func (c *killer) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// crashRun runs one whole grant — requested, approved (membership added),
// expired at its end (membership removed, sessions revoked) — with the
// process killed at fault point k (0: not at all). The host redelivers
// whatever was in flight after the restart, and the sweep runs as the timer
// would. It returns the deployment, the number of fault points passed and
// where it died.
func crashRun(t *testing.T, k int, end string) (*env, int, string) {
	t.Helper()
	kill := &killer{k: k}
	faults := &brokertest.Faults{After: func(step string) error { return kill.point("after " + step) }}
	e := newEnv(t, nil)
	// The real directory: reads lag writes (seeded per fault point), and
	// drift reconciliation reads the lagging member list at every sweep.
	e.dir.SetReplicaLag(testLag, e.clock.Now, int64(k))
	e.b = broker.New(e.store, faults.Directory(e.dir), groupSet{profiles{"aks-admin": adminProfile()}}, e.clock,
		broker.Options{Members: e.dir.MembersPort(), ReplicationWindow: testWindow})
	e.store.SetHook(func(op string) error { return kill.point("store " + op) })
	e.dir.SetHook(func(method string, _ ...string) error { return kill.point("graph " + method) })

	// deliver hands an event to the broker as the host does: redelivered
	// (after the restart) until it is acknowledged. A claim the dead
	// process left on the ledger is taken over once WorkGrace has passed
	// (until then the redelivery fails transiently and comes back).
	deliver := func(body []byte) {
		for range 20 {
			err := e.b.HandleEvent(e.ctx, body)
			if kill.isDead() {
				kill.restart()
				e.clock.Advance(5 * time.Second)
				continue
			}
			if err == nil {
				return
			}
			if !fault.Transient(err) {
				t.Fatalf("crash at %d (%s): non-transient error %v", k, kill.killed, err)
			}
			e.clock.Advance(5 * time.Second)
		}
		t.Fatalf("crash at %d (%s): event never acknowledged", k, kill.killed)
	}
	sweep := func() {
		_ = e.b.Sweep(e.ctx)
		if kill.isDead() {
			kill.restart()
		}
	}

	deliver(e.requestBody("r-1", seed.UPN("n01"), "PT1H"))
	deliver(e.approveBody("r-1", seed.UPN("p01")))
	// Work cut short during the approval is the sweep's once WorkGrace has passed.
	e.clock.Advance(2 * access.WorkGrace)
	sweep()
	sweep()
	kill.pause(true)
	r := e.get("r-1")
	if r.State != access.Active {
		t.Fatalf("crash at %d (%s): after approval and sweep: state %s, history %v", k, kill.killed, r.State, types(r))
	}
	if !e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatalf("crash at %d (%s): active but not a member", k, kill.killed)
	}
	// The end: the scheduled expire event at endsAt (or, without Service
	// Bus, the sweep alone), then the sweeps.
	kill.pause(false)
	e.clock.Set(r.EndsAt)
	switch end {
	case "expire-event":
		deliver(body(e.nextID(), access.TypeExpire, map[string]any{"requestId": "r-1"}))
	case "revoked":
		e.clock.Set(r.EndsAt.Add(-time.Minute))
		deliver(body(e.nextID(), access.TypeRevoked, map[string]any{"requestId": "r-1", "by": seed.UPN("p01"), "reason": "done early"}))
	}
	for range 3 {
		e.clock.Advance(2 * access.WorkGrace)
		sweep()
	}
	kill.pause(true)
	return e, kill.n, kill.killed
}

// TestCrashAnywhere kills the process at every fault point of a whole grant
// in turn — before every store operation, before every Graph call, after
// every Graph write took effect — restarts it, lets the host redeliver and
// the sweep run, and checks that every run ends exactly as an undisturbed
// one: expired, the membership added once and removed once, sessions
// revoked, the history complete, the ledger gone.
func TestCrashAnywhere(t *testing.T) {
	for _, end := range []string{"expire-event", "sweep-only", "revoked"} {
		t.Run(end, func(t *testing.T) { crashEverywhere(t, end) })
	}
}

func crashEverywhere(t *testing.T, end string) {
	_, points, _ := crashRun(t, 0, end)
	if points < 20 {
		t.Fatalf("only %d fault points in a whole grant: the hooks are not wired", points)
	}
	ended := access.HExpired
	if end == "revoked" {
		ended = access.HRevoked
	}
	want := []string{access.HRequested, access.HApproved, access.HActivated, access.HMembershipAdded,
		ended, access.HMembershipRemoved, access.HSessionsRevoked}
	byOutcome := map[string]int{}
	for k := 1; k <= points; k++ {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			where := crashRunChecked(t, k, end, want)
			if where == "" {
				t.Fatalf("point %d never reached (%d points in the undisturbed run)", k, points)
			}
			byOutcome[where]++
		})
	}
	t.Logf("%d fault points in one grant, each killed once; every run ended as an undisturbed one (state, history, one add, one removal, sessions revoked); points by kind: %v", points, byOutcome)
}

// crashRunChecked is crashRun plus the checks of the end state.
func crashRunChecked(t *testing.T, k int, end string, want []string) string {
	t.Helper()
	e, _, where := crashRun(t, k, end)
	r := e.get("r-1")
	var got []string
	for _, h := range r.History {
		if h.Type != access.HNote {
			got = append(got, h.Type)
		}
	}
	if string(r.State) != want[4] || !slices.Equal(got, want) {
		t.Fatalf("killed at %d (%s): state %s, history %v, want %v", k, where, r.State, got, want)
	}
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatalf("killed at %d (%s): member left in aks-admin", k, where)
	}
	if adds, removes := e.dir.WriteCount(brokertest.MAddMember), e.dir.WriteCount(brokertest.MRemoveMember); adds != 1 || removes != 1 {
		t.Fatalf("killed at %d (%s): %d adds, %d removes; writes %+v", k, where, adds, removes, e.dir.Writes())
	}
	if e.dir.RevokedFor(seed.UserN01) < 1 {
		t.Fatalf("killed at %d (%s): sessions never revoked", k, where)
	}
	// The ledger is gone, or holds only the bounded list of recent releases
	// (kept, bounded by access.MaxReleased: see access.Ledger.Released).
	if l := e.ledger(seed.GroupAKSAdmin, seed.UserN01); len(l.Grants) != 0 || l.ClaimedBy != "" || l.PreExisting {
		t.Fatalf("killed at %d (%s): ledger left %+v", k, where, l)
	}
	e.wantOnlyTarget()
	return where
}
