// Package infra_test checks, offline, that the Bicep deployment in infra/ matches what the code
// and the function definitions need: every setting is set, every trigger connection is identity
// based, the identity holds the data-plane roles it uses, and no key or secret is written down.
// There is no Bicep compiler here (docs/deploy.md), so the checks read the Bicep text; each check
// is also run against a mutated copy to prove it can fail.
package infra_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const repoRoot = ".."

// notInBicep are settings the code reads that the deployment deliberately does not set.
var notInBicep = map[string]string{
	"JIT_TABLES_CONNECTION_STRING": "shared-key alternative to JIT_TABLES_ENDPOINT; the deployment is identity based and setting both stops the start",
}

// Built-in Azure role definition ids (learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var builtInRoles = map[string]string{
	"storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
	"storageBlobDataOwner":        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
	"serviceBusDataReceiver":      "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
	"serviceBusDataSender":        "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
	"eventHubsDataReceiver":       "a638d3c7-ab3a-418d-83e6-5f17a39d4fde",
	"monitoringMetricsPublisher":  "3913510d-42f4-4e42-8a64-420c390055eb",
	// azure-role profiles, at each cluster, conditioned (TestRBACAdministratorIsConditioned).
	"roleBasedAccessControlAdministrator": "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
}

// requiredRoles: the data-plane calls and the role (and resource type) that allows each.
var requiredRoles = []struct{ why, role, scopeType string }{
	{"tables (JIT_TABLES_ENDPOINT)", "storageTableDataContributor", "Microsoft.Storage/storageAccounts"},
	{"deployment package and host storage (AzureWebJobsStorage)", "storageBlobDataOwner", "Microsoft.Storage/storageAccounts"},
	{"AccessRequests trigger (receive)", "serviceBusDataReceiver", "Microsoft.ServiceBus/namespaces/queues"},
	{"scheduled jit.access.expire messages (send to the queue)", "serviceBusDataSender", "Microsoft.ServiceBus/namespaces/queues"},
	{"notifications (send to the topic)", "serviceBusDataSender", "Microsoft.ServiceBus/namespaces/topics"},
	{"EntraAuditEvents trigger (receive)", "eventHubsDataReceiver", "Microsoft.EventHub/namespaces/eventhubs"},
	{"Application Insights with Entra auth", "monitoringMetricsPublisher", "Microsoft.Insights/components"},
	{"azure-role grants (role assignments at the cluster)", "roleBasedAccessControlAdministrator", "Microsoft.ContainerService/managedClusters"},
}

// Settings that Flex Consumption deprecates (they live in functionAppConfig) or that would bring a key.
var forbiddenSettings = []string{
	"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
	"WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "AzureWebJobsStorage",
	"JIT_TABLES_CONNECTION_STRING", "ServiceBusConnection", "AuditEventHubConnection",
}

// ---------------------------------------------------------------------------------------------
// What the code and the function definitions read.

// codeSettings returns the JIT_* and AZURE_CLIENT_ID names declared as constants in config.go.
func codeSettings(t *testing.T) []string {
	t.Helper()
	path := filepath.Join(repoRoot, "internal", "config", "config.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	name := regexp.MustCompile(`^(JIT_[A-Z0-9_]+|AZURE_CLIENT_ID)$`)
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for _, v := range vs.Values {
			if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && name.MatchString(s) {
					out = append(out, s)
				}
			}
		}
		return true
	})
	if len(out) == 0 {
		t.Fatalf("%s: no JIT_* setting constants found (did the file move?)", path)
	}
	return out
}

type functionDef struct {
	Bindings []map[string]any `json:"bindings"`
}

// functionRefs returns the %SETTING% names and the connection names used in functions/*/function.json.
func functionRefs(t *testing.T) (percent, connections map[string][]string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "functions", "*", "function.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no functions/*/function.json found (%v)", err)
	}
	percent, connections = map[string][]string{}, map[string][]string{}
	pct := regexp.MustCompile(`%([A-Za-z0-9_]+)%`)
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		fn := filepath.Base(filepath.Dir(file))
		for _, m := range pct.FindAllStringSubmatch(string(raw), -1) {
			percent[m[1]] = append(percent[m[1]], fn)
		}
		var def functionDef
		if err := json.Unmarshal(raw, &def); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, b := range def.Bindings {
			if c, ok := b["connection"].(string); ok && c != "" {
				connections[c] = append(connections[c], fn)
			}
		}
	}
	return percent, connections
}

// ---------------------------------------------------------------------------------------------
// What the Bicep sets.

// appSettings parses the NAME: value lines between "// BEGIN app settings" and "// END app settings".
func appSettings(bicep string) (map[string]string, error) {
	start := strings.Index(bicep, "// BEGIN app settings")
	end := strings.Index(bicep, "// END app settings")
	if start < 0 || end < start {
		return nil, fmt.Errorf("main.bicep: no '// BEGIN app settings' ... '// END app settings' block")
	}
	line := regexp.MustCompile(`^\s*'?([A-Za-z_][A-Za-z0-9_]*)'?\s*:\s*(.+?)\s*$`)
	out := map[string]string{}
	for _, l := range strings.Split(bicep[start:end], "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "//") {
			continue
		}
		if m := line.FindStringSubmatch(l); m != nil {
			out[m[1]] = m[2]
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("main.bicep: the app settings block is empty")
	}
	return out, nil
}

