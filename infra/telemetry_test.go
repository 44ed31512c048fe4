package infra_test

// The telemetry part of the infra consistency checks: the alert rules and the
// workbook exist, are wired in main.bicep behind their parameters, watch the
// right entities, and query only fields and messages that the code logs
// (internal/telemetry); host.json never samples traces away. Each check also
// runs against a broken copy to prove it can fail.

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// telemetryNames returns the string constants of internal/telemetry: field
// names (Field*) and messages (Msg*).
func telemetryNames(t *testing.T) (fields, msgs map[string]bool) {
	t.Helper()
	fields, msgs = map[string]bool{}, map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(repoRoot, "internal", "telemetry", "*.go"))
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || i >= len(vs.Names) {
					continue
				}
				s, _ := strconv.Unquote(lit.Value)
				switch name := vs.Names[i].Name; {
				case strings.HasPrefix(name, "Field"):
					fields[s] = true
				case strings.HasPrefix(name, "Msg"):
					msgs[s] = true
				}
			}
			return true
		})
	}
	if len(fields) < 10 || len(msgs) < 3 {
		t.Fatalf("internal/telemetry: found %d fields and %d messages (did the constants move?)", len(fields), len(msgs))
	}
	// slog's own keys.
	fields["msg"], fields["level"], fields["time"] = true, true, true
	return fields, msgs
}

// functionNames are the functions of functions/*/function.json.
func functionNames(t *testing.T) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoRoot, "functions", "*", "function.json"))
	out := map[string]bool{}
	for _, f := range files {
		out[filepath.Base(filepath.Dir(f))] = true
	}
	return out
}

// workbookQueries returns the KQL of the workbook's query items, by item name.
func workbookQueries(src string) (map[string]string, error) {
	var wb struct {
		Version string `json:"version"`
		Items   []struct {
			Type    int    `json:"type"`
			Name    string `json:"name"`
			Content struct {
				Query string `json:"query"`
			} `json:"content"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(src), &wb); err != nil {
		return nil, fmt.Errorf("modules/workbook.json: %v", err)
	}
	if wb.Version != "Notebook/1.0" {
		return nil, fmt.Errorf("modules/workbook.json: version %q, want Notebook/1.0", wb.Version)
	}
	out := map[string]string{}
	for _, it := range wb.Items {
		if it.Type == 3 {
			out[it.Name] = it.Content.Query
		}
	}
	return out, nil
}

var (
	jField      = regexp.MustCompile(`\bj\.([A-Za-z_][A-Za-z0-9_]*)`)
	jMsgCompare = regexp.MustCompile(`j\.msg\)\s*(?:==\s*"([^"]*)"|in\s*\(([^)]*)\))`)
	jFnCompare  = regexp.MustCompile(`j\.function\)\s*==\s*"([^"]*)"`)
	dquoted     = regexp.MustCompile(`"([^"]*)"`)
	// The one way the queries read jitaccess's lines: the stdout copy (every line once).
	consoleLines = `tostring(customDimensions.Category) == "Host.Function.Console" and message startswith "{"`
)

// checkQueries reports names a query reads that the code does not log.
func checkQueries(where string, queries map[string]string, fields, msgs, fns map[string]bool) []string {
	var problems []string
	for name, q := range queries {
		at := where + " " + name
		if !strings.Contains(q, "parse_json(message)") || !strings.Contains(q, consoleLines) {
			problems = append(problems, fmt.Sprintf("%s: does not read jitaccess's lines as the others do (%s)", at, consoleLines))
		}
		for _, m := range jField.FindAllStringSubmatch(q, -1) {
			if !fields[m[1]] {
				problems = append(problems, fmt.Sprintf("%s: reads field j.%s, which internal/telemetry does not declare", at, m[1]))
			}
		}
		for _, m := range jMsgCompare.FindAllStringSubmatch(q, -1) {
			names := []string{m[1]}
			if m[2] != "" {
				names = nil
				for _, x := range dquoted.FindAllStringSubmatch(m[2], -1) {
					names = append(names, x[1])
				}
			}
			for _, n := range names {
				if !msgs[n] {
					problems = append(problems, fmt.Sprintf("%s: selects message %q, which internal/telemetry does not declare", at, n))
				}
			}
		}
		for _, m := range jFnCompare.FindAllStringSubmatch(q, -1) {
			if !fns[m[1]] {
				problems = append(problems, fmt.Sprintf("%s: selects function %q, which functions/ does not define", at, m[1]))
			}
		}
	}
	return problems
}

