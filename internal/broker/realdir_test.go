package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/seed"
	"github.com/jitaccess/jitaccess/internal/storetest"
)

// The real directory (docs/design.md, The real directory): reads lag writes by up to lag, replica by
// replica; audit records are claims anyone who can send to the hub can
// make. Each test here reproduces a behaviour reported from outside.

const (
	testLag    = 10 * time.Second
	testWindow = 15 * time.Second
)

type fixedDeployment time.Time

func (d fixedDeployment) DeployedAt(context.Context, time.Time) (time.Time, error) {
	return time.Time(d), nil
}

// newLagEnv is newAuditEnv with a lagging directory (seeded) and a
// replication window of testWindow.
func newLagEnv(t *testing.T, seedN int64, mutate func(*access.Profile)) *env {
	t.Helper()
	clock := brokertest.NewClock(start)
	e := &env{t: t, ctx: t.Context(), dir: brokertest.NewSeeded(), clock: clock, store: newStore(clock)}
	p := adminProfile()
	if mutate != nil {
		mutate(&p)
	}
	e.dir.SetReplicaLag(testLag, clock.Now, seedN)
	e.b = broker.New(e.store, e.dir, groupSet{profiles{"aks-admin": p}}, clock, broker.Options{
		PIM: e.dir, Members: e.dir.MembersPort(), Self: broker.Self{AppID: selfApp},
		ReplicationWindow: testWindow, Deployment: fixedDeployment(start.Add(-time.Hour))})
	return e
}

// A grant activated a few seconds before a sweep was ended by drift
// reconciliation as "member vanished" while the user was a member.
func TestLagFreshGrantIsNotVanished(t *testing.T) {
	for s := range int64(40) {
		e := newLagEnv(t, s, nil)
		e.activate("r-1", seed.UPN("n01"), "PT1H")
		for range 8 {
			e.clock.Advance(2 * time.Second)
			e.sweep()
		}
		e.clock.Advance(testWindow)
		e.sweep()
		e.clock.Advance(testWindow)
		e.sweep()
		r := e.want("r-1", access.Active)
		if e.dir.Calls(brokertest.MRevokeSessions) != 0 || r.Check != nil {
			t.Fatalf("seed %d: a grant whose member is there was suspected or ended: %+v", s, r.History)
		}
	}
}

// A grant approved right after the same user's previous grant ended was
// recorded active ("already had this group's access") without the access.
func TestLagGrantRightAfterThePreviousEnd(t *testing.T) {
	for s := range int64(40) {
		e := newLagEnv(t, s, nil)
		r1 := e.activate("r-1", seed.UPN("n01"), "PT10M")
		e.clock.Set(r1.EndsAt)
		e.sweep()
		e.want("r-1", access.Expired)
		e.clock.Advance(time.Second)
		r2 := e.activate("r-2", seed.UPN("n01"), "PT10M")
		if !e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || !slices.Contains(types(r2), access.HMembershipAdded) {
			t.Fatalf("seed %d: active without the access: history %+v", s, r2.History)
		}
		e.clock.Set(r2.EndsAt)
		e.sweep()
		e.want("r-2", access.Expired)
		if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
			t.Fatalf("seed %d: member left after the second grant", s)
		}
	}
}

// A standing membership an administrator added seconds before a grant was
// removed at the grant's end (Graph's "already exist" was ignored).
func TestLagStandingMemberAddedJustBefore(t *testing.T) {
	for s := range int64(20) {
		e := newLagEnv(t, s, nil)
		e.handle(e.requestBody("r-1", seed.UPN("n01"), "PT10M"))
		e.dir.SetMember(seed.GroupAKSAdmin, seed.UserN01) // an administrator, seconds before
		e.clock.Advance(time.Second)
		e.handle(e.approveBody("r-1", seed.UPN("p01")))
		r := e.want("r-1", access.Active)
		if slices.Contains(types(r), access.HMembershipAdded) {
			t.Fatalf("seed %d: the standing member was recorded as jitaccess's: %+v", s, r.History)
		}
		e.clock.Set(r.EndsAt)
		e.sweep()
		e.want("r-1", access.Expired)
		if !e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.Calls(brokertest.MRevokeSessions) != 0 {
			t.Fatalf("seed %d: the standing membership was removed at the grant's end", s)
		}
	}
}

