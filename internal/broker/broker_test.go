package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/memstore"
	"github.com/jitaccess/jitaccess/internal/seed"
	"github.com/jitaccess/jitaccess/internal/storetest"
)

var start = time.Date(2025, 5, 6, 8, 0, 0, 0, time.UTC)

type profiles map[string]access.Profile

func (p profiles) Profile(name string) (access.Profile, bool) { v, ok := p[name]; return v, ok }

func (p profiles) ForGroup(id string) []access.Profile {
	var out []access.Profile
	for _, name := range slices.Sorted(maps.Keys(p)) {
		if strings.EqualFold(p[name].TargetGroupID, id) {
			out = append(out, p[name])
		}
	}
	return out
}

func (p profiles) All() []access.Profile {
	var out []access.Profile
	for _, name := range slices.Sorted(maps.Keys(p)) {
		out = append(out, p[name])
	}
	return out
}

func (p profiles) TargetGroups() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(p)) {
		if g := p[name].TargetGroupID; g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

func adminProfile() access.Profile {
	return access.Profile{
		Name: "aks-admin", TargetGroupID: seed.GroupAKSAdmin,
		EligibleGroupIDs: []string{seed.GroupAKSDefault}, ApproverGroupIDs: []string{seed.GroupAKSApprovers},
		ApprovalsRequired: 1, DefaultDuration: access.Duration(time.Hour), MaxDuration: access.Duration(8 * time.Hour),
		ApprovalTimeout: access.Duration(24 * time.Hour), RequireJustification: true,
		Activation: access.ActivationMembership, RevokeSessionsOnEnd: true, OutOfBand: access.OutOfBandRecord,
	}
}

type env struct {
	t     *testing.T
	ctx   context.Context
	dir   *brokertest.Dir
	store *storetest.Faulty
	clock *brokertest.Clock
	b     *broker.Broker
	seq   int
}

// newEnv wires a broker to the seeded tenant through faults (nil: none).
func newEnv(t *testing.T, faults *brokertest.Faults) *env {
	t.Helper()
	clock := brokertest.NewClock(start)
	e := &env{t: t, ctx: context.Background(), dir: brokertest.NewSeeded(), clock: clock, store: newStore(clock)}
	e.b = broker.New(e.store, faults.Directory(e.dir), profiles{"aks-admin": adminProfile()}, clock, broker.Options{})
	return e
}

// newStore is an empty memstore behind the fault-injection decorator.
func newStore(clock *brokertest.Clock) *storetest.Faulty {
	return storetest.NewFaulty(memstore.New(memstore.WithClock(clock.Now)))
}

func body(id, typ string, data map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"specversion": "1.0", "id": id, "source": "/tests", "type": typ, "data": data})
	if err != nil {
		panic(err)
	}
	return b
}

func (e *env) nextID() string { e.seq++; return fmt.Sprintf("ev-%d", e.seq) }

func (e *env) requestBody(rid, requester, duration string) []byte {
	d := map[string]any{"requestId": rid, "requester": requester, "profile": "aks-admin", "justification": "incident 7"}
	if duration != "" {
		d["duration"] = duration
	}
	return body(e.nextID(), access.TypeRequested, d)
}

func (e *env) approveBody(rid, approver string) []byte {
	return body(e.nextID(), access.TypeApproved, map[string]any{"requestId": rid, "approver": approver, "comment": "ok"})
}

// handle delivers a body and fails the test on an error.
func (e *env) handle(b []byte) {
	e.t.Helper()
	if err := e.b.HandleEvent(e.ctx, b); err != nil {
		e.t.Fatalf("HandleEvent: %v", err)
	}
}

func (e *env) sweep() {
	e.t.Helper()
	if err := e.b.Sweep(e.ctx); err != nil {
		e.t.Fatalf("Sweep: %v", err)
	}
}

func (e *env) get(id string) *access.Request {
	e.t.Helper()
	r, err := e.store.GetRequest(e.ctx, id)
	if err != nil {
		e.t.Fatalf("GetRequest(%s): %v", id, err)
	}
	return r
}

func (e *env) want(id string, s access.State, history ...string) *access.Request {
	e.t.Helper()
	r := e.get(id)
	if r.State != s {
		e.t.Fatalf("request %s: state %s, want %s (reason %q, history %v)", id, r.State, s, r.Reason, types(r))
	}
	if history != nil && !slices.Equal(types(r), history) {
		e.t.Fatalf("request %s: history %v, want %v", id, types(r), history)
	}
	return r
}

