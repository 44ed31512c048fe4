package graphsim

import (
	"time"

	"github.com/jitaccess/jitaccess/internal/simkit"
)

// Injected faults: failures, resets and delays matched by method and path
// (FailNext, FailNextWith, ResetNext, Delay, ClearFaults), kept and matched
// by simkit.Faults; routing.go answers them in Graph's error shape.

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
	s.faults.Add(match, n, simkit.Rule{Kind: simkit.FaultFail, Status: status, Code: code, Message: message, RetryAfter: retryAfter})
}

// ResetNext makes the next n matching calls end with a TCP reset and no
// answer (n < 0: every matching call).
func (s *Sim) ResetNext(match string, n int) {
	s.faults.Add(match, n, simkit.Rule{Kind: simkit.FaultReset})
}

// Delay makes every matching call wait d before it is answered (or until the
// client gives up). A later Delay for the same match replaces it; d == 0
// removes it.
func (s *Sim) Delay(match string, d time.Duration) { s.faults.Delay(match, d) }

// ClearFaults removes every injected failure, reset and delay.
func (s *Sim) ClearFaults() { s.faults.Clear() }
