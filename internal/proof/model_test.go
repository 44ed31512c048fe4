package proof

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/azuritetest"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/memstore"
	"github.com/jitaccess/jitaccess/internal/seed"
	"github.com/jitaccess/jitaccess/internal/tablestore"
)

func TestMain(m *testing.M) { os.Exit(azuritetest.Main(m)) }

var t0 = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)

type profiles map[string]access.Profile

func (p profiles) Profile(name string) (access.Profile, bool) { v, ok := p[name]; return v, ok }

// ForGroup, TargetGroups and All serve audit handling and drift reconciliation (broker.Profiles).
func (p profiles) ForGroup(id string) []access.Profile {
	var out []access.Profile
	for _, name := range slices.Sorted(maps.Keys(p)) {
		if strings.EqualFold(p[name].TargetGroupID, id) {
			out = append(out, p[name])
		}
	}
	return out
}

func (p profiles) TargetGroups() []string { return []string{seed.GroupAKSAdmin} }

func (p profiles) All() []access.Profile {
	var out []access.Profile
	for _, name := range slices.Sorted(maps.Keys(p)) {
		out = append(out, p[name])
	}
	return out
}

// The directory as it really behaves (docs/design.md, The real directory): every membership read
// of the test runs sees the tenant as of a random moment within the last
// replicaLag; the brokers' replication window is replicationWindow.
const (
	replicaLag        = 10 * time.Second
	replicationWindow = 15 * time.Second
)

// brokerOptions are the options of every broker of the proof suites: drift
// reconciliation on (it reads the lagging member lists) and the window.
func brokerOptions(dir *brokertest.Dir) broker.Options {
	return broker.Options{Members: dir.MembersPort(), ReplicationWindow: replicationWindow}
}

// withLag turns the tenant's replica lag on (seeded, on clock).
func withLag(dir *brokertest.Dir, clock *brokertest.Clock, seedN uint64) *brokertest.Dir {
	dir.SetReplicaLag(replicaLag, clock.Now, int64(seedN))
	return dir
}

func testProfiles() profiles {
	base := access.Profile{
		Name: "aks-admin", TargetGroupID: seed.GroupAKSAdmin,
		EligibleGroupIDs: []string{seed.GroupAKSDefault}, ApproverGroupIDs: []string{seed.GroupAKSApprovers},
		ApprovalsRequired: 1, DefaultDuration: access.Duration(time.Hour), MaxDuration: access.Duration(8 * time.Hour),
		ApprovalTimeout: access.Duration(24 * time.Hour), RequireJustification: true,
		Activation: access.ActivationMembership, RevokeSessionsOnEnd: true, OutOfBand: access.OutOfBandRecord,
	}
	two := base
	two.Name, two.ApprovalsRequired = "aks-admin-2", 2
	return profiles{base.Name: base, two.Name: two}
}

// users: generated requesters (eligible), and s01, a standing member of
// aks-admin (pre-existing access that no grant may remove).
func userID(i int) string { return fmt.Sprintf("0de10000-0000-4000-8000-%012d", i) }

func newTenant(nUsers int) (*brokertest.Dir, []string) {
	dir := brokertest.NewSeeded()
	users := []string{seed.UserS01}
	for i := range nUsers {
		id := userID(i)
		dir.AddUser(broker.User{ID: id, UPN: fmt.Sprintf("m%03d@%s", i, seed.Domain), Enabled: true})
		dir.SetMember(seed.GroupAKSDefault, id)
		users = append(users, id)
	}
	return dir, users
}

// ev is one delivery: a CloudEvent body (the same bytes for every delivery
// of the same message).
type ev struct {
	lifecycle int
	body      []byte
	end       bool // delivered in the end phase (after endsAt)
	idx       int  // position in its lifecycle (set by genLifecycles)
}

func body(id, typ string, data map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"specversion": "1.0", "id": id, "source": "/proof", "type": typ, "data": data})
	if err != nil {
		panic(err)
	}
	return b
}

