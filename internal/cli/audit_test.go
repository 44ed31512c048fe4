package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestSendAuditToSandbox(t *testing.T) {
	sb := newSandbox(t)
	f := filepath.Join("..", "..", "handlers", "testdata", "audit", "pim_activation.json")
	code, out, errs := run(t, Send, "audit", "--file", f, "--sandbox", sb.URL)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if len(sb.paths) != 1 || sb.paths[0] != "/_devhost/eventhubs/insights-logs-auditlogs/events" {
		t.Fatalf("paths %v", sb.paths)
	}
	var events []string
	if err := json.Unmarshal(sb.bodies[0], &events); err != nil || len(events) != 1 {
		t.Fatalf("body %s: %v", sb.bodies[0], err)
	}
	want, _ := os.ReadFile(f)
	if events[0] != string(want) || out == "" {
		t.Fatal("event content changed")
	}
	if code, _, _ := run(t, Send, "audit"); code != ExitUsage {
		t.Fatalf("no --file: exit %d", code)
	}
	if code, _, _ := run(t, Send, "audit", "--file", "/does/not/exist"); code != ExitUsage {
		t.Fatalf("missing file: exit %d", code)
	}
	sb.status = 502
	if code, _, _ := run(t, Send, "audit", "--file", f, "--sandbox", sb.URL); code != ExitFailed {
		t.Fatalf("sandbox failure: exit %d", code)
	}
}
