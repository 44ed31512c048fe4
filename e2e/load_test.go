package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/graphsim"
	"github.com/jitaccess/jitaccess/internal/seed"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func loadUserID(i int) string { return fmt.Sprintf("10ad0000-0000-4000-8000-%012d", i) }

// TestLoadLifecycles runs N whole grants (JIT_LOAD_LIFECYCLES, default 200;
// `make load` runs 10,000) through the built binary with Azurite and the
// Graph simulator on loopback, with the host stand-in delivering at
// JIT_LOAD_CONCURRENCY (default 16): requested → approved (membership added)
// → at endsAt the expire event, as Service Bus's scheduled message would
// deliver it, then the sweep for anything left. Every tenth lifecycle has
// each of its events delivered twice. At the end every request must be
// expired with the exact history, the simulator must have seen exactly N
// membership adds and N removals, every user's sessions revoked, nobody left
// in aks-admin, nothing dead-lettered: zero lost, zero duplicated effects.
// It reports events, answers by outcome, wall time, events/s and the
// binary's peak RSS.
func TestLoadLifecycles(t *testing.T) {
	n := envInt("JIT_LOAD_LIFECYCLES", 200)
	conc := envInt("JIT_LOAD_CONCURRENCY", 16)
	e := newEnv(t)
	for i := range n {
		id := loadUserID(i)
		e.graph.AddUser(graphsim.User{ID: id, UPN: fmt.Sprintf("load%05d@%s", i, seed.Domain), DisplayName: "load", Enabled: true})
		e.graph.AddMember(seed.GroupAKSDefault, id)
	}
	// A profile for the run: approvals may come long after the request (the
	// e2e profile times approvals out after 3 s), grants of 5 s.
	raw, err := os.ReadFile(e.profiles)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string][]map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range doc["profiles"] {
		if p["name"] == "aks-admin" {
			p["approvalTimeout"] = "PT2H"
			p["defaultDuration"] = "PT5S"
		}
	}
	raw, _ = json.Marshal(doc)
	e.profiles = filepath.Join(t.TempDir(), "profiles.json")
	if err := os.WriteFile(e.profiles, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	e.kill()
	e.vars["JIT_LOG_LEVEL"] = "info"
	e.hostConcurrency = conc
	e.start()

	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("load-%d", i)
	}
	events := 0
	enqueue := func(i int, typ string, data map[string]string) {
		body := e.build(typ, data)
		e.host.Enqueue(body)
		events++
		if i%10 == 0 {
			e.host.Enqueue(body) // a duplicate delivery of the same message
			events++
		}
	}
	start := time.Now()
	var busy time.Duration // time spent delivering (the wait for endsAt excluded)
	phase := func(name string, f func()) {
		t0 := time.Now()
		f()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		if err := e.host.WaitIdle(ctx); err != nil {
			t.Fatalf("phase %s: queue not idle: %v", name, err)
		}
		d := time.Since(t0)
		busy += d
		t.Logf("phase %s: %v", name, d.Round(time.Millisecond))
	}
	phase("requested", func() {
		for i, id := range ids {
			enqueue(i, access.TypeRequested, map[string]string{"requestId": id, "requester": loadUserID(i),
				"profile": "aks-admin", "justification": "load run"})
		}
	})
	phase("approved", func() {
		for i, id := range ids {
			enqueue(i, access.TypeApproved, map[string]string{"requestId": id, "approver": seed.UPN("p01")})
		}
	})
	// The grants end 5 s after their activation; the scheduled expire
	// messages arrive then.
	time.Sleep(5500 * time.Millisecond)
	phase("expire", func() {
		for i, id := range ids {
			enqueue(i, access.TypeExpire, map[string]string{"requestId": id})
		}
	})
	sweeps := 0
	for ; sweeps < 50; sweeps++ {
		if e.openCount() == 0 {
			break
		}
		e.sweep()
	}
	wall := time.Since(start)

	// Everything ended exactly once.
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	want := []string{access.HRequested, access.HApproved, access.HActivated, access.HMembershipAdded,
		access.HExpired, access.HMembershipRemoved, access.HSessionsRevoked}
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			v := e.mustGet(id)
			var got []string
			for _, h := range v.types() {
				if h != access.HNote {
					got = append(got, h)
				}
			}
			if v.State != "expired" || !slices.Equal(got, want) {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s: %s %v", id, v.State, got))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	adds, removes := 0, 0
	for _, c := range e.graph.Calls() {
		switch {
		case c.Method == "POST" && strings.HasSuffix(c.Path, "/members/$ref") && c.Status/100 == 2:
			adds++
		case c.Method == "DELETE" && strings.Contains(c.Path, "/members/") && c.Status/100 == 2:
			removes++
		}
	}
	left, unrevoked, revokedTwice := 0, 0, 0
	for i := range n {
		if e.graph.IsDirectMember(seed.GroupAKSAdmin, loadUserID(i)) {
			left++
		}
		switch r := e.graph.RevokeCount(loadUserID(i)); {
		case r == 0:
			unrevoked++
		case r > 1:
			revokedTwice++
		}
	}
	outcomes := e.outcomes()
	hwm, rss := procMemKB(e.proc.cmd.Process.Pid)
	dead := len(e.host.DeadLetters())
	t.Logf("load: %d lifecycles, %d events enqueued (%d duplicates), concurrency %d, %d final sweeps; wall %v, %.0f events/s while delivering; "+
		"answers %v; Graph adds %d, removes %d, users not revoked %d, revoked twice %d, members left %d; dead letters %d; "+
		"wrong end states %d; binary peak RSS %.1f MiB, RSS at end %.1f MiB",
		n, events, events-3*n, conc, sweeps, wall.Round(time.Millisecond), float64(events)/wall.Seconds(),
		outcomes, adds, removes, unrevoked, revokedTwice, left, dead, len(bad), float64(hwm)/1024, float64(rss)/1024)
	if len(bad) > 0 {
		t.Errorf("%d requests did not end exactly once, e.g. %v", len(bad), bad[:min(5, len(bad))])
	}
	if adds != n || removes != n || unrevoked != 0 || left != 0 || dead != 0 {
		t.Errorf("effects: %d adds, %d removes (want %d each), %d users not revoked, %d members left, %d dead letters", adds, removes, n, unrevoked, left, dead)
	}
}

