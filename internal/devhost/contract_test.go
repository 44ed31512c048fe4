package devhost

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestFunctionsMatchTheContract checks every functions/*/function.json
// against the contract's function table (docs/design.md, The contract) (names, triggers, binding names,
// settings, connections, routes, methods and authLevel): infrastructure and
// acceptance tests rely on exactly these. Requests and Dashboard are
// authLevel anonymous since readers sign in (docs/design.md, The read API "Who may read"):
// App Service Authentication in front (infra/modules/functionapp.bicep,
// requireAuthentication) and the app role checked by the handler
// (handlers/auth.go), so no function key is needed and none appears in a
// URL; docs/deploy.md §6 explains the change to the §2 table.
func TestFunctionsMatchTheContract(t *testing.T) {
	raw := func(name string) Function {
		b, err := os.ReadFile("../../functions/" + name + "/function.json")
		if err != nil {
			t.Fatal(err)
		}
		var f Function
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		f.Name = name
		return f
	}
	want := map[string]Binding{
		"AccessRequests":   {Type: "serviceBusTrigger", Name: "message", QueueName: "%JIT_REQUESTS_QUEUE%", Connection: "ServiceBusConnection"},
		"ExpirySweep":      {Type: "timerTrigger", Name: "timer", Schedule: "%JIT_SWEEP_SCHEDULE%"},
		"EntraAuditEvents": {Type: "eventHubTrigger", Name: "events", EventHubName: "%JIT_AUDIT_HUB%", Connection: "AuditEventHubConnection", Cardinality: "many", DataType: "string"},
		"Requests":         {Type: "httpTrigger", AuthLevel: "anonymous", Methods: []string{"get"}, Route: "requests/{id?}"},
		"Dashboard":        {Type: "httpTrigger", AuthLevel: "anonymous", Methods: []string{"get"}, Route: "dashboard"},
		"Health":           {Type: "httpTrigger", AuthLevel: "anonymous", Methods: []string{"get"}, Route: "health"},
	}
	dirs, err := os.ReadDir("../../functions")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != len(want) {
		t.Fatalf("%d function folders, the contract has %d", len(dirs), len(want))
	}
	for name, w := range want {
		f := raw(name)
		got := f.Trigger()
		got.Direction = ""
		for i := range got.Methods {
			got.Methods[i] = strings.ToLower(got.Methods[i])
		}
		if w.Type != "httpTrigger" {
			got.Name = strings.TrimSpace(got.Name)
		} else {
			got.Name = ""
		}
		if got.Type != w.Type || got.Name != w.Name || got.QueueName != w.QueueName || got.Connection != w.Connection ||
			got.Schedule != w.Schedule || got.EventHubName != w.EventHubName || !strings.EqualFold(got.Cardinality, w.Cardinality) ||
			got.DataType != w.DataType || got.AuthLevel != w.AuthLevel || !slices.Equal(got.Methods, w.Methods) || got.Route != w.Route {
			t.Errorf("%s: trigger %+v, contract %+v", name, got, w)
		}
		if name == "EntraAuditEvents" && (f.Retry == nil || f.Retry.Strategy != "exponentialBackoff") {
			t.Errorf("EntraAuditEvents: retry policy %+v, the contract wants exponential backoff", f.Retry)
		}
	}
}
