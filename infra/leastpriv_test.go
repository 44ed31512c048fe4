package infra_test

// Least privilege: the Graph permissions follow the profiles, and each check
// is shown able to fail.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const testPrincipal = "11111111-2222-3333-4444-555555555555"

// profileJSON writes a profiles file with one profile per spec
// ("activation[,revoke=false][,oob=remove]") and returns its path.
func profileJSON(t *testing.T, specs ...string) string {
	t.Helper()
	var profiles []map[string]any
	for i, spec := range specs {
		parts := strings.Split(spec, ",")
		p := map[string]any{
			"name":              "p" + string(rune('a'+i)),
			"eligibleGroupIds":  []string{"e0000000-0000-4000-8000-000000000001"},
			"approvalsRequired": 0,
			"maxDuration":       "PT1H",
		}
		if parts[0] != "" {
			p["activation"] = parts[0]
		}
		if parts[0] == "azure-role" {
			p["scope"] = "/subscriptions/5b5b0000-0000-4000-8000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
			p["roleDefinitionId"] = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
		} else {
			p["targetGroupId"] = "7a000000-0000-4000-8000-00000000000" + string(rune('1'+i))
		}
		for _, o := range parts[1:] {
			switch o {
			case "revoke=false":
				p["revokeSessionsOnEnd"] = false
			case "oob=remove":
				p["outOfBand"] = "remove"
			default:
				t.Fatalf("spec %q: unknown option %q", spec, o)
			}
		}
		profiles = append(profiles, p)
	}
	raw, err := json.Marshal(map[string]any{"profiles": profiles})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "profiles.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type scriptRun struct {
	out, calls string
	code       int
}

// runGrant runs grant-graph-permissions.sh with the fake az of infra_test.go
// first on PATH; env adds variables for the fake.
func runGrant(t *testing.T, env []string, args ...string) scriptRun {
	t.Helper()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("jq not installed (the grant script needs it)")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "az"), []byte(fakeAz), 0o755); err != nil {
		t.Fatal(err)
	}
	grant, _ := filepath.Abs("scripts/grant-graph-permissions.sh")
	log := filepath.Join(dir, "az.log")
	cmd := exec.Command(grant, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "AZ_LOG="+log, "GRANT_SCRIPT="+grant,
		"MANAGED_IDENTITY_PRINCIPAL_ID="+testPrincipal, "PROFILES=")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	r := scriptRun{out: string(out)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	calls, _ := os.ReadFile(log)
	r.calls = string(calls)
	return r
}

// listed returns the Graph permissions (and "role:<id>@<scope>" Entra roles)
// that --list prints.
func listed(t *testing.T, r scriptRun) []string {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("--list exited %d:\n%s", r.code, r.out)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(r.out), "\n") {
		f := strings.Split(l, "\t")
		switch {
		case len(f) == 3 && f[0] == "graph":
			out = append(out, f[1])
		case len(f) == 3 && f[0] == "entra-role":
			out = append(out, "role:"+f[1]+"@"+f[2][strings.LastIndex(f[2], " at ")+4:])
		case strings.HasPrefix(l, "#"):
		default:
			t.Fatalf("--list: unexpected line %q", l)
		}
	}
	sort.Strings(out)
	return out
}

const (
	permUserRead     = "User.Read.All"
	permMemberRead   = "GroupMember.Read.All"
	permMemberWrite  = "GroupMember.ReadWrite.All"
	permRevoke       = "User.RevokeSessions.All"
	permPIMWrite     = "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup"
	permPIMRead      = "PrivilegedAssignmentSchedule.Read.AzureADGroup"
	permRoleMgmt     = "RoleManagement.ReadWrite.Directory"
	roleGroupsAdmin  = "fdd7a751-b60b-444a-984c-02652fe8fa1c"
	roleDirReaders   = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
	testAdminUnit    = "aaaaaaaa-0000-4000-8000-000000000001"
	testCustomRoleID = "cccccccc-0000-4000-8000-000000000001"
)

