package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
)

func newLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(NewHandler(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

func lines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func TestHandlerAddsInvocationFields(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf)
	log.Info("before any invocation")

	ctx, sc := Start(context.Background(), "AccessRequests", "inv-1", true)
	log.InfoContext(ctx, "decoded")
	SetRequestID(ctx, "req-1")
	log.InfoContext(ctx, "applied", "state", "active")
	log.InfoContext(ctx, "other request", "requestId", "req-2")
	log.With("component", "x").WithGroup("g").InfoContext(ctx, "grouped", "k", 1)
	SetRequestID(ctx, "not valid: free text")
	log.DebugContext(ctx, "still req-1")

	got := lines(t, buf.String())
	if len(got) != 6 {
		t.Fatalf("%d lines: %s", len(got), buf.String())
	}
	if _, ok := got[0]["invocationId"]; ok {
		t.Fatalf("a line outside an invocation has an invocation id: %v", got[0])
	}
	for i, l := range got[1:] {
		if l["invocationId"] != "inv-1" || l["function"] != "AccessRequests" {
			t.Fatalf("line %d lacks the invocation's fields: %v", i+1, l)
		}
	}
	if _, ok := got[1]["requestId"]; ok {
		t.Fatalf("request id before it was known: %v", got[1])
	}
	if got[2]["requestId"] != "req-1" || got[4]["requestId"] != "req-1" || got[5]["requestId"] != "req-1" {
		t.Fatalf("request ids: %v / %v / %v", got[2], got[4], got[5])
	}
	if got[3]["requestId"] != "req-2" || strings.Count(buf.String(), `"requestId"`) != 4 {
		t.Fatalf("a line's own request id must win, once: %s", buf.String())
	}
	if g, _ := got[4]["g"].(map[string]any); g == nil || g["k"] != float64(1) || got[4]["component"] != "x" {
		t.Fatalf("attrs and groups: %v", got[4])
	}
	if sc.RequestID() != "req-1" {
		t.Fatalf("scope request id %q", sc.RequestID())
	}
	// The answer's Logs hold the same lines as stdout (of this invocation).
	logs, omitted := sc.Logs()
	stdout := strings.Split(strings.TrimSpace(buf.String()), "\n")[1:]
	if omitted != 0 || strings.Join(logs, "\n") != strings.Join(stdout, "\n") {
		t.Fatalf("logs differ from stdout:\n%s\n---\n%s", strings.Join(logs, "\n"), strings.Join(stdout, "\n"))
	}
}

func TestLogsKeepErrorTextOnStdoutOnly(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf)
	ctx, sc := Start(context.Background(), "ExpirySweep", "inv-2", true)
	log.WarnContext(ctx, "step failed", "errorKind", "transient", "error", "graph said: SECRET-ish quote")
	logs, _ := sc.Logs()
	if !strings.Contains(buf.String(), "SECRET-ish") {
		t.Fatalf("stdout lost the error: %s", buf.String())
	}
	if len(logs) != 1 || strings.Contains(logs[0], "SECRET") || !strings.Contains(logs[0], `"errorKind":"transient"`) {
		t.Fatalf("logs %q", logs)
	}
}

func TestHTTPScopesDoNotCollect(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf)
	ctx, sc := Start(context.Background(), "Requests", "inv-3", false)
	log.InfoContext(ctx, "read")
	if logs, _ := sc.Logs(); logs != nil {
		t.Fatalf("logs %q", logs)
	}
	if !strings.Contains(buf.String(), `"invocationId":"inv-3"`) {
		t.Fatalf("%s", buf.String())
	}
}

func TestLevelFollowsTheWrappedHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	ctx, sc := Start(context.Background(), "F", "i", true)
	log.DebugContext(ctx, "hidden")
	if logs, _ := sc.Logs(); len(logs) != 0 || buf.Len() != 0 {
		t.Fatalf("a disabled level was logged: %q %s", logs, buf.String())
	}
	if Wrap(log) != log || NewHandler(log.Handler()) != log.Handler() {
		t.Fatal("wrapping twice")
	}
}