func (e *env) ledger(g, u string) *access.Ledger {
	e.t.Helper()
	l, err := e.store.GetLedger(e.ctx, g, u)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// wantOnlyTarget checks that every membership write went to aks-admin.
func (e *env) wantOnlyTarget() {
	e.t.Helper()
	for _, w := range e.dir.Writes() {
		if w.Op != brokertest.MRevokeSessions && w.GroupID != seed.GroupAKSAdmin {
			e.t.Fatalf("write to a group that is no profile's target: %+v", w)
		}
	}
}

func types(r *access.Request) []string {
	var out []string
	for _, h := range r.History {
		out = append(out, h.Type)
	}
	return out
}

// activate brings request rid of requester to active.
func (e *env) activate(rid, requester, duration string) *access.Request {
	e.t.Helper()
	e.handle(e.requestBody(rid, requester, duration))
	e.handle(e.approveBody(rid, seed.UPN("p01")))
	return e.want(rid, access.Active)
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	e.handle(e.requestBody("r-1", seed.UPN("n01"), "PT2H"))
	r := e.want("r-1", access.Pending, access.HRequested)
	if r.Requester != seed.UserN01 || r.RequesterUPN != seed.UPN("n01") || r.GroupID != seed.GroupAKSAdmin || !r.RequestedAt.Equal(start) {
		t.Fatalf("pending: %+v", r)
	}
	e.clock.Advance(10 * time.Minute)
	e.handle(e.approveBody("r-1", seed.UPN("p01")))
	r = e.want("r-1", access.Active, access.HRequested, access.HApproved, access.HActivated, access.HMembershipAdded)
	activatedAt := start.Add(10 * time.Minute)
	if !r.ActivatedAt.Equal(activatedAt) || !r.EndsAt.Equal(activatedAt.Add(2*time.Hour)) || r.Work != nil || !r.DueAt.Equal(r.EndsAt) {
		t.Fatalf("active: %+v", r)
	}
	if !e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.WriteCount(brokertest.MAddMember) != 1 {
		t.Fatalf("membership not added once: %+v", e.dir.Writes())
	}
	if l := e.ledger(seed.GroupAKSAdmin, seed.UserN01); !slices.Equal(l.Grants, []string{"r-1"}) || l.ClaimedBy != "" || l.PreExisting {
		t.Fatalf("ledger %+v", l)
	}

	// Sweeps before the end do nothing; an early expire is a no-op.
	e.clock.Set(r.EndsAt.Add(-time.Second))
	e.sweep()
	e.handle(body(e.nextID(), access.TypeExpire, map[string]any{"requestId": "r-1"}))
	e.want("r-1", access.Active)

	e.clock.Set(r.EndsAt.Add(30 * time.Second))
	e.sweep()
	r = e.want("r-1", access.Expired, access.HRequested, access.HApproved, access.HActivated, access.HMembershipAdded,
		access.HExpired, access.HMembershipRemoved, access.HSessionsRevoked)
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.Calls(brokertest.MRevokeSessions) != 1 || e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatalf("end: member %v revokes %d", e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01), e.dir.Calls(brokertest.MRevokeSessions))
	}
	if !r.DueAt.IsZero() || r.Work != nil || r.EndedAt.IsZero() {
		t.Fatalf("expired: %+v", r)
	}
	if l := e.ledger(seed.GroupAKSAdmin, seed.UserN01); !settled(l, "r-1") {
		t.Fatalf("ledger left: %+v", l)
	}
	// Late sweeps and the scheduled expire message change nothing.
	e.clock.Advance(time.Hour)
	e.sweep()
	e.handle(body(e.nextID(), access.TypeExpire, map[string]any{"requestId": "r-1"}))
	e.want("r-1", access.Expired)
	if e.dir.Calls(brokertest.MRevokeSessions) != 1 || e.dir.Calls(brokertest.MRemoveMember) != 1 {
		t.Fatalf("extra Graph calls after the end")
	}
	e.wantOnlyTarget()
}

func TestPreExistingMember(t *testing.T) {
	e := newEnv(t, nil)
	r := e.activate("r-s", seed.UPN("s01"), "")
	// Graph's answer to jitaccess's add ("already exist") decides that the
	// user had the access before (docs/design.md, real directory rule 1), not a read.
	if slices.Contains(types(r), access.HMembershipAdded) || e.dir.WriteCount(brokertest.MAddMember) != 0 ||
		r.History[len(r.History)-1].Detail != access.DetailPreExisting {
		t.Fatalf("a standing member was added: %v", r.History)
	}
	e.clock.Set(r.EndsAt)
	e.sweep()
	r = e.want("r-s", access.Expired)
	if slices.Contains(types(r), access.HMembershipRemoved) || slices.Contains(types(r), access.HSessionsRevoked) {
		t.Fatalf("history %v", types(r))
	}
	if !e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserS01) || e.dir.Calls(brokertest.MRemoveMember) != 0 || e.dir.Calls(brokertest.MRevokeSessions) != 0 {
		t.Fatalf("pre-existing access touched: %+v", e.dir.Writes())
	}
}