// The permission set is computed from the profiles: PIM only with pim
// profiles, group writes only when a profile writes memberships, never a
// Read beside its ReadWrite, nothing extra for azure-role.
func TestGraphPermissionsByProfile(t *testing.T) {
	cases := []struct {
		name  string
		specs []string
		args  []string
		want  []string
	}{
		{"membership only", []string{"membership", ""}, nil,
			[]string{permUserRead, permMemberWrite, permRevoke}},
		{"membership and pim", []string{"membership", "pim"}, nil,
			[]string{permUserRead, permMemberWrite, permRevoke, permPIMWrite}},
		{"pim only: PIM writes the membership", []string{"pim"}, nil,
			[]string{permUserRead, permMemberRead, permRevoke, permPIMWrite}},
		{"pim only, no session revocation", []string{"pim,revoke=false"}, nil,
			[]string{permUserRead, permMemberRead, permPIMWrite}},
		{"pim with outOfBand remove writes memberships", []string{"pim,oob=remove"}, nil,
			[]string{permUserRead, permMemberWrite, permRevoke, permPIMWrite}},
		{"azure-role: nothing more in Graph", []string{"azure-role"}, nil,
			[]string{permUserRead, permMemberRead, permRevoke}},
		{"azure-role without revocation", []string{"azure-role,revoke=false"}, nil,
			[]string{permUserRead, permMemberRead}},
		{"membership and azure-role", []string{"membership", "azure-role"}, nil,
			[]string{permUserRead, permMemberWrite, permRevoke}},
		{"--pim-read without pim profiles", []string{"membership"}, []string{"--pim-read"},
			[]string{permUserRead, permMemberWrite, permRevoke, permPIMRead}},
		{"--pim-read is covered by pim's ReadWrite", []string{"pim"}, []string{"--pim-read"},
			[]string{permUserRead, permMemberRead, permRevoke, permPIMWrite}},
		{"role-assignable targets", []string{"membership"}, []string{"--role-assignable-groups"},
			[]string{permUserRead, permMemberWrite, permRevoke, permRoleMgmt}},
		{"administrative unit instead of tenant-wide writes", []string{"membership"}, []string{"--admin-unit", testAdminUnit},
			[]string{permUserRead, permMemberRead, permRevoke,
				"role:" + roleGroupsAdmin + "@/administrativeUnits/" + testAdminUnit, "role:" + roleDirReaders + "@/"}},
		{"administrative unit with a custom role", []string{"membership"}, []string{"--admin-unit", testAdminUnit, "--admin-unit-role", testCustomRoleID},
			[]string{permUserRead, permMemberRead, permRevoke,
				"role:" + testCustomRoleID + "@/administrativeUnits/" + testAdminUnit, "role:" + roleDirReaders + "@/"}},
		{"administrative unit without membership writes: no role", []string{"pim"}, []string{"--admin-unit", testAdminUnit},
			[]string{permUserRead, permMemberRead, permRevoke, permPIMWrite}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := listed(t, runGrant(t, nil, append([]string{"--list", "--profiles", profileJSON(t, c.specs...)}, c.args...)...))
			want := append([]string(nil), c.want...)
			sort.Strings(want)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("profiles %v %v:\n got  %v\n want %v", c.specs, c.args, got, want)
			}
			has := map[string]bool{}
			for _, p := range got {
				has[p] = true
			}
			if has[permMemberRead] && has[permMemberWrite] || has[permPIMRead] && has[permPIMWrite] {
				t.Errorf("a Read permission beside its ReadWrite: %v", got)
			}
		})
	}

	// The deployed sample and the end-to-end profiles.
	sample, _ := filepath.Abs(filepath.Join(repoRoot, "profiles.sample.json"))
	if got := listed(t, runGrant(t, nil, "--list", "--profiles", sample)); strings.Join(got, " ") != strings.Join([]string{permMemberWrite, permUserRead, permRevoke}, " ") {
		t.Errorf("profiles.sample.json: %v", got)
	}

	// Refusals: an unknown activation, no profiles, exclusive options.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"profiles":[{"activation":"pimm","targetGroupId":"x"}]}`), 0o644)
	for name, args := range map[string][]string{
		"unknown activation":     {"--list", "--profiles", bad},
		"no profiles":            {"--list"},
		"AU and role-assignable": {"--list", "--profiles", sample, "--admin-unit", testAdminUnit, "--role-assignable-groups"},
		"AU not a GUID":          {"--list", "--profiles", sample, "--admin-unit", "finance"},
	} {
		if r := runGrant(t, nil, args...); r.code != 2 {
			t.Errorf("%s: exit %d, want 2:\n%s", name, r.code, r.out)
		}
	}
}

