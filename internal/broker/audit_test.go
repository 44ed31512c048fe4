package broker_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// groupSet names the profiles of the tests that exercise audit handling and
// drift reconciliation (the methods are profiles').
type groupSet struct{ profiles }

const (
	selfApp   = "0a0a0a0a-1111-4222-8333-444455556666"
	pimReq    = "9b8a7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
	msPIMSPID = "bdefcbb6-d8b2-497d-a944-b683d9a36b0c"
)

func newAuditEnv(t *testing.T, mutate func(*access.Profile)) *env {
	t.Helper()
	clock := brokertest.NewClock(start)
	e := &env{t: t, ctx: t.Context(), dir: brokertest.NewSeeded(), clock: clock, store: newStore(clock)}
	p := adminProfile()
	if mutate != nil {
		mutate(&p)
	}
	e.b = broker.New(e.store, e.dir, groupSet{profiles{"aks-admin": p}}, clock, broker.Options{
		PIM: e.dir, Members: e.dir.MembersPort(), Self: broker.Self{AppID: selfApp}})
	return e
}

type recSpec struct {
	id, activity, service string
	by                    map[string]any
	user, group           string
	details               map[string]string
}

func byUser(id, upn string) map[string]any {
	return map[string]any{"user": map[string]any{"id": id, "userPrincipalName": upn}}
}

func byApp(name, spid, appID string) map[string]any {
	return map[string]any{"app": map[string]any{"appId": appID, "displayName": name, "servicePrincipalId": spid}}
}

func event(recs ...recSpec) []byte {
	var out []any
	for _, r := range recs {
		var det []any
		for k, v := range r.details {
			det = append(det, map[string]any{"key": k, "value": v})
		}
		targets := []any{
			map[string]any{"id": r.user, "type": "User", "userPrincipalName": seed.UPN("n01")},
			map[string]any{"id": r.group, "type": "Group"},
		}
		if r.service == "PIM" {
			targets = append(targets, map[string]any{"id": pimReq, "type": "Request"})
		}
		out = append(out, map[string]any{
			"time": start.Format(time.RFC3339), "operationName": r.activity, "category": "AuditLogs",
			"properties": map[string]any{
				"id": r.id, "activityDisplayName": r.activity, "activityDateTime": start.Format(time.RFC3339),
				"loggedByService": r.service, "result": "success", "category": "GroupManagement",
				"initiatedBy": r.by, "targetResources": targets, "additionalDetails": det,
			},
		})
	}
	b, _ := json.Marshal(map[string]any{"records": out})
	return b
}

func pimActivated(id string, end time.Time) recSpec {
	return recSpec{id: id, activity: "Add member to role completed (PIM activation)", service: "PIM",
		by: byUser(seed.UserN01, seed.UPN("n01")), user: seed.UserN01, group: seed.GroupAKSAdmin,
		details: map[string]string{"RoleAssignmentRequestId": pimReq, "StartTime": start.Format(time.RFC3339), "ExpirationTime": end.Format(time.RFC3339)}}
}

func pimAddByMSPIM(id string) recSpec {
	return recSpec{id: id, activity: "Add member to group", service: "Core Directory",
		by: byApp("MS-PIM", msPIMSPID, ""), user: seed.UserN01, group: seed.GroupAKSAdmin}
}

func pimEnd(id string, deactivated bool) recSpec {
	act := "Remove member from role (PIM activation expired)"
	if deactivated {
		act = "Remove member from role completed (PIM deactivate)"
	}
	return recSpec{id: id, activity: act, service: "PIM", by: byApp("MS-PIM", msPIMSPID, ""),
		user: seed.UserN01, group: seed.GroupAKSAdmin}
}

func memberChange(id string, add bool, by map[string]any, user string) recSpec {
	act := "Remove member from group"
	if add {
		act = "Add member to group"
	}
	return recSpec{id: id, activity: act, service: "Core Directory", by: by, user: user, group: seed.GroupAKSAdmin}
}

func (e *env) audit(events ...[]byte) {
	e.t.Helper()
	if err := e.b.HandleAuditEvents(e.ctx, events); err != nil {
		e.t.Fatalf("HandleAuditEvents: %v", err)
	}
}