func checkSettings(settings map[string]string, code []string, percent map[string][]string) []string {
	var problems []string
	for _, name := range code {
		if _, ok := notInBicep[name]; ok {
			continue
		}
		if _, ok := settings[name]; !ok {
			problems = append(problems, fmt.Sprintf("setting %s is read by internal/config but not set in main.bicep's app settings", name))
		}
	}
	for name, fns := range percent {
		if _, ok := settings[name]; !ok {
			problems = append(problems, fmt.Sprintf("setting %s is used as %%%s%% by %s but not set in main.bicep's app settings (the host fails indexing without it)", name, name, strings.Join(fns, ", ")))
		}
	}
	for _, name := range forbiddenSettings {
		if _, ok := settings[name]; ok {
			problems = append(problems, fmt.Sprintf("setting %s must not be set (deprecated on Flex Consumption, or a key-based connection)", name))
		}
	}
	for name := range notInBicep {
		if !contains(code, name) {
			problems = append(problems, fmt.Sprintf("exemption for %s is stale: internal/config no longer declares it", name))
		}
	}
	return problems
}

func checkConnections(settings map[string]string, connections map[string][]string) []string {
	var problems []string
	conns := map[string]string{"AzureWebJobsStorage": "host"}
	for c, fns := range connections {
		conns[c] = strings.Join(fns, ", ")
	}
	names := make([]string, 0, len(conns))
	for c := range conns {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		endpoint := []string{c + "__fullyQualifiedNamespace"}
		if c == "AzureWebJobsStorage" {
			endpoint = []string{c + "__accountName", c + "__blobServiceUri"}
		}
		found := false
		for _, e := range endpoint {
			if _, ok := settings[e]; ok {
				found = true
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("connection %s (used by %s) has no %s setting", c, conns[c], strings.Join(endpoint, " or ")))
		}
		if v, ok := settings[c+"__credential"]; !ok {
			problems = append(problems, fmt.Sprintf("connection %s (used by %s) has no %s__credential setting", c, conns[c], c))
		} else if v != "'managedidentity'" {
			problems = append(problems, fmt.Sprintf("connection %s: %s__credential is %s, want 'managedidentity'", c, c, v))
		}
		if v, ok := settings[c+"__clientId"]; !ok {
			problems = append(problems, fmt.Sprintf("connection %s (used by %s) has no %s__clientId setting (user-assigned identity)", c, conns[c], c))
		} else if !strings.Contains(v, "clientId") {
			problems = append(problems, fmt.Sprintf("connection %s: %s__clientId is %s, want the identity's client id", c, c, v))
		}
	}
	if v := settings["AZURE_CLIENT_ID"]; !strings.Contains(v, "clientId") {
		problems = append(problems, "AZURE_CLIENT_ID must be the user-assigned identity's client id")
	}
	if v := settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]; !strings.Contains(v, "Authorization=AAD;ClientId=") {
		problems = append(problems, "APPLICATIONINSIGHTS_AUTHENTICATION_STRING must be 'Authorization=AAD;ClientId=<identity client id>'")
	}
	return problems
}

// roleAssignment is one Microsoft.Authorization/roleAssignments resource found in a Bicep file.
type roleAssignment struct {
	file, resource, role, scopeType string
}

var (
	resourceDecl  = regexp.MustCompile(`(?m)^resource\s+(\w+)\s+'([^'@]+)@[^']*'`)
	roleVarEntry  = regexp.MustCompile(`(?m)^\s*(\w+)\s*:\s*'([0-9a-fA-F-]{36})'`)
	roleRef       = regexp.MustCompile(`roleDefinitionId:\s*subscriptionResourceId\('Microsoft\.Authorization/roleDefinitions',\s*roles\.(\w+)\)`)
	scopeLine     = regexp.MustCompile(`(?m)^\s*scope:\s*(\w+)\s*$`)
	roleVarBlock  = regexp.MustCompile(`(?s)var roles = \{(.*?)\n\}`)
	assignmentHdr = "'Microsoft.Authorization/roleAssignments@"
)

// roleAssignments parses role assignment resources of Bicep sources (file name → text).
func roleAssignments(files map[string]string) ([]roleAssignment, []string) {
	var out []roleAssignment
	var problems []string
	for file, src := range files {
		types := map[string]string{}
		for _, m := range resourceDecl.FindAllStringSubmatch(src, -1) {
			types[m[1]] = m[2]
		}
		if b := roleVarBlock.FindStringSubmatch(src); b != nil {
			for _, m := range roleVarEntry.FindAllStringSubmatch(b[1], -1) {
				want, known := builtInRoles[m[1]]
				switch {
				case !known:
					problems = append(problems, fmt.Sprintf("%s: role %s (%s) is not one of the expected built-in roles", file, m[1], m[2]))
				case !strings.EqualFold(want, m[2]):
					problems = append(problems, fmt.Sprintf("%s: role %s has id %s, the built-in role id is %s", file, m[1], m[2], want))
				}
			}
		}
		decls := resourceDecl.FindAllStringSubmatchIndex(src, -1)
		for i, d := range decls {
			if !strings.Contains(src[d[0]:d[1]], assignmentHdr) {
				continue
			}
			end := len(src)
			if i+1 < len(decls) {
				end = decls[i+1][0]
			}
			body := src[d[1]:end]
			name := src[d[2]:d[3]]
			ra := roleAssignment{file: file, resource: name}
			if m := roleRef.FindStringSubmatch(body); m != nil {
				ra.role = m[1]
			} else {
				problems = append(problems, fmt.Sprintf("%s: role assignment %s does not use roles.<name> for its roleDefinitionId", file, name))
			}
			if m := scopeLine.FindStringSubmatch(body); m != nil {
				ra.scopeType = types[m[1]]
				if ra.scopeType == "" {
					problems = append(problems, fmt.Sprintf("%s: role assignment %s is scoped to %s, which is not a resource of this file", file, name, m[1]))
				}
			} else {
				problems = append(problems, fmt.Sprintf("%s: role assignment %s has no scope: it would apply to the whole resource group", file, name))
			}
			out = append(out, ra)
		}
	}
	return out, problems
}

