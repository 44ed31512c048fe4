package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// recordedEvent is one call of the processor: HandleEvent's body, or
// RejectDelivery's message id and reason (rejected).
type recordedEvent struct {
	body      []byte
	rejected  bool
	messageID string
	reason    string
}

type fakeProcessor struct {
	mu   sync.Mutex
	got  []recordedEvent
	err  error
	wait time.Duration
}

func (f *fakeProcessor) HandleEvent(ctx context.Context, body []byte) error {
	f.mu.Lock()
	f.got = append(f.got, recordedEvent{body: append([]byte(nil), body...)})
	f.mu.Unlock()
	return f.err
}

func (f *fakeProcessor) RejectDelivery(ctx context.Context, messageID, reason string) error {
	f.mu.Lock()
	f.got = append(f.got, recordedEvent{rejected: true, messageID: messageID, reason: reason})
	f.mu.Unlock()
	return f.err
}

// panicking panics on every call.
type panicking struct{}

func (panicking) HandleEvent(context.Context, []byte) error            { panic("x") }
func (panicking) RejectDelivery(context.Context, string, string) error { panic("x") }

func newTestServer(t *testing.T, d Deps) (http.Handler, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	d.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	if d.ReadAuth == nil {
		d.ReadAuth = signedIn
	}
	return New(d), &logs
}

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(h http.Handler, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Azure-Functions-InvocationId", "inv-1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func assertAnswer(t *testing.T, rec *httptest.ResponseRecorder, status int) invocationResult {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("content type %q", ct)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("answer is not a JSON object: %q", rec.Body)
	}
	for _, k := range []string{"Outputs", "Logs", "ReturnValue"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("answer lacks %s: %s", k, rec.Body)
		}
	}
	var res invocationResult
	_ = json.Unmarshal(rec.Body.Bytes(), &res)
	return res
}

func TestAccessRequestsDecodesHostPayloads(t *testing.T) {
	want := golden(t, "servicebus_requested.body.json")
	cases := []struct {
		file      string
		body      []byte
		count     int
		messageID string
	}{
		{"servicebus_requested.json", want, 3, "evt-0001"},
		{"servicebus_object_body.json", want, 1, "evt-0001"},
		{"servicebus_string_in_string.json", want, 1, "evt-0001"},
		{"servicebus_not_json.json", []byte("hello, not an event"), 1, "msg-garbage"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			p := &fakeProcessor{}
			h, logs := newTestServer(t, Deps{Events: p})
			rec := post(h, "/AccessRequests", golden(t, tc.file))
			res := assertAnswer(t, rec, 200)
			if !strings.HasPrefix(rec.Body.String(), `{"Outputs":{},"Logs":["{`) || !strings.HasSuffix(rec.Body.String(), `"],"ReturnValue":null}`) {
				t.Fatalf("answer %q", rec.Body)
			}
			// Logs: the invocation's own line, with its ids (the request id
			// when the body names a valid one).
			if len(res.Logs) != 1 || !strings.Contains(res.Logs[0], `"msg":"invocation done"`) ||
				!strings.Contains(res.Logs[0], `"invocationId":"inv-1"`) || !strings.Contains(res.Logs[0], `"function":"AccessRequests"`) {
				t.Fatalf("logs %q", res.Logs)
			}
			if wantReq := tc.file != "servicebus_not_json.json"; strings.Contains(res.Logs[0], `"requestId":"req-001"`) != wantReq {
				t.Fatalf("request id in %q: want %v", res.Logs[0], wantReq)
			}
			if len(p.got) != 1 {
				t.Fatalf("processor called %d times", len(p.got))
			}
			g := p.got[0]
			if tc.file != "servicebus_object_body.json" && !bytes.Equal(g.body, tc.body) {
				t.Fatalf("body\n%s\nwant\n%s", g.body, tc.body)
			}
			if tc.file == "servicebus_object_body.json" {
				var a, b any
				_ = json.Unmarshal(g.body, &a)
				_ = json.Unmarshal(tc.body, &b)
				if fmt.Sprint(a) != fmt.Sprint(b) {
					t.Fatalf("body %s", g.body)
				}
			}
			if g.rejected {
				t.Fatalf("rejected as unreadable: %+v", g)
			}
			req := httptest.NewRequest(http.MethodPost, "/AccessRequests", bytes.NewReader(golden(t, tc.file)))
			_, d := (&server{d: Deps{MaxInvocationBytes: DefaultMaxInvocationBytes}}).decodeAccessRequest(req)
			if d.deliveryCount != tc.count || d.messageID != tc.messageID || d.problem != "" {
				t.Fatalf("delivery %+v", d)
			}
			if !d.enqueuedTime.Equal(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)) {
				t.Fatalf("enqueued %v", d.enqueuedTime)
			}
			if !strings.Contains(res.Logs[0], fmt.Sprintf(`"messageId":%q,"deliveryCount":%d`, tc.messageID, tc.count)) {
				t.Fatalf("logs %q", res.Logs)
			}
			if strings.Contains(logs.String(), "n01@contoso.com") || strings.Contains(logs.String(), "incident") {
				t.Fatalf("log leaks the body: %s", logs)
			}
			if !strings.Contains(logs.String(), `"outcome":"acknowledged"`) || !strings.Contains(logs.String(), `"invocationId":"inv-1"`) {
				t.Fatalf("log %s", logs)
			}
		})
	}
}

