package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/cli"
	"github.com/jitaccess/jitaccess/internal/devhost"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// hostAnswer is the custom handler's answer as the Functions host reads it
// (HttpScriptInvocationResult).
type hostAnswer struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// invokeDirect posts one invocation to the binary itself, as the host does
// (same payloads as internal/devhost), and returns the answer: the devhost
// stand-in does not show the answer's Logs, the real host logs them.
func (e *env) invokeDirect(function, invocationID string, payload []byte) hostAnswer {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(e.port)+"/"+function, bytes.NewReader(payload))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Azure-Functions-InvocationId", invocationID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("%s answered %d: %s", function, resp.StatusCode, b)
	}
	var a hostAnswer
	if err := json.Unmarshal(b, &a); err != nil || a.Outputs == nil {
		e.t.Fatalf("%s: answer %s: %v", function, b, err)
	}
	return a
}

func (e *env) sendDirect(invocationID, typ string, data map[string]string) hostAnswer {
	e.t.Helper()
	id := eventID()
	body, err := cli.BuildEvent(id, typ, "/e2e", time.Now(), data)
	if err != nil {
		e.t.Fatal(err)
	}
	m := devhost.Message{MessageID: id, Body: body, EnqueuedTime: time.Now().Add(-3 * time.Second), DeliveryCount: 1}
	return e.invokeDirect("AccessRequests", invocationID, devhost.ServiceBusPayload("AccessRequests", "message", "e2e.servicebus.windows.net", m, time.Now()))
}

func (e *env) sweepDirect(invocationID string) hostAnswer {
	e.t.Helper()
	now := time.Now()
	return e.invokeDirect("ExpirySweep", invocationID, devhost.TimerPayload("ExpirySweep", "timer", now.Add(-time.Minute), now.Add(time.Minute), now, false))
}

