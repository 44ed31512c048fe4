package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/telemetry"
)

// telemetryServer builds a server whose use cases log through the same
// telemetry logger, as internal/app wires them (the broker's logger is the
// handlers' logger).
func telemetryServer(t *testing.T, d Deps) (http.Handler, *bytes.Buffer, *slog.Logger) {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(telemetry.NewHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	d.Logger = log
	if d.ReadAuth == nil {
		d.ReadAuth = signedIn
	}
	h := New(d)
	buf.Reset() // start-up lines belong to no invocation
	return h, &buf, log
}

func jsonLines(t *testing.T, lines []string) []map[string]any {
	t.Helper()
	out := make([]map[string]any, 0, len(lines))
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		out = append(out, m)
	}
	return out
}

type loggingSweeper struct {
	log *slog.Logger
	err error
}

func (f *loggingSweeper) Sweep(ctx context.Context) error {
	f.log.InfoContext(ctx, "sweep applied", "requestId", "r-exp", "state", "ending")
	f.log.InfoContext(ctx, "work done", "requestId", "r-exp", "state", "expired")
	f.log.WarnContext(ctx, "work failed permanently", "requestId", "r-fail", "state", "failed")
	f.log.InfoContext(ctx, "work done", "requestId", "r-old", "state", "expired")
	return f.err
}

type fakeGauges struct {
	g   telemetry.Gauges
	err error
}

func (f fakeGauges) Read(context.Context, time.Time) (telemetry.Gauges, error) { return f.g, f.err }

func TestSweepAnswerCarriesItsLines(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	store := &fakeLister{reqs: map[string]*access.Request{
		"r-exp": {ID: "r-exp", State: access.Expired, Profile: "aks-admin", EndsAt: now.Add(-90 * time.Second), EndedAt: now.Add(-80 * time.Second),
			History: []access.HistoryEntry{{At: now.Add(-70 * time.Second), Type: access.HMembershipRemoved}, {At: now.Add(-60 * time.Second), Type: access.HSessionsRevoked}}},
		"r-fail": {ID: "r-fail", State: access.Failed, Profile: "aks-admin", EndedAt: now.Add(-time.Second), Reason: "Graph refused the removal"},
		"r-old":  {ID: "r-old", State: access.Expired, EndsAt: now.Add(-48 * time.Hour), EndedAt: now.Add(-48 * time.Hour)},
	}}
	sw := &loggingSweeper{}
	h, stdout, log := telemetryServer(t, Deps{Sweeper: sw, Store: store, Now: func() time.Time { return now },
		Gauges: fakeGauges{g: telemetry.Gauges{ActiveGrants: 3, EndsOverdue: 1, OldestOverdue: 5 * time.Minute, SweepInterval: time.Minute}}})
	sw.log = log
	res := assertAnswer(t, post(h, "/ExpirySweep", golden(t, "timer.json")), 200)
	lines := jsonLines(t, res.Logs)
	var msgs []string
	for _, l := range lines {
		msgs = append(msgs, l["msg"].(string))
		if l["invocationId"] != "inv-1" || l["function"] != "ExpirySweep" {
			t.Fatalf("line without the invocation's ids: %v", l)
		}
	}
	want := "sweep applied|work done|work failed permanently|work done|metrics|grant ended|grant ended|invocation done"
	if strings.Join(msgs, "|") != want {
		t.Fatalf("lines %q\nwant %q", strings.Join(msgs, "|"), want)
	}
	// The answer's Logs are the same lines as stdout.
	if got := strings.TrimSpace(stdout.String()); got != strings.Join(res.Logs, "\n") {
		t.Fatalf("stdout and Logs differ:\n%s\n---\n%s", got, strings.Join(res.Logs, "\n"))
	}
	m := lines[4]
	if m["activeGrants"] != float64(3) || m["endsOverdue"] != float64(1) || m["oldestOverdueSeconds"] != float64(300) || m["sweepIntervalSeconds"] != float64(60) {
		t.Fatalf("metrics line %v", m)
	}
	exp, failed := lines[5], lines[6]
	if exp["requestId"] != "r-exp" || exp["state"] != "expired" || exp["revocationLagSeconds"] != float64(30) || exp["profile"] != "aks-admin" {
		t.Fatalf("grant ended %v", exp)
	}
	if failed["requestId"] != "r-fail" || failed["state"] != "failed" || failed["revocationLagSeconds"] != nil || strings.Contains(res.Logs[6], "Graph refused") {
		t.Fatalf("failed grant %v", failed)
	}

	// The store cannot be read: the metrics line says so, the sweep's outcome stands.
	sw.err = fault.Wrap(fault.ErrTransient, "sweep", errors.New("storage down"))
	h, _, log = telemetryServer(t, Deps{Sweeper: sw, Gauges: fakeGauges{err: fault.ErrTransient}})
	sw.log = log
	res = assertAnswer(t, post(h, "/ExpirySweep", golden(t, "timer.json")), 500)
	joined := strings.Join(res.Logs, "\n")
	if !strings.Contains(joined, `"msg":"metrics unavailable"`) || !strings.Contains(joined, `"msg":"invocation failed"`) || strings.Contains(joined, "storage down") {
		t.Fatalf("logs %s", joined)
	}
}

