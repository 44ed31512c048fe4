package graphsim

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/audit"
	"github.com/jitaccess/jitaccess/internal/seed"
	"github.com/jitaccess/jitaccess/internal/simkit"
)

const (
	testAppID = "a9900000-0000-4000-8000-0000000000a1"
	testOID   = "0b100000-0000-4000-8000-0000000000a1"
)

func fakeJWT(appID, oid string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(fmt.Sprintf(`{"appid":%q,"oid":%q}`, appID, oid))) + ".sig"
}

const pimReqs = "/identityGovernance/privilegedAccess/group/assignmentScheduleRequests"

func assignBody(group, user, dur, just string) []byte {
	m := map[string]any{"action": "adminAssign", "accessId": "member", "principalId": user, "groupId": group,
		"scheduleInfo": map[string]any{"startDateTime": time.Now().UTC().Format(time.RFC3339), "expiration": map[string]any{"type": "afterDuration", "duration": dur}}}
	if just != "" {
		m["justification"] = just
	}
	return jsonBody(m)
}

func instances(c *client, group, user string) []any {
	c.t.Helper()
	f := url.QueryEscape(fmt.Sprintf("groupId eq '%s' and principalId eq '%s' and accessId eq 'member'", group, user))
	a := c.must("GET", "/identityGovernance/privilegedAccess/group/assignmentScheduleInstances?$filter="+f, nil)
	if a.status != 200 {
		c.t.Fatalf("instances: %d %v", a.status, a.body)
	}
	v, _ := a.body["value"].([]any)
	return v
}

func TestPIMScheduleRequests(t *testing.T) {
	clk := simkit.NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	s, c := newSim(t, Options{Now: clk.Now})
	c.token = fakeJWT(testAppID, testOID)
	s.SetPIMPolicy(seed.GroupAKSOps, PIMPolicy{MaxDuration: time.Hour, RequireJustification: true})

	cases := []struct {
		name, group, user, dur, just string
		status                       int
		code, msg                    string
	}{
		{"kiota P bug", seed.GroupAKSOps, seed.UserN01, "P", "x", 400, "InvalidRoleAssignmentRequestSchedule", ""},
		{"PT alone", seed.GroupAKSOps, seed.UserN01, "PT", "x", 400, "InvalidRoleAssignmentRequestSchedule", ""},
		{"over max", seed.GroupAKSOps, seed.UserN01, "PT1H0M1S", "x", 400, "RoleAssignmentRequestPolicyValidationFailed", `The following policy rules failed: ["ExpirationRule"]`},
		{"no justification", seed.GroupAKSOps, seed.UserN01, "PT5M", "", 400, "RoleAssignmentRequestPolicyValidationFailed", `The following policy rules failed: ["JustificationRule"]`},
		{"not under PIM", seed.GroupAKSAdmin, seed.UserN01, "PT5M", "x", 400, "InvalidRoleAssignmentRequest", MsgInvalidRoleAssignment},
		{"unknown user", seed.GroupAKSOps, "5e5e0000-0000-4000-8000-0000000000ff", "PT5M", "x", 404, "Request_ResourceNotFound", ""},
		{"ok", seed.GroupAKSOps, seed.UserN01, "PT3S", "INC-1", 201, "", ""},
		{"exists", seed.GroupAKSOps, seed.UserN01, "PT5M", "INC-1", 400, "RoleAssignmentExists", MsgRoleAssignmentExists},
	}
	for _, tc := range cases {
		a := c.must("POST", pimReqs, assignBody(tc.group, tc.user, tc.dur, tc.just))
		if a.status != tc.status || a.errCode() != tc.code || (tc.msg != "" && a.errMsg() != tc.msg) {
			t.Fatalf("%s: %d %v", tc.name, a.status, a.body)
		}
		if tc.status == 201 && (a.body["status"] != "Provisioned" || a.body["id"] == "") {
			t.Fatalf("%s: %v", tc.name, a.body)
		}
	}
	if !s.IsDirectMember(seed.GroupAKSOps, seed.UserN01) {
		t.Fatal("not a member")
	}
	in := instances(c, seed.GroupAKSOps, seed.UserN01)
	if len(in) != 1 || in[0].(map[string]any)["endDateTime"] != "2026-11-20T09:00:03Z" {
		t.Fatalf("instances %v", in)
	}
	if len(instances(c, seed.GroupAKSOps, seed.UserP01)) != 0 {
		t.Fatal("instances of another user")
	}
	// The end, driven deterministically.
	if n := s.ExpirePIM(clk.Now().Add(2 * time.Second)); n != 0 {
		t.Fatalf("expired %d early", n)
	}
	if n := s.ExpirePIM(clk.Now().Add(3 * time.Second)); n != 1 {
		t.Fatalf("expired %d", n)
	}
	if s.IsDirectMember(seed.GroupAKSOps, seed.UserN01) || len(instances(c, seed.GroupAKSOps, seed.UserN01)) != 0 {
		t.Fatal("membership survived the end")
	}
	rm := jsonBody(map[string]any{"action": "adminRemove", "accessId": "member", "principalId": seed.UserN01, "groupId": seed.GroupAKSOps})
	if a := c.must("POST", pimReqs, rm); a.status != 400 || a.errCode() != "RoleAssignmentDoesNotExist" {
		t.Fatalf("remove gone: %d %v", a.status, a.body)
	}

	// A standing member keeps the membership when the assignment ends.
	s.AddMember(seed.GroupAKSOps, seed.UserP01)
	if a := c.must("POST", pimReqs, assignBody(seed.GroupAKSOps, seed.UserP01, "PT10M", "x")); a.status != 201 {
		t.Fatalf("%v", a.body)
	}
	rm = jsonBody(map[string]any{"action": "adminRemove", "accessId": "member", "principalId": seed.UserP01, "groupId": seed.GroupAKSOps})
	if a := c.must("POST", pimReqs, rm); a.status != 201 || a.body["status"] != "Revoked" {
		t.Fatalf("remove: %d %v", a.status, a.body)
	}
	if !s.IsDirectMember(seed.GroupAKSOps, seed.UserP01) {
		t.Fatal("standing membership removed")
	}
	// Lazy end on read.
	if a := c.must("POST", pimReqs, assignBody(seed.GroupAKSOps, seed.UserN02, "PT1M", "x")); a.status != 201 {
		t.Fatalf("%v", a.body)
	}
	clk.Add(time.Minute)
	if len(instances(c, seed.GroupAKSOps, seed.UserN02)) != 0 || s.IsDirectMember(seed.GroupAKSOps, seed.UserN02) {
		t.Fatal("not ended on read")
	}
}

func TestParseISODuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"PT3S": 3 * time.Second, "PT1H": time.Hour, "P1DT2H": 26 * time.Hour, "PT0.5S": 500 * time.Millisecond, "PT3600S": time.Hour} {
		if d, ok := parseISODuration(in); !ok || d != want {
			t.Errorf("%s: %v %v", in, d, ok)
		}
	}
	for _, in := range []string{"P", "PT", "", "3S", "PT1X", "P1Y"} {
		if _, ok := parseISODuration(in); ok {
			t.Errorf("%q accepted", in)
		}
	}
}

// The Sim's audit records read back through internal/audit as the right
// findings: own changes, PIM's changes, the portal activation and its end.
func TestAuditRecordsClassify(t *testing.T) {
	clk := simkit.NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	s, c := newSim(t, Options{Now: clk.Now})
	c.token = fakeJWT(testAppID, testOID)
	s.SetPIMPolicy(seed.GroupAKSOps, PIMPolicy{})

	ref := jsonBody(map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + seed.UserN01})
	if a := c.must("POST", "/groups/"+seed.GroupAKSAdmin+"/members/$ref", ref); a.status != 204 {
		t.Fatal(a.body)
	}
	if a := c.must("DELETE", "/groups/"+seed.GroupAKSAdmin+"/members/"+seed.UserN01+"/$ref", nil); a.status != 204 {
		t.Fatal(a.body)
	}
	reqID := s.ActivatePIM(seed.GroupAKSOps, seed.UserN02, time.Hour, "INC-9")
	if reqID == "" || s.ActivatePIM(seed.GroupAKSOps, seed.UserN02, time.Hour, "again") != "" {
		t.Fatal("activation")
	}
	clk.Add(time.Hour)
	s.ExpirePIM(clk.Now())
	if s.DeactivatePIM(seed.GroupAKSOps, seed.UserN02) {
		t.Fatal("deactivate after the end")
	}

	recs, probs := audit.Decode(s.AuditRecords())
	if len(probs) != 0 {
		t.Fatal(probs)
	}
	self := audit.Self{AppID: testAppID}
	targets := func(g string) bool { return g == seed.GroupAKSAdmin || g == seed.GroupAKSOps }
	type got struct {
		kind  audit.Kind
		by    audit.Initiator
		group string
		user  string
	}
	want := []got{
		{audit.MemberAdded, audit.BySelf, seed.GroupAKSAdmin, seed.UserN01},
		{audit.MemberRemoved, audit.BySelf, seed.GroupAKSAdmin, seed.UserN01},
		{audit.MemberAdded, audit.ByPIM, seed.GroupAKSOps, seed.UserN02},
		{audit.PIMActivated, audit.ByPIM, seed.GroupAKSOps, seed.UserN02},
		{audit.MemberRemoved, audit.ByPIM, seed.GroupAKSOps, seed.UserN02},
		{audit.PIMEnded, audit.ByPIM, seed.GroupAKSOps, seed.UserN02},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records: %s", len(recs), s.AuditRecords())
	}
	for i, r := range recs {
		f := audit.Classify(r, self, targets)
		if (got{f.Kind, f.Initiator, f.GroupID, f.UserID}) != want[i] || f.Problem != "" {
			t.Errorf("record %d (%s): %+v", i, r.Activity, f)
		}
		if f.Kind == audit.PIMActivated && (f.PIMRequestID != reqID || !f.ExpirationTime.Equal(clk.Now())) {
			t.Errorf("activation: %+v", f)
		}
	}
	// The own change is recognised by the object id as well (appId is null).
	if f := audit.Classify(recs[0], audit.Self{ObjectID: testOID}, targets); f.Initiator != audit.BySelf {
		t.Fatalf("%+v", f)
	}
	s.ResetAudit()
	if s.AuditRecordCount() != 0 {
		t.Fatal("reset")
	}
}