// An add whose answer was lost (applied, then a timeout): the retry's
// "already exist" is taken as jitaccess's own add, so the end removes it.
func TestLostAddAnswerIsJitaccesss(t *testing.T) {
	e := newEnv(t, nil)
	var once sync.Once
	e.dir.SetHook(func(method string, args ...string) error {
		var err error
		if method == brokertest.MAddMember {
			once.Do(func() {
				e.dir.SetMember(args[0], args[1])  // Graph applied it...
				err = brokertest.Transient(method) // ...and the answer was lost
			})
		}
		return err
	})
	e.handle(e.requestBody("r-1", seed.UPN("n01"), "PT10M"))
	if err := e.b.HandleEvent(e.ctx, e.approveBody("r-1", seed.UPN("p01"))); !fault.Transient(err) {
		t.Fatalf("approve: %v, want transient", err)
	}
	e.clock.Advance(2 * time.Minute) // the retry's backoff
	e.sweep()
	r := e.want("r-1", access.Active)
	if h := r.History[len(r.History)-1]; h.Type != access.HMembershipAdded || h.Detail != access.DetailAmbiguousAdd {
		t.Fatalf("history %+v", r.History)
	}
	e.clock.Set(r.EndsAt)
	e.sweep()
	e.want("r-1", access.Expired)
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatal("the grant's member outlived it")
	}
}

// A forged "Remove member from group" record for a member still in the
// group ended the grant without removal; the member then stayed for good.
func TestForgedRemovalRecordIsAFinding(t *testing.T) {
	e := newLagEnv(t, 1, nil)
	r := e.activate("r-1", seed.UPN("n01"), "PT1H")
	e.audit(event(memberChange("forged-1", false, byUser(seed.UserX01, seed.UPN("x01")), seed.UserN01)))
	e.want("r-1", access.Active)
	e.clock.Advance(testWindow)
	e.sweep()
	r = e.want("r-1", access.Active)
	if r.Check != nil || !strings.Contains(r.History[len(r.History)-1].Detail, "contradicted by Graph") {
		t.Fatalf("finding not recorded: %+v", r.History)
	}
	rej, err := e.store.RecentRejections(e.ctx, 10)
	if err != nil || len(rej) != 1 || rej[0].RequestID != "r-1" || !strings.Contains(rej[0].Reason, "contradicted") {
		t.Fatalf("finding not shown to operators: %+v %v", rej, err)
	}
	if e.dir.Calls(brokertest.MRevokeSessions) != 0 {
		t.Fatal("sessions revoked on a forged record")
	}
	e.clock.Set(r.EndsAt)
	e.sweep()
	e.want("r-1", access.Expired)
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatal("member left after the grant's end")
	}
}

// A PIM activation record PIM does not know made jitaccess's own grant end
// with "membership kept: still granted by" the phantom, and the member
// jitaccess added stayed when the phantom ended.
func TestPhantomPIMActivation(t *testing.T) {
	e := newLagEnv(t, 2, nil)
	r := e.activate("r-1", seed.UPN("n01"), "PT30M")
	e.audit(event(pimActivated("phantom-1", start.Add(2*time.Hour))))
	id := "pim-" + pimReq
	e.want(id, access.Confirming)
	e.clock.Advance(testWindow)
	e.sweep()
	ph := e.want(id, access.Rejected)
	if !strings.Contains(ph.Reason, "contradicted by Graph") {
		t.Fatalf("reason %q", ph.Reason)
	}
	if l := e.ledger(seed.GroupAKSAdmin, seed.UserN01); slices.Contains(l.Grants, id) {
		t.Fatalf("phantom in the ledger: %+v", l)
	}
	e.clock.Set(r.EndsAt)
	e.sweep()
	e.want("r-1", access.Expired, access.HRequested, access.HApproved, access.HActivated, access.HMembershipAdded,
		access.HExpired, access.HMembershipRemoved, access.HSessionsRevoked)
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatal("member left in aks-admin")
	}
	// The phantom's end record changes nothing.
	e.audit(event(pimEnd("phantom-2", false)))
	e.clock.Advance(testWindow)
	e.sweep()
	if n := e.dir.RevokedFor(seed.UserN01); n != 1 {
		t.Fatalf("%d revocations", n)
	}
}