func TestAuditBatchLag(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 5, 0, 0, time.UTC) // the batch's events reached the hub at 10:00:00..02
	h, _, _ := telemetryServer(t, Deps{Now: func() time.Time { return now }})
	res := assertAnswer(t, post(h, "/EntraAuditEvents", golden(t, "eventhub_batch.json")), 200)
	last := jsonLines(t, res.Logs)[len(res.Logs)-1]
	if last["auditHubLagSeconds"] != float64(300) || last["events"] != float64(3) || last["function"] != "EntraAuditEvents" {
		t.Fatalf("%v", last)
	}
	if !oldestEnqueued(&envelope{Metadata: map[string]json.RawMessage{"EnqueuedTimeUtcArray": json.RawMessage(`["2026-11-23T10:00:00.1234567","x"]`)}}).
		Equal(time.Date(2026, 11, 23, 10, 0, 0, 123456700, time.UTC)) {
		t.Fatal("an array (not string-encoded) of dates without zone")
	}
	if !oldestEnqueued(&envelope{}).IsZero() {
		t.Fatal("no metadata")
	}
}

func TestAccessRequestsLinesCarryTheRequestID(t *testing.T) {
	var h http.Handler
	var log *slog.Logger
	h, _, log = telemetryServer(t, Deps{Events: &loggingProcessor{log: func() *slog.Logger { return log }}})
	res := assertAnswer(t, post(h, "/AccessRequests", golden(t, "servicebus_requested.json")), 200)
	for _, l := range jsonLines(t, res.Logs) {
		if l["requestId"] != "req-001" || l["invocationId"] != "inv-1" {
			t.Fatalf("%v", l)
		}
	}
	for _, body := range []string{``, `{"data":{"requestId":"has spaces and text"}}`, `{"data":{"requestId":42}}`, `{"data":`} {
		if id := peekRequestID([]byte(body)); id != "" {
			t.Fatalf("%q: %q", body, id)
		}
	}
}

func TestHTTPLinesCarryTheInvocationAndRequestIDs(t *testing.T) {
	store := &fakeLister{reqs: map[string]*access.Request{"r2": sampleRequest()}}
	h, stdout, _ := telemetryServer(t, Deps{Store: store})
	req := httptest.NewRequest(http.MethodGet, "/api/requests/r2", nil)
	req.Header.Set("X-Azure-Functions-InvocationId", "inv-http")
	req.Header.Set("X-MS-CLIENT-PRINCIPAL", readerPrincipal)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("%d", rec.Code)
	}
	var l map[string]any
	for _, x := range jsonLines(t, strings.Split(strings.TrimSpace(stdout.String()), "\n")) {
		if x["invocationId"] != "inv-http" {
			t.Fatalf("a line without the invocation id: %v", x)
		}
		if x["msg"] == "http function done" {
			l = x
		}
	}
	if l["msg"] != "http function done" || l["invocationId"] != "inv-http" || l["function"] != "Requests" || l["requestId"] != "r2" {
		t.Fatalf("%v", l)
	}
}

// loggingProcessor logs a line that names no request itself.
type loggingProcessor struct{ log func() *slog.Logger }

func (p *loggingProcessor) HandleEvent(ctx context.Context, _ []byte) error {
	p.log().DebugContext(ctx, "looking up the requester")
	return nil
}

func (p *loggingProcessor) RejectDelivery(context.Context, string, string) error { return nil }