func TestOverlappingGrants(t *testing.T) {
	e := newEnv(t, nil)
	r1 := e.activate("r-1", seed.UPN("n01"), "PT1H")
	e.clock.Advance(10 * time.Minute)
	r2 := e.activate("r-2", seed.UserN01, "PT2H")
	if slices.Contains(types(r2), access.HMembershipAdded) || e.dir.WriteCount(brokertest.MAddMember) != 1 {
		t.Fatalf("second grant added again: %v", types(r2))
	}
	e.clock.Set(r1.EndsAt)
	e.sweep()
	r1 = e.want("r-1", access.Expired)
	if slices.Contains(types(r1), access.HMembershipRemoved) || slices.Contains(types(r1), access.HSessionsRevoked) {
		t.Fatalf("first end removed access still granted: %v", types(r1))
	}
	if !e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.Calls(brokertest.MRevokeSessions) != 0 {
		t.Fatalf("membership lost at the first end")
	}
	e.want("r-2", access.Active)
	e.clock.Set(r2.EndsAt)
	e.sweep()
	r2 = e.want("r-2", access.Expired)
	if !slices.Contains(types(r2), access.HMembershipRemoved) || !slices.Contains(types(r2), access.HSessionsRevoked) {
		t.Fatalf("second end: %v", types(r2))
	}
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 || e.dir.WriteCount(brokertest.MRemoveMember) != 1 {
		t.Fatalf("writes %+v", e.dir.Writes())
	}
}

func TestRevokeAndCancelActive(t *testing.T) {
	for _, tc := range []struct {
		name string
		by   string
		typ  string
		want access.State
	}{
		{"revoke by approver", seed.UPN("p03"), access.TypeRevoked, access.Revoked},
		{"cancel by requester", seed.UserN01, access.TypeCancelled, access.Cancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.activate("r-1", seed.UPN("n01"), "")
			e.clock.Advance(time.Minute)
			// Not allowed: cancel by an approver, revoke by the requester (not an approver).
			e.handle(body(e.nextID(), access.TypeCancelled, map[string]any{"requestId": "r-1", "by": seed.UPN("p01")}))
			e.handle(body(e.nextID(), access.TypeRevoked, map[string]any{"requestId": "r-1", "by": seed.UPN("n01")}))
			e.want("r-1", access.Active)
			e.handle(body(e.nextID(), tc.typ, map[string]any{"requestId": "r-1", "by": tc.by, "reason": "done"}))
			e.want("r-1", tc.want, access.HRequested, access.HApproved, access.HActivated, access.HMembershipAdded,
				access.HRefused, access.HRefused, string(tc.want), access.HMembershipRemoved, access.HSessionsRevoked)
			if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 {
				t.Fatalf("writes %+v", e.dir.Writes())
			}
		})
	}
}

func TestTransientAddIsRetriedByRedelivery(t *testing.T) {
	e := newEnv(t, nil)
	e.handle(e.requestBody("r-1", seed.UPN("n01"), ""))
	approve := e.approveBody("r-1", seed.UPN("p01"))
	e.dir.Fail(brokertest.MAddMember, brokertest.Transient(brokertest.MAddMember))
	err := e.b.HandleEvent(e.ctx, approve)
	if err == nil || !fault.Transient(err) {
		t.Fatalf("HandleEvent = %v, want a transient error", err)
	}
	r := e.want("r-1", access.Activating)
	if r.Work == nil || r.Work.Attempts != 1 || r.Work.MembershipDone {
		t.Fatalf("work %+v", r.Work)
	}
	e.clock.Advance(5 * time.Second)
	e.handle(approve) // the same message comes back
	r = e.want("r-1", access.Active, access.HRequested, access.HApproved, access.HActivated, access.HMembershipAdded)
	if len(r.Approvals) != 1 || e.dir.WriteCount(brokertest.MAddMember) != 1 {
		t.Fatalf("approvals %d adds %d", len(r.Approvals), e.dir.WriteCount(brokertest.MAddMember))
	}
	e.handle(approve) // and again: nothing more
	e.want("r-1", access.Active, access.HRequested, access.HApproved, access.HActivated, access.HMembershipAdded)
	if e.dir.Calls(brokertest.MAddMember) != 2 {
		t.Fatalf("AddMember calls %d", e.dir.Calls(brokertest.MAddMember))
	}
}

