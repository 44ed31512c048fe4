package infra_test

// The network parameter, the storage roles, the audit namespace of its own,
// the request senders and the audit reader's start position. Like the checks
// of infra_test.go these read the Bicep text, and each is shown able to fail
// on a mutated copy.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func missing(file, src string, wants ...string) []string {
	var out []string
	for _, w := range wants {
		if !strings.Contains(src, w) {
			out = append(out, fmt.Sprintf("%s: missing %q", file, w))
		}
	}
	return out
}

// moduleBlock returns the text of `module <name> '...' = ...` up to the next
// top-level declaration.
func moduleBlock(src, name string) string {
	start := regexp.MustCompile(`(?m)^module ` + name + ` '`).FindStringIndex(src)
	if start == nil {
		return ""
	}
	rest := src[start[1]:]
	if end := regexp.MustCompile(`(?m)^(module|resource|output|var|param|//) `).FindStringIndex(rest); end != nil {
		rest = rest[:end[0]]
	}
	return src[start[0]:start[1]] + rest
}

// checkNetwork: vnetEnabled puts every data-plane resource the app reaches
// behind a private endpoint, refuses their public traffic, and integrates the
// app with the virtual network.
func checkNetwork(files map[string]string) []string {
	main := files["main.bicep"]
	var p []string
	p = append(p, missing("main.bicep", main,
		"param vnetEnabled bool = false",
		"param serviceBusAllowedIpRanges array = []",
		"module network 'modules/network.bicep' = if (vnetEnabled) {",
		"virtualNetworkSubnetId: vnetEnabled ? network!.outputs.appSubnetId : ''",
	)...)
	endpoints := []struct{ module, cond, target, group, zone string }{
		{"hostBlobEndpoint", "if (vnetEnabled)", "storage.outputs.hostAccountId", "'blob'", "blobZoneId"},
		{"dataTableEndpoint", "if (vnetEnabled)", "storage.outputs.dataAccountId", "'table'", "tableZoneId"},
		{"serviceBusEndpoint", "if (vnetEnabled)", "servicebus.outputs.namespaceId", "'namespace'", "serviceBusZoneId"},
		{"auditHubEndpoint", "if (vnetEnabled && !useExistingEventHub)", "eventhubs!.outputs.namespaceId", "'namespace'", "serviceBusZoneId"},
	}
	appBlock := moduleBlock(main, "app")
	for _, e := range endpoints {
		b := moduleBlock(main, e.module)
		if b == "" {
			p = append(p, "main.bicep: no module "+e.module+" (a private endpoint for what the app reaches)")
			continue
		}
		p = append(p, missing("main.bicep module "+e.module, b,
			"'modules/private-endpoint.bicep' = "+e.cond, "targetId: "+e.target, "groupId: "+e.group,
			"dnsZoneId: network!.outputs."+e.zone, "subnetId: network!.outputs.privateEndpointSubnetId")...)
		if !regexp.MustCompile(`dependsOn: \[[^\]]*\b` + e.module + `\b`).MatchString(appBlock) {
			p = append(p, "main.bicep: module app does not depend on "+e.module+" (the host would start before its endpoint resolves)")
		}
	}
	for _, m := range []string{"storage", "servicebus", "eventhubs"} {
		if !strings.Contains(moduleBlock(main, m), "vnetEnabled: vnetEnabled") {
			p = append(p, "main.bicep: module "+m+" is not given vnetEnabled")
		}
	}
	p = append(p, missing("modules/storage.bicep", files["modules/storage.bicep"],
		"publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'",
		"networkAcls: vnetEnabled ? { defaultAction: 'Deny', bypass: 'None' } :",
		"allowSharedKeyAccess: false")...)
	p = append(p, missing("modules/servicebus.bicep", files["modules/servicebus.bicep"],
		"sku: vnetEnabled ? { name: 'Premium', tier: 'Premium', capacity: 1 } :",
		"var publicAccess = !vnetEnabled || !empty(allowedIpRanges) ? 'Enabled' : 'Disabled'",
		"publicNetworkAccess: publicAccess",
		"resource networkRules 'Microsoft.ServiceBus/namespaces/networkRuleSets@",
		"defaultAction: 'Deny'",
		"ipRules: [for ip in allowedIpRanges: { ipMask: ip, action: 'Allow' }]")...)
	p = append(p, missing("modules/eventhubs.bicep", files["modules/eventhubs.bicep"],
		"publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'",
		"resource networkRules 'Microsoft.EventHub/namespaces/networkRuleSets@",
		"trustedServiceAccessEnabled: true")...)
	p = append(p, missing("modules/network.bicep", files["modules/network.bicep"],
		"serviceName: 'Microsoft.App/environments'",
		"privateEndpointNetworkPolicies: 'Disabled'",
		"name: 'privatelink.blob.${environment().suffixes.storage}'",
		"name: 'privatelink.table.${environment().suffixes.storage}'",
		"name: 'privatelink.servicebus.windows.net'")...)
	p = append(p, missing("modules/functionapp.bicep", files["modules/functionapp.bicep"],
		"virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId")...)
	return p
}

