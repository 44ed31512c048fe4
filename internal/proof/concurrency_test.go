package proof

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// instances are two app instances: two brokers over the same store and
// tenant, as two Functions hosts would run them.
type instances struct {
	t     *testing.T
	ctx   context.Context
	store broker.Store
	dir   *brokertest.Dir
	clock *brokertest.Clock
	b     [2]*broker.Broker
	users []string
	ids   []string
	seq   int
}

// lagSeeds numbers the replica-lag sources of the race runs.
var lagSeeds atomic.Uint64

func newInstances(t *testing.T, newStore storeFactory) *instances {
	clock := brokertest.NewClock(t0)
	dir, users := newTenant(4)
	withLag(dir, clock, lagSeeds.Add(1))
	in := &instances{t: t, ctx: context.Background(), store: newStore(t, clock), dir: dir, clock: clock, users: users}
	for i := range in.b {
		in.b[i] = broker.New(in.store, dir, testProfiles(), clock, brokerOptions(dir))
	}
	return in
}

func (in *instances) id() string { in.seq++; return fmt.Sprintf("c-%d", in.seq) }

// handle delivers body on instance i until it is acknowledged (the host's
// redelivery of a transient failure).
func (in *instances) handle(i int, body []byte) error {
	for range 50 {
		err := in.b[i].HandleEvent(in.ctx, body)
		if err == nil || !fault.Transient(err) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("never acknowledged")
}

// race runs the deliveries at once (a barrier releases them together), each
// on one of the two instances in turn.
func (in *instances) race(bodies ...[]byte) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, len(bodies))
	for j, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[j] = in.handle(j%2, b)
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			in.t.Fatalf("delivery: %v", err)
		}
	}
}

func (in *instances) request(rid, requester, profile string) []byte {
	in.ids = append(in.ids, rid)
	return body(in.id(), access.TypeRequested, map[string]any{"requestId": rid, "requester": requester, "profile": profile, "justification": "race"})
}

func (in *instances) settle() *Report {
	in.t.Helper()
	in.clock.Advance(9 * time.Hour)
	for range 3 {
		in.clock.Advance(2 * access.WorkGrace)
		for i := range in.b {
			if err := in.b[i].Sweep(in.ctx); err != nil && !fault.Transient(err) {
				in.t.Fatalf("sweep: %v", err)
			}
		}
	}
	rep := Check(in.ctx, World{Store: in.store, Dir: in.dir, Requests: in.ids, Targets: []string{seed.GroupAKSAdmin},
		Users: in.users, PreExisting: map[[2]string]bool{{seed.GroupAKSAdmin, seed.UserS01}: true}, RevokeOnEnd: true,
		Settled: true})
	if !rep.OK() {
		in.t.Fatalf("invariants: %s", rep)
	}
	return rep
}

func (in *instances) get(id string) *access.Request {
	r, err := in.store.GetRequest(in.ctx, id)
	if err != nil {
		in.t.Fatal(err)
	}
	return r
}

func historyCount(r *access.Request, typ string) int {
	n := 0
	for _, h := range r.History {
		if h.Type == typ {
			n++
		}
	}
	return n
}

type raceCase struct {
	name string
	run  func(in *instances) (rid string, outcomes []access.State)
}

func raceCases() []raceCase {
	approve := func(in *instances, rid, who string) []byte {
		return body(in.id(), access.TypeApproved, map[string]any{"requestId": rid, "approver": who})
	}
	return []raceCase{
		{"approve vs cancel", func(in *instances) (string, []access.State) {
			u := in.users[1]
			in.race(in.request("r", u, "aks-admin"))
			in.race(approve(in, "r", seed.UPN("p01")), body(in.id(), access.TypeCancelled, map[string]any{"requestId": "r", "by": u}))
			return "r", []access.State{access.Cancelled}
		}},
		{"approve vs deny", func(in *instances) (string, []access.State) {
			in.race(in.request("r", in.users[1], "aks-admin"))
			in.race(approve(in, "r", seed.UPN("p01")), body(in.id(), access.TypeDenied, map[string]any{"requestId": "r", "approver": seed.UPN("p03")}))
			return "r", []access.State{access.Denied, access.Expired} // a deny of an active grant is refused; it then expires
		}},
		{"second approvals at once", func(in *instances) (string, []access.State) {
			in.race(in.request("r", in.users[1], "aks-admin-2"))
			in.race(approve(in, "r", seed.UPN("p01")), approve(in, "r", seed.UPN("p03")), approve(in, "r", seed.UPN("p01")))
			return "r", []access.State{access.Expired}
		}},
		{"approve vs cancel vs expire vs second approve", func(in *instances) (string, []access.State) {
			u := in.users[2]
			in.race(in.request("r", u, "aks-admin-2"))
			in.race(approve(in, "r", seed.UPN("p01")))
			in.race(approve(in, "r", seed.UPN("p03")), body(in.id(), access.TypeCancelled, map[string]any{"requestId": "r", "by": u}),
				body(in.id(), access.TypeExpire, map[string]any{"requestId": "r"}), approve(in, "r", seed.UPN("p02")))
			return "r", []access.State{access.Cancelled}
		}},
		{"expire vs revoke vs cancel at the end", func(in *instances) (string, []access.State) {
			u := in.users[3]
			in.race(in.request("r", u, "aks-admin"))
			in.race(approve(in, "r", seed.UPN("p01")))
			in.clock.Set(in.get("r").EndsAt)
			in.race(body(in.id(), access.TypeExpire, map[string]any{"requestId": "r"}),
				body(in.id(), access.TypeRevoked, map[string]any{"requestId": "r", "by": seed.UPN("p03")}),
				body(in.id(), access.TypeCancelled, map[string]any{"requestId": "r", "by": u}),
				body(in.id(), access.TypeExpire, map[string]any{"requestId": "r"}))
			return "r", []access.State{access.Expired, access.Revoked, access.Cancelled}
		}},
	}
}