func TestAccessRequestsValidEventSurvivesDecoding(t *testing.T) {
	p := &fakeProcessor{}
	h, _ := newTestServer(t, Deps{Events: p})
	post(h, "/AccessRequests", golden(t, "servicebus_requested.json"))
	ev, err := access.DecodeEvent(p.got[0].body)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "evt-0001" || ev.RequestID != "req-001" || ev.Justification != `incident 42: "quoted" and unicode é` {
		t.Fatalf("%+v", ev)
	}
}

func TestAccessRequestsBadInputIsAcknowledged(t *testing.T) {
	cases := map[string][]byte{
		"not json":         []byte("garbage"),
		"empty":            nil,
		"no data":          []byte(`{"Metadata":{}}`),
		"data not object":  []byte(`{"Data":"x"}`),
		"message number":   []byte(`{"Data":{"message":42}}`),
		"message bad str":  []byte(`{"Data":{"message":"\"{unterminated"}}`),
		"deep string":      []byte(`{"Data":{"message":"\"\\\"\\\\\\\"x\\\\\\\"\\\"\""}}`),
		"metadata garbage": []byte(`{"Data":{"message":"\"{}\""},"Metadata":{"DeliveryCount":"lots","MessageId":{"a":1},"EnqueuedTimeUtc":"yesterday"}}`),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			p := &fakeProcessor{}
			h, _ := newTestServer(t, Deps{Events: p})
			assertAnswer(t, post(h, "/AccessRequests", in), 200)
			if len(p.got) != 1 {
				t.Fatalf("processor not called")
			}
			if _, err := access.DecodeEvent(p.got[0].body); err == nil {
				t.Fatalf("%q decoded as a valid event", p.got[0].body)
			}
		})
	}
}

