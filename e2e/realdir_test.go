package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/audit"
	"github.com/jitaccess/jitaccess/internal/graphsim"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// The real directory through the built binary (docs/design.md, The real directory): the Graph
// simulator's membership and PIM reads lag its writes by up to replicaLag,
// replica by replica, and audit records are claims anyone who can send to
// the hub can make. Each test is a behaviour reported from outside; each
// failed against the binary of 2026-12-03 before the membership protocol
// was reshaped (RELIABILITY.md "The real directory").

const (
	replicaLag = 3 * time.Second
	// realWindow is the binary's JIT_REPLICATION_WINDOW in these tests.
	realWindow = 4 * time.Second
)

// newLagEnv is newEnv with lagging reads and a short replication window.
func newLagEnv(t *testing.T, seedN int64) *env {
	t.Helper()
	e := newEnv(t)
	e.vars["JIT_REPLICATION_WINDOW"] = "PT4S"
	e.restart()
	e.graph.SetReplicaLag(replicaLag, seedN)
	return e
}

// record builds one Entra audit record as the diagnostic setting delivers
// it, dated at.
func record(id, activity, service string, at time.Time, by map[string]any, user, group string, details map[string]string) map[string]any {
	var det []any
	for k, v := range details {
		det = append(det, map[string]any{"key": k, "value": v})
	}
	targets := []any{
		map[string]any{"id": user, "type": "User", "userPrincipalName": seed.UPN("n01")},
		map[string]any{"id": group, "type": "Group"},
	}
	return map[string]any{
		"time": at.UTC().Format(time.RFC3339Nano), "operationName": activity, "category": "AuditLogs",
		"properties": map[string]any{
			"id": id, "activityDisplayName": activity, "activityDateTime": at.UTC().Format(time.RFC3339Nano),
			"loggedByService": service, "result": "success", "category": "GroupManagement",
			"initiatedBy": by, "targetResources": targets, "additionalDetails": det,
		},
	}
}

func records(recs ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"records": recs})
	return b
}

func byPerson(id, upn string) map[string]any {
	return map[string]any{"user": map[string]any{"id": id, "userPrincipalName": upn}}
}

// sweepsFor fires the sweep every 250 ms for d.
func (e *env) sweepsFor(d time.Duration) {
	e.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		e.sweep()
		time.Sleep(250 * time.Millisecond)
	}
}

// A grant activated a few seconds before a sweep was ended by drift
// reconciliation as "member vanished", and the user's sessions were
// revoked, while the user was a member.
func TestRealDirFreshGrantIsNotVanished(t *testing.T) {
	e := newLagEnv(t, 1)
	e.send(access.TypeRequested, request("fresh-1", seed.UPN("n01"), "PT1M"))
	e.send(access.TypeApproved, map[string]string{"requestId": "fresh-1", "approver": seed.UPN("p01")})
	e.sweepsFor(realWindow + replicaLag)
	v := e.mustGet("fresh-1")
	if v.State != "active" || e.graph.RevokeCount(seed.UserN01) != 0 {
		t.Fatalf("a grant whose member is there was ended: %s %v (revocations %d)", v.State, v.types(), e.graph.RevokeCount(seed.UserN01))
	}
	if !e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatal("active without the access")
	}
}

// A grant approved right after the same user's previous grant ended was
// recorded active ("already had this group's access") without the access.
func TestRealDirGrantRightAfterThePreviousEnd(t *testing.T) {
	e := newLagEnv(t, 2)
	// A first grant as long as the lag: right after its end, every read
	// still shows the member.
	e.send(access.TypeRequested, request("seq-1", seed.UPN("n01"), "PT3S"))
	e.send(access.TypeApproved, map[string]string{"requestId": "seq-1", "approver": seed.UPN("p01")})
	time.Sleep(3100 * time.Millisecond)
	e.sweep()
	if v := e.mustGet("seq-1"); v.State != "expired" || e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatalf("first grant: %s %v", v.State, v.types())
	}
	e.send(access.TypeRequested, request("seq-2", seed.UPN("n01"), "PT1M"))
	e.send(access.TypeApproved, map[string]string{"requestId": "seq-2", "approver": seed.UPN("p01")})
	v := e.mustGet("seq-2")
	if v.State != "active" || !e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || v.has("membership-added") != 1 {
		t.Fatalf("second grant %s without the access (member %v): %v", v.State, e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01), v.History)
	}
}

