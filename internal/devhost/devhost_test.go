package devhost

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/handlers"
)

type call struct {
	path, query string
	header      http.Header
	body        []byte
}

type fakeHandler struct {
	*httptest.Server
	mu     sync.Mutex
	calls  []call
	status map[string]int // path → status for invocations
	body   string         // override of the invocation answer
}

func newFakeHandler(t *testing.T) *fakeHandler {
	f := &fakeHandler{status: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.calls = append(f.calls, call{r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b})
		st, ok := f.status[r.URL.Path]
		body := f.body
		f.mu.Unlock()
		if !ok {
			st = 200
		}
		if body == "" {
			body = `{"Outputs":{},"Logs":[],"ReturnValue":null}`
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeHandler) callsTo(path string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.path == path {
			out = append(out, c)
		}
	}
	return out
}

func start(t *testing.T, handlerURL string, o Options) *Host {
	t.Helper()
	o.Dir = "../.."
	o.HandlerURL = handlerURL
	o.Addr = "127.0.0.1:0"
	if o.Settings == nil {
		o.Settings = map[string]string{"JIT_SWEEP_SCHEDULE": "0 0 0 1 1 *"}
	}
	o.RedeliveryDelay = 5 * time.Millisecond
	o.MaxRetryDelay = 5 * time.Millisecond
	o.Logger = slog.New(slog.DiscardHandler)
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); h.Wait() })
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return h
}

