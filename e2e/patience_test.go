package e2e

import (
	"io"
	"net"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// switchProxy forwards TCP to target while up; while down it refuses
// (accepts and closes at once) and has cut every open connection.
type switchProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	go p.serve()
	return p
}

func (p *switchProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *switchProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		if !down {
			p.conns[c] = true
		}
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *switchProxy) pipe(c net.Conn) {
	defer func() { p.mu.Lock(); delete(p.conns, c); p.mu.Unlock(); c.Close() }()
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
	<-done
}

func (p *switchProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

var tableEndpoint = regexp.MustCompile(`(TableEndpoint=http://127\.0\.0\.1:)(\d+)`)

// TestRedeliveryPatienceKeepsEventsThroughAnOutage: Table Storage goes away
// for a few seconds while a request event arrives. The host redelivers at
// once and would dead-letter after maxDeliveryCount (5 here, 100 ms apart).
// With JIT_REDELIVERY_PATIENCE the second delivery waits the outage out
// inside the invocation and the event is applied; without it, the event is
// dead-lettered — the control that shows the test can fail.
func TestRedeliveryPatienceKeepsEventsThroughAnOutage(t *testing.T) {
	for _, tc := range []struct {
		patience   string
		deadLetter bool
	}{{"PT30S", false}, {"PT0S", true}} {
		t.Run("patience "+tc.patience, func(t *testing.T) {
			e := newEnv(t)
			m := tableEndpoint.FindStringSubmatch(e.tables)
			if m == nil {
				t.Fatalf("no table endpoint in %q", e.tables)
			}
			proxy := newSwitchProxy(t, "127.0.0.1:"+m[2])
			e.kill()
			e.vars["JIT_TABLES_CONNECTION_STRING"] = tableEndpoint.ReplaceAllString(e.tables, "${1}"+strconv.Itoa(proxy.port()))
			e.vars["JIT_REDELIVERY_PATIENCE"] = tc.patience
			e.start()

			proxy.setDown(true)
			id := "patience-" + tc.patience
			e.host.Enqueue(e.build(access.TypeRequested, request(id, seed.UserN01, "PT1H")))
			// Storage comes back after 3 s: longer than the host's 5
			// deliveries take, far shorter than the patience.
			time.AfterFunc(3*time.Second, func() { proxy.setDown(false) })
			e.waitIdle()
			dead := len(e.host.DeadLetters())
			if tc.deadLetter {
				if dead != 1 {
					t.Fatalf("without patience: %d dead letters, want 1 (the control)", dead)
				}
				return
			}
			if dead != 0 {
				t.Fatalf("dead-lettered despite the patience: %+v", e.host.DeadLetters())
			}
			if v := e.mustGet(id); v.State != "pending" {
				t.Fatalf("state %s, want pending", v.State)
			}
		})
	}
}