func TestAuditObservedPIMActivationThenExpiry(t *testing.T) {
	e := newAuditEnv(t, nil)
	end := start.Add(2 * time.Hour)
	e.dir.SetPIMEnd(seed.GroupAKSAdmin, seed.UserN01, end.Add(time.Minute)) // Graph's end wins
	batch := event(pimAddByMSPIM("dir-1"), pimActivated("pim-1", end))
	e.audit(batch, []byte("not json"), []byte(`{"records":7}`))
	e.audit(batch) // redelivery
	id := "pim-" + pimReq
	r := e.want(id, access.Active, access.HObserved)
	if r.Source != access.SourcePIM || r.Requester != seed.UserN01 || !r.EndsAt.Equal(end.Add(time.Minute)) || r.DueAt.IsZero() {
		t.Fatalf("observed grant: %+v", r)
	}
	e.clock.Set(end.Add(time.Minute))
	e.dir.EndPIM(seed.GroupAKSAdmin, seed.UserN01)
	exp := event(pimEnd("pim-2", false), memberChange("dir-2", false, byApp("MS-PIM", msPIMSPID, ""), seed.UserN01))
	e.audit(exp)
	e.audit(exp)
	e.sweep()
	// The record's claim is noted and checked; the end itself is PIM's end,
	// which the sweep reaches first.
	e.want(id, access.Expired, access.HObserved, access.HNote, access.HExpired, access.HSessionsRevoked)
	if n := e.dir.RevokedFor(seed.UserN01); n != 1 {
		t.Fatalf("revocations %d, want 1", n)
	}
	if n := e.dir.WriteCount(brokertest.MRemoveMember); n != 0 {
		t.Fatalf("jitaccess removed a PIM membership (%d)", n)
	}
	if l := e.ledger(seed.GroupAKSAdmin, seed.UserN01); len(l.Grants) != 0 {
		t.Fatalf("ledger still holds %v", l.Grants)
	}
}

func TestAuditObservedPIMDeactivation(t *testing.T) {
	e := newAuditEnv(t, nil)
	e.dir.SetPIMEnd(seed.GroupAKSAdmin, seed.UserN01, start.Add(time.Hour))
	e.audit(event(pimActivated("pim-1", start.Add(time.Hour))))
	e.clock.Advance(10 * time.Minute)
	e.dir.EndPIM(seed.GroupAKSAdmin, seed.UserN01)
	e.audit(event(pimEnd("pim-2", true)))
	// The record triggers a check with Graph after the replication window.
	e.want("pim-"+pimReq, access.Active, access.HObserved, access.HNote)
	e.clock.Advance(broker.DefaultReplicationWindow)
	e.sweep()
	r := e.want("pim-"+pimReq, access.Cancelled, access.HObserved, access.HNote, access.HCancelled, access.HSessionsRevoked)
	if r.EndsAt.IsZero() || !r.EndsAt.Equal(start.Add(time.Hour)) {
		t.Fatalf("endsAt from the record: %v", r.EndsAt)
	}
}

func TestAuditLostExpiryRecoveredBySweep(t *testing.T) {
	e := newAuditEnv(t, func(p *access.Profile) {})
	e.dir.SetPIMEnd(seed.GroupAKSAdmin, seed.UserN01, start.Add(time.Hour))
	e.audit(event(pimActivated("pim-1", start.Add(time.Hour))))
	e.clock.Set(start.Add(time.Hour + time.Second))
	e.sweep()
	e.sweep()
	e.want("pim-"+pimReq, access.Expired, access.HObserved, access.HExpired, access.HSessionsRevoked)
	if n := e.dir.RevokedFor(seed.UserN01); n != 1 {
		t.Fatalf("revocations %d, want 1", n)
	}
	// The late record changes nothing.
	e.audit(event(pimEnd("pim-2", false)))
	e.want("pim-"+pimReq, access.Expired, access.HObserved, access.HExpired, access.HSessionsRevoked)
}