// genLifecycles makes n request lifecycles whose final state does not depend
// on delivery order (docs/design.md, Semantics): approvals, refused approvals (self, a
// non-approver), denials without approvals, cancels and revokes (which end a
// pending request and a grant alike), two-approval requests, invalid
// requests, expire events at the end.
func genLifecycles(r *rand.Rand, n int, users []string) [][]ev {
	out := make([][]ev, n)
	seq := 0
	id := func() string { seq++; return "e-" + strconv.Itoa(seq) }
	for i := range n {
		rid := "r-" + strconv.Itoa(i)
		requester := users[r.IntN(len(users))]
		profile := "aks-admin"
		if r.IntN(4) == 0 {
			profile = "aks-admin-2"
		}
		req := map[string]any{"requestId": rid, "requester": requester, "profile": profile, "justification": "proof"}
		if r.IntN(12) == 0 {
			delete(req, "justification") // invalid: rejected
		}
		lc := []ev{{lifecycle: i, body: body(id(), access.TypeRequested, req)}}
		approve := func(who string) ev {
			return ev{lifecycle: i, body: body(id(), access.TypeApproved, map[string]any{"requestId": rid, "approver": who}), end: false}
		}
		if r.IntN(5) == 0 {
			lc = append(lc, approve(requester)) // self-approval: refused
		}
		if r.IntN(5) == 0 {
			lc = append(lc, approve(seed.UPN("n01"))) // a non-approver: refused
		}
		switch k := r.IntN(10); {
		case k == 0:
			lc = append(lc, ev{lifecycle: i, body: body(id(), access.TypeDenied, map[string]any{"requestId": rid, "approver": seed.UPN("p01"), "reason": "no"}), end: false})
		case k == 1:
			// left pending
		default:
			lc = append(lc, approve(seed.UPN("p01")))
			if profile == "aks-admin-2" {
				lc = append(lc, approve(seed.UPN("p03")))
			}
			switch e := r.IntN(4); e {
			case 0:
				lc = append(lc, ev{lifecycle: i, body: body(id(), access.TypeCancelled, map[string]any{"requestId": rid, "by": requester}), end: false})
			case 1:
				lc = append(lc, ev{lifecycle: i, body: body(id(), access.TypeRevoked, map[string]any{"requestId": rid, "by": seed.UPN("p03"), "reason": "done"}), end: false})
			case 2:
				lc = append(lc, ev{lifecycle: i, body: body(id(), access.TypeExpire, map[string]any{"requestId": rid}), end: true})
			default:
				// ended by the sweep
			}
		}
		for j := range lc {
			lc[j].idx = j
		}
		out[i] = lc
	}
	return out
}

type run struct {
	t     *testing.T
	ctx   context.Context
	store broker.Store
	dir   *brokertest.Dir
	clock *brokertest.Clock
	b     *broker.Broker
	users []string
	ids   []string
	// counts
	deliveries, redeliveries, sweeps int
}

func newRun(t *testing.T, store broker.Store, dir *brokertest.Dir, users []string, n int, clock *brokertest.Clock) *run {
	ru := &run{t: t, ctx: context.Background(), store: store, dir: dir, clock: clock, users: users}
	ru.b = broker.New(store, dir, testProfiles(), clock, brokerOptions(dir))
	for i := range n {
		ru.ids = append(ru.ids, "r-"+strconv.Itoa(i))
	}
	return ru
}

// deliver hands body to the broker as the host does: again while it fails
// transiently (a redelivery).
func (ru *run) deliver(body []byte) {
	ru.deliveries++
	for range 20 {
		err := ru.b.HandleEvent(ru.ctx, body)
		if err == nil {
			return
		}
		if !fault.Transient(err) {
			ru.t.Fatalf("non-transient error: %v", err)
		}
		ru.redeliveries++
		ru.clock.Advance(time.Second)
	}
	ru.t.Fatalf("never acknowledged: %s", body)
}

func (ru *run) sweep() {
	ru.sweeps++
	if err := ru.b.Sweep(ru.ctx); err != nil && !fault.Transient(err) {
		ru.t.Fatalf("sweep: %v", err)
	}
}

// finish goes past every grant's end, delivers the end-phase events, and
// sweeps until nothing is due.
func (ru *run) finish(endEvents [][]byte) {
	ru.clock.Advance(9 * time.Hour)
	for _, b := range endEvents {
		ru.deliver(b)
	}
	for range 4 {
		ru.clock.Advance(2 * access.WorkGrace)
		ru.sweep()
	}
}

func (ru *run) finals() map[string]access.State {
	out := map[string]access.State{}
	for _, id := range ru.ids {
		r, err := ru.store.GetRequest(ru.ctx, id)
		if err != nil {
			ru.t.Fatalf("%s: %v", id, err)
		}
		out[id] = r.State
	}
	return out
}

func (ru *run) check() *Report {
	rep := Check(ru.ctx, World{Store: ru.store, Dir: ru.dir, Requests: ru.ids, Targets: []string{seed.GroupAKSAdmin},
		Users: ru.users, PreExisting: map[[2]string]bool{{seed.GroupAKSAdmin, seed.UserS01}: true}, RevokeOnEnd: true, Settled: true})
	if !rep.OK() {
		ru.t.Fatalf("invariants: %s", rep)
	}
	return rep
}

type storeFactory func(t *testing.T, clock *brokertest.Clock) broker.Store

func memStore(_ *testing.T, clock *brokertest.Clock) broker.Store {
	return memstore.New(memstore.WithClock(clock.Now))
}

