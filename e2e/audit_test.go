package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/graphsim"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// audit delivers events to EntraAuditEvents as the Event Hubs trigger would.
func (e *env) audit(events ...[]byte) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var in []string
	for _, ev := range events {
		in = append(in, string(ev))
	}
	if err := e.host.DeliverAuditBatch(ctx, in); err != nil {
		e.t.Fatalf("audit batch: %v\n%s", err, lastLines(e.proc.output(), 30))
	}
}

// auditLog delivers everything graphsim recorded so far (older records again
// too: redelivery must change nothing), with some noise.
func (e *env) auditLog() {
	e.t.Helper()
	e.audit(e.graph.AuditRecords(), []byte("not json"), []byte(`{"records":{}}`))
}

// fresh dates an audit fixture now (its records' time and
// activityDateTime): records older than the deployment are not acted on
// (docs/design.md, real directory rule 3), and the fixtures were captured before it.
func fresh(b []byte) []byte {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	b = freshTime.ReplaceAll(b, []byte(`"time":"`+now+`"`))
	return freshActivity.ReplaceAll(b, []byte(`"activityDateTime":"`+now+`"`))
}

var (
	freshTime     = regexp.MustCompile(`"time":"[^"]*"`)
	freshActivity = regexp.MustCompile(`"activityDateTime":"[^"]*"`)
)

// afterWindow waits out the replication window (JIT_REPLICATION_WINDOW in
// the tests) and sweeps: the checks audit records triggered are decided.
func (e *env) afterWindow() {
	e.t.Helper()
	time.Sleep(1100 * time.Millisecond)
	e.sweep()
}

func wantHistory(t *testing.T, v view, want ...string) {
	t.Helper()
	if got := v.types(); !slices.Equal(got, want) {
		t.Fatalf("%s: history %v, want %v (state %s, reason %q)", v.ID, got, want, v.State, v.Reason)
	}
}

func TestAuditPortalActivationThenExpiry(t *testing.T) {
	e := newEnv(t)
	e.graph.SetPIMPolicy(seed.GroupAKSAdmin, graphsim.PIMPolicy{})
	rid := e.graph.ActivatePIM(seed.GroupAKSAdmin, seed.UserN01, 3*time.Second, "INC-1")
	if rid == "" {
		t.Fatal("activation refused by the simulator")
	}
	e.auditLog()
	e.auditLog()
	id := "pim-" + strings.ToLower(rid)
	v := e.mustGet(id)
	if v.State != "active" || v.Source != "pim" || v.Requester != seed.UserN01 || v.EndsAt == "" || v.GroupID != seed.GroupAKSAdmin {
		t.Fatalf("observed activation: %+v", v)
	}
	wantHistory(t, v, "observed")
	end, _ := time.Parse(time.RFC3339Nano, v.EndsAt)
	time.Sleep(time.Until(end) + 100*time.Millisecond)
	e.graph.ExpirePIM(time.Now())
	e.auditLog()
	e.sweep()
	e.auditLog()
	v = e.mustGet(id)
	if v.State != "expired" {
		t.Fatalf("after expiry: %+v", v)
	}
	// PIM's end record is noted (a claim, checked with Graph); the end is
	// PIM's own, which the sweep reaches.
	wantHistory(t, v, "observed", "note", "expired", "sessions-revoked")
	if n := e.graph.RevokeCount(seed.UserN01); n != 1 {
		var lines []string
		for _, l := range strings.Split(e.proc.output(), "\n") {
			if strings.Contains(l, "revoke") || strings.Contains(l, "audit") || strings.Contains(l, "ended") || strings.Contains(l, "sweep applied") || strings.Contains(l, "work done") {
				lines = append(lines, l)
			}
		}
		t.Fatalf("revocations %d, want 1\n%s", n, strings.Join(lines, "\n"))
	}
}

