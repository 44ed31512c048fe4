package policy

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/arm/armid"
)

// FuzzParse: Parse never panics; an accepted profiles file holds only
// profiles that satisfy every rule (names, GUIDs, the target group never an
// eligible or approver group, approvals with approver groups, durations
// within bounds, lower-case ids), and an error names the profile and the
// field when it is about one profile.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../../profiles.sample.json"); err == nil {
		f.Add(b)
	}
	if b, err := os.ReadFile("../../e2e/testdata/profiles.json"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		`{"profiles":[]}`, `{}`, `[]`, `null`, `{"profiles":[{}]}`, `{"profiles":[null]}`,
		`{"profiles":[{"name":"a","targetGroupId":"1c1a0000-0000-4000-8000-000000000002","eligibleGroupIds":["1c1a0000-0000-4000-8000-000000000001"],"approvalsRequired":0,"maxDuration":"PT1H"}]}`,
		`{"profiles":[{"name":"a","targetGroupId":"1C1A0000-0000-4000-8000-000000000002","eligibleGroupIds":["1c1a0000-0000-4000-8000-000000000002"],"approvalsRequired":0,"maxDuration":"PT1H"}]}`,
		`{"profiles":[{"name":"a","targetGroupId":"x","eligibleGroupIds":["y"],"approvalsRequired":1,"maxDuration":"P1Y"}]}`,
		`{"profiles":[{"name":"a","maxDurration":"PT1H"}]}`, `{"profiles":[{"name":1}]}`, `{"profiles":"a"}`,
		`{"profiles":[{"name":"a","targetGroupId":"1c1a0000-0000-4000-8000-000000000002","eligibleGroupIds":["1c1a0000-0000-4000-8000-000000000001"],"approvalsRequired":2,"approverGroupIds":["1c1a0000-0000-4000-8000-000000000003"],"maxDuration":"PT8H","defaultDuration":"PT9H"}]} trailing`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			if s != nil {
				t.Fatal("a set with an error")
			}
			msg := err.Error()
			if strings.HasPrefix(msg, "profile ") && !strings.Contains(msg, ": ") {
				t.Fatalf("error does not name the field: %v", err)
			}
			return
		}
		names := map[string]bool{}
		for _, p := range s.All() {
			if !namePattern.MatchString(p.Name) || names[p.Name] {
				t.Fatalf("bad or repeated name %q", p.Name)
			}
			names[p.Name] = true
			if got, ok := s.Profile(p.Name); !ok || got.Name != p.Name {
				t.Fatalf("profile %q not found by name", p.Name)
			}
			switch p.Activation {
			case access.ActivationAzureRole:
				if p.TargetGroupID != "" || armid.ValidateTarget(p.Scope, p.RoleDefinitionID) != nil {
					t.Fatalf("%q: azure-role target %q, scope %q, role %q", p.Name, p.TargetGroupID, p.Scope, p.RoleDefinitionID)
				}
			default:
				if !IsGUID(p.TargetGroupID) || p.TargetGroupID != strings.ToLower(p.TargetGroupID) || p.Scope != "" || p.RoleDefinitionID != "" {
					t.Fatalf("%q: target %q", p.Name, p.TargetGroupID)
				}
			}
			for _, ids := range [][]string{p.EligibleGroupIDs, p.ApproverGroupIDs} {
				for _, id := range ids {
					if !IsGUID(id) || id != strings.ToLower(id) || id == p.TargetGroupID {
						t.Fatalf("%q: group %q", p.Name, id)
					}
				}
			}
			if len(p.EligibleGroupIDs) == 0 || (p.ApprovalsRequired > 0 && len(p.ApproverGroupIDs) == 0) ||
				p.ApprovalsRequired < 0 || p.ApprovalsRequired > 10 {
				t.Fatalf("%q: eligible %v, approvals %d by %v", p.Name, p.EligibleGroupIDs, p.ApprovalsRequired, p.ApproverGroupIDs)
			}
			if p.MaxDuration <= 0 || p.DefaultDuration <= 0 || p.DefaultDuration > p.MaxDuration ||
				int64(p.MaxDuration) > int64(access.MaxAnyDuration) {
				t.Fatalf("%q: durations default %v max %v", p.Name, p.DefaultDuration, p.MaxDuration)
			}
			if !slices.Contains([]string{access.ActivationMembership, access.ActivationPIM, access.ActivationAzureRole}, p.Activation) {
				t.Fatalf("%q: activation %q", p.Name, p.Activation)
			}
		}
		if len(names) == 0 {
			t.Fatal("accepted a file without profiles")
		}
	})
}