func checkRoles(files map[string]string) []string {
	found, problems := roleAssignments(files)
	for _, req := range requiredRoles {
		ok := false
		for _, ra := range found {
			if ra.role == req.role && ra.scopeType == req.scopeType {
				ok = true
			}
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("no role assignment of %s (%s) scoped to a %s: needed for %s", req.role, builtInRoles[req.role], req.scopeType, req.why))
		}
	}
	return problems
}

var secretPatterns = []struct {
	what string
	re   *regexp.Regexp
}{
	{"storage account key (AccountKey=)", regexp.MustCompile(`(?i)AccountKey\s*=`)},
	{"shared access key (SharedAccessKey=)", regexp.MustCompile(`(?i)SharedAccessKey\s*=`)},
	{"shared access signature (sig=)", regexp.MustCompile(`(?i)[?&]sig=[A-Za-z0-9%+/=]{10,}`)},
	{"listKeys() call", regexp.MustCompile(`(?i)\blistKeys\s*\(`)},
	{"listConnectionStrings() call", regexp.MustCompile(`(?i)\blistConnectionStrings\s*\(`)},
	{"client secret", regexp.MustCompile(`(?i)client[_-]?secret\s*[:=]\s*['"][^'"\s]{8,}`)},
	{"password", regexp.MustCompile(`(?i)password\s*[:=]\s*['"][^'"\s]{6,}`)},
	{"Azure AD client secret literal", regexp.MustCompile(`[A-Za-z0-9_~.-]{3}8Q~[A-Za-z0-9_~.-]{31,34}`)},
	{"private key", regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)},
}

func checkNoSecrets(files map[string]string) []string {
	var problems []string
	for file, src := range files {
		for i, line := range strings.Split(src, "\n") {
			for _, p := range secretPatterns {
				if p.re.MatchString(line) {
					problems = append(problems, fmt.Sprintf("%s:%d: looks like a %s — infra must stay identity based", file, i+1, p.what))
				}
			}
		}
	}
	return problems
}

// ---------------------------------------------------------------------------------------------

func readInfra(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// The test files hold the patterns and mutations themselves.
		if d.IsDir() || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(path)] = string(raw)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["main.bicep"]; !ok {
		t.Fatal("infra/main.bicep is missing")
	}
	return files
}

func bicepOnly(files map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range files {
		if strings.HasSuffix(k, ".bicep") {
			out[k] = v
		}
	}
	return out
}