// TestRacesOnOneRequest launches parallel invocations on one request from
// two app instances and checks one valid outcome, at most one membership
// add and one removal, sessions revoked once in the history, and the
// invariants.
func TestRacesOnOneRequest(t *testing.T) {
	for _, sc := range []struct {
		name  string
		store storeFactory
		runs  int
	}{{"memstore", memStore, 300}, {"Azurite", tableStore, 25}} {
		t.Run(sc.name, func(t *testing.T) {
			total := 0
			for _, rc := range raceCases() {
				outcomes := map[access.State]int{}
				for range sc.runs {
					in := newInstances(t, sc.store)
					rid, valid := rc.run(in)
					in.settle()
					r := in.get(rid)
					if !slices.Contains(valid, r.State) {
						t.Fatalf("%s: outcome %s, valid %v; history %v", rc.name, r.State, valid, typesOf(r))
					}
					outcomes[r.State]++
					if in.dir.WriteCount(brokertest.MAddMember) > 1 || in.dir.WriteCount(brokertest.MRemoveMember) > 1 {
						t.Fatalf("%s: writes %+v", rc.name, in.dir.Writes())
					}
					if in.dir.WriteCount(brokertest.MAddMember) == 1 && (historyCount(r, access.HSessionsRevoked) != 1 || in.dir.RevokedFor(r.Requester) < 1) {
						t.Fatalf("%s: added, but sessions revoked %d times in history, %d in Graph: %v", rc.name,
							historyCount(r, access.HSessionsRevoked), in.dir.RevokedFor(r.Requester), typesOf(r))
					}
					for _, end := range []string{access.HExpired, access.HRevoked, access.HCancelled, access.HDenied} {
						if historyCount(r, end) > 1 {
							t.Fatalf("%s: %s recorded twice: %v", rc.name, end, typesOf(r))
						}
					}
					total++
				}
				t.Logf("%s, %d runs: outcomes %v", rc.name, sc.runs, outcomes)
			}
			t.Logf("%d races, all one valid outcome, effects and history exact", total)
		})
	}
}

// TestTwoSweepsAtOnce: two app instances fire their timers together over 30
// due grants (and 10 pending ones timing out): every grant ends once, every
// membership is removed once, sessions revoked, invariants hold.
func TestTwoSweepsAtOnce(t *testing.T) {
	for _, sc := range []struct {
		name  string
		store storeFactory
		runs  int
	}{{"memstore", memStore, 40}, {"Azurite", tableStore, 4}} {
		t.Run(sc.name, func(t *testing.T) {
			for range sc.runs {
				in := newInstances(t, sc.store)
				dir := in.dir
				var grants []string
				for i := range 30 {
					u := userID(100 + i)
					dir.AddUser(broker.User{ID: u, UPN: fmt.Sprintf("s%03d@%s", i, seed.Domain), Enabled: true})
					dir.SetMember(seed.GroupAKSDefault, u)
					in.users = append(in.users, u)
				}
				in.clock.Advance(replicaLag) // the new users' eligibility is visible to every read
				for i := range 30 {
					u := userID(100 + i)
					rid := fmt.Sprintf("g-%d", i)
					grants = append(grants, rid)
					in.race(in.request(rid, u, "aks-admin"))
					in.race(body(in.id(), access.TypeApproved, map[string]any{"requestId": rid, "approver": seed.UPN("p01")}))
				}
				for i := range 10 {
					in.race(in.request(fmt.Sprintf("p-%d", i), in.users[1], "aks-admin"))
				}
				in.clock.Advance(25 * time.Hour) // past every end and the approval timeout
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range in.b {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						if err := in.b[i].Sweep(in.ctx); err != nil && !fault.Transient(err) {
							t.Errorf("sweep %d: %v", i, err)
						}
					}()
				}
				close(start)
				wg.Wait()
				in.settle()
				for _, rid := range grants {
					r := in.get(rid)
					if r.State != access.Expired || historyCount(r, access.HExpired) != 1 || historyCount(r, access.HMembershipRemoved) != 1 ||
						historyCount(r, access.HSessionsRevoked) != 1 {
						t.Fatalf("%s: %s %v", rid, r.State, typesOf(r))
					}
				}
				if n := dir.WriteCount(brokertest.MRemoveMember); n != 30 {
					t.Fatalf("%d removals, want 30", n)
				}
			}
			t.Logf("%d runs of two concurrent sweeps over 30 due grants and 10 timing-out requests: every grant ended once", sc.runs)
		})
	}
}

func typesOf(r *access.Request) []string {
	var out []string
	for _, h := range r.History {
		out = append(out, h.Type)
	}
	return out
}