func tableStore(t *testing.T, _ *brokertest.Clock) broker.Store {
	st, err := tablestore.NewFromConnectionString(azuritetest.Start(t), tablestore.Options{Prefix: azuritetest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.EnsureTables(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.DeleteTables(context.Background()) })
	return st
}

type modelStats struct {
	runs, lifecycles, events, deliveries, duplicates, reordered, redeliveries, sweeps int
	states                                                                            map[access.State]int
	adds, removes, revocations                                                        int
}

// modelCheck runs one seed: the model (every event once, in order) and the
// test run (every event delivered two or three times, all shuffled across
// lifecycles, sweeps interleaved), each on a fresh store and tenant, and
// compares every request's final state; the invariant checker runs after
// both.
func modelCheck(t *testing.T, seedN uint64, n int, newStore storeFactory, st *modelStats) {
	r := rand.New(rand.NewPCG(seedN, 7))
	_, users := newTenant(8)
	lcs := genLifecycles(r, n, users)

	// The model: in order.
	clock := brokertest.NewClock(t0)
	dir, _ := newTenant(8)
	model := newRun(t, newStore(t, clock), dir, users, n, clock)
	var ends [][]byte
	for _, lc := range lcs {
		for _, e := range lc {
			if e.end {
				ends = append(ends, e.body)
				continue
			}
			model.deliver(e.body)
			clock.Advance(time.Second)
		}
	}
	model.finish(ends)
	want := model.finals()
	model.check()

	// The test run: duplicated and shuffled, on a directory whose reads lag.
	clock2 := brokertest.NewClock(t0)
	dir2, _ := newTenant(8)
	withLag(dir2, clock2, seedN)
	test := newRun(t, newStore(t, clock2), dir2, users, n, clock2)
	var all []ev
	var endDeliveries [][]byte
	for _, lc := range lcs {
		for _, e := range lc {
			copies := 2 + r.IntN(2)
			for range copies {
				if e.end {
					endDeliveries = append(endDeliveries, e.body)
				} else {
					all = append(all, e)
				}
			}
			st.duplicates += copies - 1
			st.events++
		}
	}
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	r.Shuffle(len(endDeliveries), func(i, j int) { endDeliveries[i], endDeliveries[j] = endDeliveries[j], endDeliveries[i] })
	maxIdx := map[int]int{} // per lifecycle, the latest event delivered so far
	for _, e := range all {
		if m, ok := maxIdx[e.lifecycle]; ok && e.idx < m {
			st.reordered++ // an event delivered after one that followed it
		}
		maxIdx[e.lifecycle] = max(maxIdx[e.lifecycle], e.idx)
		test.deliver(e.body)
		clock2.Advance(time.Second)
		if r.IntN(8) == 0 {
			test.sweep()
		}
	}
	test.finish(endDeliveries)
	got := test.finals()
	rep := test.check()
	for _, id := range test.ids {
		if got[id] != want[id] {
			rt, _ := test.store.GetRequest(test.ctx, id)
			var types []string
			for _, h := range rt.History {
				types = append(types, h.Type+"("+h.Detail+")")
			}
			t.Fatalf("seed %d: %s ended %s in order but %s shuffled; history %v", seedN, id, want[id], got[id], types)
		}
	}
	st.runs++
	st.lifecycles += n
	st.deliveries += test.deliveries
	st.redeliveries += test.redeliveries
	st.sweeps += test.sweeps
	for s, c := range rep.States {
		st.states[s] += c
	}
	st.adds += rep.Adds
	st.removes += rep.Removes
	st.revocations += rep.Revocations
}

func logStats(t *testing.T, what string, st *modelStats) {
	t.Logf("%s: %d runs, %d lifecycles, %d distinct events, %d deliveries (%d duplicates), %d deliveries after a later event of their lifecycle, "+
		"%d redeliveries, %d sweeps; final states %v; Graph adds %d, removes %d, revocations %d; final states equal to the in-order model in every run; invariants held",
		what, st.runs, st.lifecycles, st.events, st.deliveries, st.duplicates, st.reordered, st.redeliveries, st.sweeps, st.states, st.adds, st.removes, st.revocations)
}

func TestDeliveryModelMemstore(t *testing.T) {
	st := &modelStats{states: map[access.State]int{}}
	seeds := 60
	if testing.Short() {
		seeds = 10
	}
	for s := range seeds {
		modelCheck(t, uint64(s+1), 25, memStore, st)
	}
	logStats(t, "memstore", st)
}

func TestDeliveryModelAzurite(t *testing.T) {
	st := &modelStats{states: map[access.State]int{}}
	for s := range 3 {
		modelCheck(t, uint64(1000+s), 15, tableStore, st)
	}
	logStats(t, "Azurite", st)
}

var _ broker.Profiles = profiles{}
