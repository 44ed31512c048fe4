package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/cli"
	"github.com/jitaccess/jitaccess/internal/devhost"
)

// The sandbox's scheduler draws a new random id at each scheduling, and its
// queue (the host stand-in, with duplicate detection as the deployment's
// queue has it) delivers the expire message even when a sender sent a
// message first under the id jitaccess used to derive from the request id
// and endsAt, both readable by senders (docs/design.md, real directory rule 4).
func TestDevhostSchedulerIDsCannotBeGuessed(t *testing.T) {
	var mu sync.Mutex
	var ids []string // CloudEvent ids delivered to AccessRequests
	handler := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/AccessRequests" {
			var env struct{ Data struct{ Message string } }
			b, _ := io.ReadAll(r.Body)
			var body string
			if json.Unmarshal(b, &env) == nil && json.Unmarshal([]byte(env.Data.Message), &body) == nil {
				if ev, err := access.DecodeEvent([]byte(body)); err == nil {
					mu.Lock()
					ids = append(ids, ev.ID)
					mu.Unlock()
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"Outputs":{},"Logs":[],"ReturnValue":null}`)
	}))
	defer handler.Close()
	host, err := devhost.New(devhost.Options{Dir: repoRoot, HandlerURL: handler.URL, Addr: "127.0.0.1:0",
		Settings: map[string]string{"JIT_SWEEP_SCHEDULE": "0 0 0 1 1 *"}, Logger: slog.New(slog.DiscardHandler),
		DuplicateDetectionWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); host.Wait() }()
	if err := host.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const req = "sbx-1"
	at := time.Now().Add(100 * time.Millisecond)
	guess := "expire-" + req + "-" + at.UTC().Format("20060102T150405.000000000")
	forged, err := cli.BuildEvent(guess, access.TypeExpire, "/sender", time.Now(), map[string]string{"requestId": req})
	if err != nil {
		t.Fatal(err)
	}
	host.Enqueue(forged)

	s := devhostScheduler{host: func() *devhost.Host { return host }}
	seq1, id1, err1 := s.ScheduleExpire(ctx, req, at)
	seq2, id2, err2 := s.ScheduleExpire(ctx, req, at)
	if err1 != nil || err2 != nil || seq1 == seq2 || id1 == "" || id1 == id2 {
		t.Fatalf("two schedulings: (%d %q %v), (%d %q %v)", seq1, id1, err1, seq2, id2, err2)
	}
	for _, id := range []string{id1, id2} {
		for _, k := range []string{req, at.UTC().Format("20060102T150405"), at.UTC().Format("20060102")} {
			if strings.Contains(id, k) {
				t.Fatalf("message id %q contains %q", id, k)
			}
		}
	}
	if d := host.Duplicates(); len(d) != 0 {
		t.Fatalf("dropped as duplicates: %v", d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := strings.Join(ids, " ")
		mu.Unlock()
		if strings.Contains(got, id1) && strings.Contains(got, id2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %q; want the forged event and both scheduled ones (%s, %s)", got, id1, id2)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