func TestPermanentAddFails(t *testing.T) {
	e := newEnv(t, nil)
	e.handle(e.requestBody("r-1", seed.UPN("n01"), ""))
	e.dir.Fail(brokertest.MAddMember, brokertest.Permanent(brokertest.MAddMember))
	e.handle(e.approveBody("r-1", seed.UPN("p01")))
	r := e.want("r-1", access.Failed, access.HRequested, access.HApproved, access.HActivated, access.HFailed)
	if !strings.Contains(r.Reason, "adding the membership failed permanently") || r.Work != nil || !r.DueAt.IsZero() {
		t.Fatalf("failed: %+v", r)
	}
	if l := e.ledger(seed.GroupAKSAdmin, seed.UserN01); len(l.Grants) != 0 || l.ClaimedBy != "" {
		t.Fatalf("ledger not released: %+v", l)
	}
	// Nothing is blocked: a new request goes through.
	e.activate("r-2", seed.UPN("n01"), "")
	if !e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatal("not a member after the second grant")
	}
	e.clock.Advance(2 * time.Hour)
	e.sweep()
	e.want("r-1", access.Failed)
	e.want("r-2", access.Expired)
}

func TestTransientRemoveRetriedEachSweep(t *testing.T) {
	e := newEnv(t, nil)
	r := e.activate("r-1", seed.UPN("n01"), "PT1H")
	e.clock.Set(r.EndsAt)
	e.dir.Fail(brokertest.MRemoveMember, brokertest.Transient(brokertest.MRemoveMember))
	e.dir.Fail(brokertest.MRemoveMember, brokertest.Transient(brokertest.MRemoveMember))
	if err := e.b.Sweep(e.ctx); err == nil || !fault.Transient(err) {
		t.Fatalf("Sweep = %v, want the transient error", err)
	}
	r = e.want("r-1", access.Ending)
	// An end is due again at once: the next sweep retries it (one attempt
	// per sweep; docs/design.md, real directory rule 4: no failure pushes it past the first sweep
	// after the outage).
	if r.Work == nil || r.Work.Attempts != 1 || r.DueAt.After(e.clock.Now()) {
		t.Fatalf("after the first failure: due %v work %+v", r.DueAt, r.Work)
	}
	e.clock.Advance(time.Minute)
	if err := e.b.Sweep(e.ctx); err == nil {
		t.Fatal("second injected failure not reported")
	}
	r = e.want("r-1", access.Ending)
	if r.Work.Attempts != 2 || e.dir.Calls(brokertest.MRemoveMember) != 2 {
		t.Fatalf("second attempt: work %+v, %d calls", r.Work, e.dir.Calls(brokertest.MRemoveMember))
	}
	e.clock.Advance(time.Minute)
	e.sweep()
	e.want("r-1", access.Expired, access.HRequested, access.HApproved, access.HActivated, access.HMembershipAdded,
		access.HExpired, access.HMembershipRemoved, access.HSessionsRevoked)
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 || e.dir.Calls(brokertest.MRemoveMember) != 3 {
		t.Fatalf("writes %+v", e.dir.Writes())
	}
}

func TestIdentities(t *testing.T) {
	t.Run("UPN approver, object id requester", func(t *testing.T) {
		e := newEnv(t, nil)
		e.handle(e.requestBody("r-1", strings.ToUpper(seed.UserN01), ""))
		r := e.want("r-1", access.Pending)
		if r.Requester != seed.UserN01 || r.RequesterUPN != seed.UPN("n01") {
			t.Fatalf("requester %q %q", r.Requester, r.RequesterUPN)
		}
		e.handle(e.approveBody("r-1", "P01@Contoso.COM"))
		r = e.want("r-1", access.Active)
		if r.Approvals[0].Approver != seed.UserP01 {
			t.Fatalf("approver %q", r.Approvals[0].Approver)
		}
		// Cancel by UPN in other case: the requester.
		e.handle(body(e.nextID(), access.TypeCancelled, map[string]any{"requestId": "r-1", "by": "N01@CONTOSO.com"}))
		e.want("r-1", access.Cancelled)
	})
	t.Run("self-approval under another spelling", func(t *testing.T) {
		e := newEnv(t, nil)
		// a01 is in aks-default and aks-approvers: it may request, and approve anyone's request but its own.
		e.handle(body(e.nextID(), access.TypeRequested, map[string]any{"requestId": "r-1", "requester": seed.UserA01, "profile": "aks-admin", "justification": "x"}))
		for _, who := range []string{"A01@CONTOSO.COM", seed.UPN("a01"), strings.ToUpper(seed.UserA01)} {
			e.handle(e.approveBody("r-1", who))
			e.want("r-1", access.Pending)
		}
		r := e.get("r-1")
		if n := strings.Count(strings.Join(types(r), ","), access.HRefused); n != 3 || len(r.Approvals) != 0 {
			t.Fatalf("history %v", types(r))
		}
		e.handle(e.approveBody("r-1", seed.UPN("p02"))) // nested approver group
		e.want("r-1", access.Active)
	})
	t.Run("approvers that may not approve", func(t *testing.T) {
		e := newEnv(t, nil)
		e.handle(e.requestBody("r-1", seed.UPN("n01"), ""))
		for _, who := range []string{seed.UPN("d02"), seed.UPN("x01"), "ghost@contoso.com", seed.GuestUPN, seed.UPN("n02")} {
			e.handle(e.approveBody("r-1", who))
		}
		r := e.want("r-1", access.Pending)
		if len(r.History) != 6 {
			t.Fatalf("history %v", types(r))
		}
		e.handle(e.approveBody("r-1", seed.UPN("p01")))
		e.want("r-1", access.Active)
	})
	t.Run("requesters that may not request", func(t *testing.T) {
		e := newEnv(t, nil)
		for i, who := range []string{seed.UPN("d01"), seed.GuestUPN, seed.UPN("x01"), "ghost@contoso.com"} {
			id := fmt.Sprintf("r-%d", i)
			e.handle(e.requestBody(id, who, ""))
			e.want(id, access.Rejected, access.HRejected)
		}
		e.handle(e.requestBody("r-n02", seed.UPN("n02"), "")) // eligible through a nested group
		e.want("r-n02", access.Pending)
	})
}