func report(t *testing.T, problems []string) {
	t.Helper()
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

func TestEverySettingIsSet(t *testing.T) {
	files := readInfra(t)
	settings, err := appSettings(files["main.bicep"])
	if err != nil {
		t.Fatal(err)
	}
	percent, _ := functionRefs(t)
	report(t, checkSettings(settings, codeSettings(t), percent))
}

func TestConnectionsAreIdentityBased(t *testing.T) {
	files := readInfra(t)
	settings, err := appSettings(files["main.bicep"])
	if err != nil {
		t.Fatal(err)
	}
	_, conns := functionRefs(t)
	for _, want := range []string{"ServiceBusConnection", "AuditEventHubConnection"} {
		if _, ok := conns[want]; !ok {
			t.Errorf("functions/*/function.json no longer use connection %s: update this test and main.bicep", want)
		}
	}
	report(t, checkConnections(settings, conns))
}

func TestRoleAssignmentsCoverDataPlane(t *testing.T) {
	report(t, checkRoles(bicepOnly(readInfra(t))))
}

func TestNoSecretsInInfra(t *testing.T) {
	report(t, checkNoSecrets(readInfra(t)))
}

func TestFlexConsumptionCustomRuntime(t *testing.T) {
	files := readInfra(t)
	app := files["modules/functionapp.bicep"]
	for _, want := range []string{
		"name: 'FC1'", "tier: 'FlexConsumption'", "kind: 'functionapp,linux'",
		"name: 'custom'", "version: '1.0'", "type: 'blobContainer'", "type: 'UserAssignedIdentity'",
	} {
		if !strings.Contains(app, want) {
			t.Errorf("modules/functionapp.bicep: missing %q", want)
		}
	}
	st := files["modules/storage.bicep"]
	for _, want := range []string{"allowSharedKeyAccess: false", "minimumTlsVersion: 'TLS1_2'", "allowBlobPublicAccess: false"} {
		if !strings.Contains(st, want) {
			t.Errorf("modules/storage.bicep: missing %q", want)
		}
	}
	sb := files["modules/servicebus.bicep"]
	for _, want := range []string{"maxDeliveryCount:", "deadLetteringOnMessageExpiration: true", "requiresDuplicateDetection: true", "duplicateDetectionHistoryTimeWindow:"} {
		if !strings.Contains(sb, want) {
			t.Errorf("modules/servicebus.bicep: queue is missing %q", want)
		}
	}
}

// The checks above must be able to fail: run each on a broken copy and expect the named problem.
func TestChecksCatchMutations(t *testing.T) {
	files := readInfra(t)
	main := files["main.bicep"]
	percent, conns := functionRefs(t)
	code := codeSettings(t)

	dropLine := func(src, prefix string) string {
		var keep []string
		dropped := false
		for _, l := range strings.Split(src, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				dropped = true
				continue
			}
			keep = append(keep, l)
		}
		if !dropped {
			t.Fatalf("mutation: no line starting with %q", prefix)
		}
		return strings.Join(keep, "\n")
	}
	settingsOf := func(src string) map[string]string {
		s, err := appSettings(src)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	expectReported(t, "missing code setting", checkSettings(settingsOf(dropLine(main, "JIT_TABLES_ENDPOINT:")), code, percent), "setting JIT_TABLES_ENDPOINT")
	expectReported(t, "missing binding setting", checkSettings(settingsOf(dropLine(main, "JIT_AUDIT_HUB:")), code, percent), "setting JIT_AUDIT_HUB is used as %JIT_AUDIT_HUB% by EntraAuditEvents")
	expectReported(t, "missing client id setting", checkSettings(settingsOf(dropLine(main, "AZURE_CLIENT_ID:")), code, percent), "setting AZURE_CLIENT_ID")
	withWorker := strings.Replace(main, "// END app settings", "  FUNCTIONS_WORKER_RUNTIME: 'custom'\n// END app settings", 1)
	expectReported(t, "deprecated setting", checkSettings(settingsOf(withWorker), code, percent), "setting FUNCTIONS_WORKER_RUNTIME must not be set")
	withConn := strings.Replace(main, "// END app settings", "  JIT_TABLES_CONNECTION_STRING: 'x'\n// END app settings", 1)
	expectReported(t, "connection string setting", checkSettings(settingsOf(withConn), code, percent), "setting JIT_TABLES_CONNECTION_STRING must not be set")

	expectReported(t, "no Service Bus client id", checkConnections(settingsOf(dropLine(main, "ServiceBusConnection__clientId:")), conns), "connection ServiceBusConnection (used by AccessRequests) has no ServiceBusConnection__clientId")
	expectReported(t, "no Event Hub namespace", checkConnections(settingsOf(dropLine(main, "AuditEventHubConnection__fullyQualifiedNamespace:")), conns), "connection AuditEventHubConnection (used by EntraAuditEvents) has no AuditEventHubConnection__fullyQualifiedNamespace")
	keyCred := strings.Replace(main, "AuditEventHubConnection__credential: 'managedidentity'", "AuditEventHubConnection__credential: 'connectionstring'", 1)
	expectReported(t, "wrong credential", checkConnections(settingsOf(keyCred), conns), "AuditEventHubConnection__credential is 'connectionstring'")
	expectReported(t, "no host storage credential", checkConnections(settingsOf(dropLine(main, "AzureWebJobsStorage__credential:")), conns), "connection AzureWebJobsStorage (used by host) has no AzureWebJobsStorage__credential")

	bicep := bicepOnly(files)
	expectReported(t, "table role dropped", checkRoles(mutated(t, bicep, "modules/access.bicep", "roleDefinitions', roles.storageTableDataContributor)", "roleDefinitions', roles.storageBlobDataOwner)")), "no role assignment of storageTableDataContributor")
	expectReported(t, "wrong role id", checkRoles(mutated(t, bicep, "modules/access.bicep", "'4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'", "'090c5cfd-751d-490a-894a-3ce6f1109419'")), "role serviceBusDataReceiver has id 090c5cfd")
	expectReported(t, "receiver on the namespace only", checkRoles(mutated(t, bicep, "modules/eventhub-access.bicep", "scope: hub\n", "scope: namespace\n")), "no role assignment of eventHubsDataReceiver")
	expectReported(t, "group-wide assignment", checkRoles(mutated(t, bicep, "modules/access.bicep", "  scope: appInsights\n", "")), "role assignment metricsPublisher has no scope")

	secrets := map[string]string{
		"a.bicep": "value: 'DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc=='",
		"b.bicep": "value: 'Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=r;SharedAccessKey=abc'",
		"c.bicep": "value: storage.listKeys().keys[0].value",
		"d.sh":    `CLIENT_SECRET="s3cr3t-value-123"`,
	}
	got := checkNoSecrets(secrets)
	for _, want := range []string{"a.bicep:1: looks like a storage account key", "b.bicep:1: looks like a shared access key", "c.bicep:1: looks like a listKeys() call", "d.sh:1: looks like a client secret"} {
		expectReported(t, "secret "+want, got, want)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// fakeAz is an `az` stand-in for the scripts: a signed-in CLI whose Graph already holds
// User.Read.All for the identity (or the app roles in $EXISTING_ROLES, "appRoleId:assignmentId"
// words), whose target groups are ordinary (or role-assignable when listed in
// $ROLE_ASSIGNABLE_GROUPS), whose administrative unit holds $AU_GROUPS, and whose Entra
// diagnostic setting is already in place.
const fakeAz = `#!/usr/bin/env bash
echo "az $*" >> "$AZ_LOG"
[ "$1" = account ] && exit 0
args="$*"
case "$args" in
  *"--method GET"*"appId="*) echo graph-sp-id ;;
  *"--method GET"*"/appRoleAssignments"*)
    for e in ${EXISTING_ROLES:-df021288-bdef-4463-88db-98f22de89214:a1}; do printf '%s\t%s\n' "${e%%:*}" "${e#*:}"; done ;;
  *"--method GET"*"appRoles"*)
    name=$(sed -n "s/.*value=='\([^']*\)'.*/\1/p" <<<"$args")
    sed -n "s/^  \"$name=\([^\"]*\)\"$/\1/p" "$GRANT_SCRIPT" | head -1 ;;
  *"--method GET"*"/groups/"*"isAssignableToRole"*)
    g=$(sed -n 's|.*/groups/\([0-9a-f-]*\).*|\1|p' <<<"$args")
    case " ${ROLE_ASSIGNABLE_GROUPS:-} " in *" $g "*) echo True ;; *) echo False ;; esac ;;
  *"--method GET"*"administrativeUnits"*) for g in ${AU_GROUPS:-}; do echo "$g"; done ;;
  *"--method GET"*"roleManagement/directory/roleAssignments"*) ;;
  *"--method GET"*"/authorizationRules?"*) for r in ${EH_RULES:-RootManageSharedAccessKey}; do echo "$r"; done ;;
  *"--method GET"*"diagnosticSettings"*) printf '%s\t%s\t%s\n' "$AUDIT_EVENTHUB_RULE_ID" insights-logs-auditlogs True ;;
  *"--method POST"*|*"--method PUT"*|*"--method DELETE"*) ;;
  *) echo "unexpected: $args" >&2; exit 9 ;;
esac
`

func TestScriptsAreIdempotent(t *testing.T) {
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("bash not available")
	}
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("jq not installed (the grant script reads profiles.json with it; .ci/run installs it)")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "az"), []byte(fakeAz), 0o755); err != nil {
		t.Fatal(err)
	}
	grant, _ := filepath.Abs("scripts/grant-graph-permissions.sh")
	diag, _ := filepath.Abs("scripts/create-audit-diagnostic-setting.sh")
	rule := "/subscriptions/s/resourceGroups/rg/providers/Microsoft.EventHub/namespaces/ns/authorizationRules/entra-diagnostics"
	run := func(script string, args ...string) (string, string) {
		t.Helper()
		log := filepath.Join(dir, "az.log")
		os.Remove(log)
		cmd := exec.Command(script, args...)
		// The grant script computes its set from the deployed profiles: the sample's are
		// membership profiles (User.Read.All, GroupMember.ReadWrite.All, User.RevokeSessions.All).
		sample, _ := filepath.Abs(filepath.Join(repoRoot, "profiles.sample.json"))
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "AZ_LOG="+log, "GRANT_SCRIPT="+grant,
			"AUDIT_EVENTHUB_RULE_ID="+rule, "MANAGED_IDENTITY_PRINCIPAL_ID=11111111-2222-3333-4444-555555555555",
			"PROFILES="+sample)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(script), args, err, out)
		}
		calls, _ := os.ReadFile(log)
		return string(out), string(calls)
	}

	out, calls := run(grant)
	if !strings.Contains(out, "ok       User.Read.All (already granted)") || !strings.Contains(out, "done: 2 grant(s) made") {
		t.Errorf("grant: want User.Read.All kept and 2 grants, got:\n%s", out)
	}
	if n := strings.Count(calls, "--method POST"); n != 2 {
		t.Errorf("grant: %d POSTs, want 2:\n%s", n, calls)
	}
	out, calls = run(grant, "--dry-run")
	if strings.Contains(calls, "--method POST") || !strings.Contains(out, "dry run: 2 grant(s) would be made") {
		t.Errorf("grant --dry-run changed something or miscounted:\n%s\n%s", out, calls)
	}
	out, calls = run(diag)
	if !strings.Contains(out, "already streams AuditLogs") || strings.Contains(calls, "--method PUT") {
		t.Errorf("diagnostic setting: an identical setting must be left alone:\n%s\n%s", out, calls)
	}
	out, calls = run(diag, "--dry-run", "--hub", "other-hub")
	if !strings.Contains(out, "would PUT") || strings.Contains(calls, "--method PUT") {
		t.Errorf("diagnostic setting --dry-run with a different hub must print the PUT and not send it:\n%s\n%s", out, calls)
	}
}