func TestLogsAreBounded(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf)
	ctx, sc := Start(context.Background(), "ExpirySweep", "inv-4", true)
	for i := range 500 {
		log.InfoContext(ctx, "sweep applied", "requestId", fmt.Sprintf("r-%d", i), "state", "ending")
	}
	log.InfoContext(ctx, "huge", "pad", strings.Repeat("x", MaxLineBytes))
	log.InfoContext(ctx, MsgInvocationDone, "outcome", "acknowledged")
	logs, omitted := sc.Logs()
	total := 0
	for _, l := range logs {
		total += len(l)
	}
	if len(logs) > MaxLogLines || total > MaxLogBytes {
		t.Fatalf("%d lines, %d bytes", len(logs), total)
	}
	if omitted != 502-len(logs)+1 {
		t.Fatalf("omitted %d with %d lines kept", omitted, len(logs))
	}
	if !strings.Contains(logs[0], `"requestId":"r-0"`) || !strings.Contains(logs[len(logs)-1], MsgInvocationDone) {
		t.Fatalf("first %q last %q", logs[0], logs[len(logs)-1])
	}
	marker := lines(t, logs[len(logs)-2])[0]
	if marker["msg"] != MsgLogsOmitted || marker["logsOmitted"] != float64(omitted) || marker["invocationId"] != "inv-4" {
		t.Fatalf("marker %v", marker)
	}
	if strings.Count(buf.String(), "\n") != 502 {
		t.Fatal("stdout must keep every line")
	}
}

func TestConcurrentLines(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(NewHandler(slog.NewJSONHandler(lockedWriter{&mu, &buf}, nil)))
	ctx, sc := Start(context.Background(), "Dashboard", "inv-5", true)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { log.InfoContext(ctx, "line", "i", i) })
	}
	wg.Wait()
	if logs, _ := sc.Logs(); len(logs) != 20 {
		t.Fatalf("%d lines", len(logs))
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestEndedStatesAreNoted(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf)
	ctx, sc := Start(context.Background(), "ExpirySweep", "inv-6", true)
	log.InfoContext(ctx, "sweep applied", "requestId", "a", "state", "ending")
	log.InfoContext(ctx, "work done", "requestId", "a", "state", "expired")
	log.InfoContext(ctx, "work done", "requestId", "a", "state", "expired")
	log.InfoContext(ctx, "work failed permanently", "requestId", "b", "state", "failed")
	log.InfoContext(ctx, "event applied", "requestId", "c", "state", "denied")
	log.InfoContext(ctx, "odd", "requestId", "bad id with spaces", "state", "revoked")
	SetRequestID(ctx, "d")
	log.InfoContext(ctx, "event applied", "state", "cancelled")
	got := sc.Ended()
	if strings.Join(got, ",") != "a,b,d" {
		t.Fatalf("ended %v", got)
	}
	log.InfoContext(ctx, MsgGrantEnded, "requestId", "e", "state", "expired")
	if len(sc.Ended()) != 3 {
		t.Fatal("noted after the report")
	}
}

