package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/api"
)

func activeRequest() *api.Request {
	r := pending("r1", "n01@contoso.com")
	r.State, r.ApprovalDeadline = "active", time.Time{}
	r.ActivatedAt, r.EndsAt = t0.Add(5*time.Minute), t0.Add(65*time.Minute)
	r.Approvals = []api.Approval{{Approver: "5e5e0000-0000-4000-8000-000000000002", ApproverUPN: "p01@contoso.com", At: t0.Add(5 * time.Minute), Comment: "ok"}}
	r.History = append(r.History,
		api.HistoryEntry{At: t0.Add(5 * time.Minute), Type: "approved", Actor: "p01@contoso.com", Detail: "ok"},
		api.HistoryEntry{At: t0.Add(5 * time.Minute), Type: "activated", Actor: "jitaccess"},
		api.HistoryEntry{At: t0.Add(5*time.Minute + time.Second), Type: "membership-added", Actor: "jitaccess"})
	return r
}

func TestGetTable(t *testing.T) {
	d := newDeployment(t)
	d.put(activeRequest())
	code, out, errs := run(t, Get, "r1", "--api", d.URL)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := `id:             r1
state:          active
requester:      n01@contoso.com (5e5e0000-0000-4000-8000-000000000001)
profile:        aks-admin
activation:     membership
group:          1c1a0000-0000-4000-8000-000000000002
justification:  incident 42
ticket:         INC-42
duration:       PT1H
requested:      2026-11-23 11:00:00 CET
activated:      2026-11-23 11:05:00 CET
ends:           2026-11-23 12:05:00 CET (in 1h5m)

approvals:
  TIME                     APPROVER         COMMENT
  2026-11-23 11:05:00 CET  p01@contoso.com  ok

history:
  TIME                     TYPE              ACTOR            DETAIL
  2026-11-23 11:00:00 CET  requested         n01@contoso.com
  2026-11-23 11:05:00 CET  approved          p01@contoso.com  ok
  2026-11-23 11:05:00 CET  activated         jitaccess
  2026-11-23 11:05:01 CET  membership-added  jitaccess
`
	if out != want {
		t.Fatalf("table:\n%s\nwant:\n%s", out, want)
	}
	// --utc; the flags may come first.
	_, out, _ = run(t, Get, "--utc", "--url", d.URL, "r1")
	if !strings.Contains(out, "requested:      2026-11-23 10:00:00 UTC") || !strings.Contains(out, "  2026-11-23 10:05:01 UTC  membership-added") {
		t.Fatalf("--utc:\n%s", out)
	}
	// -o json: the API's JSON, UTC times as given.
	code, out, _ = run(t, Get, "-o", "json", "--api", d.URL, "r1")
	var v map[string]any
	if code != ExitOK || json.Unmarshal([]byte(out), &v) != nil || v["requestedAt"] != "2026-11-23T10:00:00Z" || v["justification"] != "incident 42" {
		t.Fatalf("-o json: %d %s", code, out)
	}
}