func TestAccessRequestsOverLimit(t *testing.T) {
	p := &fakeProcessor{}
	h, _ := newTestServer(t, Deps{Events: p, MaxInvocationBytes: 1024})
	big := `{"Data":{"message":"` + strings.Repeat("a", 4096) + `"}}`
	assertAnswer(t, post(h, "/AccessRequests", []byte(big)), 200)
	if len(p.got) != 1 || !p.got[0].rejected || p.got[0].body != nil || !strings.Contains(p.got[0].reason, "over the limit") {
		t.Fatalf("%+v", p.got)
	}
}

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		log    string
	}{
		{"nil", nil, 200, ""},
		{"transient", fault.Wrap(fault.ErrTransient, "graph", errors.New("429 secret-ish text")), 500, "transient failure"},
		{"wrapped transient", fmt.Errorf("request x: %w", fault.ErrTransient), 500, "transient failure"},
		{"deadline", context.DeadlineExceeded, 500, "timed out"},
		{"unexpected", errors.New("boom with body text"), 500, "unexpected failure"},
		{"permanent escaped", fault.ErrPermanent, 500, "unexpected failure"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakeProcessor{err: tc.err}
			h, logs := newTestServer(t, Deps{Events: p})
			res := assertAnswer(t, post(h, "/AccessRequests", golden(t, "servicebus_requested.json")), tc.status)
			if tc.log == "" {
				if len(res.Logs) != 1 || !strings.Contains(res.Logs[0], `"outcome":"acknowledged"`) {
					t.Fatalf("logs %v", res.Logs)
				}
				return
			}
			// The invocation's lines, then the fixed message; never the
			// error's text (it stays on stdout).
			if len(res.Logs) != 2 || !strings.Contains(res.Logs[1], tc.log) || strings.Contains(strings.Join(res.Logs, "\n"), "text") {
				t.Fatalf("logs %v", res.Logs)
			}
			if !strings.Contains(res.Logs[0], `"outcome":"retry"`) || !strings.Contains(res.Logs[0], `"errorKind"`) {
				t.Fatalf("logs %v", res.Logs)
			}
			if !strings.Contains(logs.String(), `"outcome":"retry"`) {
				t.Fatalf("log %s", logs)
			}
		})
	}
}

func TestPanicIsRetried(t *testing.T) {
	h, _ := newTestServer(t, Deps{Events: panicking{}})
	assertAnswer(t, post(h, "/AccessRequests", golden(t, "servicebus_requested.json")), 500)
	assertAnswer(t, post(h, "/AccessRequests", []byte(`{"Data":{"message":"`+strings.Repeat("a", 2*DefaultMaxInvocationBytes)+`"}}`)), 500)
}

func TestNoProcessorFails(t *testing.T) {
	h, _ := newTestServer(t, Deps{})
	assertAnswer(t, post(h, "/AccessRequests", golden(t, "servicebus_requested.json")), 500)
}

type fakeSweeper struct {
	n   int
	err error
}

func (f *fakeSweeper) Sweep(context.Context) error { f.n++; return f.err }

func TestExpirySweep(t *testing.T) {
	sw := &fakeSweeper{}
	h, logs := newTestServer(t, Deps{Sweeper: sw})
	assertAnswer(t, post(h, "/ExpirySweep", golden(t, "timer.json")), 200)
	if sw.n != 1 || !strings.Contains(logs.String(), `"isPastDue":false`) {
		t.Fatalf("n=%d log %s", sw.n, logs)
	}
	assertAnswer(t, post(h, "/ExpirySweep", []byte("not json")), 200)
	sw.err = fault.Wrap(fault.ErrTransient, "store", errors.New("down"))
	assertAnswer(t, post(h, "/ExpirySweep", golden(t, "timer.json")), 500)
	h2, _ := newTestServer(t, Deps{})
	assertAnswer(t, post(h2, "/ExpirySweep", golden(t, "timer.json")), 200)
}

type fakeAudit struct {
	events [][]byte
	err    error
}

func (f *fakeAudit) HandleAuditEvents(_ context.Context, ev [][]byte) error {
	f.events = ev
	return f.err
}

func TestEntraAuditEvents(t *testing.T) {
	a := &fakeAudit{}
	h, _ := newTestServer(t, Deps{Audit: a})
	res := assertAnswer(t, post(h, "/EntraAuditEvents", golden(t, "eventhub_batch.json")), 200)
	if len(a.events) != 3 || string(a.events[1]) != "this event is not JSON" || !strings.Contains(strings.Join(res.Logs, "\n"), `"retryCount":1`) {
		t.Fatalf("events %q logs %q", a.events, res.Logs)
	}
	var rec struct {
		Records []struct {
			Properties struct {
				ActivityDisplayName string `json:"activityDisplayName"`
			} `json:"properties"`
		} `json:"records"`
	}
	if err := json.Unmarshal(a.events[0], &rec); err != nil || rec.Records[0].Properties.ActivityDisplayName != "Add member to group" {
		t.Fatalf("%v %+v", err, rec)
	}
	// A direct array is tolerated; an unreadable batch is acknowledged.
	assertAnswer(t, post(h, "/EntraAuditEvents", []byte(`{"Data":{"events":["a","{\"records\":[]}"]},"Metadata":{}}`)), 200)
	if len(a.events) != 2 || string(a.events[0]) != "a" {
		t.Fatalf("%q", a.events)
	}
	a.events = nil
	assertAnswer(t, post(h, "/EntraAuditEvents", []byte(`{"Data":{"events":"nope"}}`)), 200)
	if a.events != nil {
		t.Fatal("unreadable batch handed on")
	}
	a.err = fault.ErrTransient
	assertAnswer(t, post(h, "/EntraAuditEvents", golden(t, "eventhub_batch.json")), 500)
	h2, _ := newTestServer(t, Deps{})
	assertAnswer(t, post(h2, "/EntraAuditEvents", golden(t, "eventhub_batch.json")), 200)
}