func parseLines(t *testing.T, lines []string) []map[string]any {
	t.Helper()
	out := make([]map[string]any, 0, len(lines))
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("a Logs entry is not a JSON log line: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func msgs(lines []map[string]any) string {
	var out []string
	for _, l := range lines {
		out = append(out, l["msg"].(string))
	}
	return strings.Join(out, " | ")
}

// TestTelemetryLogsAnswer drives the built binary through the custom-handler
// protocol with invocations it answers directly and checks what the host
// would get back: the answer's Logs hold the invocation's own lines — JSON,
// each with the invocation id and function, the request id once known, the
// outcome line last, the same text as on stdout — and nothing a sender wrote.
// The sweep's metrics line, the grant-ended line with its revocation lag, the
// Graph call counters and the audit-hub lag come through the same way.
func TestTelemetryLogsAnswer(t *testing.T) {
	e := newEnv(t)
	justification, ticket, comment := secret("MARKjust-"), secret("MARKticket-"), secret("MARKcomment-")

	req := e.sendDirect("inv-tel-requested", access.TypeRequested, map[string]string{"requestId": "tel-1", "requester": seed.UPN("n01"),
		"profile": "aks-admin", "duration": "PT2S", "justification": justification, "ticket": ticket})
	app := e.sendDirect("inv-tel-approved", access.TypeApproved, map[string]string{"requestId": "tel-1", "approver": seed.UPN("p01"), "comment": comment})
	if v := e.mustGet("tel-1"); v.State != "active" {
		t.Fatalf("tel-1: %s %v", v.State, v.types())
	}
	stdout := e.proc.output()
	for name, a := range map[string]hostAnswer{"requested": req, "approved": app} {
		lines := parseLines(t, a.Logs)
		if len(lines) < 2 || lines[len(lines)-1]["msg"] != "invocation done" || lines[len(lines)-1]["outcome"] != "acknowledged" {
			t.Fatalf("%s: Logs %s", name, msgs(lines))
		}
		for i, l := range lines {
			if l["invocationId"] != "inv-tel-"+name || l["function"] != "AccessRequests" || l["requestId"] != "tel-1" {
				t.Fatalf("%s: Logs line %d lacks the invocation's fields: %s", name, i, a.Logs[i])
			}
			if !strings.Contains(stdout, a.Logs[i]+"\n") {
				t.Fatalf("%s: Logs line %d is not a stdout line: %s", name, i, a.Logs[i])
			}
		}
		if q := lines[len(lines)-1]["queueLagSeconds"]; q == nil || q.(float64) < 2 {
			t.Fatalf("%s: queue lag %v", name, q)
		}
	}
	// The approval added the member through Graph: counted.
	last := parseLines(t, app.Logs)[len(app.Logs)-1]
	if n, _ := last["graphRequests"].(float64); n < 2 || last["graphFailed"] != float64(0) || last["graphThrottled"] != float64(0) {
		t.Fatalf("graph counters: %v", last)
	}
	if !strings.Contains(strings.Join(app.Logs, "\n"), `"state":"active"`) {
		t.Fatalf("approval Logs: %s", msgs(parseLines(t, app.Logs)))
	}

	// The sweep: metrics line while the grant is active.
	sw := parseLines(t, e.sweepDirect("inv-tel-sweep-1").Logs)
	var metrics map[string]any
	for _, l := range sw {
		if l["msg"] == "metrics" {
			metrics = l
		}
		if l["invocationId"] != "inv-tel-sweep-1" || l["function"] != "ExpirySweep" {
			t.Fatalf("sweep line without the invocation's fields: %v", l)
		}
	}
	if metrics == nil || metrics["activeGrants"].(float64) < 1 || metrics["endsOverdue"] != float64(0) || metrics["sweepIntervalSeconds"] == nil {
		t.Fatalf("sweep Logs: %s; metrics %v", msgs(sw), metrics)
	}

	// After the end: the sweep ends the grant and reports it with its lag.
	time.Sleep(2200 * time.Millisecond)
	sw = parseLines(t, e.sweepDirect("inv-tel-sweep-2").Logs)
	var ended map[string]any
	for _, l := range sw {
		if l["msg"] == "grant ended" {
			ended = l
		}
	}
	if ended == nil || ended["requestId"] != "tel-1" || ended["state"] != "expired" || ended["profile"] != "aks-admin" || ended["revocationLagSeconds"] == nil {
		t.Fatalf("sweep Logs: %s; grant ended %v", msgs(sw), ended)
	}
	if lag := ended["revocationLagSeconds"].(float64); lag < 0 || lag > 30 {
		t.Fatalf("revocation lag %v", lag)
	}
	if v := e.mustGet("tel-1"); v.State != "expired" || v.has("sessions-revoked") != 1 {
		t.Fatalf("tel-1: %s %v", v.State, v.types())
	}

	// An audit batch whose oldest event waited 90 s in the hub.
	payload := devhost.EventHubPayload("EntraAuditEvents", "events", "e2e.servicebus.windows.net", "insights-logs-auditlogs",
		[]string{string(oobFixture(t)), "not json"}, 1, 0, 3, true, time.Now().Add(-90*time.Second))
	au := parseLines(t, e.invokeDirect("EntraAuditEvents", "inv-tel-audit", payload).Logs)
	done := au[len(au)-1]
	if done["msg"] != "invocation done" || done["events"] != float64(2) || done["auditHubLagSeconds"] == nil || done["auditHubLagSeconds"].(float64) < 89 {
		t.Fatalf("audit Logs: %s; last %v", msgs(au), done)
	}

	// Nothing a sender wrote, no token or key, in any answer.
	all := strings.Join(append(append(req.Logs, app.Logs...), e.proc.output()), "\n")
	for _, m := range []string{justification, ticket, comment, e.ids.Header(), "Bearer ", "AccountKey="} {
		if strings.Contains(all, m) {
			t.Fatalf("the logs hold %q", m)
		}
	}
	if jwt := regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`).FindString(all); jwt != "" {
		t.Fatalf("a JWT in the logs: %.20s…", jwt)
	}
}

// TestTelemetryEveryLineCarriesTheInvocation runs the functions through the
// devhost stand-in (the host's ids on every call, forwarded HTTP included)
// and checks every line the binary wrote after it started listening: JSON,
// with the invocation id and function of the call it belongs to, and the
// request id on the lines of an AccessRequests invocation once the event
// named a valid one.
func TestTelemetryEveryLineCarriesTheInvocation(t *testing.T) {
	e := newEnv(t)
	e.send(access.TypeRequested, map[string]string{"requestId": "tel-2", "requester": seed.UPN("n01"), "profile": "aks-admin",
		"duration": "PT2S", "justification": "needed"})
	e.send(access.TypeApproved, map[string]string{"requestId": "tel-2", "approver": seed.UPN("p01")})
	e.sendRaw([]byte("not an event"))
	e.audit(oobFixture(t))
	e.sweep()
	e.mustGet("tel-2")
	for _, path := range []string{"/api/requests?limit=1", "/api/health", "/api/dashboard"} {
		resp, err := http.Get(e.host.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	// An HTTP function's line is written when its handler returns, which
	// may be just after the client has read the whole answer.
	waitUntil(t, "the dashboard's line", 5*time.Second, func() bool {
		return strings.Contains(e.proc.output(), `"function":"Dashboard"`)
	})
	lines := e.logLines()
	started := false
	byInvocation := map[string][]map[string]any{}
	functions := map[string]bool{}
	for _, l := range lines {
		if l["msg"] == "jitaccess listening" {
			started = true
			continue
		}
		if !started {
			continue
		}
		inv, _ := l["invocationId"].(string)
		fn, _ := l["function"].(string)
		if _, err := uuid.Parse(inv); err != nil || fn == "" {
			t.Errorf("a line without the host's invocation id and function: %v", l)
			continue
		}
		functions[fn] = true
		byInvocation[inv] = append(byInvocation[inv], l)
	}
	for _, fn := range []string{"AccessRequests", "ExpirySweep", "EntraAuditEvents", "Requests", "Health", "Dashboard"} {
		if !functions[fn] {
			t.Errorf("no line of %s", fn)
		}
	}
	withRequest := 0
	for inv, ls := range byInvocation {
		if ls[0]["function"] != "AccessRequests" {
			continue
		}
		for _, l := range ls {
			if l["function"] != "AccessRequests" {
				t.Errorf("invocation %s mixes functions: %v", inv, l)
			}
		}
		last := ls[len(ls)-1]
		if last["msg"] != "invocation done" {
			t.Errorf("invocation %s: last line %v", inv, last)
		}
		if last["requestId"] == "tel-2" {
			withRequest++
			for _, l := range ls {
				if l["requestId"] != "tel-2" {
					t.Errorf("invocation %s: a line without the request id: %v", inv, l)
				}
			}
		} else if last["requestId"] != nil {
			t.Errorf("invocation %s: request id %v", inv, last["requestId"])
		}
	}
	if withRequest != 2 {
		t.Fatalf("%d AccessRequests invocations of tel-2 (want the request and its approval)", withRequest)
	}
}