// A real PIM activation overlapping jitaccess's grant keeps the member
// jitaccess added; when the activation ends, that member is removed.
func TestConfirmedPIMActivationKeepsThenReleases(t *testing.T) {
	e := newLagEnv(t, 3, nil)
	r := e.activate("r-1", seed.UPN("n01"), "PT30M")
	pimEnds := start.Add(time.Hour)
	e.dir.SetPIMEnd(seed.GroupAKSAdmin, seed.UserN01, pimEnds)
	e.clock.Advance(testLag) // PIM's reads show it
	e.audit(event(pimActivated("pim-1", pimEnds)))
	id := "pim-" + pimReq
	e.want(id, access.Active)
	e.clock.Set(r.EndsAt)
	e.sweep()
	r = e.want("r-1", access.Expired)
	if !strings.HasPrefix(r.History[len(r.History)-1].Detail, access.DetailKeptPrefix) || e.dir.Calls(brokertest.MRevokeSessions) != 0 {
		t.Fatalf("history %+v", r.History)
	}
	// PIM ends its activation, but not the direct membership jitaccess made.
	e.clock.Set(pimEnds)
	e.dir.SetPIMEnd(seed.GroupAKSAdmin, seed.UserN01, time.Time{})
	e.dir.EndPIM(seed.GroupAKSAdmin, seed.UserN01)
	e.dir.SetMember(seed.GroupAKSAdmin, seed.UserN01)
	e.clock.Advance(time.Second)
	e.sweep()
	e.want(id, access.Expired)
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatal("the member jitaccess added outlived every grant")
	}
}

// On a first deployment the audit reader starts at the beginning of the
// hub's retention: last week's activations must not act.
func TestRecordsOlderThanTheDeploymentAreIgnored(t *testing.T) {
	e := newLagEnv(t, 4, nil)
	e.b = broker.New(e.store, e.dir, groupSet{profiles{"aks-admin": adminProfile()}}, e.clock, broker.Options{
		PIM: e.dir, Members: e.dir.MembersPort(), Self: broker.Self{AppID: selfApp},
		ReplicationWindow: testWindow, Deployment: fixedDeployment(start.Add(time.Minute))})
	e.dir.SetPIMEnd(seed.GroupAKSAdmin, seed.UserN01, start.Add(time.Hour))
	e.clock.Advance(time.Hour)
	e.audit(event(pimActivated("old-1", start.Add(time.Hour)), pimEnd("old-2", false)))
	if _, err := e.store.GetRequest(e.ctx, "pim-"+pimReq); !fault.NotFound(err) {
		t.Fatalf("a record older than the deployment was acted on: %v", err)
	}
	if e.dir.Calls(brokertest.MRevokeSessions) != 0 {
		t.Fatal("sessions revoked for last week's activation")
	}
}

// An observed activation ending more than a year out is clamped when
// observed, and listings keep working.
func TestObservedEndBeyondAYearIsClamped(t *testing.T) {
	e := newLagEnv(t, 5, nil)
	far := start.Add(3 * 365 * 24 * time.Hour)
	e.dir.SetPIMEnd(seed.GroupAKSAdmin, seed.UserN01, far)
	e.clock.Advance(testLag)
	e.audit(event(pimActivated("far-1", far)))
	r := e.want("pim-"+pimReq, access.Active)
	if r.EndsAt.After(e.clock.Now().Add(366*24*time.Hour)) || r.History[len(r.History)-1].Type != access.HNote {
		t.Fatalf("end not clamped: %v %+v", r.EndsAt, r.History)
	}
	page, err := e.store.ListRequests(e.ctx, broker.ListFilter{State: access.Active, Limit: 10})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("listing: %v %v", page.Items, err)
	}
}