// The identity may write and delete role assignments only of the
// azure-role profiles' roles, only to users, only at the listed clusters:
// Role Based Access Control Administrator with a condition on both actions,
// deployed once per target, at the cluster.
func TestRBACAdministratorIsConditioned(t *testing.T) {
	files := readInfra(t)
	m := files["modules/rbac-scope.bicep"]
	for _, want := range []string{
		"targetScope = 'resourceGroup'",
		"resource cluster 'Microsoft.ContainerService/managedClusters@",
		"scope: cluster",
		"conditionVersion: '2.0'",
		"condition: condition",
		`!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})`,
		`@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${roleList}}`,
		`@Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'User\'}`,
		`!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})`,
		`@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${roleList}}`,
		`@Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'User\'}`,
		"@minLength(1)\n@description('GUIDs of the role definitions",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("modules/rbac-scope.bicep: missing %q", want)
		}
	}
	main := files["main.bicep"]
	for _, want := range []string{
		"module rbacScopes 'modules/rbac-scope.bicep' = [for (t, i) in azureRoleTargets: {",
		"scope: resourceGroup(t.subscriptionId, t.resourceGroup)",
		"roleDefinitionIds: t.roleDefinitionIds",
		"param azureRoleTargets array = []",
	} {
		if !strings.Contains(main, want) {
			t.Errorf("main.bicep: missing %q", want)
		}
	}
	// Nothing else in the infra holds a role that writes role assignments.
	for file, src := range files {
		if file != "modules/rbac-scope.bicep" && strings.Contains(src, "f58310d9-a9f6-439a-9e8d-f62e7b41a168") {
			t.Errorf("%s: Role Based Access Control Administrator outside modules/rbac-scope.bicep", file)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Who may read (docs/design.md, The read API): App Service Authentication with Microsoft Entra ID in front of the
// read API and the dashboard, the app role checked by the handler.

var (
	excludedBlock = regexp.MustCompile(`(?s)excludedPaths:\s*\[(.*?)\]`)
	quoted        = regexp.MustCompile(`'([^']*)'`)
)

// readRoutes are the routes that must never be reachable without a sign-in.
var readRoutes = []string{"/api/requests", "/api/requests/CHG0001", "/api/dashboard"}

// checkSignIn returns what is wrong with the App Service Authentication of modules/functionapp.bicep
// and its wiring in main.bicep.
func checkSignIn(files map[string]string) []string {
	var problems []string
	app, main := files["modules/functionapp.bicep"], files["main.bicep"]
	for _, want := range []string{
		"resource signIn 'Microsoft.Web/sites/config@",
		"= if (!empty(signInClientId)) {",
		"parent: site",
		"name: 'authsettingsV2'",
		"platform: { enabled: true }",
		"requireAuthentication: true",
		"unauthenticatedClientAction: signInUnauthenticatedAction",
		"@allowed(['Return401', 'RedirectToLoginPage'])\nparam signInUnauthenticatedAction string = 'Return401'",
		"azureActiveDirectory: {\n        enabled: true",
		"clientId: signInClientId",
		"openIdIssuer: signInIssuer",
		"clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'",
		"'api://${signInClientId}'",
		"allowedApplications: union([signInClientId], signInAllowedClientApplications)",
		"tokenStore: { enabled: false }",
		"cookieExpiration: { convention: 'FixedTime', timeToExpiration: '01:00:00' }",
		"requireHttps: true",
	} {
		if !strings.Contains(app, want) {
			problems = append(problems, fmt.Sprintf("modules/functionapp.bicep: authsettingsV2 is missing %q", want))
		}
	}
	// Only /api/health may be reached without a sign-in.
	m := excludedBlock.FindStringSubmatch(app)
	if m == nil {
		problems = append(problems, "modules/functionapp.bicep: authsettingsV2 has no excludedPaths (the liveness probe /api/health must stay anonymous)")
	} else {
		var excluded []string
		for _, q := range quoted.FindAllStringSubmatch(m[1], -1) {
			excluded = append(excluded, q[1])
		}
		if len(excluded) != 1 || excluded[0] != "/api/health" {
			problems = append(problems, fmt.Sprintf("modules/functionapp.bicep: excludedPaths %q, want exactly [/api/health]", excluded))
		}
		for _, p := range excluded {
			for _, r := range readRoutes {
				if p == "" || p == "/" || strings.HasPrefix(r, strings.TrimSuffix(p, "*")) {
					problems = append(problems, fmt.Sprintf("modules/functionapp.bicep: excluded path %q opens %s without a sign-in", p, r))
				}
			}
		}
	}
	for _, want := range []string{
		"param signInClientId string = ''",
		"param signInTenantId string = tenant().tenantId",
		"param readRole string = 'JitAccess.Read'",
		"signInClientId: signInClientId",
		"signInIssuer: '${environment().authentication.loginEndpoint}${signInTenantId}/v2.0'",
		"signInUnauthenticatedAction: signInUnauthenticatedAction",
		"signInAllowedClientApplications: signInAllowedApps",
		"output DASHBOARD_SIGNIN_URL string = 'https://${app.outputs.defaultHostName}/.auth/login/aad?post_login_redirect_uri=/api/dashboard'",
	} {
		if !strings.Contains(main, want) {
			problems = append(problems, fmt.Sprintf("main.bicep: missing %q", want))
		}
	}
	settings, err := appSettings(main)
	if err != nil {
		return append(problems, err.Error())
	}
	for name, want := range map[string]string{
		"JIT_READ_ROLE": "readRole", "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID": "identity.outputs.clientId",
		"WEBSITE_AUTH_AAD_ALLOWED_TENANTS": "signInTenantId",
	} {
		if settings[name] != want {
			problems = append(problems, fmt.Sprintf("main.bicep: app setting %s is %q, want %s", name, settings[name], want))
		}
	}
	// The platform sets it when App Service Authentication is on; setting it by hand would make
	// the handler trust principal headers nobody checked.
	if _, ok := settings["WEBSITE_AUTH_ENABLED"]; ok {
		problems = append(problems, "main.bicep: WEBSITE_AUTH_ENABLED must not be an app setting (the platform sets it when App Service Authentication is on)")
	}
	return problems
}

func TestSignInIsConfigured(t *testing.T) {
	files := readInfra(t)
	report(t, checkSignIn(files))
	var params struct {
		Parameters map[string]struct {
			Value string `json:"value"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal([]byte(files["main.parameters.json"]), &params); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"signInClientId":                  "${JIT_SIGNIN_CLIENT_ID=}",
		"signInUnauthenticatedAction":     "${JIT_SIGNIN_UNAUTHENTICATED_ACTION=Return401}",
		"signInAllowedClientApplications": "${JIT_SIGNIN_ALLOWED_CLIENT_APPLICATIONS=}",
	} {
		if v := params.Parameters[name].Value; v != want {
			t.Errorf("main.parameters.json: %s is %q, want %s", name, v, want)
		}
	}

	expectReported(t, "anonymous app", checkSignIn(mutated(t, files, "modules/functionapp.bicep", "requireAuthentication: true", "requireAuthentication: false")), `missing "requireAuthentication: true"`)
	expectReported(t, "health not excluded", checkSignIn(mutated(t, files, "modules/functionapp.bicep", "'/api/health'", "")), "excludedPaths [], want exactly [/api/health]")
	expectReported(t, "read API excluded", checkSignIn(mutated(t, files, "modules/functionapp.bicep", "'/api/health'", "'/api/health'\n        '/api/requests'")), `excluded path "/api/requests" opens /api/requests`)
	expectReported(t, "everything excluded", checkSignIn(mutated(t, files, "modules/functionapp.bicep", "'/api/health'", "'/api'")), `excluded path "/api" opens /api/dashboard`)
	expectReported(t, "secret instead of the identity", checkSignIn(mutated(t, files, "modules/functionapp.bicep", "clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'", "clientSecretSettingName: 'MICROSOFT_PROVIDER_AUTHENTICATION_SECRET'")), "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID")
	expectReported(t, "platform flag faked", checkSignIn(mutated(t, files, "main.bicep", "// END app settings", "  WEBSITE_AUTH_ENABLED: 'True'\n// END app settings")), "WEBSITE_AUTH_ENABLED must not be an app setting")
	expectReported(t, "role setting dropped", checkSignIn(mutated(t, files, "main.bicep", "  JIT_READ_ROLE: readRole\n", "")), "app setting JIT_READ_ROLE")
}

// goConst returns the value of a string constant declared in a Go file of the repository.
func goConst(t *testing.T, rel, name string) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(repoRoot, rel), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var val string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, id := range vs.Names {
			if id.Name == name && i < len(vs.Values) {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					val, _ = strconv.Unquote(lit.Value)
				}
			}
		}
		return true
	})
	if val == "" {
		t.Fatalf("%s: no string constant %s", rel, name)
	}
	return val
}

// The role the script defines is the one the handler, the host stand-in and the deployment use,
// and the script makes assignment required, no secret, and the managed identity the credential.
func TestSignInScriptDefinesTheRole(t *testing.T) {
	files := readInfra(t)
	script := files["scripts/create-signin-app.sh"]
	role := goConst(t, "handlers/auth.go", "DefaultReadRole")
	if got := goConst(t, "internal/devhost/signin.go", "DefaultReadRole"); got != role {
		t.Errorf("internal/devhost signs in with %q, the handler wants %q", got, role)
	}
	if !strings.Contains(files["main.bicep"], "param readRole string = '"+role+"'") {
		t.Errorf("main.bicep: readRole does not default to %q", role)
	}
	for _, want := range []string{
		`READ_ROLE="` + role + `"`,
		`\"allowedMemberTypes\":[\"User\"]`,
		`\"isEnabled\":true`,
		"az ad sp update --id \"$app_id\" --set appRoleAssignmentRequired=true",
		"--sign-in-audience AzureADMyOrg",
		`--identifier-uris "api://$app_id"`,
		`\"requestedAccessTokenVersion\":2`,
		"/.auth/login/aad/callback",
		"--enable-id-token-issuance true",
		`\"audiences\":[\"api://AzureADTokenExchange\"]`,
		"az ad app federated-credential create",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("scripts/create-signin-app.sh: missing %q", want)
		}
	}
	if strings.Contains(script, "credential reset") || strings.Contains(script, "passwordCredentials") || strings.Contains(script, "addPassword") {
		t.Error("scripts/create-signin-app.sh makes a client secret: the managed identity is the credential")
	}
}

// fakeSignInAz is an `az` stand-in for create-signin-app.sh with state in $AZ_STATE: what the
// script creates is found on the next run.
const fakeSignInAz = `#!/usr/bin/env bash
echo "az $*" >> "$AZ_LOG"
S="$AZ_STATE"; a="$*"
APP=aaaa0000-0000-4000-8000-00000000a991; OBJ=bbbb0000-0000-4000-8000-00000000b991; SP=cccc0000-0000-4000-8000-00000000c991
case "$a" in
  "account show") exit 0 ;;
  "account show --query tenantId -o tsv") echo dddd0000-0000-4000-8000-00000000d991 ;;
  *"--method PATCH"*appRoles*) grep -q '"value":"JitAccess.Read"' <<<"$a" && touch "$S/role" ;;
  *"--method PATCH"*'"api"'*) echo "$a" > "$S/api" ;;
  *"--method GET"*appRoleAssignedTo*) [ -f "$S/assigned" ] && cat "$S/assigned"; true ;;
  *"--method POST"*appRoleAssignedTo*) sed -n 's/.*"principalId":"\([^"]*\)".*/\1/p' <<<"$a" >> "$S/assigned" ;;
  "ad app list"*) [ -f "$S/app" ] && echo $APP; true ;;
  "ad app create"*) touch "$S/app"; echo $APP ;;
  "ad app show"*"--query id -o tsv") echo $OBJ ;;
  "ad app show"*identifierUris*) [ -f "$S/uri" ] && echo "api://$APP"; true ;;
  "ad app show"*"appRoles[?value"*) [ -f "$S/role" ] && echo true; true ;;
  "ad app show"*"--query appRoles -o json") echo "[]" ;;
  "ad app show"*oauth2PermissionScopes*) [ -f "$S/api" ] && echo f7f83aba-791e-4ebb-b46b-c6422e3ac859; true ;;
  "ad app show"*requestedAccessTokenVersion*) [ -f "$S/api" ] && echo 2; true ;;
  "ad app show"*preAuthorizedApplications*) if grep -q 04b07795 "$S/api" 2>/dev/null; then echo '[{"appId":"04b07795-8ddb-461a-bbee-02f9e1bf7b46"}]'; else echo "[]"; fi ;;
  "ad app show"*redirectUris*) [ -f "$S/redirect" ] && echo "https://func-jit-x.azurewebsites.net/.auth/login/aad/callback"; true ;;
  "ad app show"*enableIdTokenIssuance*) [ -f "$S/redirect" ] && echo true; true ;;
  "ad app update"*--identifier-uris*) touch "$S/uri" ;;
  "ad app update"*--web-redirect-uris*--enable-id-token-issuance\ true*) touch "$S/redirect" ;;
  "ad app federated-credential list"*) [ -f "$S/fic" ] && cat "$S/fic"; true ;;
  "ad app federated-credential create"*) grep -q '"audiences":\["api://AzureADTokenExchange"\]' <<<"$a" && sed -n 's/.*"subject":"\([^"]*\)".*/\1/p' <<<"$a" > "$S/fic" ;;
  "ad sp list"*) [ -f "$S/sp" ] && echo $SP; true ;;
  "ad sp create"*) touch "$S/sp"; echo $SP ;;
  "ad sp show"*appRoleAssignmentRequired*) if [ -f "$S/required" ]; then echo true; else echo false; fi ;;
  "ad sp update"*"--set appRoleAssignmentRequired=true") touch "$S/required" ;;
  *) echo "UNEXPECTED $a" >> "$AZ_LOG"; exit 9 ;;
esac
`

func TestSignInScriptIsIdempotent(t *testing.T) {
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("bash not available")
	}
	dir, state := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "az"), []byte(fakeSignInAz), 0o755); err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("scripts/create-signin-app.sh")
	const mi, operator = "11111111-2222-3333-4444-555555555555", "22222222-3333-4444-5555-666666666666"
	run := func(args ...string) (string, string) {
		t.Helper()
		log := filepath.Join(dir, "az.log")
		os.Remove(log)
		cmd := exec.Command(script, append([]string{"--name", "jitaccess-signin-test", "--hostname", "func-jit-x.azurewebsites.net",
			"--principal-id", mi, "--assign", operator}, args...)...)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "AZ_LOG="+log, "AZ_STATE="+state)
		out, err := cmd.CombinedOutput()
		calls, _ := os.ReadFile(log)
		if err != nil {
			t.Fatalf("create-signin-app.sh %v: %v\n%s\n%s", args, err, out, calls)
		}
		if strings.Contains(string(calls), "UNEXPECTED") {
			t.Fatalf("unexpected az calls:\n%s", calls)
		}
		return string(out), string(calls)
	}
	mutating := regexp.MustCompile(`(?m)^az (ad app (create|update)|ad sp (create|update)|ad app federated-credential (create|delete)|rest --method (PATCH|POST|PUT|DELETE))`)

	out, calls := run("--dry-run")
	if mutating.MatchString(calls) || !strings.Contains(out, "dry run: 9 change(s) would be made") {
		t.Fatalf("--dry-run changed something or miscounted:\n%s\n%s", out, calls)
	}
	out, calls = run("--allow-azure-cli")
	if n := len(mutating.FindAllString(calls, -1)); n != 9 || !strings.Contains(out, "done: 9 change(s) made") ||
		!strings.Contains(out, "client id: aaaa0000-0000-4000-8000-00000000a991") {
		t.Fatalf("first run: %d changes, want 9:\n%s\n%s", n, out, calls)
	}
	for _, f := range []string{"app", "uri", "role", "api", "sp", "required", "redirect", "fic", "assigned"} {
		if _, err := os.Stat(filepath.Join(state, f)); err != nil {
			t.Errorf("first run did not make %s:\n%s", f, calls)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(state, "fic")); strings.TrimSpace(string(b)) != mi {
		t.Errorf("federated credential subject %q, want the managed identity %s", b, mi)
	}
	if !strings.Contains(calls, `"issuer":"https://login.microsoftonline.com/dddd0000-0000-4000-8000-00000000d991/v2.0"`) {
		t.Errorf("federated credential issuer is not the tenant's:\n%s", calls)
	}
	out, calls = run("--allow-azure-cli")
	if mutating.MatchString(calls) || !strings.Contains(out, "done: 0 change(s) made") {
		t.Fatalf("second run changed something:\n%s\n%s", out, calls)
	}
}
