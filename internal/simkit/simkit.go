// Package simkit is the plumbing the in-process HTTP simulators share:
// internal/graphsim (Microsoft Graph) and internal/armsim (Azure Resource
// Manager role assignments). It serves a simulator and closes it (Server),
// keeps the log of the calls it was sent (Log, StatusWriter), keeps and
// matches the faults tests inject (Faults, ParseMatch, ResetConn), lets
// reads lag behind writes like a replicated store (Replicas, Overlay;
// docs/design.md, The real directory), throttles with token buckets
// (TokenBucket) and writes the JSON answers (WriteJSON, SetRetryAfter,
// NewID). For their tests: a clock to move by hand (Clock) and the checks
// of lagging reads (Reads, Count, WentBack). It knows nothing of the APIs
// the simulators speak: their paths, state, error shapes and texts, and
// what their throttles charge, stay with them.
//
// It is for tests and the sandbox only: the deployed binary does not link
// it (the root package's main_test.go checks).
package simkit
