package graphsim

import (
	"strings"
	"time"
)

// The call log: every request is recorded (Calls, CallsTo) in a
// simkit.Log, its status filled in before the answer leaves
// (simkit.StatusWriter).

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
func (s *Sim) Calls() []Call { return s.log.All() }

// CallsTo returns the recorded calls with the given method ("" = any) whose
// decoded path ends with pathSuffix (case-insensitive).
func (s *Sim) CallsTo(method, pathSuffix string) []Call {
	suf := strings.ToLower(pathSuffix)
	return s.log.Select(func(c Call) bool {
		return (method == "" || strings.EqualFold(method, c.Method)) && strings.HasSuffix(strings.ToLower(c.Path), suf)
	})
}

// CountCalls is len(CallsTo(method, pathSuffix)).
func (s *Sim) CountCalls(method, pathSuffix string) int { return len(s.CallsTo(method, pathSuffix)) }

// ResetCalls forgets the recorded calls.
func (s *Sim) ResetCalls() { s.log.Reset() }

// setStatus records the answer's status of call idx (0: the connection was
// reset) and the fault it came from ("": leave it).
func (s *Sim) setStatus(idx, status int, fault string) {
	s.log.Update(idx, func(c *Call) {
		c.Status = status
		if fault != "" {
			c.Fault = fault
		}
	})
}
