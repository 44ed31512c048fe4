package simkit

import (
	"sync"
	"time"
)

// What tests of a simulator use: a clock they set (for Options.Now) and
// the checks of reads that lag (Replicas).

// Clock is a clock a test moves by hand; safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the time the clock shows.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Reads asks read n times and returns the answers in order.
func Reads(n int, read func() bool) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = read()
	}
	return out
}

// Count is how many of bs are v.
func Count(bs []bool, v bool) int {
	n := 0
	for _, b := range bs {
		if b == v {
			n++
		}
	}
	return n
}

// WentBack reports whether a read showed the old state (!now) right after
// one that showed the new state (now): replicas without session affinity.
func WentBack(bs []bool, now bool) bool {
	for i := 1; i < len(bs); i++ {
		if bs[i-1] == now && bs[i] != now {
			return true
		}
	}
	return false
}