func TestAuditPortalDeactivation(t *testing.T) {
	e := newEnv(t)
	e.graph.SetPIMPolicy(seed.GroupAKSAdmin, graphsim.PIMPolicy{})
	rid := e.graph.ActivatePIM(seed.GroupAKSAdmin, seed.UserN01, time.Hour, "INC-2")
	e.auditLog()
	if !e.graph.DeactivatePIM(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatal("deactivation refused")
	}
	e.auditLog()
	e.afterWindow()
	v := e.mustGet("pim-" + strings.ToLower(rid))
	if v.State != "cancelled" {
		t.Fatalf("after deactivation: %+v", v)
	}
	wantHistory(t, v, "observed", "note", "cancelled", "sessions-revoked")
	if n := e.graph.RevokeCount(seed.UserN01); n != 1 {
		t.Fatalf("revocations %d, want 1", n)
	}
}

func TestAuditLostExpiryRecordRecoveredBySweep(t *testing.T) {
	e := newEnv(t)
	e.graph.SetPIMPolicy(seed.GroupAKSAdmin, graphsim.PIMPolicy{})
	rid := e.graph.ActivatePIM(seed.GroupAKSAdmin, seed.UserN01, 2*time.Second, "INC-3")
	e.auditLog()
	id := "pim-" + strings.ToLower(rid)
	end, _ := time.Parse(time.RFC3339Nano, e.mustGet(id).EndsAt)
	time.Sleep(time.Until(end) + 100*time.Millisecond)
	e.graph.ExpirePIM(time.Now()) // its audit records are never delivered
	e.sweep()
	e.sweep()
	v := e.mustGet(id)
	if v.State != "expired" {
		t.Fatalf("sweep did not end it: %+v", v)
	}
	wantHistory(t, v, "observed", "expired", "sessions-revoked")
	if n := e.graph.RevokeCount(seed.UserN01); n != 1 {
		t.Fatalf("revocations %d, want 1", n)
	}
}

func oobFixture(t *testing.T) []byte {
	b, err := os.ReadFile(filepath.Join(repoRoot, "handlers", "testdata", "audit", "outofband_add_by_user.json"))
	if err != nil {
		t.Fatal(err)
	}
	return fresh(b)
}

const oobID = "oob-directory_93154481-5703-42a7-89a5-b7de6fbace8e_fi4u8_64698073"

func TestAuditOutOfBandRecord(t *testing.T) {
	e := newEnv(t)
	e.graph.AddMember(seed.GroupAKSAdmin, seed.UserX01) // a01 adds x01 in the portal
	e.audit(oobFixture(t))
	e.audit(oobFixture(t))
	v := e.mustGet(oobID)
	if v.State != "active" || v.Source != "outofband" || v.Requester != seed.UserX01 || v.History[0].Actor != "a01@contoso.com" {
		t.Fatalf("finding: %+v", v)
	}
	wantHistory(t, v, "outofband")
	e.sweep()
	if !e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserX01) || e.graph.RevokeCount(seed.UserX01) != 0 {
		t.Fatal("record mode touched the member")
	}
}

func TestAuditOutOfBandRemove(t *testing.T) {
	e := newEnv(t)
	raw, err := os.ReadFile(e.profiles)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "profiles.json")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(raw), `"outOfBand": "record"`, `"outOfBand": "remove"`)), 0o600); err != nil {
		t.Fatal(err)
	}
	e.profiles = p
	e.restart()
	e.graph.AddMember(seed.GroupAKSAdmin, seed.UserX01)
	e.audit(oobFixture(t))
	e.audit(oobFixture(t))
	v := e.mustGet(oobID)
	if v.State != "revoked" || v.Source != "outofband" {
		t.Fatalf("finding: %+v", v)
	}
	wantHistory(t, v, "outofband", "revoked", "membership-removed", "sessions-revoked")
	if e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserX01) || e.graph.RevokeCount(seed.UserX01) != 1 {
		t.Fatal("out-of-band member not removed with sessions revoked once")
	}
	// jitaccess's own removal comes back in the audit log: ignored.
	e.auditLog()
	if v2 := e.mustGet(oobID); len(v2.History) != len(v.History) {
		t.Fatalf("own change acted on: %v", v2.types())
	}
}