// An ended grant shows when the access is gone by; sender text is shown on
// one line with control characters escaped.
func TestGetEndedAndHostileText(t *testing.T) {
	d := newDeployment(t)
	r := activeRequest()
	r.State, r.EndedAt, r.AccessGoneBy = "revoked", t0.Add(10*time.Minute), t0.Add(100*time.Minute)
	r.Justification = "fix\tprod\n\x1b[31mred\x1b[0m \u202eevil"
	r.Reason = "done"
	r.History = append(r.History, api.HistoryEntry{At: t0.Add(10 * time.Minute), Type: "revoked", Actor: "p01@contoso.com", Detail: "line1\nline2"})
	d.put(r)
	code, out, _ := run(t, Get, "r1", "--api", d.URL)
	if code != ExitOK {
		t.Fatal(code)
	}
	for _, want := range []string{
		`justification:   fix\tprod\n\u001b[31mred\u001b[0m \u202eevil`,
		"ended:           2026-11-23 11:10:00 CET",
		"access gone by:  2026-11-23 12:40:00 CET (in 1h40m)",
		"reason:          done",
		`p01@contoso.com  line1\nline2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.ContainsAny(out, "\x1b\t\u202e") {
		t.Fatalf("control characters reach the terminal:\n%q", out)
	}
	if strings.Contains(out, "(in 5") { // ends is past the end: no countdown
		t.Fatalf("countdown on an ended grant:\n%s", out)
	}
}

func TestGetExitCodes(t *testing.T) {
	d := newDeployment(t)
	d.put(activeRequest())
	if code, _, errs := run(t, Get, "r2", "--api", d.URL); code != ExitNotFound || !strings.Contains(errs, `no request "r2"`) {
		t.Fatalf("unknown: %d %s", code, errs)
	}
	for _, args := range [][]string{
		{"bad/id", "--url", d.URL}, {"r1", "-o", "yaml", "--url", d.URL}, {"r1", "--state", "active", "--url", d.URL},
		{"r1", "r2", "--url", d.URL}, {"r1", "--nope", "--url", d.URL},
		{"r1", "--api", "not a url"}, {"r1", "--api", "http://api.example.com", "--api-token", "t"},
	} {
		if code, _, errs := run(t, Get, args...); code != ExitUsage || errs == "" {
			t.Errorf("%v: exit %d %q", args, code, errs)
		}
	}
	if code, _, _ := run(t, Get, "r1", "--api", "http://127.0.0.1:1"); code != ExitFailed {
		t.Fatalf("down: %d", code)
	}
	d.key = "secret-key"
	if code, _, errs := run(t, Get, "r1", "--api", d.URL); code != ExitFailed || !strings.Contains(errs, "401") {
		t.Fatalf("401: %d %s", code, errs)
	}
	if code, out, errs := run(t, Get, "r1", "--api", d.URL, "--code", "secret-key"); code != ExitOK || strings.Contains(out+errs, "secret-key") {
		t.Fatalf("with key: %d %s", code, errs)
	}
	d.status = 500
	if code, _, errs := run(t, Get, "r1", "--api", d.URL, "--code", "secret-key"); code != ExitFailed || !strings.Contains(errs, "forced") {
		t.Fatalf("500: %d %s", code, errs)
	}
	d.status = 302
	if code, _, errs := run(t, Get, "r1", "--api", d.URL); code != ExitFailed || !strings.Contains(errs, "sign-in") {
		t.Fatalf("302: %d %s", code, errs)
	}
	if code, out, _ := run(t, Get, "--help"); code != ExitOK || !strings.Contains(out, "3 no such request") {
		t.Fatalf("help: %d %s", code, out)
	}
}

func TestListPagesTableAndJSON(t *testing.T) {
	d := newDeployment(t)
	for i := 1; i <= 3; i++ {
		r := pending(fmt.Sprintf("p%d", i), "n01@contoso.com")
		d.put(r)
	}
	ended := activeRequest()
	ended.ID, ended.State, ended.EndedAt, ended.AccessGoneBy = "e1", "expired", t0.Add(65*time.Minute), t0.Add(155*time.Minute)
	d.put(ended)

	code, out, errs := run(t, List, "--limit", "1", "--api", d.URL)
	if code != ExitOK || errs != "" {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := `ID  STATE    REQUESTER        PROFILE    ENDS/ENDED               ACCESS GONE BY
p1  pending  n01@contoso.com  aks-admin  -                        -
p2  pending  n01@contoso.com  aks-admin  -                        -
p3  pending  n01@contoso.com  aks-admin  -                        -
e1  expired  n01@contoso.com  aks-admin  2026-11-23 12:05:00 CET  2026-11-23 13:35:00 CET
`
	if out != want {
		t.Fatalf("table:\n%s\nwant:\n%s", out, want)
	}
	pages := 0
	for _, u := range d.urls {
		if strings.HasPrefix(u, "/api/requests?") {
			pages++
		}
	}
	if pages != 4 {
		t.Fatalf("%d pages read for 4 requests with --limit 1: %v", pages, d.urls)
	}

	code, out, _ = run(t, List, "--limit", "1", "-o", "json", "--state", "pending", "--api", d.URL)
	var items []map[string]any
	if code != ExitOK || json.Unmarshal([]byte(out), &items) != nil || len(items) != 3 || items[2]["id"] != "p3" || items[0]["justification"] != "incident 42" {
		t.Fatalf("json: %d %s", code, out)
	}
	// Nothing matches: an empty array, exit 0.
	if code, out, _ = run(t, List, "--state", "denied", "-o", "json", "--api", d.URL); code != ExitOK || strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty: %d %q", code, out)
	}
	// get without an id lists.
	if code, out, _ = run(t, Get, "--state", "expired", "--api", d.URL); code != ExitOK || !strings.Contains(out, "e1  expired") {
		t.Fatalf("get without id: %d %s", code, out)
	}
}

func TestListBoundAndAll(t *testing.T) {
	d := newDeployment(t)
	for i := range ListBound + 150 {
		d.put(&api.Request{ID: fmt.Sprintf("q%d", i), State: "pending", Profile: "aks-admin"})
	}
	code, out, errs := run(t, List, "--limit", "100", "-o", "json", "--api", d.URL)
	var items []json.RawMessage
	if code != ExitOK || json.Unmarshal([]byte(out), &items) != nil || len(items) != ListBound || !strings.Contains(errs, "more remain (--all") {
		t.Fatalf("bound: exit %d, %d items, err %q", code, len(items), errs)
	}
	code, out, errs = run(t, List, "--limit", "1000", "--all", "-o", "json", "--api", d.URL)
	if code != ExitOK || json.Unmarshal([]byte(out), &items) != nil || len(items) != ListBound+150 || errs != "" {
		t.Fatalf("--all: exit %d, %d items, err %q", code, len(items), errs)
	}
}

func TestListUsageAndErrors(t *testing.T) {
	d := newDeployment(t)
	for _, args := range [][]string{{"--state", "sleeping"}, {"--limit", "0"}, {"--limit", "1001"}, {"-o", "csv"}, {"r1"}} {
		if code, _, errs := run(t, List, append(args, "--api", d.URL)...); code != ExitUsage || errs == "" {
			t.Errorf("%v: %d %q", args, code, errs)
		}
	}
	if len(d.urls) != 0 {
		t.Fatalf("usage errors read the API: %v", d.urls)
	}
	// The API refuses a parameter: 2 with its message.
	if code, _, errs := run(t, List, "--continuation", "garbage", "--api", d.URL); code != ExitUsage || !strings.Contains(errs, "continuation is not valid") {
		t.Fatalf("bad continuation: %d %s", code, errs)
	}
	d.status = 403
	if code, _, errs := run(t, List, "--api", d.URL); code != ExitFailed || !strings.Contains(errs, "JitAccess.Read") {
		t.Fatalf("403: %d %s", code, errs)
	}
	if code, out, _ := run(t, List, "--help"); code != ExitOK || !strings.Contains(out, "--all") {
		t.Fatalf("help: %d", code)
	}
}