// alertQueries returns the KQL of alerts.bicep's rules: the jitLines prefix
// expanded, by resource symbol.
func alertQueries(src string) map[string]string {
	prefix := ""
	if m := regexp.MustCompile(`(?s)var jitLines = '''(.*?)'''`).FindStringSubmatch(src); m != nil {
		prefix = m[1]
	}
	out := map[string]string{}
	res := regexp.MustCompile(`(?s)resource (\w+) 'Microsoft\.Insights/scheduledQueryRules@[^']+' = \{(.*?)\n\}`)
	for _, m := range res.FindAllStringSubmatch(src, -1) {
		if q := regexp.MustCompile(`(?s)query: .*?'''(.*?)'''`).FindStringSubmatch(m[2]); q != nil {
			out[m[1]] = strings.ReplaceAll(q[1], "JITLINES", prefix)
		}
	}
	return out
}

// resourceBlock returns the body of resource sym in src ("" when absent).
func resourceBlock(src, sym string) string {
	m := regexp.MustCompile(`(?s)resource ` + sym + ` '[^']+' = (?:if \([^)]*\) )?\{(.*?)\n\}`).FindStringSubmatch(src)
	if m == nil {
		return ""
	}
	return m[0]
}

// checkAlerts: the four alerts the operators need, each with actions.
func checkAlerts(alerts, main string, fields, msgs, fns map[string]bool) []string {
	var problems []string
	need := func(sym, what string, wants ...string) {
		b := resourceBlock(alerts, sym)
		if b == "" {
			problems = append(problems, fmt.Sprintf("modules/alerts.bicep: no %s rule (resource %s)", what, sym))
			return
		}
		for _, w := range wants {
			if !strings.Contains(b, w) {
				problems = append(problems, fmt.Sprintf("modules/alerts.bicep: the %s rule (%s) lacks %q", what, sym, w))
			}
		}
		if !strings.Contains(b, "actions: metricActions") && !strings.Contains(b, "actions: { actionGroups: actionGroupIds }") {
			problems = append(problems, fmt.Sprintf("modules/alerts.bicep: the %s rule (%s) notifies nobody", what, sym))
		}
		if !strings.Contains(b, "enabled: true") {
			problems = append(problems, fmt.Sprintf("modules/alerts.bicep: the %s rule (%s) is not enabled", what, sym))
		}
	}
	need("deadLetters", "dead letters", "'Microsoft.Insights/metricAlerts", "metricName: 'DeadletteredMessages'",
		"metricNamespace: 'Microsoft.ServiceBus/namespaces'", "{ name: 'EntityName', operator: 'Include', values: [requestsQueueName] }",
		"scopes: [serviceBusNamespaceId]", "operator: 'GreaterThan'", "threshold: 0")
	need("failedGrants", "failed grants", `tostring(j.msg) == "grant ended"`, `tostring(j.state) == "failed"`, "scopes: [appInsightsId]")
	need("endsOverdue", "ends overdue", `tostring(j.msg) == "metrics"`, "j.endsOverdue", "lines == 0", "scopes: [appInsightsId]")
	need("auditLag", "audit-hub lag", "j.auditHubLagSeconds", `tostring(j.function) == "EntraAuditEvents"`, "'THRESHOLD', string(auditLagThresholdSeconds)")
	need("auditStalled", "audit hub unread", "metricName: 'IncomingMessages'", "metricName: 'OutgoingMessages'",
		"{ name: 'EntityName', operator: 'Include', values: [auditHubName] }", "scopes: [auditHubNamespaceId]")
	for _, w := range []string{"emailReceivers: [for (e, i) in alertEmails:", "param alertEmails array = []", "param actionGroupId string = ''"} {
		if !strings.Contains(alerts, w) {
			problems = append(problems, fmt.Sprintf("modules/alerts.bicep: missing %q", w))
		}
	}
	if got := alertQueries(alerts); len(got) != 3 {
		problems = append(problems, fmt.Sprintf("modules/alerts.bicep: %d log search rules with a query, want 3", len(got)))
	} else {
		problems = append(problems, checkQueries("modules/alerts.bicep", got, fields, msgs, fns)...)
	}
	for _, w := range []string{
		"param alertsEnabled bool = true", "param alertEmails string = ''", "param alertActionGroupId string = ''",
		"module alerts 'modules/alerts.bicep' = if (alertsEnabled) {",
		"requestsQueueName: servicebus.outputs.queueName", "auditHubName: auditHubName",
		"'Microsoft.EventHub/namespaces', auditHubNamespace)", "'Microsoft.ServiceBus/namespaces', servicebus.outputs.namespaceName)",
		"'Microsoft.Insights/components', monitoring.outputs.appInsightsName)",
		"alertEmails: map(filter(split(alertEmails, ','), a => !empty(trim(a))), a => trim(a))", "actionGroupId: alertActionGroupId",
	} {
		if !strings.Contains(main, w) {
			problems = append(problems, fmt.Sprintf("main.bicep: missing %q", w))
		}
	}
	return problems
}

