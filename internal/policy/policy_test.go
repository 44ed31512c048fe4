package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

const (
	gAdmin     = "1c1a0000-0000-4000-8000-000000000002"
	gDefault   = "1c1a0000-0000-4000-8000-000000000001"
	gApprovers = "1c1a0000-0000-4000-8000-000000000003"
	gOps       = "1c1a0000-0000-4000-8000-000000000007"
)

// designExample is the profiles.json of docs/design.md, The contract (profiles) with the seeded ids.
const designExample = `{"profiles":[{"name":"aks-admin","targetGroupId":"` + gAdmin + `",
  "eligibleGroupIds":["` + gDefault + `"],"approverGroupIds":["` + gApprovers + `"],
  "approvalsRequired":1,"defaultDuration":"PT1H","maxDuration":"PT8H",
  "approvalTimeout":"PT24H","requireJustification":true,"requireTicket":false,
  "activation":"membership","revokeSessionsOnEnd":true,"outOfBand":"record"}]}`

func TestParseDesignExample(t *testing.T) {
	s, err := Parse([]byte(designExample))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := s.Profile("aks-admin")
	want := access.Profile{
		Name: "aks-admin", TargetGroupID: gAdmin, EligibleGroupIDs: []string{gDefault}, ApproverGroupIDs: []string{gApprovers},
		ApprovalsRequired: 1, DefaultDuration: access.Duration(time.Hour), MaxDuration: access.Duration(8 * time.Hour),
		ApprovalTimeout: access.Duration(24 * time.Hour), RequireJustification: true, Activation: access.ActivationMembership,
		RevokeSessionsOnEnd: true, OutOfBand: access.OutOfBandRecord,
	}
	if !ok || !equalProfile(p, want) {
		t.Fatalf("got  %+v\nwant %+v", p, want)
	}
	if _, ok := s.Profile("nope"); ok {
		t.Fatal("unknown profile found")
	}
	if all := s.All(); len(all) != 1 || all[0].Name != "aks-admin" {
		t.Fatalf("All: %+v", all)
	}
}

func equalProfile(a, b access.Profile) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// profile returns a valid profile as a JSON object with edits applied (nil
// value = remove the field).
func profile(edits map[string]any) map[string]any {
	p := map[string]any{
		"name": "aks-admin", "targetGroupId": gAdmin, "eligibleGroupIds": []string{gDefault},
		"approverGroupIds": []string{gApprovers}, "approvalsRequired": 1, "defaultDuration": "PT1H",
		"maxDuration": "PT8H", "approvalTimeout": "PT24H", "requireJustification": true, "requireTicket": false,
		"activation": "membership", "revokeSessionsOnEnd": true, "outOfBand": "record",
	}
	for k, v := range edits {
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	return p
}

func doc(profiles ...map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"profiles": profiles})
	if err != nil {
		panic(err)
	}
	return b
}