// fakeLister serves the read API tests.
type fakeLister struct {
	reqs    map[string]*access.Request
	pingErr error
	getErr  error
	lastF   broker.ListFilter
	page    broker.ListPage
}

func (f *fakeLister) GetRequest(_ context.Context, id string) (*access.Request, error) {
	if f.getErr != nil {
		return nil, f.getErr
	}
	r, ok := f.reqs[id]
	if !ok {
		return nil, fault.Wrap(fault.ErrNotFound, "get", nil)
	}
	return r, nil
}

func (f *fakeLister) ListRequests(_ context.Context, lf broker.ListFilter) (broker.ListPage, error) {
	f.lastF = lf
	return f.page, f.getErr
}

func (f *fakeLister) RecentRejections(context.Context, int) ([]access.Rejection, error) {
	return nil, nil
}
func (f *fakeLister) Ping(context.Context) error { return f.pingErr }

// get reads target as a signed-in reader with the read role (auth_test.go).
func get(h http.Handler, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, asReader(httptest.NewRequest(http.MethodGet, target, nil)))
	return rec
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("CET", 3600))

func sampleRequest() *access.Request {
	return &access.Request{
		ID: "req-001", Source: access.SourceEvents, State: access.Active,
		Requester: "5e5e0000-0000-4000-8000-000000000001", RequesterUPN: "n01@contoso.com",
		Profile: "aks-admin", GroupID: "1c1a0000-0000-4000-8000-000000000002",
		Duration: access.Duration(90 * time.Minute), Justification: "secret justification",
		RequestedAt: t0, ActivatedAt: t0.Add(time.Minute), EndsAt: t0.Add(91 * time.Minute),
		Approvals: []access.Approval{{Approver: "5e5e0000-0000-4000-8000-000000000002", ApproverUPN: "p01@contoso.com", At: t0.Add(time.Minute), Comment: "ok"}},
		History: []access.HistoryEntry{
			{At: t0, Type: access.HRequested, Actor: "n01@contoso.com", EventID: "evt-1"},
			{At: t0.Add(time.Minute), Type: access.HApproved, Actor: "p01@contoso.com", Detail: "ok"},
		},
		EventIDs: []string{"evt-1"}, Fingerprint: "fp",
	}
}