// checkWorkbook: the workbook module loads workbook.json, is wired, and its
// queries read what the code logs and cover the metrics.
func checkWorkbook(module, wbJSON, main string, fields, msgs, fns map[string]bool) []string {
	var problems []string
	for _, w := range []string{"'Microsoft.Insights/workbooks@", "loadJsonContent('workbook.json')", "sourceId: appInsightsId", "kind: 'shared'"} {
		if !strings.Contains(module, w) {
			problems = append(problems, fmt.Sprintf("modules/workbook.bicep: missing %q", w))
		}
	}
	for _, w := range []string{"param workbookEnabled bool = true", "module workbook 'modules/workbook.bicep' = if (workbookEnabled) {"} {
		if !strings.Contains(main, w) {
			problems = append(problems, fmt.Sprintf("main.bicep: missing %q", w))
		}
	}
	qs, err := workbookQueries(wbJSON)
	if err != nil {
		return append(problems, err.Error())
	}
	problems = append(problems, checkQueries("modules/workbook.json", qs, fields, msgs, fns)...)
	all := ""
	for _, q := range qs {
		all += q + "\n"
	}
	for _, f := range []string{"activeGrants", "endsOverdue", "stuckWork", "revocationLagSeconds", "graphFailed", "graphThrottled",
		"armFailed", "armThrottled", "queueLagSeconds", "auditHubLagSeconds", "invocationId", "requestId"} {
		if !strings.Contains(all, "j."+f) {
			problems = append(problems, fmt.Sprintf("modules/workbook.json: no query shows %s", f))
		}
	}
	return problems
}

// checkSampling: host.json's Application Insights sampling keeps every trace
// (jitaccess's lines are traces of category Host.Function.Console, and the
// answer's Logs traces of category Function.<Name>.User), and the log levels
// let both categories through at Information.
func checkSampling(hostJSON string) []string {
	var h struct {
		Logging struct {
			LogLevel map[string]string `json:"logLevel"`
			AI       struct {
				Sampling *struct {
					IsEnabled     *bool  `json:"isEnabled"`
					ExcludedTypes string `json:"excludedTypes"`
				} `json:"samplingSettings"`
			} `json:"applicationInsights"`
		} `json:"logging"`
	}
	if err := json.Unmarshal([]byte(hostJSON), &h); err != nil {
		return []string{"host.json: " + err.Error()}
	}
	var problems []string
	if s := h.Logging.AI.Sampling; s != nil && (s.IsEnabled == nil || *s.IsEnabled) {
		types := map[string]bool{}
		for _, x := range strings.Split(s.ExcludedTypes, ";") {
			types[strings.ToLower(strings.TrimSpace(x))] = true
		}
		for _, want := range []string{"Trace", "Request", "Exception"} {
			if !types[strings.ToLower(want)] {
				problems = append(problems, fmt.Sprintf("host.json: sampling is on and excludedTypes lacks %s: jitaccess's lines (traces) could be dropped", want))
			}
		}
	}
	levels := map[string]int{"trace": 0, "debug": 1, "information": 2, "warning": 3, "error": 4, "critical": 5, "none": 6}
	effective := func(category string) string {
		best, level := -1, h.Logging.LogLevel["default"]
		for k, v := range h.Logging.LogLevel {
			if k != "default" && (category == k || strings.HasPrefix(category, k+".")) && len(k) > best {
				best, level = len(k), v
			}
		}
		return level
	}
	for _, c := range []string{"Host.Function.Console", "Function.AccessRequests.User", "Function.ExpirySweep.User", "Function.EntraAuditEvents.User", "Host.Results"} {
		l := effective(c)
		if n, ok := levels[strings.ToLower(l)]; l == "" || !ok || n > levels["information"] {
			problems = append(problems, fmt.Sprintf("host.json: category %s logs at %q: jitaccess's lines (Information) would not reach Application Insights", c, l))
		}
	}
	return problems
}