// openCount counts requests not yet ended, through the read API.
func (e *env) openCount() int {
	e.t.Helper()
	total := 0
	for _, st := range []string{"pending", "active", "activating", "ending"} {
		total += len(e.listIDs("state=" + st))
	}
	return total
}

// outcomes counts the binary's invocation answers by function and outcome.
func (e *env) outcomes() map[string]int {
	out := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(e.proc.output()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), `"outcome"`) {
			continue
		}
		var m struct {
			Function string `json:"function"`
			Outcome  string `json:"outcome"`
		}
		if json.Unmarshal(line, &m) == nil && m.Outcome != "" {
			out[m.Function+" "+m.Outcome]++
		}
	}
	return out
}

// procMemKB reads VmHWM (peak) and VmRSS of pid, in KiB.
func procMemKB(pid int) (hwm, rss int) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			switch f[0] {
			case "VmHWM:":
				hwm, _ = strconv.Atoi(f[1])
			case "VmRSS:":
				rss, _ = strconv.Atoi(f[1])
			}
		}
	}
	return hwm, rss
}

// listIDs follows the list API's continuations for query and returns the ids.
func (e *env) listIDs(query string) []string {
	e.t.Helper()
	var ids []string
	cont := ""
	for range 1000 {
		q := query + "&limit=1000"
		if cont != "" {
			q += "&continuation=" + url.QueryEscape(cont)
		}
		code, body := e.listPage(q)
		if code != http.StatusOK {
			e.t.Fatalf("list %s: %d %s", q, code, body)
		}
		var page struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			Continuation string `json:"continuation"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			e.t.Fatalf("list %s: %v", q, err)
		}
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		if cont = page.Continuation; cont == "" {
			break
		}
	}
	return ids
}