func TestVnetEnabledParameter(t *testing.T) {
	files := readInfra(t)
	report(t, checkNetwork(files))

	var params struct {
		Parameters map[string]struct {
			Value any `json:"value"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal([]byte(files["main.parameters.json"]), &params); err != nil {
		t.Fatal(err)
	}
	if v := params.Parameters["vnetEnabled"].Value; v != "${VNET_ENABLED=false}" {
		t.Errorf("main.parameters.json: vnetEnabled is %v, want ${VNET_ENABLED=false} (azd env set VNET_ENABLED true)", v)
	}
	deploy, _ := os.ReadFile(filepath.Join(repoRoot, "docs", "deploy.md"))
	for _, want := range []string{"VNET_ENABLED", "What is exposed", "Premium"} {
		if !strings.Contains(string(deploy), want) {
			t.Errorf("docs/deploy.md: no %q (the network parameter and what vnet off exposes)", want)
		}
	}

	expectReported(t, "table endpoint dropped", checkNetwork(mutated(t, files, "main.bicep", "module dataTableEndpoint '", "module dataTableEndpointX '")), "no module dataTableEndpoint")
	expectReported(t, "app not waiting", checkNetwork(mutated(t, files, "main.bicep", ", auditHubEndpoint]", "]")), "does not depend on auditHubEndpoint")
	expectReported(t, "storage open", checkNetwork(mutated(t, files, "modules/storage.bicep", "bypass: 'None' } :", "bypass: 'AzureServices' } :")), "modules/storage.bicep: missing")
	expectReported(t, "Service Bus standard", checkNetwork(mutated(t, files, "modules/servicebus.bicep", "{ name: 'Premium', tier: 'Premium', capacity: 1 }", "{ name: 'Standard', tier: 'Standard' }")), "modules/servicebus.bicep: missing")
	expectReported(t, "no delegation", checkNetwork(mutated(t, files, "modules/network.bicep", "serviceName: 'Microsoft.App/environments'", "serviceName: 'Microsoft.Web/serverFarms'")), "Microsoft.App/environments")
}

// assignmentScopes returns, for each role assignment resource of a Bicep
// file, its role (roles.<name>) and the symbol it is scoped to.
func assignmentScopes(src string) map[string][2]string {
	out := map[string][2]string{}
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
		var role, scope string
		if m := roleRef.FindStringSubmatch(body); m != nil {
			role = m[1]
		}
		if m := scopeLine.FindStringSubmatch(body); m != nil {
			scope = m[1]
		}
		out[src[d[2]:d[3]]] = [2]string{role, scope}
	}
	return out
}

// checkStorageRoles: on the host account only Storage Blob Data Owner (the
// Functions host's documented minimum, which covers the Flex deployment
// container's Storage Blob Data Contributor), on the data account only Storage
// Table Data Contributor; no queue or table role on the host.
func checkStorageRoles(access string) []string {
	var p []string
	byScope := map[string][]string{}
	for _, rs := range assignmentScopes(access) {
		byScope[rs[1]] = append(byScope[rs[1]], rs[0])
	}
	if got := strings.Join(byScope["hostAccount"], ","); got != "storageBlobDataOwner" {
		p = append(p, "modules/access.bicep: host account roles are ["+got+"], want only storageBlobDataOwner")
	}
	if got := strings.Join(byScope["dataAccount"], ","); got != "storageTableDataContributor" {
		p = append(p, "modules/access.bicep: data account roles are ["+got+"], want only storageTableDataContributor")
	}
	for _, src := range []string{"functions-reference", "flex-consumption-how-to", "Storage Blob Data Contributor"} {
		if !strings.Contains(access, src) {
			p = append(p, "modules/access.bicep: the host storage role's comment does not cite "+src)
		}
	}
	return p
}

func TestStorageRolesAreNarrow(t *testing.T) {
	files := readInfra(t)
	access := files["modules/access.bicep"]
	report(t, checkStorageRoles(access))
	bad := strings.Replace(access, "  scope: dataAccount\n", "  scope: hostAccount\n", 1)
	if ps := checkStorageRoles(bad); len(ps) == 0 {
		t.Error("the storage role check did not catch a table role on the host account")
	}
	sec, _ := os.ReadFile(filepath.Join(repoRoot, "SECURITY.md"))
	if !strings.Contains(string(sec), "Storage Blob Data Owner") || !strings.Contains(string(sec), "deployment container") {
		t.Error("SECURITY.md does not explain the host storage role and the deployment container")
	}
}

// checkAuditNamespace: the audit hub lives in a namespace of its own whose
// only key is the rule Entra's diagnostic setting needs; no other namespace
// keeps local auth, no other key is declared anywhere, the app reads with its
// identity.
func checkAuditNamespace(files map[string]string) []string {
	var p []string
	eh := files["modules/eventhubs.bicep"]
	if n := len(regexp.MustCompile(`(?m)^resource \w+ 'Microsoft\.EventHub/namespaces/eventhubs@`).FindAllString(eh, -1)); n != 1 {
		p = append(p, fmt.Sprintf("modules/eventhubs.bicep: %d hubs, want only the audit hub", n))
	}
	p = append(p, missing("modules/eventhubs.bicep", eh,
		"resource diagnosticsRule 'Microsoft.EventHub/namespaces/authorizationRules@2024-01-01' existing = {",
		"name: 'RootManageSharedAccessKey'",
		"output diagnosticsRuleId string = diagnosticsRule.id")...)
	rule := regexp.MustCompile(`(?m)^resource \w+ '[^']*/authorizationRules@[^']*'( existing)? =`)
	consumer := regexp.MustCompile(`(?m)^resource \w+ '[^']*/consumergroups@`)
	for file, src := range files {
		if !strings.HasSuffix(file, ".bicep") {
			continue
		}
		for _, m := range rule.FindAllStringSubmatch(src, -1) {
			if m[1] == "" {
				p = append(p, file+": declares an authorization rule (a key): the audit namespace's only key is RootManageSharedAccessKey")
			}
		}
		if consumer.MatchString(src) {
			p = append(p, file+": declares a consumer group beside the app's")
		}
		if strings.Contains(src, "disableLocalAuth: false") && file != "modules/eventhubs.bicep" {
			p = append(p, file+": local (key) auth enabled outside the audit namespace")
		}
		if regexp.MustCompile(`(?m)^resource \w+ 'Microsoft\.EventHub/namespaces@`).MatchString(src) && file != "modules/eventhubs.bicep" && !strings.Contains(src, "existing") {
			p = append(p, file+": another Event Hubs namespace")
		}
	}
	p = append(p, missing("modules/servicebus.bicep", files["modules/servicebus.bicep"], "disableLocalAuth: true")...)
	p = append(p, missing("modules/eventhub-access.bicep", files["modules/eventhub-access.bicep"], "scope: hub", "roles.eventHubsDataReceiver")...)
	return p
}

func TestAuditHubNamespaceOfItsOwn(t *testing.T) {
	files := readInfra(t)
	report(t, checkAuditNamespace(files))
	settings, err := appSettings(files["main.bicep"])
	if err != nil {
		t.Fatal(err)
	}
	if settings["AuditEventHubConnection__credential"] != "'managedidentity'" {
		t.Error("the audit reader does not use the app's identity")
	}
	withKey := map[string]string{}
	for k, v := range files {
		withKey[k] = v
	}
	withKey["modules/eventhubs.bicep"] += "\nresource extra 'Microsoft.EventHub/namespaces/authorizationRules@2024-01-01' = {\n  parent: namespace\n  name: 'sender'\n}\n"
	if ps := checkAuditNamespace(withKey); len(ps) == 0 {
		t.Error("the audit namespace check did not catch a second key")
	}
	withKey["modules/eventhubs.bicep"] = files["modules/eventhubs.bicep"]
	withKey["modules/servicebus.bicep"] = strings.Replace(files["modules/servicebus.bicep"], "disableLocalAuth: true", "disableLocalAuth: false", 1)
	if ps := checkAuditNamespace(withKey); len(ps) == 0 {
		t.Error("the audit namespace check did not catch local auth on Service Bus")
	}
	sec, _ := os.ReadFile(filepath.Join(repoRoot, "SECURITY.md"))
	if !strings.Contains(string(sec), "RootManageSharedAccessKey") {
		t.Error("SECURITY.md does not name the audit namespace's only key")
	}
}

// Request senders are systems, never people: the parameter says so, Azure
// is told the principal type, and the docs agree.
func TestRequestSendersAreServicePrincipals(t *testing.T) {
	files := readInfra(t)
	main := files["main.bicep"]
	i := strings.Index(main, "param requestSenderPrincipalIds")
	if i < 0 {
		t.Fatal("main.bicep: no requestSenderPrincipalIds")
	}
	desc := main[strings.LastIndex(main[:i], "@description("):i]
	if strings.Contains(desc, "operators") || !strings.Contains(desc, "never people") {
		t.Errorf("main.bicep: requestSenderPrincipalIds' description must say senders are systems, never people: %s", desc)
	}
	access := files["modules/access.bicep"]
	j := strings.Index(access, "resource requestSenders ")
	if j < 0 || !strings.Contains(access[j:], "principalType: 'ServicePrincipal'") {
		t.Error("modules/access.bicep: requestSenders without principalType 'ServicePrincipal' (Azure then refuses a user)")
	}
	deploy, _ := os.ReadFile(filepath.Join(repoRoot, "docs", "deploy.md"))
	if strings.Contains(string(deploy), "--assignee <you>") {
		t.Error("docs/deploy.md tells people to give themselves Data Sender")
	}
}

// The audit reader starts a new deployment at the start of the hub's
// retention: what arrives before the first start is still read (fromEnd would
// skip it), and records older than the deployment are ignored by the app,
// which records its first start in the store.
func TestAuditReaderStartPosition(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "host.json"))
	if err != nil {
		t.Fatal(err)
	}
	var host struct {
		Extensions struct {
			EventHubs struct {
				InitialOffsetOptions struct {
					Type string `json:"type"`
				} `json:"initialOffsetOptions"`
			} `json:"eventHubs"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(raw, &host); err != nil {
		t.Fatal(err)
	}
	if got := host.Extensions.EventHubs.InitialOffsetOptions.Type; got != "fromStart" {
		t.Errorf("host.json: eventHubs.initialOffsetOptions.type is %q, want fromStart (docs/deploy.md)", got)
	}
	// What the decision relies on.
	wiring, _ := os.ReadFile(filepath.Join(repoRoot, "internal", "app", "tables.go"))
	audit, _ := os.ReadFile(filepath.Join(repoRoot, "internal", "broker", "audit.go"))
	if !strings.Contains(string(wiring), "store.DeployedAt(") || !strings.Contains(string(audit), "deployedAt") {
		t.Error("the app no longer records its first start (DeployedAt) or no longer ignores older audit records: revisit initialOffsetOptions")
	}
	deploy, _ := os.ReadFile(filepath.Join(repoRoot, "docs", "deploy.md"))
	if !strings.Contains(string(deploy), "initialOffsetOptions") {
		t.Error("docs/deploy.md does not explain the audit reader's start position")
	}
}