func pimRequest(id, duration string) map[string]string {
	return map[string]string{"requestId": id, "requester": seed.UPN("n01"), "profile": "aks-ops-pim", "justification": "e2e: PIM mode", "duration": duration}
}

func TestPIMModeRequestToEnd(t *testing.T) {
	e := newEnv(t)
	e.graph.SetPIMPolicy(seed.GroupAKSOps, graphsim.PIMPolicy{MaxDuration: time.Hour, RequireJustification: true})
	e.send(access.TypeRequested, pimRequest("pim-mode-1", "PT3S"))
	e.send(access.TypeApproved, map[string]string{"requestId": "pim-mode-1", "approver": seed.UPN("p01"), "comment": "ok"})
	v := e.mustGet("pim-mode-1")
	if v.State != "active" || !e.graph.IsDirectMember(seed.GroupAKSOps, seed.UserN01) || len(e.graph.PIMAssignments()) != 1 {
		t.Fatalf("after approval: %+v assignments %+v", v, e.graph.PIMAssignments())
	}
	e.auditLog() // PIM's and jitaccess's own records: nothing new
	end, _ := time.Parse(time.RFC3339Nano, v.EndsAt)
	time.Sleep(time.Until(end) + 100*time.Millisecond)
	e.graph.ExpirePIM(time.Now())
	e.sweep()
	e.auditLog()
	v = e.mustGet("pim-mode-1")
	wantHistory(t, v, "requested", "approved", "activated", "expired", "sessions-revoked")
	if e.graph.IsDirectMember(seed.GroupAKSOps, seed.UserN01) || e.graph.RevokeCount(seed.UserN01) != 1 {
		t.Fatal("PIM-mode end: member left or sessions not revoked once")
	}
	if n := e.graph.CountCalls("DELETE", "/$ref"); n != 0 {
		t.Fatalf("jitaccess removed the member itself (%d)", n)
	}
	// An early cancel uses adminRemove.
	e.send(access.TypeRequested, pimRequest("pim-mode-2", "PT1H"))
	e.send(access.TypeApproved, map[string]string{"requestId": "pim-mode-2", "approver": seed.UPN("p01")})
	e.send(access.TypeCancelled, map[string]string{"requestId": "pim-mode-2", "by": seed.UPN("n01")})
	v = e.mustGet("pim-mode-2")
	wantHistory(t, v, "requested", "approved", "activated", "cancelled", "sessions-revoked")
	if e.graph.IsDirectMember(seed.GroupAKSOps, seed.UserN01) || len(e.graph.PIMAssignments()) != 0 {
		t.Fatal("cancel left the PIM assignment")
	}
}

func TestPIMModePolicyRefusal(t *testing.T) {
	e := newEnv(t)
	e.graph.SetPIMPolicy(seed.GroupAKSOps, graphsim.PIMPolicy{MaxDuration: time.Minute})
	e.send(access.TypeRequested, pimRequest("pim-refused", "PT1H"))
	e.send(access.TypeApproved, map[string]string{"requestId": "pim-refused", "approver": seed.UPN("p01")})
	v := e.mustGet("pim-refused")
	if v.State != "failed" || !strings.Contains(v.Reason, "ExpirationRule") {
		t.Fatalf("refusal: %+v", v)
	}
	e.sweep()
	if n := e.graph.CountCalls("POST", "/assignmentScheduleRequests"); n != 1 {
		t.Fatalf("assignment tried %d times", n)
	}
}

