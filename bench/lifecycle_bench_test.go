package bench

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/azuritetest"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/tablestore"
	"github.com/jitaccess/jitaccess/internal/tablestore/tablestoretest"
)

// lifecycleGrants is the number of whole grant lifecycles measured per
// iteration (JIT_BENCH_GRANTS, default 20).
func lifecycleGrants() int {
	if n, err := strconv.Atoi(os.Getenv("JIT_BENCH_GRANTS")); err == nil && n > 0 {
		return n
	}
	return 20
}

// BenchmarkGrantLifecycle runs whole grants in membership mode — requested,
// approved (membership added), expired (membership removed, sessions
// revoked) — through the broker with the real Graph client against the
// Graph simulator, and the Table Storage store against Azurite. Each event
// is then delivered a second time (a duplicate). It reports, per grant:
// Graph calls counted by the simulator (lifecycle and duplicates apart), and
// storage round trips per event counted by tablestoretest.Count, with the
// number of state transitions each event made.
func BenchmarkGrantLifecycle(b *testing.B) {
	ctx := context.Background()
	n := lifecycleGrants()
	ten := newTenant(b, n)
	trips := tablestoretest.Count(nil) // the store's round trips
	st, err := tablestore.NewFromConnectionString(azuritetest.Start(b), tablestore.Options{Prefix: azuritetest.Prefix(b), Transport: trips})
	if err != nil {
		b.Fatal(err)
	}
	if err := st.EnsureTables(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.DeleteTables(context.Background()) })
	cs := &countingStore{Store: st, rt: trips.N, by: map[string]*opCount{}}
	brk := broker.New(cs, ten.dir, benchProfiles(b), broker.SystemClock{}, broker.Options{Logger: quietLogger()})

	type phase struct {
		name        string
		rt, calls   int64
		transitions int
		events      int
		dupRT       int64
		dupCalls    int64
		dups        int
	}
	phases := map[string]*phase{}
	// The first grant meets a cold approver cache (broker.Options.ApproverCacheTTL):
	// its Graph calls are reported apart.
	var firstID string
	var firstCalls int64
	kinds := map[string]int{}    // lifecycle Graph calls by kind
	dupKinds := map[string]int{} // duplicate Graph calls by kind
	stateOf := func(id string) (access.State, int) {
		r, err := st.GetRequest(ctx, id)
		if err != nil {
			return "", 0
		}
		return r.State, len(r.History)
	}
	deliver := func(name, id string, body []byte) {
		p := phases[name]
		if p == nil {
			p = &phase{name: name}
			phases[name] = p
		}
		before, _ := stateOf(id)
		cs.phase = name
		ten.sim.ResetCalls()
		rt0 := trips.N()
		if err := brk.HandleEvent(ctx, body); err != nil {
			b.Fatalf("%s %s: %v", name, id, err)
		}
		p.rt += trips.N() - rt0
		calls := ten.sim.Calls()
		p.calls += int64(len(calls))
		if id == firstID {
			firstCalls += int64(len(calls))
		}
		for _, c := range calls {
			kinds[callKind(c)]++
		}
		after, _ := stateOf(id)
		if after != before {
			p.transitions++ // at least one; see history below for the intermediate ones
		}
		p.events++
		// The same message again (a redelivery).
		cs.phase = "dup-" + name
		ten.sim.ResetCalls()
		rt0 = trips.N()
		if err := brk.HandleEvent(ctx, body); err != nil {
			b.Fatalf("duplicate %s %s: %v", name, id, err)
		}
		p.dupRT += trips.N() - rt0
		calls = ten.sim.Calls()
		p.dupCalls += int64(len(calls))
		for _, c := range calls {
			dupKinds[callKind(c)]++
		}
		p.dups++
	}

	var history []string
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		ids := make([]string, n)
		for i := range n {
			ids[i] = fmt.Sprintf("lc-%d-%d-%d", time.Now().UnixNano(), it, i)
			if it == 0 && i == 0 {
				firstID = ids[i]
			}
			deliver("requested", ids[i], requested(b, ids[i], ten.users[i], "aks-admin", "PT2S"))
			deliver("approved", ids[i], approved(b, ids[i]))
		}
		time.Sleep(2100 * time.Millisecond)
		for i := range n {
			deliver("expire", ids[i], expire(b, ids[i]))
			r, err := st.GetRequest(ctx, ids[i])
			if err != nil || r.State != access.Expired {
				b.Fatalf("%s: state %v, %v", ids[i], r, err)
			}
			if ten.sim.RevokeCount(ten.users[i]) != it+1 {
				b.Fatalf("%s: sessions of %s revoked %d times", ids[i], ten.users[i], ten.sim.RevokeCount(ten.users[i]))
			}
			if i == 0 && it == 0 {
				for _, h := range r.History {
					history = append(history, h.Type)
				}
			}
		}
	}
	b.StopTimer()

	grants := float64(n * b.N)
	var life, dup int64
	for _, p := range phases {
		life += p.calls
		dup += p.dupCalls
	}
	b.ReportMetric(float64(life)/grants, "graphcalls/grant")
	b.ReportMetric(float64(firstCalls), "graphcalls/first-grant")
	b.ReportMetric(float64(dup)/grants, "dupgraphcalls/grant")
	for _, name := range []string{"requested", "approved", "expire"} {
		p := phases[name]
		b.ReportMetric(float64(p.rt)/float64(p.events), "rt/"+name)
		b.ReportMetric(float64(p.dupRT)/float64(p.dups), "rt/dup-"+name)
		b.ReportMetric(float64(p.calls)/float64(p.events), "graph/"+name)
	}
	report := func(title string, m map[string]int) {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		var sb strings.Builder
		for _, k := range ks {
			fmt.Fprintf(&sb, "  %-50s %6.2f per grant\n", k, float64(m[k])/grants)
		}
		b.Logf("%s:\n%s", title, sb.String())
	}
	report("Graph calls of the lifecycle, by kind", kinds)
	report("Graph calls of the duplicates, by kind", dupKinds)
	b.Logf("storage round trips by phase and store method (per event):\n%s", cs.summary(float64(n*b.N)))
	b.Logf("history of one grant: %s", strings.Join(history, ", "))
}