func TestOnlyTargetGroupIsWritten(t *testing.T) {
	e := newEnv(t, nil)
	e.handle(body(e.nextID(), access.TypeRequested, map[string]any{"requestId": "r-1", "requester": seed.UPN("n01"), "profile": "aks-admin",
		"justification": "x", "groupId": seed.GroupFinanceAdmins, "targetGroupId": seed.GroupFinanceAdmins, "group": seed.GroupFinanceAdmins}))
	e.handle(body(e.nextID(), access.TypeApproved, map[string]any{"requestId": "r-1", "approver": seed.UPN("p01"), "groupId": seed.GroupFinanceAdmins}))
	e.handle(body(e.nextID(), access.TypeRevoked, map[string]any{"requestId": "r-1", "by": seed.UPN("p01"), "groupId": seed.GroupFinanceAdmins}))
	r := e.want("r-1", access.Revoked)
	if r.GroupID != seed.GroupAKSAdmin {
		t.Fatalf("group %s", r.GroupID)
	}
	e.wantOnlyTarget()
	if len(e.dir.DirectMembers(seed.GroupFinanceAdmins)) != 0 || e.dir.WriteCount(brokertest.MAddMember) != 1 {
		t.Fatalf("writes %+v", e.dir.Writes())
	}
}

func TestInvalidEvents(t *testing.T) {
	e := newEnv(t, nil)
	// A requested event with a usable request id → a stored rejected request.
	e.handle(body(e.nextID(), access.TypeRequested, map[string]any{"requestId": "bad-1", "requester": seed.UPN("n01"), "profile": "aks-admin", "duration": "P1M"}))
	r := e.want("bad-1", access.Rejected, access.HRejected)
	if !strings.Contains(r.Reason, "duration") {
		t.Fatalf("reason %q", r.Reason)
	}
	// Unknown profile → rejected request with the reason.
	e.handle(body(e.nextID(), access.TypeRequested, map[string]any{"requestId": "bad-2", "requester": seed.UPN("n01"), "profile": "nope", "justification": "x"}))
	if r := e.want("bad-2", access.Rejected); !strings.Contains(r.Reason, "unknown profile") {
		t.Fatalf("reason %q", r.Reason)
	}
	// An invalid event for an existing request → a rejected history entry.
	e.handle(e.requestBody("r-1", seed.UPN("n01"), ""))
	e.handle(body("ev-badapprover", access.TypeApproved, map[string]any{"requestId": "r-1", "approver": "p 01"}))
	r = e.want("r-1", access.Pending, access.HRequested, access.HRejected)
	if r.History[1].EventID != "ev-badapprover" {
		t.Fatalf("entry %+v", r.History[1])
	}
	e.handle(body("ev-badapprover", access.TypeApproved, map[string]any{"requestId": "r-1", "approver": "p 01"}))
	e.want("r-1", access.Pending, access.HRequested, access.HRejected)
	// Without a request id → RecordRejection.
	for _, b := range [][]byte{[]byte("not json"), []byte(`{"specversion":"1.0"}`), body("ev-x", "jit.access.nope", map[string]any{})} {
		if err := e.b.HandleEvent(e.ctx, b); err != nil {
			t.Fatalf("invalid event not acknowledged: %v", err)
		}
	}
	// An invalid approval for a request that does not exist yet does not block it.
	e.handle(body("ev-early", access.TypeApproved, map[string]any{"requestId": "r-2", "approver": "p\x01"}))
	rejs, err := e.store.RecentRejections(e.ctx, 10)
	if err != nil || len(rejs) != 4 {
		t.Fatalf("rejections %+v %v", rejs, err)
	}
	if rejs[0].RequestID != "r-2" || rejs[0].Reason == "" {
		t.Fatalf("rejection %+v", rejs[0])
	}
	e.handle(e.requestBody("r-2", seed.UPN("n01"), ""))
	e.want("r-2", access.Pending, access.HRequested)
	if e.dir.Calls(brokertest.MAddMember) != 0 {
		t.Fatal("membership written for invalid events")
	}
}