// Granting against a tenant (the fake az): only what is missing is granted,
// what is no longer needed is reported and removed only with --prune, and
// what cannot work (role-assignable targets, groups outside the unit) stops
// the script before any change.
func TestGraphPermissionsGrantAndPrune(t *testing.T) {
	memb := profileJSON(t, "membership")
	env := func(kv ...string) []string { return kv }
	pimRW := "41202f2c-f7ab-45be-b001-85c9728b9d69"
	memberRead := "98830695-27a2-44f7-8c18-0c3ebc9698f6"
	// Granted before: User.Read.All and the two permissions the old script always granted.
	before := "df021288-bdef-4463-88db-98f22de89214:a1 " + pimRW + ":a2 " + memberRead + ":a3"

	r := runGrant(t, env("EXISTING_ROLES="+before), "--profiles", memb)
	if r.code != 0 {
		t.Fatalf("grant: exit %d\n%s", r.code, r.out)
	}
	for _, want := range []string{
		"ok       User.Read.All (already granted)", "granted  GroupMember.ReadWrite.All", "granted  User.RevokeSessions.All",
		"extra    GroupMember.Read.All", "extra    PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup", "done: 2 grant(s) made, 0 removed",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("grant without --prune: missing %q in\n%s", want, r.out)
		}
	}
	if strings.Contains(r.calls, "--method DELETE") {
		t.Errorf("grant without --prune removed something:\n%s", r.calls)
	}

	r = runGrant(t, env("EXISTING_ROLES="+before), "--profiles", memb, "--prune", "--dry-run")
	if r.code != 0 || strings.Contains(r.calls, "--method DELETE") || strings.Contains(r.calls, "--method POST") ||
		!strings.Contains(r.out, "dry run: 2 grant(s) would be made, 2 removal(s)") {
		t.Errorf("--prune --dry-run changed something or miscounted:\n%s\n%s", r.out, r.calls)
	}
	r = runGrant(t, env("EXISTING_ROLES="+before), "--profiles", memb, "--prune")
	if r.code != 0 || strings.Count(r.calls, "--method DELETE") != 2 ||
		!strings.Contains(r.calls, "appRoleAssignments/a2") || !strings.Contains(r.calls, "appRoleAssignments/a3") ||
		strings.Contains(r.calls, "appRoleAssignments/a1") {
		t.Errorf("--prune: want DELETE of a2 (PIM) and a3 (GroupMember.Read.All) only:\n%s\n%s", r.out, r.calls)
	}

	// A role-assignable target stops the grant before any change.
	r = runGrant(t, env("ROLE_ASSIGNABLE_GROUPS=7a000000-0000-4000-8000-000000000001"), "--profiles", memb)
	if r.code != 1 || !strings.Contains(r.out, "is role-assignable") || strings.Contains(r.calls, "--method POST") {
		t.Errorf("role-assignable target: exit %d, want 1 and no POST:\n%s\n%s", r.code, r.out, r.calls)
	}
	r = runGrant(t, env("ROLE_ASSIGNABLE_GROUPS=7a000000-0000-4000-8000-000000000001"), "--profiles", memb, "--role-assignable-groups")
	if r.code != 0 || !strings.Contains(r.out, "granted  RoleManagement.ReadWrite.Directory") {
		t.Errorf("--role-assignable-groups: exit %d:\n%s", r.code, r.out)
	}

	// Administrative unit: the unit must hold every target group; then the
	// unit-scoped role and Directory Readers are assigned.
	r = runGrant(t, env("AU_GROUPS=7a000000-0000-4000-8000-000000000009"), "--profiles", memb, "--admin-unit", testAdminUnit)
	if r.code != 1 || !strings.Contains(r.out, "is not a member of administrative unit") || strings.Contains(r.calls, "--method POST") {
		t.Errorf("target outside the unit: exit %d, want 1 and no POST:\n%s\n%s", r.code, r.out, r.calls)
	}
	r = runGrant(t, env("AU_GROUPS=7a000000-0000-4000-8000-000000000001"), "--profiles", memb, "--admin-unit", testAdminUnit)
	if r.code != 0 {
		t.Fatalf("admin unit: exit %d\n%s", r.code, r.out)
	}
	for _, want := range []string{
		`"roleDefinitionId":"` + roleGroupsAdmin + `","directoryScopeId":"/administrativeUnits/` + testAdminUnit + `"`,
		`"roleDefinitionId":"` + roleDirReaders + `","directoryScopeId":"/"`,
	} {
		if !strings.Contains(r.calls, want) {
			t.Errorf("admin unit: no role assignment %s in\n%s", want, r.calls)
		}
	}
	if strings.Contains(r.out, "granted  GroupMember.ReadWrite.All") || !strings.Contains(r.out, "granted  GroupMember.Read.All") {
		t.Errorf("admin unit: tenant-wide membership writes granted anyway:\n%s", r.out)
	}
}

