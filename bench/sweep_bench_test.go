package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/azuritetest"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/seed"
	"github.com/jitaccess/jitaccess/internal/tablestore"
	"github.com/jitaccess/jitaccess/internal/tablestore/tablestoretest"
)

// endedSizes is JIT_BENCH_ENDED (default "1000,100000", as make bench runs it).
func endedSizes(b *testing.B) []int {
	spec := os.Getenv("JIT_BENCH_ENDED")
	if spec == "" {
		spec = "1000,100000"
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			b.Fatalf("JIT_BENCH_ENDED=%q: want a comma-separated list of counts", spec)
		}
		out = append(out, n)
	}
	return out
}

// fakeTenant is an in-memory directory with n eligible users and p01 as
// approver: the store is what these benchmarks measure.
func fakeTenant(n int) *brokertest.Dir {
	d := brokertest.NewSeeded()
	for i := range n {
		id := benchUserID(i)
		d.AddUser(broker.User{ID: id, UPN: fmt.Sprintf("bench%05d@contoso.com", i), Enabled: true})
		d.SetMember(seed.GroupAKSDefault, id)
	}
	return d
}

// newTableStore opens a store on Azurite with tables of its own, and the
// counter of its round trips.
func newTableStore(b *testing.B) (*tablestore.Store, *tablestoretest.RoundTrips) {
	trips := tablestoretest.Count(nil)
	st, err := tablestore.NewFromConnectionString(azuritetest.Start(b), tablestore.Options{Prefix: azuritetest.Prefix(b), Transport: trips})
	if err != nil {
		b.Fatal(err)
	}
	if err := st.EnsureTables(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.DeleteTables(context.Background()) })
	return st, trips
}

// fillEnded stores n expired requests (no due entry, as the broker leaves
// them) with 16 workers.
func fillEnded(b *testing.B, st *tablestore.Store, n int) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	base := time.Now().UTC().Add(-48 * time.Hour)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				r := activeRequest(fmt.Sprintf("ended-%07d", i), i, base)
				r.State, r.DueAt, r.EndedAt = access.Expired, time.Time{}, r.EndsAt
				r.History = append(r.History, access.HistoryEntry{At: r.EndsAt, Type: access.HExpired, Actor: access.System})
				var err error
				for try := 0; try < 5; try++ {
					if err = st.SaveRequest(ctx, r); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
					if _, gerr := st.GetRequest(ctx, r.ID); gerr == nil {
						err = nil
						break
					}
				}
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("fill: %v", err)
	}
}

// sweepRounds is JIT_BENCH_SWEEP_ROUNDS (default 3): sweeps measured per
// size, the median reported.
func sweepRounds(b *testing.B) int {
	if v := os.Getenv("JIT_BENCH_SWEEP_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("JIT_BENCH_SWEEP_ROUNDS=%q: want a positive count", v)
		}
		return n
	}
	return 3
}