// countingStore attributes the store's round trips to its methods, per
// phase (the event being handled). Not safe for concurrent use: the
// lifecycle benchmark is sequential.
type countingStore struct {
	*tablestore.Store
	rt    func() int64
	phase string
	by    map[string]*opCount
}

type opCount struct{ calls, rt int64 }

func (c *countingStore) count(op string) func() {
	rt0 := c.rt()
	return func() {
		k := c.phase + " " + op
		o := c.by[k]
		if o == nil {
			o = &opCount{}
			c.by[k] = o
		}
		o.calls++
		o.rt += c.rt() - rt0
	}
}

func (c *countingStore) GetRequest(ctx context.Context, id string) (*access.Request, error) {
	defer c.count("GetRequest")()
	return c.Store.GetRequest(ctx, id)
}

func (c *countingStore) SaveRequest(ctx context.Context, r *access.Request) error {
	defer c.count("SaveRequest")()
	return c.Store.SaveRequest(ctx, r)
}

func (c *countingStore) GetLedger(ctx context.Context, g, u string) (*access.Ledger, error) {
	defer c.count("GetLedger")()
	return c.Store.GetLedger(ctx, g, u)
}

func (c *countingStore) SaveLedger(ctx context.Context, l *access.Ledger) error {
	defer c.count("SaveLedger")()
	return c.Store.SaveLedger(ctx, l)
}

func (c *countingStore) summary(events float64) string {
	var ks []string
	for k := range c.by {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var sb strings.Builder
	for _, k := range ks {
		o := c.by[k]
		fmt.Fprintf(&sb, "  %-28s calls %5.2f  round trips %5.2f\n", k, float64(o.calls)/events, float64(o.rt)/events)
	}
	return sb.String()
}