// A standing membership an administrator added seconds before a grant was
// removed at the grant's end: Graph's "already exist" was ignored.
func TestRealDirStandingMemberAddedJustBefore(t *testing.T) {
	e := newLagEnv(t, 3)
	e.send(access.TypeRequested, request("stand-1", seed.UPN("n01"), "PT2S"))
	e.graph.AddMember(seed.GroupAKSAdmin, seed.UserN01) // an administrator, in the portal
	e.send(access.TypeApproved, map[string]string{"requestId": "stand-1", "approver": seed.UPN("p01")})
	v := e.mustGet("stand-1")
	if v.State != "active" || v.has("membership-added") != 0 {
		t.Fatalf("the standing member was taken as jitaccess's: %v", v.History)
	}
	time.Sleep(2100 * time.Millisecond)
	e.sweep()
	if v := e.mustGet("stand-1"); v.State != "expired" {
		t.Fatalf("not ended: %s %v", v.State, v.types())
	}
	if !e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.graph.RevokeCount(seed.UserN01) != 0 {
		t.Fatal("the grant's end removed the standing membership")
	}
}

// A forged "Remove member from group" record for a member who was still in
// the group ended the grant without any removal; the member then stayed in
// aks-admin for good.
func TestRealDirForgedRemovalRecord(t *testing.T) {
	e := newLagEnv(t, 4)
	e.send(access.TypeRequested, request("forge-1", seed.UPN("n01"), "PT12S"))
	e.send(access.TypeApproved, map[string]string{"requestId": "forge-1", "approver": seed.UPN("p01")})
	e.audit(records(record("forged-removal-1", audit.ActivityRemoveMember, audit.ServiceCoreDirectory, time.Now(),
		byPerson(seed.UserX01, seed.UPN("x01")), seed.UserN01, seed.GroupAKSAdmin, nil)))
	e.sweepsFor(realWindow + time.Second)
	v := e.mustGet("forge-1")
	if v.State != "active" || e.graph.RevokeCount(seed.UserN01) != 0 {
		t.Fatalf("a forged record ended the grant: %s %v", v.State, v.types())
	}
	if !strings.Contains(v.History[len(v.History)-1].Detail, "contradicted by Graph") {
		t.Fatalf("no finding in the history: %v", v.History)
	}
	if page := e.dashboard(); !strings.Contains(page, "contradicted by Graph") {
		t.Fatal("the finding is not on the dashboard")
	}
	end, _ := time.Parse(time.RFC3339Nano, v.EndsAt)
	time.Sleep(time.Until(end) + 100*time.Millisecond)
	e.sweep()
	if v := e.mustGet("forge-1"); v.State != "expired" || e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.graph.RevokeCount(seed.UserN01) != 1 {
		t.Fatalf("at the end: %s %v, member %v", v.State, v.types(), e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01))
	}
}

// A PIM activation record whose request id PIM does not know made
// jitaccess's own grant end with "membership kept: still granted by" the
// phantom; when the phantom ended, the member jitaccess added stayed.
func TestRealDirPhantomPIMActivation(t *testing.T) {
	e := newLagEnv(t, 5)
	e.send(access.TypeRequested, request("ph-1", seed.UPN("n01"), "PT6S"))
	e.send(access.TypeApproved, map[string]string{"requestId": "ph-1", "approver": seed.UPN("p01")})
	now := time.Now()
	phantom := "0badc0de-0000-4000-8000-00000000beef"
	e.audit(records(record("PIM_phantom_1", audit.ActivityPIMActivated, audit.ServicePIM, now,
		byPerson(seed.UserN01, seed.UPN("n01")), seed.UserN01, seed.GroupAKSAdmin, map[string]string{
			"RoleAssignmentRequestId": phantom, "StartTime": now.UTC().Format(time.RFC3339),
			"ExpirationTime": now.Add(10 * time.Second).UTC().Format(time.RFC3339)})))
	e.sweepsFor(realWindow + time.Second)
	if v, code := e.get("pim-" + phantom); code == http.StatusOK && v.State != "rejected" {
		t.Fatalf("phantom activation: %s %v", v.State, v.types())
	}
	end, _ := time.Parse(time.RFC3339Nano, e.mustGet("ph-1").EndsAt)
	time.Sleep(time.Until(end) + 100*time.Millisecond)
	e.sweep()
	v := e.mustGet("ph-1")
	if v.State != "expired" || v.has("membership-removed") != 1 {
		t.Fatalf("jitaccess's grant: %s %v", v.State, v.History)
	}
	time.Sleep(5 * time.Second) // past the phantom's claimed end
	e.sweepsFor(time.Second)
	if e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatal("the member jitaccess added stayed in aks-admin")
	}
	if n := e.graph.RevokeCount(seed.UserN01); n != 1 {
		t.Fatalf("%d revocations, want 1", n)
	}
}