func TestTransportCounts(t *testing.T) {
	codes := []int{200, 204, 404, 400, 429, 429, 503, 403, 401}
	i := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(codes[i])
		i++
	}))
	defer srv.Close()
	client := &http.Client{Transport: Transport(ServiceGraph, nil)}
	ctx, sc := Start(context.Background(), "AccessRequests", "inv-7", true)
	for range codes {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A call that gets no answer at all.
	failing := &http.Client{Transport: Transport(ServiceARM, roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("connection refused")
	}))}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:1/", nil)
	if _, err := failing.Do(req); err == nil {
		t.Fatal("no error")
	}
	// Outside an invocation nothing is counted (and nothing breaks).
	req, _ = http.NewRequest(http.MethodGet, srv.URL, nil)
	i = 0
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
	}
	got := fmt.Sprint(sc.CounterAttrs())
	want := fmt.Sprint([]any{"graphRequests", int64(9), "graphFailed", int64(3), "graphThrottled", int64(2), "armRequests", int64(1), "armFailed", int64(1), "armThrottled", int64(0)})
	if got != want {
		t.Fatalf("counters %s, want %s", got, want)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// fakeLister serves ListRequests from a slice, in pages.
type fakeLister struct {
	broker.Lister
	reqs []*access.Request
	page int
	err  error
}

func (f *fakeLister) ListRequests(_ context.Context, lf broker.ListFilter) (broker.ListPage, error) {
	if f.err != nil {
		return broker.ListPage{}, f.err
	}
	var match []*access.Request
	for _, r := range f.reqs {
		if r.State == lf.State {
			match = append(match, r)
		}
	}
	start := 0
	if lf.After != "" {
		fmt.Sscan(lf.After, &start)
	}
	n := min(f.page, lf.Limit)
	end := min(len(match), start+n)
	p := broker.ListPage{Items: match[start:end]}
	if end < len(match) {
		p.Next = fmt.Sprint(end)
	}
	return p, nil
}

func TestGauges(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	reqs := []*access.Request{
		{ID: "a1", State: access.Active, EndsAt: now.Add(time.Hour)},
		{ID: "a2", State: access.Active, EndsAt: now.Add(-30 * time.Second)}, // within one sweep interval
		{ID: "a3", State: access.Active, EndsAt: now.Add(-10 * time.Minute)}, // overdue
		{ID: "e1", State: access.Ending, EndsAt: now.Add(-3 * time.Minute), // overdue, work stuck
			Work: &access.Work{Goal: access.Expired, Membership: access.OpRemove, Since: now.Add(-6 * time.Minute)}},
		{ID: "e2", State: access.Ending, EndsAt: now.Add(time.Hour), // early end in progress
			Work: &access.Work{Goal: access.Revoked, Membership: access.OpRemove, Since: now.Add(-time.Minute)}},
		{ID: "g1", State: access.Activating, EndsAt: now.Add(time.Hour),
			Work: &access.Work{Goal: access.Active, Membership: access.OpAdd, Since: now.Add(-20 * time.Minute)}},
		{ID: "o1", State: access.Active, Source: access.SourceOutOfBand},
		{ID: "p1", State: access.Pending},
		{ID: "p2", State: access.Pending},
		{ID: "x1", State: access.Expired, EndsAt: now.Add(-time.Hour)},
	}
	store := &fakeLister{reqs: reqs, page: 2}
	g, err := StoreGauges{Store: store, SweepInterval: time.Minute}.Read(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	want := Gauges{ActiveGrants: 6, PendingApprovals: 2, OutOfBandActive: 1, EndsOverdue: 2, OldestOverdue: 10 * time.Minute, StuckWork: 2, SweepInterval: time.Minute}
	if g != want {
		t.Fatalf("gauges %+v\nwant   %+v", g, want)
	}
	g, _ = StoreGauges{Store: store, Limit: 1}.Read(context.Background(), now)
	if !g.Truncated || g.ActiveGrants != 3 {
		t.Fatalf("limited: %+v", g)
	}
	store.err = errors.New("down")
	if _, err := (StoreGauges{Store: store}).Read(context.Background(), now); err == nil {
		t.Fatal("no error")
	}
	attrs := fmt.Sprint(want.Attrs())
	for _, f := range []string{FieldActiveGrants, FieldEndsOverdue, FieldOldestOverdueSeconds + " 600", FieldStuckWork} {
		if !strings.Contains(attrs, f) {
			t.Fatalf("attrs %s lack %s", attrs, f)
		}
	}
}

func TestEndedAttrs(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	hist := func(at time.Time, typ string) access.HistoryEntry { return access.HistoryEntry{At: at, Type: typ} }
	cases := []struct {
		name string
		r    *access.Request
		lag  any // nil: no lag field
	}{
		{"expired: lag from the end", &access.Request{ID: "x", State: access.Expired, EndsAt: t0, EndedAt: t0.Add(40 * time.Second),
			History: []access.HistoryEntry{hist(t0.Add(-time.Hour), access.HMembershipRemoved), hist(t0.Add(40*time.Second), access.HExpired),
				hist(t0.Add(45*time.Second), access.HMembershipRemoved), hist(t0.Add(50*time.Second), access.HSessionsRevoked)}}, float64(50)},
		{"revoked early: lag from the decision", &access.Request{ID: "y", State: access.Revoked, EndsAt: t0.Add(time.Hour), EndedAt: t0,
			History: []access.HistoryEntry{hist(t0, access.HRevoked), hist(t0.Add(3*time.Second), access.HMembershipRemoved)}}, float64(3)},
		{"nothing to remove", &access.Request{ID: "z", State: access.Cancelled, EndedAt: t0}, float64(0)},
		{"failed", &access.Request{ID: "f", State: access.Failed, EndedAt: t0}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			attrs, ok := EndedAttrs(tc.r)
			if !ok {
				t.Fatal("not ended")
			}
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info(MsgGrantEnded, attrs...)
			l := lines(t, buf.String())[0]
			if l[FieldRevocationLagSeconds] != tc.lag || l[FieldRequestID] != tc.r.ID || l[FieldState] != string(tc.r.State) {
				t.Fatalf("%v", l)
			}
		})
	}
	if _, ok := EndedAttrs(&access.Request{State: access.Active}); ok {
		t.Fatal("an active grant reported as ended")
	}
	r := &access.Request{EndedAt: t0, History: []access.HistoryEntry{hist(t0.Add(time.Minute), access.HSessionsRevoked)}}
	if !RecentlyEnded(r, t0.Add(30*time.Minute), time.Hour) || RecentlyEnded(r, t0.Add(2*time.Hour), time.Hour) {
		t.Fatal("RecentlyEnded")
	}
}
