package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/handlers"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/devhost"
	"github.com/jitaccess/jitaccess/internal/graph"
	"github.com/jitaccess/jitaccess/internal/memstore"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// serve runs h with handlers.ServeListener (the binary's HTTP stack) and
// returns its base URL.
func serve(b *testing.B, h http.Handler) string {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = handlers.ServeListener(ctx, ln, h); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

// echoHandler is the floor: it reads the invocation and answers the same
// custom-handler response, doing nothing else.
var echoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"Outputs":{},"Logs":[],"ReturnValue":null}`))
})

// accessRequestsHandler is handlers.New over a broker with the in-memory
// store and the real Graph client against the in-process Graph simulator.
func accessRequestsHandler(b *testing.B, dir broker.Directory) http.Handler {
	store := memstore.New()
	brk := broker.New(store, dir, benchProfiles(b), broker.SystemClock{}, broker.Options{Logger: quietLogger()})
	return handlers.New(handlers.Deps{
		Events: brk, Sweeper: brk, Store: store, Logger: quietLogger(),
	})
}

// invocations builds n POST /AccessRequests payloads, as the Functions host
// sends them: a new request (one approval needed, so it stays pending) from
// one of the users each.
func invocations(b *testing.B, ten *tenant, n int) [][]byte {
	out := make([][]byte, n)
	run := time.Now().UnixNano()
	for i := range n {
		id := fmt.Sprintf("hc-%d-%d", run, i)
		body := requested(b, id, ten.users[i%len(ten.users)], "aks-admin", "PT1H")
		out[i] = devhost.ServiceBusPayload("AccessRequests", "message", "bench.servicebus.windows.net",
			devhost.Message{MessageID: id, SequenceNumber: int64(i + 1), Body: body, EnqueuedTime: time.Now()}, time.Now())
	}
	return out
}

// drive posts the payloads to url with c concurrent clients and returns the
// wall time.
func drive(b *testing.B, client *http.Client, url string, payloads [][]byte, c int) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(payloads) {
					return
				}
				res, err := client.Post(url, "application/json", bytes.NewReader(payloads[i]))
				if err != nil {
					failed.Store(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					failed.Store(fmt.Errorf("status %d", res.StatusCode))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkHandlerCost measures invocations/s of POST /AccessRequests
// through handlers.New against an echo handler on the same HTTP stack, at
// concurrency 1, 4 and 16, in the same run, alternating chunks of 100 so
// that the noise of a shared machine falls on both. b.N invocations of each.
func BenchmarkHandlerCost(b *testing.B) {
	ten := newTenant(b, 50)
	echoURL := serve(b, echoHandler) + "/AccessRequests"
	appURL := serve(b, accessRequestsHandler(b, ten.dir)) + "/AccessRequests"
	// The same handler with an in-memory directory (no Graph round trips):
	// what the handler costs apart from Graph.
	fake := brokertest.NewDir()
	for _, u := range ten.users {
		fake.AddUser(broker.User{ID: u, UPN: u, Enabled: true})
		fake.SetMember(seed.GroupAKSDefault, u)
	}
	noGraphURL := serve(b, accessRequestsHandler(b, fake)) + "/AccessRequests"
	// The real Graph client against the simulator called in process (its
	// http.Handler as the client's transport: no sockets), as the issue's
	// "in-process Graph simulator" reads.
	inproc, err := graph.New(ten.cred, graph.Options{BaseURL: ten.sim.BaseURL(),
		HTTPClient: &http.Client{Transport: handlerTransport{ten.sim.Handler()}}})
	if err != nil {
		b.Fatal(err)
	}
	inprocURL := serve(b, accessRequestsHandler(b, inproc)) + "/AccessRequests"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute}
	for _, c := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			payloads := invocations(b, ten, b.N)
			const chunk = 100
			var tEcho, tApp, tNoGraph, tInproc time.Duration
			b.ResetTimer()
			for lo := 0; lo < b.N; lo += chunk {
				hi := min(lo+chunk, b.N)
				tEcho += drive(b, client, echoURL, payloads[lo:hi], c)
				tApp += drive(b, client, appURL, payloads[lo:hi], c)
				tNoGraph += drive(b, client, noGraphURL, payloads[lo:hi], c)
			}
			// A second set of requests (ids differ) for the in-process run.
			payloads2 := invocations(b, ten, b.N)
			for lo := 0; lo < b.N; lo += chunk {
				hi := min(lo+chunk, b.N)
				tEcho += drive(b, client, echoURL, payloads2[lo:hi], c)
				tInproc += drive(b, client, inprocURL, payloads2[lo:hi], c)
			}
			b.StopTimer()
			echoRate := float64(2*b.N) / tEcho.Seconds()
			appRate := float64(b.N) / tApp.Seconds()
			b.ReportMetric(echoRate, "echo-inv/s")
			b.ReportMetric(appRate, "handler-inv/s")
			b.ReportMetric(appRate/echoRate, "ratio")
			noGraphRate := float64(b.N) / tNoGraph.Seconds()
			b.ReportMetric(noGraphRate, "nograph-inv/s")
			b.ReportMetric(noGraphRate/echoRate, "nograph-ratio")
			inprocRate := float64(b.N) / tInproc.Seconds()
			b.ReportMetric(inprocRate, "inproc-inv/s")
			b.ReportMetric(inprocRate/echoRate, "inproc-ratio")
		})
	}
}

// handlerTransport serves HTTP requests by calling h in process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	if r.Body == nil {
		r = r.Clone(r.Context())
		r.Body = http.NoBody // a server request always has a body
	}
	t.h.ServeHTTP(rec, r)
	res := rec.Result()
	res.Request = r
	return res, nil
}

// BenchmarkAccessRequestsHotPath is the handler alone at concurrency 4, for
// the CPU profile (make bench-profile).
func BenchmarkAccessRequestsHotPath(b *testing.B) {
	ten := newTenant(b, 50)
	appURL := serve(b, accessRequestsHandler(b, ten.dir)) + "/AccessRequests"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute}
	payloads := invocations(b, ten, b.N)
	b.ResetTimer()
	d := drive(b, client, appURL, payloads, 4)
	b.ReportMetric(float64(b.N)/d.Seconds(), "inv/s")
}

// BenchmarkAccessRequestsNoGraph: the same as BenchmarkAccessRequestsHotPath
// with an in-memory directory, for a CPU profile of the handler's own work
// (make bench-profile-nograph).
func BenchmarkAccessRequestsNoGraph(b *testing.B) {
	ten := newTenant(b, 50)
	fake := brokertest.NewDir()
	for _, u := range ten.users {
		fake.AddUser(broker.User{ID: u, UPN: u, Enabled: true})
		fake.SetMember(seed.GroupAKSDefault, u)
	}
	appURL := serve(b, accessRequestsHandler(b, fake)) + "/AccessRequests"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute}
	payloads := invocations(b, ten, b.N)
	b.ResetTimer()
	d := drive(b, client, appURL, payloads, 4)
	b.ReportMetric(float64(b.N)/d.Seconds(), "inv/s")
}
