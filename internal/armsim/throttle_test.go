package armsim

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/simkit"
)

func TestThrottleOffByDefault(t *testing.T) {
	s, c := newSim(t, Options{})
	for range 20 {
		if a := c.must("GET", raPath(cluster, ""), nil); a.status != 200 || a.header.Get("x-ms-ratelimit-remaining-subscription-reads") != "" {
			t.Fatalf("%d %v", a.status, a.header)
		}
	}
	if s.CountThrottled() != 0 {
		t.Fatal("throttled")
	}
}

func TestThrottleWrites(t *testing.T) {
	clk := simkit.NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	s, c := newSim(t, Options{Now: clk.Now})
	s.SetThrottle(Throttle{Writes: Bucket{Size: 3, RefillPerSecond: 0.5}, Reads: Bucket{Size: 100, RefillPerSecond: 10}})
	for i := range 3 {
		a := c.put(cluster, fmt.Sprintf("9f9f0000-0000-5000-8000-%012d", i), fullRole, fmt.Sprintf("0e0e0000-0000-4000-8000-%012d", i))
		if a.status != 201 || a.header.Get("x-ms-ratelimit-remaining-subscription-writes") != strconv.Itoa(2-i) {
			t.Fatalf("write %d: %d %v", i, a.status, a.header)
		}
	}
	a := c.put(cluster, nameA, fullRole, userA)
	if a.status != 429 || a.code() != "SubscriptionRequestsThrottled" || a.header.Get("Retry-After") != "2" ||
		!strings.Contains(a.msg(), "'write' requests for subscription '"+sub+"' actor '"+callerID+"'") {
		t.Fatalf("4th write: %d %v %s", a.status, a.header, a.raw)
	}
	if s.HasAssignment(cluster, roleAdmin, userA) {
		t.Fatal("a throttled PUT was served")
	}
	// Deletes and reads have buckets of their own (deletes unthrottled here).
	if a := c.must("DELETE", raPath(cluster, nameB), nil); a.status != 204 {
		t.Fatalf("delete: %d", a.status)
	}
	if a := c.must("GET", raPath(cluster, ""), nil); a.status != 200 || a.header.Get("x-ms-ratelimit-remaining-subscription-reads") != "99" {
		t.Fatalf("read: %d %v", a.status, a.header)
	}
	// Another caller has a bucket of its own.
	c2 := *c
	c2.token = fakeToken(userB)
	if a := c2.put(cluster, nameA, fullRole, userA); a.status != 201 {
		t.Fatalf("other caller: %d %s", a.status, a.raw)
	}
	// A throttled request takes no token: after Retry-After, one write goes.
	if a := c.put(cluster, nameB, fullRole, userB); a.status != 429 {
		t.Fatalf("still throttled: %d", a.status)
	}
	clk.Add(2 * time.Second)
	if a := c.put(cluster, nameB, fullRole, userB); a.status != 201 {
		t.Fatalf("after waiting: %d %s", a.status, a.raw)
	}
	if a := c.put(cluster, "9c9c0000-0000-5000-8000-000000000003", fullRole, "0e0e0000-0000-4000-8000-0000000000ff"); a.status != 429 {
		t.Fatalf("bucket empty again: %d", a.status)
	}
	if n := s.CountThrottled(); n != 3 {
		t.Fatalf("CountThrottled %d", n)
	}
	s.SetThrottle(Throttle{})
	if a := c.put(cluster, "9c9c0000-0000-5000-8000-000000000003", fullRole, "0e0e0000-0000-4000-8000-0000000000ff"); a.status != 201 {
		t.Fatalf("throttle off: %d", a.status)
	}
}

func TestDocumentedThrottle(t *testing.T) {
	d := DocumentedThrottle()
	if d.Reads != (Bucket{250, 25}) || d.Writes != (Bucket{200, 10}) || d.Deletes != (Bucket{200, 10}) {
		t.Fatalf("%+v", d)
	}
	h := HourlyThrottle()
	if h.Reads.Size != 12000 || h.Writes.Size != 1200 || h.Deletes.Size != 15000 ||
		time.Duration(float64(h.Writes.Size)/h.Writes.RefillPerSecond*float64(time.Second)) != time.Hour {
		t.Fatalf("%+v", h)
	}
	// 200 writes in a burst go, the 201st waits a tenth of a second
	// (Retry-After rounds up to 1s).
	clk := simkit.NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	s, c := newSim(t, Options{Now: clk.Now})
	s.SetThrottle(d)
	for i := range 200 {
		if a := c.must("DELETE", raPath(cluster, fmt.Sprintf("9f9f0000-0000-5000-8000-%012d", i)), nil); a.status != 204 {
			t.Fatalf("delete %d: %d", i, a.status)
		}
	}
	if a := c.must("DELETE", raPath(cluster, nameA), nil); a.status != 429 || a.header.Get("Retry-After") != "1" {
		t.Fatalf("201st: %d %v", a.status, a.header)
	}
	clk.Add(100 * time.Millisecond)
	if a := c.must("DELETE", raPath(cluster, nameA), nil); a.status != 204 {
		t.Fatalf("after refill: %d", a.status)
	}
}
