package tablestore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/tablestore"
)

// Fixed open work beside the ended requests.
const (
	benchActive  = 100
	benchPending = 20
)

// benchSizes are the numbers of ended requests stored
// (JIT_BENCH_ENDED="1000,100000" by default).
func benchSizes(b *testing.B) []int {
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

var benchBase = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

// benchRequest is a request as the broker leaves it: a realistic body and
// history for its state.
func benchRequest(id string, st access.State, i int) *access.Request {
	at := benchBase.Add(time.Duration(i) * time.Second)
	r := &access.Request{
		ID: id, Source: access.SourceEvents, State: st,
		Requester:    fmt.Sprintf("5e5e0000-0000-4000-8000-%012d", i%500),
		RequesterUPN: fmt.Sprintf("user%03d@example.test", i%500),
		Profile:      []string{"aks-admin", "sql-reader", "kv-officer"}[i%3],
		GroupID:      "9a9a0000-0000-4000-8000-000000000002",
		Duration:     access.Duration(time.Hour), Justification: "incident " + strconv.Itoa(i), Ticket: "INC-" + strconv.Itoa(i),
		RequestedAt: at, ApprovalsRequired: 1,
		History:  []access.HistoryEntry{{At: at, Type: access.HRequested, Actor: "requester", EventID: "ev-r-" + id}},
		EventIDs: []string{"ev-r-" + id},
	}
	if st == access.Pending {
		r.DueAt = at.Add(24 * time.Hour) // approval timeout
		return r
	}
	r.Approvals = []access.Approval{{Approver: "a1", ApproverUPN: "p01@example.test", At: at.Add(time.Minute)}}
	r.ActivatedAt, r.EndsAt = at.Add(time.Minute), at.Add(61*time.Minute)
	r.History = append(r.History,
		access.HistoryEntry{At: at.Add(time.Minute), Type: access.HApproved, Actor: "p01", EventID: "ev-a-" + id},
		access.HistoryEntry{At: at.Add(time.Minute), Type: access.HActivated, Actor: access.System})
	r.EventIDs = append(r.EventIDs, "ev-a-"+id)
	if st == access.Active {
		r.DueAt = r.EndsAt
		return r
	}
	r.EndedAt = r.EndsAt
	r.History = append(r.History, access.HistoryEntry{At: r.EndsAt, Type: access.HExpired, Actor: access.System})
	return r
}

// fill saves n requests of state st through SaveRequest with 16 workers.
func fill(b *testing.B, s *tablestore.Store, prefix string, st access.State, n int) {
	b.Helper()
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				r := benchRequest(fmt.Sprintf("%s-%07d", prefix, i), st, i)
				var err error
				for try := 0; try < 5; try++ {
					if err = s.SaveRequest(ctx, r); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
					if _, gerr := s.GetRequest(ctx, r.ID); gerr == nil {
						err = nil // an earlier try went through
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
		b.Fatalf("fill %s: %v", st, err)
	}
}

// BenchmarkListActive measures listing the open work (100 active, 20
// pending) while N ended requests lie in the same tables: the cost must
// follow what is open, not what ever ended (docs/design.md, The read API, issue 5). Run with
// make bench-listing.
func BenchmarkListActive(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run("ended="+strconv.Itoa(n), func(b *testing.B) {
			s := open(b, tablestore.Options{})
			start := time.Now()
			fill(b, s, "r5", access.Expired, n)
			fill(b, s, "r1", access.Active, benchActive)
			fill(b, s, "r3", access.Pending, benchPending)
			b.Logf("stored %d ended + %d active + %d pending in %v", n, benchActive, benchPending, time.Since(start).Round(time.Millisecond))
			for _, c := range []struct {
				name string
				f    broker.ListFilter
				want int
			}{
				{"active", broker.ListFilter{State: access.Active, Limit: 200}, benchActive},
				{"pending", broker.ListFilter{State: access.Pending}, benchPending},
			} {
				b.Run(c.name, func(b *testing.B) {
					ctx := context.Background()
					before := roundTrips(b, s)
					b.ResetTimer()
					for range b.N {
						page, err := s.ListRequests(ctx, c.f)
						if err != nil {
							b.Fatal(err)
						}
						if len(page.Items) != c.want || page.Next != "" {
							b.Fatalf("listed %d (next %q), want %d", len(page.Items), page.Next, c.want)
						}
					}
					b.StopTimer()
					b.ReportMetric(float64(roundTrips(b, s)-before)/float64(b.N), "roundtrips/op")
				})
			}
		})
	}
}