func waitIdle(t *testing.T, h *Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

const event = `{"specversion":"1.0","id":"evt-1","source":"/t","type":"jit.access.requested","time":"2026-11-23T10:00:00.5Z","data":{"requestId":"r1","requester":"n01@contoso.com","profile":"aks-admin"}}`

func TestLoadsRepoFunctionsWithDefaults(t *testing.T) {
	fns, err := LoadFunctions("../..", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Binding{}
	for _, f := range fns {
		got[f.Name] = f.Trigger()
	}
	if got["AccessRequests"].QueueName != "access-requests" || got["ExpirySweep"].Schedule != "0 */1 * * * *" ||
		got["EntraAuditEvents"].EventHubName != "insights-logs-auditlogs" || got["Requests"].Route != "requests/{id?}" ||
		got["Health"].AuthLevel != "anonymous" || len(fns) != 6 {
		t.Fatalf("%+v", got)
	}
	if _, err := resolve("%NOPE%", nil); err == nil {
		t.Fatal("unset setting resolved")
	}
}

func TestEnqueueEncodesLikeTheHost(t *testing.T) {
	f := newFakeHandler(t)
	h := start(t, f.URL, Options{})
	id := h.Enqueue([]byte(event))
	waitIdle(t, h)
	calls := f.callsTo("/AccessRequests")
	if id != "evt-1" || len(calls) != 1 {
		t.Fatalf("id %q calls %d", id, len(calls))
	}
	c := calls[0]
	if c.header.Get("X-Azure-Functions-InvocationId") == "" || !strings.HasPrefix(c.header.Get("User-Agent"), "Azure-Functions-Host") {
		t.Fatalf("headers %v", c.header)
	}
	var env struct {
		Data     map[string]json.RawMessage
		Metadata map[string]json.RawMessage
	}
	if err := json.Unmarshal(c.body, &env); err != nil {
		t.Fatal(err)
	}
	// Data.message: a JSON string whose value is a JSON string holding the body.
	var once, twice string
	if err := json.Unmarshal(env.Data["message"], &once); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(once), &twice); err != nil || twice != event {
		t.Fatalf("message %s", env.Data["message"])
	}
	want := map[string]string{"DeliveryCount": `"1"`, "MessageId": `"\"evt-1\""`, "id": `"\"evt-1\""`,
		"time": `"\"11/23/2026 10:00:00\""`}
	for k, v := range want {
		if string(env.Metadata[k]) != v {
			t.Fatalf("Metadata.%s = %s, want %s", k, env.Metadata[k], v)
		}
	}
	if d := env.Metadata["data"]; len(d) == 0 || d[0] != '{' {
		t.Fatalf("data copy %s", d)
	}
	if _, err := time.Parse("\"2006-01-02T15:04:05\"", string(env.Metadata["EnqueuedTimeUtc"])); err != nil {
		t.Fatalf("EnqueuedTimeUtc %s", env.Metadata["EnqueuedTimeUtc"])
	}
}

func TestRedeliveryAndDeadLetter(t *testing.T) {
	f := newFakeHandler(t)
	f.status["/AccessRequests"] = 500
	h := start(t, f.URL, Options{MaxDeliveryCount: 3})
	h.Enqueue([]byte(event))
	waitIdle(t, h)
	calls := f.callsTo("/AccessRequests")
	if len(calls) != 3 {
		t.Fatalf("%d deliveries", len(calls))
	}
	for i, c := range calls {
		var env struct{ Metadata map[string]string }
		_ = json.Unmarshal(c.body, &env)
		if env.Metadata["DeliveryCount"] != []string{"1", "2", "3"}[i] {
			t.Fatalf("delivery %d count %q", i, env.Metadata["DeliveryCount"])
		}
	}
	dl := h.DeadLetters()
	if len(dl) != 1 || dl[0].MessageID != "evt-1" || dl[0].DeliveryCount != 3 || dl[0].Body != event {
		t.Fatalf("%+v", dl)
	}
	resp, err := http.Get(h.URL() + "/_devhost/deadletter")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"messageId":"evt-1"`) {
		t.Fatalf("%s", b)
	}
}

func TestEmptyAnswerIsAFailure(t *testing.T) {
	f := newFakeHandler(t)
	f.body = "not json"
	h := start(t, f.URL, Options{MaxDeliveryCount: 2})
	h.Enqueue([]byte(event))
	waitIdle(t, h)
	if len(f.callsTo("/AccessRequests")) != 2 || len(h.DeadLetters()) != 1 {
		t.Fatal("a non-JSON answer was taken as success")
	}
}

func TestTimerFires(t *testing.T) {
	f := newFakeHandler(t)
	start(t, f.URL, Options{Settings: map[string]string{"JIT_SWEEP_SCHEDULE": "*/1 * * * * *"}})
	deadline := time.Now().Add(5 * time.Second)
	for len(f.callsTo("/ExpirySweep")) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	calls := f.callsTo("/ExpirySweep")
	if len(calls) < 2 {
		t.Fatalf("%d timer invocations", len(calls))
	}
	var env struct {
		Data struct {
			Timer struct {
				Schedule       map[string]any
				ScheduleStatus map[string]string
				IsPastDue      *bool
			} `json:"timer"`
		}
	}
	if err := json.Unmarshal(calls[1].body, &env); err != nil || env.Data.Timer.IsPastDue == nil ||
		env.Data.Timer.ScheduleStatus["Next"] == "" || env.Data.Timer.Schedule["AdjustForDST"] != true {
		t.Fatalf("%v %s", err, calls[1].body)
	}
}

func TestScheduleAndCancel(t *testing.T) {
	f := newFakeHandler(t)
	h := start(t, f.URL, Options{})
	now := time.Now()
	seq1 := h.Schedule([]byte(event), now.Add(100*time.Millisecond))
	seq2 := h.Schedule([]byte(strings.Replace(event, "evt-1", "evt-2", 1)), now.Add(150*time.Millisecond))
	if !h.CancelScheduled(seq2) || h.CancelScheduled(seq2) || h.CancelScheduled(999) {
		t.Fatal("cancel")
	}
	if len(f.callsTo("/AccessRequests")) != 0 || h.ScheduledCount() != 1 {
		t.Fatal("delivered early")
	}
	time.Sleep(400 * time.Millisecond)
	waitIdle(t, h)
	calls := f.callsTo("/AccessRequests")
	if len(calls) != 1 || !strings.Contains(string(calls[0].body), "evt-1") || seq1 == seq2 || h.CancelScheduled(seq1) {
		t.Fatalf("%d calls", len(calls))
	}
}

// Duplicate detection as a Service Bus queue has it (requiresDuplicateDetection):
// a MessageId sent within the window is accepted and dropped, scheduled
// messages included both ways; after the window it is a new message. Off by
// default: then one message enqueued twice is delivered twice.
func TestDuplicateDetection(t *testing.T) {
	var mu sync.Mutex
	base, offset := time.Now(), time.Duration(0)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return base.Add(offset) }
	advance := func(d time.Duration) { mu.Lock(); offset += d; mu.Unlock() }
	withID := func(id string) []byte { return []byte(strings.Replace(event, "evt-1", id, 1)) }
	delivered := func(f *fakeHandler, id string) int {
		n := 0
		for _, c := range f.callsTo("/AccessRequests") {
			if strings.Contains(string(c.body), id) {
				n++
			}
		}
		return n
	}
	f := newFakeHandler(t)
	h := start(t, f.URL, Options{DuplicateDetectionWindow: time.Hour, Now: now})

	h.Enqueue(withID("evt-a"))
	h.Enqueue(withID("evt-a"))
	waitIdle(t, h)
	if n := delivered(f, "evt-a"); n != 1 {
		t.Fatalf("evt-a delivered %d times within the window", n)
	}
	advance(time.Hour)
	h.Enqueue(withID("evt-a"))
	waitIdle(t, h)
	if n := delivered(f, "evt-a"); n != 2 {
		t.Fatalf("evt-a delivered %d times after the window, want 2", n)
	}

	// Scheduled, then sent: the sent one is dropped; the scheduled one comes.
	h.Schedule(withID("evt-b"), now().Add(30*time.Millisecond))
	h.Enqueue(withID("evt-b"))
	// Sent, then scheduled: the scheduled one is dropped (it still gets a
	// sequence number, which cancels nothing).
	h.Enqueue(withID("evt-c"))
	seq := h.Schedule(withID("evt-c"), now().Add(30*time.Millisecond))
	if seq == 0 || h.CancelScheduled(seq) || h.ScheduledCount() != 1 {
		t.Fatalf("the duplicate scheduled message: seq %d, scheduled %d", seq, h.ScheduledCount())
	}
	waitUntilTrue(t, func() bool { return delivered(f, "evt-b") > 0 })
	waitIdle(t, h)
	if b, c := delivered(f, "evt-b"), delivered(f, "evt-c"); b != 1 || c != 1 {
		t.Fatalf("evt-b delivered %d times, evt-c %d times; want 1 and 1", b, c)
	}
	if got := h.Duplicates(); strings.Join(got, ",") != "evt-a,evt-b,evt-c" {
		t.Fatalf("duplicates %v", got)
	}

	// Off (the default): both copies come.
	f2 := newFakeHandler(t)
	h2 := start(t, f2.URL, Options{})
	h2.Enqueue(withID("evt-d"))
	h2.Enqueue(withID("evt-d"))
	waitIdle(t, h2)
	if n := delivered(f2, "evt-d"); n != 2 || len(h2.Duplicates()) != 0 {
		t.Fatalf("without duplicate detection evt-d delivered %d times", n)
	}
}

func waitUntilTrue(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAuditBatchAndRetries(t *testing.T) {
	f := newFakeHandler(t)
	h := start(t, f.URL, Options{})
	events := []string{`{"records":[]}`, "not json"}
	if err := h.DeliverAuditBatch(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	c := f.callsTo("/EntraAuditEvents")[0]
	var env struct {
		Data     map[string]json.RawMessage
		Metadata map[string]json.RawMessage
	}
	_ = json.Unmarshal(c.body, &env)
	var s string
	var got []string
	if json.Unmarshal(env.Data["events"], &s) != nil || json.Unmarshal([]byte(s), &got) != nil || len(got) != 2 || got[1] != "not json" {
		t.Fatalf("events %s", env.Data["events"])
	}
	if !strings.Contains(string(env.Metadata["RetryContext"]), `"MaxRetryCount":5`) {
		t.Fatalf("retry context %s", env.Metadata["RetryContext"])
	}
	f.status["/EntraAuditEvents"] = 500
	if err := h.DeliverAuditBatch(context.Background(), events); err == nil {
		t.Fatal("no error after retries")
	}
	if n := len(f.callsTo("/EntraAuditEvents")); n != 1+6 {
		t.Fatalf("%d attempts", n)
	}
}

func TestHTTPForwardingAndAuth(t *testing.T) {
	f := newFakeHandler(t)
	h := start(t, f.URL, Options{FunctionKey: "k3y"})
	// Requests and Dashboard are anonymous (readers sign in instead of
	// presenting a key: docs/design.md, The read API): the key is neither needed nor checked.
	cases := []struct {
		path   string
		header string
		status int
	}{
		{"/api/health", "", 200},
		{"/api/requests/r1", "", 200},
		{"/api/requests/r1?code=bad", "", 200},
		{"/api/requests?state=active", "", 200},
		{"/api/dashboard", "", 200},
		{"/api/requests/a/b", "k3y", 404},
		{"/api/other", "k3y", 404},
		{"/AccessRequests", "k3y", 404},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(http.MethodGet, h.URL()+tc.path, nil)
		if tc.header != "" {
			req.Header.Set("x-functions-key", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s: %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
	}
	if resp, _ := http.Post(h.URL()+"/api/health", "text/plain", nil); resp.StatusCode != 404 {
		t.Fatalf("POST health %d", resp.StatusCode)
	}
	c := f.callsTo("/api/requests/r1")
	if len(c) != 2 || c[1].query != "code=bad" || c[0].header.Get("X-Azure-Functions-InvocationId") == "" {
		t.Fatalf("%+v", c)
	}
}

// authLevel function is enforced with the code parameter or the
// x-functions-key header, as the Functions host does (a function app of its
// own: the contract's HTTP functions are all anonymous now).
func TestFunctionKeys(t *testing.T) {
	dir := t.TempDir()
	host, err := os.ReadFile("../../host.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "host.json"), host, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "functions", "Keyed"), 0o755); err != nil {
		t.Fatal(err)
	}
	fn := `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","authLevel":"function","methods":["get"],"route":"keyed/{id?}"},{"type":"http","direction":"out","name":"res"}]}`
	if err := os.WriteFile(filepath.Join(dir, "functions", "Keyed", "function.json"), []byte(fn), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFakeHandler(t)
	h, err := New(Options{Dir: dir, HandlerURL: f.URL, Addr: "127.0.0.1:0", FunctionKey: "k3y", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); h.Wait() })
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path, header string
		status       int
	}{
		{"/api/keyed/r1", "", 401},
		{"/api/keyed/r1?code=bad", "", 401},
		{"/api/keyed/r1", "bad", 401},
		{"/api/keyed/r1?code=k3y", "", 200},
		{"/api/keyed", "k3y", 200},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(http.MethodGet, h.URL()+tc.path, nil)
		if tc.header != "" {
			req.Header.Set("x-functions-key", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s %q: %d, want %d", tc.path, tc.header, resp.StatusCode, tc.status)
		}
	}
	if c := f.callsTo("/api/keyed/r1"); len(c) != 1 || c[0].query != "code=k3y" {
		t.Fatalf("%+v", c)
	}
}

func TestQueueEndpoint(t *testing.T) {
	f := newFakeHandler(t)
	h := start(t, f.URL, Options{})
	resp, err := http.Post(h.URL()+"/_devhost/queues/access-requests/messages", "application/cloudevents+json", strings.NewReader(event))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("%v %v", err, resp.StatusCode)
	}
	resp.Body.Close()
	if resp, _ := http.Post(h.URL()+"/_devhost/queues/other/messages", "application/json", strings.NewReader(event)); resp.StatusCode != 404 {
		t.Fatalf("other queue %d", resp.StatusCode)
	}
	waitIdle(t, h)
	if len(f.callsTo("/AccessRequests")) != 1 {
		t.Fatal("not delivered")
	}
}