func TestDriftRepaired(t *testing.T) {
	e := newEnv(t)
	// A member removed by hand (its audit record lost) → revoked.
	e.send(access.TypeRequested, request("drift-1", seed.UPN("n01"), "PT1H"))
	e.send(access.TypeApproved, map[string]string{"requestId": "drift-1", "approver": seed.UPN("p01")})
	e.graph.RemoveMember(seed.GroupAKSAdmin, seed.UserN01)
	e.sweep()
	if v := e.mustGet("drift-1"); v.State != "active" {
		t.Fatalf("one listing ended the grant: %s", v.State)
	}
	// A listing made after the window since jitaccess's add raises the
	// suspicion, a second read after the window confirms it.
	e.afterWindow()
	e.afterWindow()
	v := e.mustGet("drift-1")
	if v.State != "revoked" || !strings.Contains(v.Reason, "vanished") {
		t.Fatalf("vanished member: %+v", v)
	}
	if e.graph.RevokeCount(seed.UserN01) != 1 {
		t.Fatalf("revocations %d", e.graph.RevokeCount(seed.UserN01))
	}
	// An ended grant whose member is still there (the removal failed) → removed.
	e.send(access.TypeRequested, request("drift-2", seed.UPN("n02"), "PT2S"))
	e.send(access.TypeApproved, map[string]string{"requestId": "drift-2", "approver": seed.UPN("p01")})
	end, _ := time.Parse(time.RFC3339Nano, e.mustGet("drift-2").EndsAt)
	time.Sleep(time.Until(end) + 100*time.Millisecond)
	e.graph.FailNextWith("DELETE /groups/"+seed.GroupAKSAdmin+"/members/"+seed.UserN02+"/$ref", 1, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.", 0)
	e.sweep()
	e.sweep()
	v = e.mustGet("drift-2")
	if e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN02) || v.has("membership-removed") != 1 || e.graph.RevokeCount(seed.UserN02) != 1 {
		t.Fatalf("leftover not repaired: %+v", v)
	}
	// The standing member s01 is never touched.
	if !e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserS01) {
		t.Fatal("standing member removed")
	}
}

// `jitaccess send audit` plays a portal PIM activation (the shipped sample,
// dated now) into the running deployment through the host's Event Hubs
// path. The activation is real in the simulated PIM, which confirms it.
func TestCLISendAudit(t *testing.T) {
	e := newEnv(t)
	e.graph.SetPIMPolicy(seed.GroupAKSAdmin, graphsim.PIMPolicy{})
	if e.graph.ActivatePIM(seed.GroupAKSAdmin, seed.UserN01, 2*time.Second, "INC-4711") == "" {
		t.Fatal("activation refused by the simulator")
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, "handlers", "testdata", "audit", "pim_activation.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "pim_activation.json")
	if err := os.WriteFile(f, fresh(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "send", "audit", "--file", f, "--sandbox", e.host.URL())
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	const id = "pim-9b8a7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
	v := e.mustGet(id)
	if v.Source != "pim" || v.Requester != seed.UserN01 || v.State != "active" {
		t.Fatalf("observed: %+v", v)
	}
	end, _ := time.Parse(time.RFC3339Nano, v.EndsAt)
	time.Sleep(time.Until(end) + 100*time.Millisecond)
	e.graph.ExpirePIM(time.Now())
	e.sweep()
	v = e.mustGet(id)
	wantHistory(t, v, "observed", "expired", "sessions-revoked")
	if e.graph.RevokeCount(seed.UserN01) != 1 {
		t.Fatalf("revocations %d", e.graph.RevokeCount(seed.UserN01))
	}
	// The sample as shipped is last month's record: older than this
	// deployment, it is not acted on.
	if _, _, code := runCLI(t, "send", "audit", "--file", filepath.Join(repoRoot, "handlers", "testdata", "audit", "pim_activation.json"), "--sandbox", e.host.URL()); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if v2 := e.mustGet(id); len(v2.History) != len(v.History) {
		t.Fatalf("an old record acted on: %v", v2.types())
	}
}