// A flood of invalid events aimed at one active grant (issue: 2,000 events
// with long CloudEvent ids grew the request past what one entity holds, and
// its end could not be saved). The request stays bounded; the rejections log
// keeps the rest; the grant ends on time, its member removed and its
// sessions revoked once.
func TestFloodOfInvalidEventsIsBounded(t *testing.T) {
	e := newEnv(t, nil)
	r := e.activate("r-1", seed.UPN("n01"), "PT10M")
	long := strings.Repeat("x", 250)
	for i := range 2000 {
		id := fmt.Sprintf("%s-%05d", long, i)
		var b []byte
		if i%2 == 0 {
			// Invalid: rejected.
			b = body(id, access.TypeApproved, map[string]any{"requestId": "r-1", "approver": 7})
		} else {
			// Valid but not allowed: refused (the requester approving).
			b = body(id, access.TypeApproved, map[string]any{"requestId": "r-1", "approver": seed.UPN("n01")})
		}
		e.handle(b)
	}
	got := e.get("r-1")
	raw, _ := json.Marshal(got)
	if len(got.History) > 10+access.MaxRecordedRefusals || len(got.EventIDs) > 256 || len(raw) > 64<<10 {
		t.Fatalf("request grew with the flood: %d history entries, %d ids, %d bytes", len(got.History), len(got.EventIDs), len(raw))
	}
	for _, id := range got.EventIDs {
		if len(id) > 64 {
			t.Fatalf("dedupe key of %d characters", len(id))
		}
	}
	if n := e.store.Ops()[storetest.OpRecordRejection]; n != 2000-access.MaxRecordedRefusals {
		t.Fatalf("rejections logged: %d, want %d", n, 2000-access.MaxRecordedRefusals)
	}
	// A redelivery of an early refused event is still a duplicate.
	e.handle(body(fmt.Sprintf("%s-%05d", long, 1), access.TypeApproved, map[string]any{"requestId": "r-1", "approver": seed.UPN("n01")}))
	if n := len(e.get("r-1").History); n != len(got.History) {
		t.Fatalf("a redelivered refused event was recorded again (%d → %d)", len(got.History), n)
	}
	e.clock.Set(r.EndsAt)
	e.sweep()
	e.want("r-1", access.Expired)
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatal("the flooded grant did not end")
	}
}

// When a grant's end cannot be saved (a permanent storage refusal), the
// removal and the session revocation still happen, once, through the
// membership ledger; the request stays due, past its end.
func TestEndThatCannotBeSaved(t *testing.T) {
	for _, failAt := range []int{1, 2, 3} { // the end, the removal's record, the revocation's record
		t.Run(fmt.Sprint(failAt), func(t *testing.T) {
			e := newEnv(t, nil)
			r := e.activate("r-1", seed.UPN("n01"), "PT10M")
			var mu sync.Mutex
			saves := 0
			e.store.SetHook(func(op string) error {
				if op != storetest.OpSaveRequest {
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				saves++
				if saves >= failAt {
					return fault.Wrap(fault.ErrPermanent, "save request", errors.New("needs 16 properties, over the limit of 15 (injected)"))
				}
				return nil
			})
			e.clock.Set(r.EndsAt)
			_ = e.b.Sweep(e.ctx)
			for range 3 {
				e.clock.Advance(2 * time.Minute)
				_ = e.b.Sweep(e.ctx)
			}
			if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 || e.dir.WriteCount(brokertest.MRemoveMember) != 1 {
				t.Fatalf("member %v, revocations %d, removals %d", e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01),
					e.dir.RevokedFor(seed.UserN01), e.dir.WriteCount(brokertest.MRemoveMember))
			}
			if got := e.get("r-1"); got.State.Ended() {
				t.Fatalf("the end was saved after all: %s", got.State)
			}
		})
	}
}