func TestAuditOutOfBand(t *testing.T) {
	for _, mode := range []string{access.OutOfBandRecord, access.OutOfBandRemove} {
		t.Run(mode, func(t *testing.T) {
			e := newAuditEnv(t, func(p *access.Profile) { p.OutOfBand = mode })
			e.dir.SetMember(seed.GroupAKSAdmin, seed.UserN01)
			add := event(memberChange("dir-9", true, byUser(seed.UserX01, seed.UPN("x01")), seed.UserN01))
			e.audit(add)
			e.audit(add)
			id := "oob-dir-9"
			if mode == access.OutOfBandRecord {
				r := e.want(id, access.Active, access.HOutOfBand)
				if r.Source != access.SourceOutOfBand || r.Requester != seed.UserN01 || r.History[0].Actor != seed.UPN("x01") {
					t.Fatalf("finding: %+v", r)
				}
				if !e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
					t.Fatal("record mode removed the member")
				}
				return
			}
			e.want(id, access.Revoked, access.HOutOfBand, access.HRevoked, access.HMembershipRemoved, access.HSessionsRevoked)
			if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 {
				t.Fatal("out-of-band member not removed once with sessions revoked")
			}
		})
	}
}

func TestAuditOwnChangesIgnored(t *testing.T) {
	e := newAuditEnv(t, nil)
	e.audit(event(memberChange("dir-1", true, byApp("jitaccess", "", selfApp), seed.UserN01)))
	if _, err := e.store.GetRequest(e.ctx, "oob-dir-1"); !fault.NotFound(err) {
		t.Fatalf("own change recorded: %v", err)
	}
}

func TestAuditManagedMemberRemovedByOther(t *testing.T) {
	e := newAuditEnv(t, nil)
	e.activate("r-1", seed.UPN("n01"), "")
	e.dir.UnsetMember(seed.GroupAKSAdmin, seed.UserN01) // x01 really removed it
	e.audit(event(memberChange("dir-5", false, byUser(seed.UserX01, seed.UPN("x01")), seed.UserN01)))
	e.want("r-1", access.Active)
	e.clock.Advance(broker.DefaultReplicationWindow)
	e.sweep()
	r := e.want("r-1", access.Revoked)
	if !slices.Contains(types(r), access.HSessionsRevoked) || slices.Contains(types(r), access.HMembershipRemoved) {
		t.Fatalf("history %v", types(r))
	}
	if !strings.Contains(r.Reason, seed.UPN("x01")) {
		t.Fatalf("actor not recorded: %q", r.Reason)
	}
	if n := e.dir.WriteCount(brokertest.MRemoveMember); n != 0 {
		t.Fatalf("removed %d times", n)
	}
}

func TestAuditTransientFailureRetried(t *testing.T) {
	e := newAuditEnv(t, nil)
	e.dir.SetPIMEnd(seed.GroupAKSAdmin, seed.UserN01, start.Add(time.Hour))
	e.dir.Fail(brokertest.MPIMEndTime, brokertest.Transient(brokertest.MPIMEndTime))
	batch := event(pimActivated("pim-1", start.Add(time.Hour)))
	if err := e.b.HandleAuditEvents(e.ctx, [][]byte{batch}); !fault.Transient(err) {
		t.Fatalf("want transient, got %v", err)
	}
	e.audit(batch)
	e.audit(batch)
	e.want("pim-"+pimReq, access.Active, access.HObserved)
}

func TestAuditObservedPIMExtended(t *testing.T) {
	e := newAuditEnv(t, nil)
	e.dir.SetPIMEnd(seed.GroupAKSAdmin, seed.UserN01, start.Add(time.Hour))
	e.audit(event(pimActivated("pim-1", start.Add(time.Hour))))
	e.dir.SetPIMEnd(seed.GroupAKSAdmin, seed.UserN01, start.Add(3*time.Hour)) // extended in the portal
	e.clock.Set(start.Add(time.Hour + time.Second))
	e.sweep()
	r := e.want("pim-"+pimReq, access.Active, access.HObserved)
	if !r.EndsAt.Equal(start.Add(3 * time.Hour)) {
		t.Fatalf("endsAt %v", r.EndsAt)
	}
	e.clock.Set(start.Add(3*time.Hour + time.Second))
	e.sweep()
	e.want("pim-"+pimReq, access.Expired, access.HObserved, access.HExpired, access.HSessionsRevoked)
}

var _ broker.Profiles = groupSet{}