func TestParseInvalid(t *testing.T) {
	ok2 := profile(map[string]any{"name": "second"})
	tests := []struct {
		name string
		body []byte
		want []string // substrings of the error
	}{
		{"not JSON", []byte("profiles"), []string{"not valid profiles JSON"}},
		{"empty list", []byte(`{"profiles":[]}`), []string{"no profiles"}},
		{"no profiles key", []byte(`{}`), []string{"no profiles"}},
		{"unknown top-level field", []byte(`{"profiles":[],"x":1}`), []string{"x"}},
		{"missing name", doc(profile(map[string]any{"name": nil})), []string{"profile #1", "name"}},
		{"bad name", doc(ok2, profile(map[string]any{"name": "aks admin"})), []string{`profile "aks admin"`, "name"}},
		{"bad target GUID", doc(profile(map[string]any{"targetGroupId": "aks-admin"})), []string{`profile "aks-admin"`, "targetGroupId"}},
		{"missing target", doc(profile(map[string]any{"targetGroupId": nil})), []string{`profile "aks-admin"`, "targetGroupId"}},
		{"bad eligible GUID", doc(profile(map[string]any{"eligibleGroupIds": []string{gDefault, "nope"}})), []string{`profile "aks-admin"`, "eligibleGroupIds", "nope"}},
		{"no eligible groups", doc(profile(map[string]any{"eligibleGroupIds": []string{}})), []string{`profile "aks-admin"`, "eligibleGroupIds"}},
		{"target in eligible list", doc(profile(map[string]any{"eligibleGroupIds": []string{strings.ToUpper(gAdmin)}})), []string{`profile "aks-admin"`, "eligibleGroupIds", "target group"}},
		{"target in approver list", doc(profile(map[string]any{"approverGroupIds": []string{gAdmin}})), []string{`profile "aks-admin"`, "approverGroupIds", "target group"}},
		{"bad approver GUID", doc(profile(map[string]any{"approverGroupIds": []string{"{" + gApprovers + "}"}})), []string{`profile "aks-admin"`, "approverGroupIds"}},
		{"approvals without approvers", doc(profile(map[string]any{"approverGroupIds": nil})), []string{`profile "aks-admin"`, "approverGroupIds"}},
		{"approvalsRequired negative", doc(profile(map[string]any{"approvalsRequired": -1})), []string{`profile "aks-admin"`, "approvalsRequired"}},
		{"approvalsRequired missing", doc(profile(map[string]any{"approvalsRequired": nil})), []string{`profile "aks-admin"`, "approvalsRequired"}},
		{"approvalsRequired string", doc(ok2, profile(map[string]any{"approvalsRequired": "1"})), []string{`profile "aks-admin"`, "approvalsRequired"}},
		{"default over max", doc(profile(map[string]any{"defaultDuration": "PT9H"})), []string{`profile "aks-admin"`, "defaultDuration", "maxDuration"}},
		{"bad max duration", doc(profile(map[string]any{"maxDuration": "8h"})), []string{`profile "aks-admin"`, "maxDuration"}},
		{"missing max duration", doc(profile(map[string]any{"maxDuration": nil})), []string{`profile "aks-admin"`, "maxDuration"}},
		{"months", doc(profile(map[string]any{"maxDuration": "P1M"})), []string{`profile "aks-admin"`, "maxDuration"}},
		{"bad default duration", doc(profile(map[string]any{"defaultDuration": "PT0S"})), []string{`profile "aks-admin"`, "defaultDuration"}},
		{"bad approval timeout", doc(profile(map[string]any{"approvalTimeout": "-PT1H"})), []string{`profile "aks-admin"`, "approvalTimeout"}},
		{"unknown activation", doc(profile(map[string]any{"activation": "group"})), []string{`profile "aks-admin"`, "activation", "group"}},
		{"unknown outOfBand", doc(profile(map[string]any{"outOfBand": "ignore"})), []string{`profile "aks-admin"`, "outOfBand", "ignore"}},
		{"unknown field", doc(ok2, profile(map[string]any{"maxDurration": "PT8H"})), []string{`profile "aks-admin"`, "maxDurration"}},
		{"unknown field in unnamed profile", doc(profile(map[string]any{"name": nil, "colour": "red"})), []string{"profile #1", "colour"}},
		{"duplicate names", doc(profile(nil), profile(map[string]any{"targetGroupId": gOps})), []string{`profile "aks-admin"`, "name", "more than one"}},
		{"outOfBand disagreement", doc(profile(nil), profile(map[string]any{"name": "oncall", "targetGroupId": strings.ToUpper(gAdmin), "outOfBand": "remove"})),
			[]string{`"oncall"`, `"aks-admin"`, "outOfBand"}},
		{"trailing data", append(doc(profile(nil)), []byte(` {"profiles":[]}`)...), []string{"not valid profiles JSON"}},
		{"profile not an object", []byte(`{"profiles":["aks-admin"]}`), []string{"profile #1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.body)
			if err == nil {
				t.Fatalf("accepted: %+v", s.All())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	s, err := Parse(doc(profile(map[string]any{
		"revokeSessionsOnEnd": nil, "approvalTimeout": nil, "defaultDuration": nil, "activation": nil,
		"outOfBand": nil, "requireJustification": nil, "requireTicket": nil,
		"targetGroupId": strings.ToUpper(gAdmin), "eligibleGroupIds": []string{strings.ToUpper(gDefault)},
	})))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Profile("aks-admin")
	if !p.RevokeSessionsOnEnd {
		t.Error("revokeSessionsOnEnd must default to true")
	}
	if time.Duration(p.ApprovalTimeout) != 24*time.Hour {
		t.Errorf("approvalTimeout default %v, want 24h", p.ApprovalTimeout)
	}
	if p.DefaultDuration != p.MaxDuration {
		t.Errorf("defaultDuration default %v, want maxDuration %v", p.DefaultDuration, p.MaxDuration)
	}
	if p.Activation != access.ActivationMembership || p.OutOfBand != access.OutOfBandRecord || p.RequireJustification || p.RequireTicket {
		t.Errorf("defaults: %+v", p)
	}
	if p.TargetGroupID != gAdmin || p.EligibleGroupIDs[0] != gDefault {
		t.Errorf("group ids must be lower-cased: %+v", p)
	}

	s, err = Parse(doc(profile(map[string]any{"revokeSessionsOnEnd": false, "approvalsRequired": 0, "approverGroupIds": nil,
		"activation": "pim", "outOfBand": "remove", "maxDuration": "PT3S", "defaultDuration": "PT3S"})))
	if err != nil {
		t.Fatal(err)
	}
	p, _ = s.Profile("aks-admin")
	if p.RevokeSessionsOnEnd || p.ApprovalsRequired != 0 || p.Activation != access.ActivationPIM || p.OutOfBand != access.OutOfBandRemove ||
		time.Duration(p.MaxDuration) != 3*time.Second || len(p.ApproverGroupIDs) != 0 {
		t.Errorf("explicit values: %+v", p)
	}
}

func TestGroups(t *testing.T) {
	s, err := Parse(doc(
		profile(nil),
		profile(map[string]any{"name": "oncall", "targetGroupId": strings.ToUpper(gAdmin), "approvalsRequired": 0}),
		profile(map[string]any{"name": "ops", "targetGroupId": gOps, "activation": "pim", "outOfBand": "remove"}),
	))
	if err != nil {
		t.Fatal(err)
	}
	names := func(ps []access.Profile) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	if got := names(s.ForGroup(gAdmin)); !slices.Equal(got, []string{"aks-admin", "oncall"}) {
		t.Errorf("ForGroup(admin) = %v", got)
	}
	if got := names(s.ForGroup(strings.ToUpper(gOps))); !slices.Equal(got, []string{"ops"}) {
		t.Errorf("ForGroup(OPS) = %v", got)
	}
	if got := s.ForGroup(gDefault); len(got) != 0 {
		t.Errorf("ForGroup(eligible group) = %v", names(got))
	}
	if got := s.TargetGroups(); !slices.Equal(got, []string{gAdmin, gOps}) {
		t.Errorf("TargetGroups = %v", got)
	}
	for g, want := range map[string]bool{gAdmin: true, strings.ToUpper(gAdmin): true, gOps: true, gDefault: false, gApprovers: false, "": false} {
		if s.IsTarget(g) != want {
			t.Errorf("IsTarget(%q) = %v", g, !want)
		}
	}
	// Returned profiles are copies.
	all := s.All()
	all[0].Name = "changed"
	fg := s.ForGroup(gAdmin)
	fg[0].EligibleGroupIDs = nil
	if p, _ := s.Profile("aks-admin"); p.Name != "aks-admin" {
		t.Errorf("All() shares memory with the set")
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "profiles.json")
	if err := os.WriteFile(good, []byte(designExample), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(good); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.json")
	if _, err := LoadFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, doc(profile(map[string]any{"maxDuration": "P1Y"})), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(bad)
	for _, w := range []string{bad, `"aks-admin"`, "maxDuration"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("invalid file: %v does not name %q", err, w)
		}
	}
}

func TestIsGUID(t *testing.T) {
	for s, want := range map[string]bool{gAdmin: true, strings.ToUpper(gAdmin): true, "": false, gAdmin + "0": false, "{" + gAdmin + "}": false, "1c1a0000000040008000000000000002": false} {
		if IsGUID(s) != want {
			t.Errorf("IsGUID(%q) = %v", s, !want)
		}
	}
}

const (
	aksCluster = "/subscriptions/5b5b0000-0000-4000-8000-000000000001/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod"
	aksRBACAdm = "3498e952-d568-435e-9b2c-8d77e338d7f7" // Azure Kubernetes Service RBAC Admin
)

func roleProfile(edits map[string]any) map[string]any {
	p := profile(map[string]any{"name": "aks-admin-role", "targetGroupId": nil, "activation": "azure-role",
		"scope": aksCluster, "roleDefinitionId": aksRBACAdm})
	for k, v := range edits {
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	return p
}

func TestAzureRoleProfiles(t *testing.T) {
	s, err := Parse(doc(profile(nil), roleProfile(nil),
		roleProfile(map[string]any{"name": "aks-admin-role-oncall", "approvalsRequired": 0, "approverGroupIds": nil}),
		roleProfile(map[string]any{"name": "team-a", "scope": aksCluster + "/namespaces/team-a"})))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Profile("aks-admin-role")
	if p.Activation != access.ActivationAzureRole || p.Scope != aksCluster || p.RoleDefinitionID != aksRBACAdm || p.TargetGroupID != "" {
		t.Fatalf("profile %+v", p)
	}
	if p.TargetKey() != access.RoleTargetKey(strings.ToUpper(aksCluster), aksRBACAdm) || !strings.HasPrefix(p.TargetKey(), "role-") {
		t.Fatalf("target key %q", p.TargetKey())
	}
	rt := s.RoleTargets()
	if len(rt) != 2 || len(rt[0].Profiles) != 2 || rt[1].Scope != aksCluster+"/namespaces/team-a" {
		t.Fatalf("role targets %+v", rt)
	}
	if g := s.TargetGroups(); len(g) != 1 || g[0] != gAdmin {
		t.Fatalf("azure-role profiles among the target groups: %v", g)
	}
	for _, tt := range []struct {
		name string
		p    map[string]any
		want string
	}{
		{"a target group too", roleProfile(map[string]any{"targetGroupId": gAdmin}), "targetGroupId"},
		{"no scope", roleProfile(map[string]any{"scope": nil}), "scope"},
		{"a subscription scope", roleProfile(map[string]any{"scope": "/subscriptions/5b5b0000-0000-4000-8000-000000000001"}), "scope"},
		{"no role", roleProfile(map[string]any{"roleDefinitionId": nil}), "roleDefinitionId"},
		{"a role by name", roleProfile(map[string]any{"roleDefinitionId": "Azure Kubernetes Service RBAC Admin"}), "roleDefinitionId"},
		{"scope without azure-role", profile(map[string]any{"scope": aksCluster}), "scope"},
	} {
		if _, err := Parse(doc(tt.p)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v does not name %s", tt.name, err, tt.want)
		}
	}
}
