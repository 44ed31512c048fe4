package graphsim

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// The call log: every request is recorded (Calls, CallsTo), its status
// filled in before the answer leaves.

// Call is one recorded request.
type Call struct {
	Method string
	// Path is the decoded path below BasePath, e.g. "/users/{id}/checkMemberGroups".
	Path string
	// RawPath is the path as sent (escaped), including BasePath.
	RawPath         string
	Query           string // raw query string
	Time            time.Time
	Status          int    // 0 when the connection was reset
	Fault           string // "", "fail", "reset", "delay" or "quota" (throttled by SetQuota)
	ContentEncoding string
	// ResourceUnits and WriteUnits are what the call was charged against
	// the quota (SetQuota; 0 without one, and off the metered paths).
	ResourceUnits, WriteUnits int
	// Body is the request body as received on the wire (before any gzip
	// decoding); nil when empty. Kept in memory for tests only, never logged.
	Body []byte
}

// Calls returns a copy of every recorded call, oldest first.
func (s *Sim) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the recorded calls with the given method ("" = any) whose
// decoded path ends with pathSuffix (case-insensitive).
func (s *Sim) CallsTo(method, pathSuffix string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	suf := strings.ToLower(pathSuffix)
	for _, c := range s.calls {
		if (method == "" || strings.EqualFold(method, c.Method)) && strings.HasSuffix(strings.ToLower(c.Path), suf) {
			out = append(out, c)
		}
	}
	return out
}

// CountCalls is len(CallsTo(method, pathSuffix)).
func (s *Sim) CountCalls(method, pathSuffix string) int { return len(s.CallsTo(method, pathSuffix)) }

// ResetCalls forgets the recorded calls.
func (s *Sim) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callBase += len(s.calls)
	s.calls = nil
}

// record appends c and returns its index (counting forgotten calls).
func (s *Sim) record(c Call) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	return s.callBase + len(s.calls) - 1
}

func (s *Sim) setStatus(idx, status int, fault string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := idx - s.callBase
	if i < 0 || i >= len(s.calls) {
		return // forgotten by ResetCalls while the call ran
	}
	s.calls[i].Status = status
	if fault != "" {
		s.calls[i].Fault = fault
	}
}

// statusWriter records the status in the call record before the answer
// leaves, so a client never sees an answer whose record is not complete.
type statusWriter struct {
	http.ResponseWriter
	s      *Sim
	idx    int
	fault  string
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.s.setStatus(w.idx, code, w.fault)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}