func TestGetRequestView(t *testing.T) {
	st := &fakeLister{reqs: map[string]*access.Request{"req-001": sampleRequest(),
		"waiting": {ID: "waiting", State: access.Awaiting}}}
	h, _ := newTestServer(t, Deps{Store: st})
	rec := get(h, "/api/requests/req-001")
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	want := `{"id":"req-001","source":"events","state":"active","requester":"5e5e0000-0000-4000-8000-000000000001",` +
		`"requesterUpn":"n01@contoso.com","profile":"aks-admin","groupId":"1c1a0000-0000-4000-8000-000000000002",` +
		`"activation":"membership","justification":"secret justification","duration":"PT1H30M","requestedAt":"2026-11-23T09:00:00Z","activatedAt":"2026-11-23T09:01:00Z","endsAt":"2026-11-23T10:31:00Z",` +
		`"reason":"","approvals":[{"approver":"5e5e0000-0000-4000-8000-000000000002","approverUpn":"p01@contoso.com","at":"2026-11-23T09:01:00Z","comment":"ok"}],` +
		`"history":[{"at":"2026-11-23T09:00:00Z","type":"requested","actor":"n01@contoso.com","detail":""},` +
		`{"at":"2026-11-23T09:01:00Z","type":"approved","actor":"p01@contoso.com","detail":"ok"}]}`
	if rec.Body.String() != want {
		t.Fatalf("view\n%s\nwant\n%s", rec.Body, want)
	}
	for _, target := range []string{"/api/requests/nope", "/api/requests/waiting", "/api/requests/..bad", "/api/requests/" + strings.Repeat("a", 200)} {
		rec := get(h, target)
		if rec.Code != 404 || !strings.Contains(rec.Body.String(), `"error"`) {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
	}
	st.getErr = fault.Wrap(fault.ErrTransient, "get", errors.New("down"))
	if rec := get(h, "/api/requests/req-001"); rec.Code != 503 {
		t.Fatalf("%d", rec.Code)
	}
}

func TestGetRequestEndedOmitsNothingButZeroTimes(t *testing.T) {
	r := &access.Request{ID: "r2", State: access.Rejected, Reason: "no such profile", RequestedAt: t0, EndedAt: t0}
	h, _ := newTestServer(t, Deps{Store: &fakeLister{reqs: map[string]*access.Request{"r2": r}}})
	var m map[string]any
	_ = json.Unmarshal(get(h, "/api/requests/r2").Body.Bytes(), &m)
	for _, k := range []string{"activatedAt", "endsAt", "duration"} {
		if _, ok := m[k]; ok {
			t.Fatalf("%s present: %v", k, m)
		}
	}
	if m["endedAt"] != "2026-11-23T09:00:00Z" || m["reason"] != "no such profile" || m["state"] != "rejected" {
		t.Fatalf("%v", m)
	}
	if a, ok := m["approvals"].([]any); !ok || len(a) != 0 {
		t.Fatalf("approvals %v", m["approvals"])
	}
}

func TestListRequests(t *testing.T) {
	st := &fakeLister{page: broker.ListPage{Items: []*access.Request{sampleRequest(), {ID: "w", State: access.Awaiting}}, Next: "pos-2"}}
	h, _ := newTestServer(t, Deps{Store: st, ContinuationKey: []byte("0123456789abcdef")})
	rec := get(h, "/api/requests?state=active&profile=aks-admin&requester=5E5E0000-0000-4000-8000-000000000001&limit=1&code=k")
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var out struct {
		Items        []map[string]any `json:"items"`
		Continuation string           `json:"continuation"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	if len(out.Items) != 1 || out.Continuation == "" || strings.Contains(out.Continuation, "pos-2") {
		t.Fatalf("%s", rec.Body)
	}
	if st.lastF.State != access.Active || st.lastF.Profile != "aks-admin" || st.lastF.Limit != 1 ||
		st.lastF.Requester != "5e5e0000-0000-4000-8000-000000000001" || st.lastF.After != "" {
		t.Fatalf("%+v", st.lastF)
	}
	next := "/api/requests?state=active&profile=aks-admin&requester=5e5e0000-0000-4000-8000-000000000001&limit=1&continuation=" + url.QueryEscape(out.Continuation)
	if rec := get(h, next); rec.Code != 200 || st.lastF.After != "pos-2" {
		t.Fatalf("%d %s %+v", rec.Code, rec.Body, st.lastF)
	}
	// Default limit, no continuation on the last page.
	st.page = broker.ListPage{}
	rec = get(h, "/api/requests")
	if rec.Code != 200 || rec.Body.String() != `{"items":[]}` || st.lastF.Limit != 50 {
		t.Fatalf("%d %s %+v", rec.Code, rec.Body, st.lastF)
	}
	bad := []string{
		"/api/requests?state=bogus", "/api/requests?state=awaiting", "/api/requests?limit=0", "/api/requests?limit=1001",
		"/api/requests?limit=x", "/api/requests?foo=1", "/api/requests?state=active&state=pending",
		"/api/requests?continuation=abc", "/api/requests?continuation=" + url.QueryEscape(out.Continuation), // other filters
		"/api/requests?state=active&profile=aks-admin&requester=5e5e0000-0000-4000-8000-000000000001&continuation=" +
			url.QueryEscape(out.Continuation[:len(out.Continuation)-2]+"AA"), // tampered
	}
	for _, target := range bad {
		rec := get(h, target)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), `"error"`) {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
	}
}

type fakeUsers map[string]string

func (f fakeUsers) LookupUser(_ context.Context, v string) (broker.User, error) {
	if id, ok := f[v]; ok {
		return broker.User{ID: id, UPN: v, Enabled: true}, nil
	}
	return broker.User{}, fault.ErrNotFound
}

func TestListRequesterByUPN(t *testing.T) {
	st := &fakeLister{}
	h, _ := newTestServer(t, Deps{Store: st, Users: fakeUsers{"n01@contoso.com": "5E5E0000-0000-4000-8000-000000000001"}})
	if rec := get(h, "/api/requests?requester=n01@contoso.com"); rec.Code != 200 || st.lastF.Requester != "5e5e0000-0000-4000-8000-000000000001" {
		t.Fatalf("%d %+v", rec.Code, st.lastF)
	}
	st.lastF = broker.ListFilter{}
	if rec := get(h, "/api/requests?requester=nobody@contoso.com"); rec.Code != 200 || rec.Body.String() != `{"items":[]}` || st.lastF.Limit != 0 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

type fakePinger struct{ err error }

func (f fakePinger) Ping(context.Context) error { return f.err }

func TestHealth(t *testing.T) {
	cases := []struct {
		store, graph error
		noGraph      bool
		status       int
		body         string
	}{
		{nil, nil, false, 200, `{"status":"ok","storage":"ok","graph":"ok"}`},
		{nil, errors.New("x"), false, 200, `{"status":"ok","storage":"ok","graph":"unavailable"}`},
		{nil, nil, true, 200, `{"status":"ok","storage":"ok","graph":"not checked"}`},
		{errors.New("x"), nil, false, 503, `{"status":"unavailable","storage":"unavailable","graph":"ok"}`},
	}
	for i, tc := range cases {
		d := Deps{Store: &fakeLister{pingErr: tc.store}}
		if !tc.noGraph {
			d.Graph = fakePinger{tc.graph}
		}
		h, _ := newTestServer(t, d)
		rec := get(h, "/api/health")
		if rec.Code != tc.status || rec.Body.String() != tc.body {
			t.Fatalf("%d: %d %s", i, rec.Code, rec.Body)
		}
	}
}

func TestRoutes(t *testing.T) {
	h, _ := newTestServer(t, Deps{})
	if rec := get(h, "/api/dashboard"); rec.Code != 501 {
		t.Fatalf("dashboard %d", rec.Code)
	}
	if rec := get(h, "/"); rec.Code != 200 {
		t.Fatalf("root %d", rec.Code)
	}
	if rec := get(h, "/api/nothing"); rec.Code != 404 || !strings.Contains(rec.Body.String(), "error") {
		t.Fatalf("unknown %d", rec.Code)
	}
	h2, _ := newTestServer(t, Deps{Dashboard: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "<html>") })})
	if rec := get(h2, "/api/dashboard"); rec.Code != 200 || rec.Body.String() != "<html>" {
		t.Fatalf("dashboard %d", rec.Code)
	}
}

func TestServeIsReadyAndShutsDown(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h, _ := newTestServer(t, Deps{})
	go func() { done <- ServeListener(ctx, ln, h) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no shutdown")
	}
}

func FuzzAccessRequestsDecode(f *testing.F) {
	for _, n := range []string{"servicebus_requested.json", "servicebus_object_body.json", "servicebus_not_json.json"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p := &fakeProcessor{}
		h := New(Deps{Events: p, Logger: slog.New(slog.DiscardHandler)})
		rec := post(h, "/AccessRequests", in)
		if rec.Code != 200 || len(p.got) != 1 {
			t.Fatalf("%d %d", rec.Code, len(p.got))
		}
	})
}