// On a first deployment the audit reader starts at the beginning of the
// hub's retention: records of last week's portal activations revoked the
// sessions of everyone who used PIM then.
func TestRealDirRecordsOlderThanTheDeployment(t *testing.T) {
	e := newLagEnv(t, 6)
	lastWeek := time.Now().Add(-7 * 24 * time.Hour)
	req := "1a57fee0-0000-4000-8000-00000000000b"
	e.audit(records(
		record("PIM_old_1", audit.ActivityPIMActivated, audit.ServicePIM, lastWeek,
			byPerson(seed.UserN01, seed.UPN("n01")), seed.UserN01, seed.GroupAKSAdmin, map[string]string{
				"RoleAssignmentRequestId": req, "StartTime": lastWeek.UTC().Format(time.RFC3339),
				"ExpirationTime": lastWeek.Add(time.Hour).UTC().Format(time.RFC3339)}),
		record("PIM_old_2", audit.ActivityPIMExpired, audit.ServicePIM, lastWeek.Add(time.Hour),
			map[string]any{"app": map[string]any{"displayName": "MS-PIM"}}, seed.UserN01, seed.GroupAKSAdmin, nil)))
	e.sweepsFor(realWindow + time.Second)
	if _, code := e.get("pim-" + req); code != http.StatusNotFound {
		t.Fatalf("last week's activation recorded: %d", code)
	}
	if n := e.graph.RevokeCount(seed.UserN01); n != 0 {
		t.Fatalf("%d revocations for last week's activation", n)
	}
}

// One observed activation ending more than a year out made the listing of
// active requests answer 500, the dashboard 503, and every reconciliation
// fail.
func TestRealDirObservedEndBeyondAYear(t *testing.T) {
	e := newLagEnv(t, 7)
	e.graph.SetPIMPolicy(seed.GroupAKSAdmin, graphsim.PIMPolicy{})
	rid := e.graph.ActivatePIM(seed.GroupAKSAdmin, seed.UserN01, 3*365*24*time.Hour, "long")
	if rid == "" {
		t.Fatal("activation refused by the simulator")
	}
	time.Sleep(replicaLag)
	e.auditLog()
	v := e.mustGet("pim-" + strings.ToLower(rid))
	if v.State != "active" {
		t.Fatalf("observed: %s %v", v.State, v.types())
	}
	if end, _ := time.Parse(time.RFC3339Nano, v.EndsAt); end.After(time.Now().Add(366 * 24 * time.Hour)) {
		t.Fatalf("end not clamped: %s", v.EndsAt)
	}
	for _, path := range []string{"/api/requests?state=active", "/api/dashboard"} {
		resp, err := http.Get(e.host.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
	e.sweep()
	for _, l := range e.logLines() {
		if fmt.Sprint(l["msg"]) == "drift reconciliation failed" {
			t.Fatalf("reconciliation failed: %v", l)
		}
	}
}

// dashboard returns the operators' page.
func (e *env) dashboard() string {
	e.t.Helper()
	resp, err := http.Get(e.host.URL() + "/api/dashboard")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("dashboard: %d", resp.StatusCode)
	}
	return string(b)
}