func TestDuplicateAndConflictingRequests(t *testing.T) {
	e := newEnv(t, nil)
	req := e.requestBody("r-1", seed.UPN("n01"), "")
	e.handle(req)
	e.handle(req)
	e.handle(e.requestBody("r-1", seed.UserN01, "")) // same content, new event id
	e.want("r-1", access.Pending, access.HRequested)
	e.handle(e.requestBody("r-1", seed.UPN("n01"), "PT2H"))
	e.want("r-1", access.Pending, access.HRequested, access.HRejected)
}

func TestOutOfOrderDelivery(t *testing.T) {
	e := newEnv(t, nil)
	e.handle(e.approveBody("r-1", seed.UPN("p01")))
	e.handle(e.approveBody("r-1", seed.UPN("n01"))) // a self-approval, to be refused on replay
	e.want("r-1", access.Awaiting)
	e.clock.Advance(time.Minute)
	e.handle(e.requestBody("r-1", seed.UPN("n01"), ""))
	// The self-approval is replayed after the real one activated the grant:
	// refused either way.
	r := e.want("r-1", access.Active, access.HRequested, access.HApproved, access.HActivated, access.HRefused, access.HMembershipAdded)
	if r.Approvals[0].Approver != seed.UserP01 || !r.ActivatedAt.Equal(start.Add(time.Minute)) {
		t.Fatalf("%+v", r)
	}
	// Events for a request that never comes are rejected after AwaitTTL.
	e.handle(body(e.nextID(), access.TypeCancelled, map[string]any{"requestId": "r-never", "by": seed.UPN("n01")}))
	e.clock.Advance(access.AwaitTTL)
	e.sweep()
	e.want("r-never", access.Rejected)
}

func TestApprovalTimeout(t *testing.T) {
	e := newEnv(t, nil)
	e.handle(e.requestBody("r-1", seed.UPN("n01"), ""))
	e.clock.Advance(24 * time.Hour)
	e.sweep()
	e.want("r-1", access.TimedOut, access.HRequested, access.HTimedOut)
	e.handle(e.approveBody("r-1", seed.UPN("p01")))
	e.want("r-1", access.TimedOut, access.HRequested, access.HTimedOut, access.HRefused)
	if e.dir.Calls(brokertest.MAddMember) != 0 {
		t.Fatal("added after timeout")
	}
}

// errCrash stands for the process dying: the fault point fails the Graph
// step and the store refuses every later write of that invocation, so
// nothing after the crash point is saved.
var errCrash = errors.New("crash (injected)")