func readHostJSON(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "host.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAlertRules(t *testing.T) {
	files := readInfra(t)
	fields, msgs := telemetryNames(t)
	report(t, checkAlerts(files["modules/alerts.bicep"], files["main.bicep"], fields, msgs, functionNames(t)))
}

func TestWorkbook(t *testing.T) {
	files := readInfra(t)
	fields, msgs := telemetryNames(t)
	report(t, checkWorkbook(files["modules/workbook.bicep"], files["modules/workbook.json"], files["main.bicep"], fields, msgs, functionNames(t)))
}

func TestSamplingKeepsEveryLine(t *testing.T) {
	report(t, checkSampling(readHostJSON(t)))
}

func TestTelemetryChecksCatchMutations(t *testing.T) {
	files := readInfra(t)
	fields, msgs := telemetryNames(t)
	fns := functionNames(t)
	alerts, main, wb, wbMod := files["modules/alerts.bicep"], files["main.bicep"], files["modules/workbook.json"], files["modules/workbook.bicep"]
	swap := func(src, old, new string) string {
		t.Helper()
		if !strings.Contains(src, old) {
			t.Fatalf("mutation: no %q", old)
		}
		return strings.Replace(src, old, new, 1)
	}
	expectReported(t, "dead letters on another queue", checkAlerts(swap(alerts, "values: [requestsQueueName]", "values: ['other']"), main, fields, msgs, fns),
		"the dead letters rule (deadLetters) lacks")
	expectReported(t, "rule without actions", checkAlerts(swap(alerts, "    actions: { actionGroups: actionGroupIds }\n  }\n}\n\n// ---------------------------------------------------------------------------------------------\n// Ends overdue", "  }\n}\n\n// ---------------------------------------------------------------------------------------------\n// Ends overdue"), main, fields, msgs, fns),
		"the failed grants rule (failedGrants) notifies nobody")
	expectReported(t, "misspelt field", checkAlerts(swap(alerts, "toint(j.endsOverdue)", "toint(j.endsOverDue)"), main, fields, msgs, fns),
		"reads field j.endsOverDue, which internal/telemetry does not declare")
	expectReported(t, "unknown message", checkAlerts(swap(alerts, `tostring(j.msg) == "grant ended"`, `tostring(j.msg) == "grant over"`), main, fields, msgs, fns),
		`selects message "grant over"`)
	expectReported(t, "unknown function", checkAlerts(swap(alerts, `== "EntraAuditEvents"`, `== "AuditEvents"`), main, fields, msgs, fns),
		`selects function "AuditEvents"`)
	expectReported(t, "rule dropped", checkAlerts(swap(alerts, "resource endsOverdue ", "resource endsLate "), main, fields, msgs, fns),
		"no ends overdue rule")
	expectReported(t, "alerts not wired", checkAlerts(alerts, swap(main, "module alerts 'modules/alerts.bicep' = if (alertsEnabled) {", "module alerts 'modules/alerts.bicep' = {"), fields, msgs, fns),
		"main.bicep: missing \"module alerts")
	expectReported(t, "workbook field", checkWorkbook(wbMod, swap(wb, "j.revocationLagSeconds", "j.revocationLag"), main, fields, msgs, fns),
		"reads field j.revocationLag,")
	expectReported(t, "workbook not loaded", checkWorkbook(swap(wbMod, "loadJsonContent('workbook.json')", "loadJsonContent('other.json')"), wb, main, fields, msgs, fns),
		"modules/workbook.bicep: missing")
	host := readHostJSON(t)
	expectReported(t, "traces sampled", checkSampling(swap(host, `"Request;Exception;Trace"`, `"Request;Exception"`)), "excludedTypes lacks Trace")
	expectReported(t, "console filtered", checkSampling(swap(host, `"Host.Function.Console": "Information"`, `"Host.Function.Console": "Warning"`)), "category Host.Function.Console logs at \"Warning\"")
	expectReported(t, "user logs filtered", checkSampling(swap(host, `"Function": "Information"`, `"Function": "Error"`)), "category Function.AccessRequests.User")
}