type recorder struct {
	mu       sync.Mutex
	got      []string
	rejected []string
}

func (r *recorder) HandleEvent(_ context.Context, body []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, string(body))
	return nil
}

func (r *recorder) RejectDelivery(_ context.Context, _, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejected = append(r.rejected, reason)
	return nil
}

// The stand-in and the real handler agree: the body arrives intact, with
// the delivery's metadata (the handler logs it).
func TestRoundTripThroughHandlers(t *testing.T) {
	rec := &recorder{}
	var logs lockedBuffer
	srv := httptest.NewServer(handlers.New(handlers.Deps{Events: rec, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}))
	t.Cleanup(srv.Close)
	h := start(t, srv.URL, Options{})
	bodies := []string{event, `"just a string"`, "not json <&>", `{"a":"é \u2028"}`}
	for _, b := range bodies {
		h.Enqueue([]byte(b))
	}
	waitIdle(t, h)
	if len(rec.got) != len(bodies) || len(rec.rejected) != 0 || len(h.DeadLetters()) != 0 {
		t.Fatalf("%q rejected %q", rec.got, rec.rejected)
	}
	seen := map[string]bool{}
	for _, g := range rec.got {
		seen[g] = true
	}
	done := 0
	for line := range strings.Lines(logs.String()) {
		var l struct {
			Msg           string   `json:"msg"`
			MessageID     string   `json:"messageId"`
			DeliveryCount int      `json:"deliveryCount"`
			QueueLag      *float64 `json:"queueLagSeconds"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "invocation done" {
			continue
		}
		done++
		if l.DeliveryCount != 1 || l.MessageID == "" || l.QueueLag == nil {
			t.Fatalf("delivery metadata: %s", line)
		}
	}
	if done != len(bodies) {
		t.Fatalf("%d invocations logged: %s", done, logs.String())
	}
	for _, b := range []string{event, "just a string", "not json <&>", `{"a":"é \u2028"}`} {
		if !seen[b] {
			t.Fatalf("%q not received; got %q", b, rec.got)
		}
	}
}

func TestRouteMatches(t *testing.T) {
	cases := []struct {
		tmpl, path string
		ok         bool
	}{
		{"requests/{id?}", "requests", true},
		{"requests/{id?}", "requests/x", true},
		{"requests/{id?}", "requests/x/y", false},
		{"requests/{id}", "requests", false},
		{"health", "health", true},
		{"health", "healthz", false},
		{"items/{id:int}", "items/3", true},
	}
	for _, tc := range cases {
		if routeMatches(tc.tmpl, tc.path) != tc.ok {
			t.Fatalf("%s %s", tc.tmpl, tc.path)
		}
	}
}

// lockedBuffer is a log destination safe for the handler's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
