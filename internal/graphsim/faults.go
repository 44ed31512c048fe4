package graphsim

import (
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Injected faults: failures, resets and delays matched by method and path
// (FailNext, FailNextWith, ResetNext, Delay, ClearFaults).

type rule struct {
	method, path string // path: case-insensitive substring of Call.Path
	n            int    // remaining uses; <0 forever
	kind         string // "fail", "reset", "delay"
	status       int
	code, msg    string
	retryAfter   time.Duration
	delay        time.Duration
}

func parseMatch(match string) (method, path string) {
	match = strings.TrimSpace(match)
	switch up := strings.ToUpper(match); up {
	case "GET", "POST", "DELETE", "PATCH", "PUT":
		return up, ""
	case "*":
		return "", ""
	}
	if i := strings.IndexByte(match, ' '); i > 0 {
		m := strings.ToUpper(match[:i])
		switch m {
		case "GET", "POST", "DELETE", "PATCH", "PUT", "*":
			if m == "*" {
				m = ""
			}
			return m, strings.ToLower(strings.TrimSpace(match[i+1:]))
		}
	}
	return "", strings.ToLower(match)
}

func (r *rule) matches(method, path string) bool {
	if r.n == 0 {
		return false
	}
	if r.method != "" && r.method != method {
		return false
	}
	return strings.Contains(strings.ToLower(path), r.path)
}

// FailNext makes the next n calls matching match fail with status and a
// Graph error body; retryAfter > 0 adds a Retry-After header (whole seconds,
// rounded up). match is "[METHOD ]substring": an optional method (or "*")
// and a case-insensitive substring of the decoded path below /v1.0, e.g.
// "POST /checkMemberGroups", "/members/$ref", "DELETE" (every DELETE), ""
// (every call). Rules are tried in the order added. n < 0 means
// every matching call until ClearFaults.
func (s *Sim) FailNext(match string, n, status int, retryAfter time.Duration) {
	code, msg := errorText(status)
	s.FailNextWith(match, n, status, code, msg, retryAfter)
}

// FailNextWith is FailNext with an explicit Graph error code and message.
func (s *Sim) FailNextWith(match string, n, status int, code, message string, retryAfter time.Duration) {
	m, p := parseMatch(match)
	s.addRule(&rule{method: m, path: p, n: n, kind: "fail", status: status, code: code, msg: message, retryAfter: retryAfter})
}

// ResetNext makes the next n matching calls end with a TCP reset and no
// answer (n < 0: every matching call).
func (s *Sim) ResetNext(match string, n int) {
	m, p := parseMatch(match)
	s.addRule(&rule{method: m, path: p, n: n, kind: "reset"})
}

// Delay makes every matching call wait d before it is answered (or until the
// client gives up). A later Delay for the same match replaces it; d == 0
// removes it.
func (s *Sim) Delay(match string, d time.Duration) {
	m, p := parseMatch(match)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = slices.DeleteFunc(s.rules, func(r *rule) bool {
		return r.kind == "delay" && r.method == m && r.path == p
	})
	if d > 0 {
		s.rules = append(s.rules, &rule{method: m, path: p, n: -1, kind: "delay", delay: d})
	}
}

// ClearFaults removes every injected failure, reset and delay.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

func (s *Sim) addRule(r *rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, r)
}

// pick returns the delay to apply and the first fail/reset rule that
// matches, consuming one use of it.
func (s *Sim) pick(method, path string) (time.Duration, *rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d time.Duration
	var hit *rule
	for _, r := range s.rules {
		if !r.matches(method, path) {
			continue
		}
		if r.kind == "delay" {
			d = max(d, r.delay)
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
	s.rules = slices.DeleteFunc(s.rules, func(r *rule) bool { return r.n == 0 })
	return d, hit
}

func resetConn(w http.ResponseWriter) {
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
