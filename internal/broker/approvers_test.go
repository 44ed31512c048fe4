package broker_test

import (
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/seed"
)

func newEnvTTL(t *testing.T, ttl time.Duration) *env {
	t.Helper()
	clock := brokertest.NewClock(start)
	e := &env{t: t, ctx: t.Context(), dir: brokertest.NewSeeded(), clock: clock, store: newStore(clock)}
	e.b = broker.New(e.store, e.dir, profiles{"aks-admin": adminProfile()}, clock, broker.Options{ApproverCacheTTL: ttl})
	return e
}

// lookups counts the directory reads made so far.
func (e *env) lookups() int {
	return e.dir.Calls(brokertest.MLookupUser) + e.dir.Calls(brokertest.MMemberOfAny)
}

// approveCost makes a new request by requester and has it approved by
// approver; it returns the directory reads the approval alone cost: 2 to
// resolve the approver (lookup, approver groups) unless cached, plus 1 when
// nothing for the activation: whether the user had the access before is
// Graph's answer to the add, not a read (docs/design.md, real directory rule 1).
func (e *env) approveCost(rid, requester, approver string) int {
	e.t.Helper()
	e.handle(e.requestBody(rid, requester, "PT1H"))
	before := e.lookups()
	e.handle(e.approveBody(rid, approver))
	return e.lookups() - before
}

func TestApproverCacheSavesLookups(t *testing.T) {
	e := newEnvTTL(t, 0) // default TTL
	if n := e.approveCost("r-1", seed.UPN("n01"), seed.UPN("p01")); n != 2 {
		t.Fatalf("first approval: %d directory reads, want 2 (lookup + approver groups)", n)
	}
	e.want("r-1", access.Active)
	e.clock.Advance(30 * time.Second)
	// Same approver, same asserted identity in another case: served by the cache.
	if n := e.approveCost("r-2", seed.UPN("n02"), "P01@"+seed.Domain); n != 0 {
		t.Fatalf("second approval within the TTL: %d directory reads, want 0", n)
	}
	r := e.want("r-2", access.Active)
	if len(r.Approvals) != 1 || r.Approvals[0].Approver != seed.UserP01 {
		t.Fatalf("approval recorded as %+v, want object id %s", r.Approvals, seed.UserP01)
	}
	// After the TTL, Graph is asked again.
	e.clock.Advance(broker.DefaultApproverCacheTTL)
	if n := e.approveCost("r-3", seed.UPN("a01"), seed.UPN("p01")); n != 2 {
		t.Fatalf("approval after the TTL: %d directory reads, want 2", n)
	}
}

func TestApproverCacheNeverCachesRefusals(t *testing.T) {
	e := newEnvTTL(t, 0)
	// x01 is no approver: refused, and asked again every time.
	e.approveCost("r-1", seed.UPN("n01"), seed.UPN("x01"))
	e.want("r-1", access.Pending)
	if n := e.approveCost("r-2", seed.UPN("n02"), seed.UPN("x01")); n != 2 {
		t.Fatalf("refused approver: %d directory reads, want 2 (refusals are not cached)", n)
	}
	// Made an approver now: the very next approval counts.
	e.dir.SetMember(seed.GroupAKSApprovers, seed.UserX01)
	e.handle(e.approveBody("r-2", seed.UPN("x01")))
	e.want("r-2", access.Active)

	// A disabled approver is not cached either.
	e.dir.SetUser(seed.UserP03, false, false)
	e.approveCost("r-3", seed.UPN("a01"), seed.UPN("p03"))
	e.want("r-3", access.Pending)
	e.dir.SetUser(seed.UserP03, true, false)
	e.handle(e.approveBody("r-3", seed.UPN("p03")))
	e.want("r-3", access.Active)
}

func TestApproverCacheStalenessIsBoundedByTTL(t *testing.T) {
	ttl := 20 * time.Second
	e := newEnvTTL(t, ttl)
	e.approveCost("r-1", seed.UPN("n01"), seed.UPN("p01"))
	e.want("r-1", access.Active)
	// p01 leaves the approver group: the documented price of the cache is
	// that a removed approver can approve for at most the TTL...
	e.dir.UnsetMember(seed.GroupAKSApprovers, seed.UserP01)
	e.clock.Advance(ttl - time.Second)
	e.approveCost("r-2", seed.UPN("n02"), seed.UPN("p01"))
	e.want("r-2", access.Active)
	// ...and not a moment longer.
	e.clock.Advance(time.Second)
	e.approveCost("r-3", seed.UPN("a01"), seed.UPN("p01"))
	e.want("r-3", access.Pending)
}

func TestApproverCacheKeepsSelfApprovalRefused(t *testing.T) {
	e := newEnvTTL(t, 0)
	e.approveCost("r-1", seed.UPN("n01"), seed.UPN("p01")) // p01 cached as approver
	e.dir.SetMember(seed.GroupAKSDefault, seed.UserP01)    // p01 may request too
	// p01 requests, and approves it under the same asserted UPN and as object id.
	e.approveCost("r-2", seed.UPN("p01"), seed.UPN("p01"))
	e.handle(e.approveBody("r-2", seed.UserP01))
	r := e.want("r-2", access.Pending)
	if len(r.Approvals) != 0 {
		t.Fatalf("self-approval counted: %+v", r.Approvals)
	}
}

func TestApproverCacheOff(t *testing.T) {
	e := newEnvTTL(t, -1)
	e.approveCost("r-1", seed.UPN("n01"), seed.UPN("p01"))
	if n := e.approveCost("r-2", seed.UPN("n02"), seed.UPN("p01")); n != 2 {
		t.Fatalf("cache off: %d directory reads, want 2", n)
	}
}

func TestApproverCacheClockGoingBack(t *testing.T) {
	e := newEnvTTL(t, 0)
	e.approveCost("r-1", seed.UPN("n01"), seed.UPN("p01"))
	e.clock.Set(start.Add(-time.Hour))
	if n := e.approveCost("r-2", seed.UPN("n02"), seed.UPN("p01")); n != 2 {
		t.Fatalf("after the clock went back: %d directory reads, want 2", n)
	}
}
