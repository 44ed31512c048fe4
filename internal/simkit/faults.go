package simkit

import (
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// The kinds of injected fault, as a simulator records them in a call's
// Fault.
const (
	FaultFail  = "fail"  // answered with an error status and body
	FaultReset = "reset" // the connection reset, no answer
	FaultDelay = "delay" // answered late (Faults.Delay)
	FaultLose  = "lose"  // served, and its answer replaced by an error or a reset
)

// Rule is one injected fault. What Status, Code and Message mean for the
// answer is up to the simulator (its error shape and texts).
type Rule struct {
	Kind          string // FaultFail, FaultReset or FaultLose; FaultDelay for Faults.Delay's
	Status        int    // FaultFail, FaultLose: the answer's status (FaultLose: 0 is a reset)
	Code, Message string
	RetryAfter    time.Duration // FaultFail: the Retry-After to send
	Delay         time.Duration // FaultDelay: how long

	method, path string // path: lower-case substring of the call's path
	n            int    // remaining uses; <0 forever
}

func (r *Rule) matches(method, path string) bool {
	if r.n == 0 {
		return false
	}
	if r.method != "" && r.method != method {
		return false
	}
	return strings.Contains(strings.ToLower(path), r.path)
}

var methods = []string{"GET", "PUT", "DELETE", "POST", "PATCH"}

// ParseMatch reads a fault's match, "[METHOD ]substring": an optional
// method (or "*": any) and a case-insensitive substring of the call's
// path. A lone method, "*" or "" match every path. It returns the method
// in upper case ("" for any) and the substring in lower case.
func ParseMatch(match string) (method, path string) {
	match = strings.TrimSpace(match)
	up := strings.ToUpper(match)
	if up == "*" {
		return "", ""
	}
	if slices.Contains(methods, up) {
		return up, ""
	}
	if i := strings.IndexByte(match, ' '); i > 0 {
		m := strings.ToUpper(match[:i])
		if m == "*" || slices.Contains(methods, m) {
			if m == "*" {
				m = ""
			}
			return m, strings.ToLower(strings.TrimSpace(match[i+1:]))
		}
	}
	return "", strings.ToLower(match)
}

// Faults are the faults injected into a simulator, tried in the order
// added. The zero Faults injects none; it is safe for concurrent use.
type Faults struct {
	mu    sync.Mutex
	rules []*Rule
}

// Add injects r into the next n calls that match (ParseMatch); n < 0:
// every matching call until Clear.
func (f *Faults) Add(match string, n int, r Rule) {
	r.method, r.path = ParseMatch(match)
	r.n = n
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &r)
}

// Delay makes every matching call wait d before it is answered. A later
// Delay for the same match replaces it; d == 0 removes it.
func (f *Faults) Delay(match string, d time.Duration) {
	m, p := ParseMatch(match)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = slices.DeleteFunc(f.rules, func(r *Rule) bool {
		return r.Kind == FaultDelay && r.method == m && r.path == p
	})
	if d > 0 {
		f.rules = append(f.rules, &Rule{Kind: FaultDelay, Delay: d, method: m, path: p, n: -1})
	}
}

// Clear removes every injected fault and delay.
func (f *Faults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// Pick is what a call (method, decoded path) meets: the longest delay that
// matches it, and the first other rule that matches (nil: none), one use
// of which it consumes.
func (f *Faults) Pick(method, path string) (time.Duration, *Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var d time.Duration
	var hit *Rule
	for _, r := range f.rules {
		if !r.matches(method, path) {
			continue
		}
		if r.Kind == FaultDelay {
			d = max(d, r.Delay)
			continue
		}
		if hit == nil {
			if r.n > 0 {
				r.n--
			}
			cp := *r
			hit = &cp
		}
	}
	f.rules = slices.DeleteFunc(f.rules, func(r *Rule) bool { return r.n == 0 })
	return d, hit
}

// ResetConn ends the call with a TCP reset and no answer.
func ResetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST instead of FIN
	}
	_ = conn.Close()
}