// BenchmarkSweepScaling: wall time (median of sweepRounds sweeps) and round
// trips of a sweep ending 100 due grants (real grants made by the broker: membership added, to be
// removed and sessions revoked) among N ended requests in Azurite, for each
// N of JIT_BENCH_ENDED; the ratio last/first is reported on the last size.
func BenchmarkSweepScaling(b *testing.B) {
	const due = 100
	sizes := endedSizes(b)
	var first float64
	for k, n := range sizes {
		b.Run(fmt.Sprintf("ended=%d", n), func(b *testing.B) {
			st, trips := newTableStore(b)
			t0 := time.Now()
			fillEnded(b, st, n)
			b.Logf("stored %d ended requests in %v", n, time.Since(t0).Round(time.Second))
			dir := fakeTenant(due)
			brk := broker.New(st, dir, benchProfiles(b), broker.SystemClock{}, broker.Options{Logger: quietLogger()})
			ctx := context.Background()
			var times []time.Duration
			var rts int64
			rounds := max(b.N, sweepRounds(b))
			for it := 0; it < rounds; it++ {
				b.StopTimer()
				ids := make([]string, due)
				for i := range due {
					ids[i] = fmt.Sprintf("due-%d-%d", it, i)
					for _, body := range [][]byte{requested(b, ids[i], benchUserID(i), "aks-admin", "PT1S"), approved(b, ids[i])} {
						if err := brk.HandleEvent(ctx, body); err != nil {
							b.Fatal(err)
						}
					}
				}
				time.Sleep(1100 * time.Millisecond)
				b.StartTimer()
				rt0 := trips.N()
				s0 := time.Now()
				if err := brk.Sweep(ctx); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(s0))
				rts += trips.N() - rt0
				b.StopTimer()
				for _, id := range ids {
					r, err := st.GetRequest(ctx, id)
					if err != nil || r.State != access.Expired {
						b.Fatalf("%s not expired by the sweep: %v %v", id, r, err)
					}
				}
			}
			// The median sweep: one sweep is one sample on a shared machine.
			slices.Sort(times)
			ms := float64(times[len(times)/2].Microseconds()) / 1000
			b.ReportMetric(ms, "sweep-ms")
			b.ReportMetric(float64(times[0].Microseconds())/1000, "min-sweep-ms")
			b.ReportMetric(float64(rts)/float64(rounds), "roundtrips/sweep")
			if k == 0 {
				first = ms
			} else if first > 0 {
				b.ReportMetric(ms/first, "ratio-to-first")
			}
		})
	}
}

// BenchmarkThroughputVsStoreFloor: sustained accepted events/s (new
// requests through the broker into Azurite, 16 concurrent, in-memory
// directory) against Azurite's own single-entity write rate (AddEntity, 16
// concurrent, the same SDK client settings), alternating rounds in one run.
func BenchmarkThroughputVsStoreFloor(b *testing.B) {
	const conc = 16
	st, _ := newTableStore(b)
	dir := fakeTenant(500)
	brk := broker.New(st, dir, benchProfiles(b), broker.SystemClock{}, broker.Options{Logger: quietLogger()})
	svc, err := aztables.NewServiceClientFromConnectionString(azuritetest.Start(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	tname := azuritetest.Prefix(b) + "floor"
	tbl := svc.NewClient(tname)
	ctx := context.Background()
	if _, err := tbl.CreateTable(ctx, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _, _ = tbl.Delete(context.Background(), nil) })
	run := func(n int, f func(i int) error) time.Duration {
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Value
		s := time.Now()
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= n || failed.Load() != nil {
						return
					}
					if err := f(i); err != nil {
						failed.Store(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			b.Fatal(err)
		}
		return time.Since(s)
	}
	stamp := time.Now().UnixNano()
	var seq atomic.Int64
	var tApp, tFloor time.Duration
	const round = 200
	b.ResetTimer()
	for lo := 0; lo < b.N; lo += round {
		n := min(round, b.N-lo)
		bodies := make([][]byte, n)
		for i := range n {
			bodies[i] = requested(b, fmt.Sprintf("tp-%d-%d", stamp, lo+i), benchUserID((lo+i)%500), "aks-admin", "PT1H")
		}
		tApp += run(n, func(i int) error { return brk.HandleEvent(ctx, bodies[i]) })
		tFloor += run(n, func(i int) error {
			k := seq.Add(1)
			ent := fmt.Sprintf(`{"PartitionKey":"p%d","RowKey":"r%d","Body":"%s"}`, k, k, strings.Repeat("x", 600))
			_, err := tbl.AddEntity(ctx, []byte(ent), nil)
			return err
		})
	}
	b.StopTimer()
	app := float64(b.N) / tApp.Seconds()
	floor := float64(b.N) / tFloor.Seconds()
	b.ReportMetric(app, "events/s")
	b.ReportMetric(floor, "floor-writes/s")
	b.ReportMetric(app/floor, "ratio")
}
