package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// floodIDLen is the length of the flood's CloudEvent ids: the longest the
// decoder accepts (maxCloudEventAttr in internal/access/event.go).
const floodIDLen = 256

// floodID is the CloudEvent id of the i-th flood event. Four in five are
// floodIDLen bytes, padded with '<', which encoding/json stores as \u003c —
// six bytes for one — so that each weighs as much as an id can in a stored
// request (about 1,400 bytes: 400 of them weigh as much as 2,100 ids of 256
// letters). Every fifth is short (about 20 bytes), as a sender would send to
// fill the room the long ones leave: a request without bounds is then full
// to a few bytes, with no room for its end.
func floodID(i int) string {
	if i%5 == 4 {
		return fmt.Sprintf("flood-short-%06d", i)
	}
	p := fmt.Sprintf("flood-%06d-", i)
	return p + strings.Repeat("<", floodIDLen-len(p))
}

// TestFloodedGrantEndsOnTime: a sender floods one active grant with invalid
// events (JIT_FLOOD_EVENTS, default 2,000): valid JSON CloudEvents for its
// requestId — an approval whose approver is a number — each with its own
// CloudEvent id, most of them of the longest length the decoder accepts and
// the heaviest to store (floodID), delivered as Service Bus would through
// the host stand-in (JIT_FLOOD_CONCURRENCY concurrent deliveries, default
// 2; host.json's maxConcurrentCalls is 8, but deliveries to one request
// race for its compare-and-swap, so more of them is no faster, and without
// bounds much slower). Each must be acknowledged, never dead-lettered, and
// recorded as rejected (docs/design.md, rule 7). Nothing a sender controls may
// grow a request without bound (docs/design.md, real directory rule 4): once the grant is due, one sweep
// must end it — state expired, the member removed from aks-admin, the
// sessions revoked exactly once — and the scheduled jit.access.expire,
// arriving after, changes nothing.
//
// The grant lasts JIT_FLOOD_DURATION (ISO 8601, default PT25S), meant to
// outlast the flood (2,000 events: about 18 s on two cores); when the flood
// takes longer, the end is checked right after it (no sweep ran in between,
// so it is the same test).
//
// Without bounds, each delivery loads and saves everything the flood has
// stored on the request (the remembered ids, every history entry), so it
// costs more the more came before, and once the request is full every
// rejection fails and is redelivered until dead-lettered: against the
// binary of 2026-12-03 (fa4ae64) 2,000 events at host.json's concurrency
// took 10.5 minutes. The flood
// is given two minutes per 2,000 events; past that the test fails and
// checks the end with the flood still under way.
func TestFloodedGrantEndsOnTime(t *testing.T) {
	n := envInt("JIT_FLOOD_EVENTS", 2000)
	conc := envInt("JIT_FLOOD_CONCURRENCY", 2)
	dur := "PT25S"
	if v := os.Getenv("JIT_FLOOD_DURATION"); v != "" {
		dur = v
	}
	e := newEnv(t)
	e.kill()
	e.vars["JIT_LOG_LEVEL"] = "info"
	e.hostConcurrency = conc
	e.start()

	const id = "flood-1"
	e.send(access.TypeRequested, request(id, seed.UPN("n01"), dur))
	e.send(access.TypeApproved, map[string]string{"requestId": id, "approver": seed.UPN("p01"), "comment": "ok"})
	v := e.mustGet(id)
	if v.State != "active" || !e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatalf("setup: %s %v, member %v", v.State, v.types(), e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01))
	}
	endsAt, err := time.Parse(time.RFC3339Nano, v.EndsAt)
	if err != nil {
		t.Fatalf("endsAt %q: %v", v.EndsAt, err)
	}
	okBefore, failBefore := e.invocations()

	// The flood: every event names the grant and is rejected (the approver
	// must be a string); every id is new, so none is a duplicate.
	start := time.Now()
	for i := range n {
		e.host.Enqueue(hxEvent(access.TypeApproved, map[string]any{"requestId": id, "approver": 7, "comment": "flood"},
			map[string]any{"id": floodID(i), "source": "/e2e/flood"}))
	}
	// A bounded wait: a binary that answers the flood with failures has it
	// redelivered until dead-lettered, which takes many minutes; the end is
	// then checked with the flood still under way.
	budget := 2 * time.Minute * time.Duration(max(1, n/2000))
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	stop := every(30*time.Second, func() {
		ok, failed := e.invocations()
		t.Logf("flood: %d answers 200, %d failed, after %v", ok-okBefore, failed-failBefore, time.Since(start).Round(time.Second))
	})
	delivered := e.host.WaitIdle(ctx) == nil
	stop()
	if !delivered {
		t.Errorf("the flood was not delivered within %v", budget)
	}
	flood := time.Since(start)
	var ok, failed int // the binary logs each answer just after giving it
	for deadline := time.Now().Add(5 * time.Second); delivered; time.Sleep(20 * time.Millisecond) {
		ok, failed = e.invocations()
		ok, failed = ok-okBefore, failed-failBefore
		if ok >= n || time.Now().After(deadline) {
			break
		}
	}
	if !delivered {
		ok, failed = e.invocations()
		ok, failed = ok-okBefore, failed-failBefore
	}
	t.Logf("flood: %d events, %s concurrent deliveries, delivered %v: %v (%.0f/s); %d answers 200, %d failed (redelivered)",
		n, concName(conc), delivered, flood.Round(time.Millisecond), float64(ok)/flood.Seconds(), ok, failed)
	if dl := e.host.DeadLetters(); len(dl) != 0 {
		t.Errorf("%d of %d flood events dead-lettered; first: %s", len(dl), n, dl[0].Reason)
	}
	if ok != n {
		t.Errorf("%d of %d flood events acknowledged", ok, n)
	}
	if v, code := e.get(id); code != 200 || v.State != "active" || v.has("rejected") == 0 {
		t.Errorf("after the flood: GET %d, state %s, %d rejected entries", code, v.State, v.has("rejected"))
	}
	if left := time.Until(endsAt); left < 0 {
		t.Logf("the flood outlasted the grant (%s) by %v; no sweep ran in between", dur, (-left).Round(time.Millisecond))
	}

	// Due: one sweep must end the grant (the backstop; the only way when no
	// Service Bus is configured or the expire message did not come). Then
	// the scheduled expire message arrives, as Service Bus would deliver it:
	// a no-op.
	time.Sleep(time.Until(endsAt) + 50*time.Millisecond)
	due := time.Now()
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	defer scancel()
	if err := e.host.FireTimer(sctx, "ExpirySweep"); err != nil {
		t.Errorf("the sweep: %v", err)
	}
	v = e.mustGet(id)
	member := e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01)
	revoked := e.graph.RevokeCount(seed.UserN01)
	if v.State != "expired" || member || revoked != 1 {
		t.Errorf("one sweep after endsAt (%s): state %s, member of aks-admin %v, sessions revoked %d times; want expired, false, 1\nlast history: %v\nthe binary's warnings:\n%s",
			v.EndsAt, v.State, member, revoked, lastTypes(v, 4), e.warnings(5))
	} else if ended, _ := time.Parse(time.RFC3339Nano, v.EndedAt); ended.Before(endsAt) || ended.Sub(due) > 10*time.Second {
		t.Errorf("ended at %s: endsAt %s, due since %s", v.EndedAt, v.EndsAt, due.UTC().Format(time.RFC3339Nano))
	}
	if delivered && v.State == "expired" {
		e.send(access.TypeExpire, map[string]string{"requestId": id})
		if n := e.graph.RevokeCount(seed.UserN01); n != 1 || e.mustGet(id).State != "expired" {
			t.Errorf("the expire message after the end: sessions revoked %d times", n)
		}
	}
	if dl := e.host.DeadLetters(); len(dl) != 0 {
		t.Errorf("%d dead letters in all", len(dl))
	}
}

func lastTypes(v view, k int) []string {
	ts := v.types()
	if len(ts) > k {
		ts = ts[len(ts)-k:]
	}
	return ts
}

// warnings returns the binary's last k warning or error log lines, each
// reduced to its message, error kind and error, and how often it came.
func (e *env) warnings(k int) string {
	var out []string
	counts := map[string]int{}
	for _, l := range e.logLines() {
		if lv, _ := l["level"].(string); lv != "WARN" && lv != "ERROR" {
			continue
		}
		s := fmt.Sprintf("%v %v %v: %v", l["level"], l["msg"], l["errorKind"], l["error"])
		if counts[s] == 0 {
			out = append(out, s)
		}
		counts[s]++
	}
	if len(out) > k {
		out = out[len(out)-k:]
	}
	for i, s := range out {
		out[i] = fmt.Sprintf("%s (×%d)", s, counts[s])
	}
	return strings.Join(out, "\n")
}

// every runs f every d until stop is called.
func every(d time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(d)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				f()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func concName(c int) string {
	if c == 0 {
		return "host.json's maxConcurrentCalls"
	}
	return fmt.Sprint(c)
}