func TestCrashRecovery(t *testing.T) {
	steps := []string{brokertest.StepAdd, brokertest.StepRemove, brokertest.StepRevoke}
	for _, step := range steps {
		for _, when := range []string{"before", "after"} {
			t.Run(when+" "+step, func(t *testing.T) {
				var mu sync.Mutex
				armed := true
				var e *env
				crash := func(s string) error {
					mu.Lock()
					defer mu.Unlock()
					if !armed || s != step {
						return nil
					}
					armed = false
					e.store.SetHook(func(string) error { return errCrash }) // dead process: no more writes
					return errCrash
				}
				faults := &brokertest.Faults{}
				if when == "before" {
					faults.Before = crash
				} else {
					faults.After = crash
				}
				e = newEnv(t, faults)
				restart := func() { e.store.SetHook(nil) }

				e.handle(e.requestBody("r-1", seed.UPN("n01"), "PT1H"))
				err := e.b.HandleEvent(e.ctx, e.approveBody("r-1", seed.UPN("p01")))
				activating := step == brokertest.StepAdd
				if activating {
					if err == nil {
						t.Fatalf("crash at %s %s not reported", when, step)
					}
					restart()
					e.want("r-1", access.Activating)
					// Within WorkGrace the sweep leaves the work alone.
					e.clock.Advance(access.WorkGrace / 2)
					e.sweep()
					e.want("r-1", access.Activating)
					e.clock.Advance(access.WorkGrace)
					e.sweep()
				} else if err != nil {
					t.Fatalf("approve: %v", err)
				}
				r := e.want("r-1", access.Active, access.HRequested, access.HApproved, access.HActivated, access.HMembershipAdded)
				if !e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.WriteCount(brokertest.MAddMember) != 1 {
					t.Fatalf("after activation: writes %+v", e.dir.Writes())
				}
				if l := e.ledger(seed.GroupAKSAdmin, seed.UserN01); l.ClaimedBy != "" || !slices.Equal(l.Grants, []string{"r-1"}) {
					t.Fatalf("ledger %+v", l)
				}

				e.clock.Set(r.EndsAt)
				err = e.b.Sweep(e.ctx)
				if !activating {
					if err == nil {
						t.Fatalf("crash at %s %s not reported", when, step)
					}
					restart()
					e.want("r-1", access.Ending)
					e.clock.Advance(access.WorkGrace / 2)
					e.sweep()
					e.want("r-1", access.Ending)
					e.clock.Advance(access.WorkGrace)
					e.sweep()
				} else if err != nil {
					t.Fatalf("sweep: %v", err)
				}
				e.want("r-1", access.Expired, access.HRequested, access.HApproved, access.HActivated, access.HMembershipAdded,
					access.HExpired, access.HMembershipRemoved, access.HSessionsRevoked)
				if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
					t.Fatal("member left in the group")
				}
				revokes := e.dir.RevokedFor(seed.UserN01)
				if revokes < 1 || (revokes > 1 && !(when == "after" && step == brokertest.StepRevoke)) {
					t.Fatalf("%d revocations", revokes)
				}
				if l := e.ledger(seed.GroupAKSAdmin, seed.UserN01); !settled(l, "r-1") {
					t.Fatalf("ledger left: %+v", l)
				}
				e.wantOnlyTarget()
			})
		}
	}
}

func TestConcurrentApproveAndCancel(t *testing.T) {
	for i := range 200 {
		e := newEnv(t, nil)
		e.handle(e.requestBody("r-1", seed.UPN("n01"), ""))
		approve := e.approveBody("r-1", seed.UPN("p01"))
		cancel := body(e.nextID(), access.TypeCancelled, map[string]any{"requestId": "r-1", "by": seed.UPN("n01")})
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, b := range [][]byte{approve, cancel} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[j] = e.b.HandleEvent(e.ctx, b)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil && !fault.Transient(err) {
				t.Fatalf("run %d: non-transient error %v", i, err)
			}
		}
		// Redeliver what failed, and let the sweep finish any work.
		for j, b := range [][]byte{approve, cancel} {
			if errs[j] != nil {
				e.clock.Advance(time.Second)
				_ = e.b.HandleEvent(e.ctx, b)
			}
		}
		for range 10 {
			if e.get("r-1").Work == nil {
				break
			}
			e.clock.Advance(20 * time.Minute)
			_ = e.b.Sweep(e.ctx)
		}
		r := e.want("r-1", access.Cancelled)
		adds := e.dir.WriteCount(brokertest.MAddMember)
		if adds > 1 {
			t.Fatalf("run %d: %d adds", i, adds)
		}
		// Valid outcomes: cancelled before the approval (nothing approved,
		// nothing written); approved and cancelled before the membership was
		// added (nothing written); or added, then removed and revoked.
		approved := adds == 1
		if approved && len(r.Approvals) != 1 {
			t.Fatalf("run %d: added without an approval; history %v", i, types(r))
		}
		// An add whose result lost the race to be saved (the cancel was
		// saved while it was under way) is still recorded, late.
		if slices.Contains(types(r), access.HMembershipAdded) != approved {
			t.Fatalf("run %d: membership-added recorded %v, add made %v; history %v", i, !approved, approved, types(r))
		}
		if approved && !slices.Contains(types(r), access.HMembershipRemoved) {
			t.Fatalf("run %d: added but no membership-removed; history %v %+v writes %+v member %v", i, types(r), r.History, e.dir.Writes(), e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01))
		}
		if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
			t.Fatalf("run %d: member left after cancel; history %v", i, types(r))
		}
		// Two invocations may both carry out the (idempotent) revocation;
		// it is recorded once.
		hist := strings.Join(types(r), ",")
		if approved && (e.dir.RevokedFor(seed.UserN01) < 1 || strings.Count(hist, access.HSessionsRevoked) != 1 || strings.Count(hist, access.HMembershipRemoved) != 1) {
			t.Fatalf("run %d: %d revocations, history %v", i, e.dir.RevokedFor(seed.UserN01), types(r))
		}
		if !approved && (e.dir.Calls(brokertest.MRevokeSessions) != 0 || e.dir.Calls(brokertest.MRemoveMember) != 0) {
			t.Fatalf("run %d: removal or revocation without an add: %+v", i, e.dir.Writes())
		}
		if n := strings.Count(strings.Join(types(r), ","), access.HCancelled); n != 1 {
			t.Fatalf("run %d: history %v", i, types(r))
		}
		if l := e.ledger(seed.GroupAKSAdmin, seed.UserN01); !settled(l, "r-1") {
			t.Fatalf("run %d: ledger left %+v", i, l)
		}
	}
}

