// Package proof holds the reliability suites; all of it is tests. The
// invariant checker (invariants_test.go, Check), run after every run of the
// delivery model checker and of the races on one request, compares what
// the store says (requests with their history, ledgers) with what the
// simulated tenant really has (direct memberships, the log of Graph writes)
// against the rules (docs/design.md, The rules).
package proof