// The script reads the fields and values the code defines: a renamed field
// or a new activation must be taught to it.
func TestGrantScriptReadsThePolicyFields(t *testing.T) {
	script, err := os.ReadFile("scripts/grant-graph-permissions.sh")
	if err != nil {
		t.Fatal(err)
	}
	policy, err := os.ReadFile(filepath.Join(repoRoot, "internal", "policy", "policy.go"))
	if err != nil {
		t.Fatal(err)
	}
	profile, err := os.ReadFile(filepath.Join(repoRoot, "internal", "access", "profile.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"activation", "revokeSessionsOnEnd", "outOfBand", "targetGroupId"} {
		if !strings.Contains(string(policy), "`json:\""+field+"\"`") {
			t.Errorf("internal/policy has no json field %q that the grant script reads", field)
		}
		if !strings.Contains(string(script), "."+field) {
			t.Errorf("the grant script does not read .%s", field)
		}
	}
	// Every activation the code knows is handled by the script's case.
	acts := regexp.MustCompile(`Activation[A-Za-z]+\s*=\s*"([a-z-]+)"`).FindAllStringSubmatch(string(profile), -1)
	if len(acts) < 3 {
		t.Fatalf("internal/access/profile.go: found %d activations", len(acts))
	}
	for _, a := range acts {
		if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(a[1]) + `\)`).Match(script) {
			t.Errorf("activation %q (internal/access) is not a case of the grant script", a[1])
		}
	}
}

// SECURITY.md's table states, for each permission the grant script manages,
// when it is granted and what it allows; docs/deploy.md lists the same set.
func TestPermissionTableCoversTheScript(t *testing.T) {
	script, err := os.ReadFile("scripts/grant-graph-permissions.sh")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := os.ReadFile(filepath.Join(repoRoot, "SECURITY.md"))
	if err != nil {
		t.Fatal(err)
	}
	deploy, err := os.ReadFile(filepath.Join(repoRoot, "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	cat := regexp.MustCompile(`(?m)^  "([A-Za-z.]+)=[0-9a-f-]{36}"$`).FindAllStringSubmatch(string(script), -1)
	if len(cat) != 7 {
		t.Fatalf("grant script catalogue: %d entries, want 7", len(cat))
	}
	rows := map[string]string{}
	for _, l := range strings.Split(string(sec), "\n") {
		if m := regexp.MustCompile("^\\| `([A-Za-z.]+)` \\|").FindStringSubmatch(l); m != nil {
			rows[m[1]] = l
		}
	}
	for _, c := range cat {
		row, ok := rows[c[1]]
		if !ok {
			t.Errorf("SECURITY.md: no permission table row for %s", c[1])
			continue
		}
		if cells := strings.Split(row, "|"); len(cells) != 6 || len(strings.TrimSpace(cells[3])) < 20 || len(strings.TrimSpace(cells[4])) < 20 {
			t.Errorf("SECURITY.md: the row of %s must say when it is granted, what it allows and why: %q", c[1], row)
		}
		if !strings.Contains(string(deploy), "`"+c[1]+"`") {
			t.Errorf("docs/deploy.md does not mention %s", c[1])
		}
	}
	for _, want := range []string{"Groups Administrator", "Directory Readers", "restricted management", "role-assignable"} {
		if !strings.Contains(string(sec), want) {
			t.Errorf("SECURITY.md: the administrative-unit option does not discuss %q", want)
		}
	}
	if strings.Contains(string(sec), "weakest permission") {
		t.Error("SECURITY.md still calls GroupMember.ReadWrite.All the weakest permission Graph offers")
	}
}