// settled reports whether a ledger holds nothing after its grants ended: no
// grant, no claim, no pre-existing access; at most the ended grants in its
// bounded lists of recent releases and ends (access.Ledger.Released, Ended),
// which are not deleted one by one.
func settled(l *access.Ledger, ended ...string) bool {
	if len(l.Grants) != 0 || l.ClaimedBy != "" || l.ClaimToken != "" || l.PreExisting {
		return false
	}
	for _, id := range append(slices.Clone(l.Released), l.Ended...) {
		if !slices.Contains(ended, id) {
			return false
		}
	}
	return true
}

// TestCancelBetweenLedgerReadAndClaim: a cancel saved and carried out after
// the approval's add has read the membership ledger but before it claims it
// (the window the ledger's Ended list closes). The cancel finds nothing to
// remove and says so in the ledger; the add's claim then loses its
// compare-and-swap, finds the end, and adds nothing.
func TestCancelBetweenLedgerReadAndClaim(t *testing.T) {
	e := newEnv(t, nil)
	e.handle(e.requestBody("r-1", seed.UPN("n01"), ""))
	cancel := body(e.nextID(), access.TypeCancelled, map[string]any{"requestId": "r-1", "by": seed.UPN("n01")})
	var mu sync.Mutex
	fired := false
	e.store.SetHook(func(op string) error {
		mu.Lock()
		first := op == storetest.OpSaveLedger && !fired
		fired = fired || first
		mu.Unlock()
		if first {
			// The add has read the ledger and is about to save its claim.
			if err := e.b.HandleEvent(e.ctx, cancel); err != nil {
				t.Errorf("cancel inside the window: %v", err)
			}
		}
		return nil
	})
	if err := e.b.HandleEvent(e.ctx, e.approveBody("r-1", seed.UPN("p01"))); err != nil && !fault.Transient(err) {
		t.Fatal(err)
	}
	e.store.SetHook(nil)
	if !fired {
		t.Fatal("the add never saved a claim: the window was not reached")
	}
	e.want("r-1", access.Cancelled, access.HRequested, access.HApproved, access.HActivated, access.HCancelled, access.HNote)
	if n := e.dir.Calls(brokertest.MAddMember); n != 0 {
		t.Fatalf("%d adds after the cancel", n)
	}
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatal("member left in aks-admin")
	}
	if l := e.ledger(seed.GroupAKSAdmin, seed.UserN01); !settled(l, "r-1") || !slices.Contains(l.Ended, "r-1") {
		t.Fatalf("ledger %+v", l)
	}
}

// TestSweepLeavesAMembershipInProgressElsewhere: a due end whose ledger
// another live invocation is changing (its claim younger than WorkGrace —
// in production a redelivery that just took over a dead process's claim)
// is not a failed sweep: the sweep leaves it due, answers success, and a
// later sweep finishes it. A sweep that failed here made the timer's
// invocation fail (500) for ordinary concurrency.
func TestSweepLeavesAMembershipInProgressElsewhere(t *testing.T) {
	e := newEnv(t, nil)
	e.activate("r-1", seed.UPN("n01"), "PT1H")
	e.clock.Advance(time.Hour + time.Second)

	// Another invocation holds the membership right now.
	l := e.ledger(seed.GroupAKSAdmin, seed.UserN01)
	l.ClaimedBy, l.ClaimOp, l.ClaimToken, l.ClaimedAt = "r-1", access.OpRemove, "another-invocation", e.clock.Now()
	if err := e.store.SaveLedger(e.ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Sweep(e.ctx); err != nil {
		t.Fatalf("Sweep failed on a membership another invocation is changing: %v", err)
	}
	r := e.get("r-1")
	if r.State != access.Ending || r.Work == nil || !e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatalf("after the first sweep: %s, work %+v, member %v", r.State, r.Work, e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01))
	}

	// The other invocation died: its claim is taken over after WorkGrace,
	// and the sweep finishes the end.
	e.clock.Advance(access.WorkGrace + time.Second)
	e.sweep()
	e.want("r-1", access.Expired)
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatalf("end not finished: member %v, revocations %d", e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01), e.dir.RevokedFor(seed.UserN01))
	}
}
