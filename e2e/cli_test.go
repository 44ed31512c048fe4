package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/seed"
)

// runCLI runs the built binary with args and a clean environment; it returns
// stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runCLIEnv(t, nil, args...)
}

// runCLIEnv is runCLI with more environment variables (NAME=value).
func runCLIEnv(t *testing.T, vars []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, vars...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("jitaccess %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

func (e *env) waitIdle() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.host.WaitIdle(ctx); err != nil {
		e.t.Fatalf("queue not idle: %v", err)
	}
}

// The sender CLI against the sandbox path of the host: send, then read back.
func TestCLISendAndGet(t *testing.T) {
	e := newEnv(t)
	base := e.host.URL()

	out, errOut, code := runCLI(t, "send", "requested", "--sandbox", base, "--request-id", "cli-1",
		"--requester", seed.UPN("n01"), "--profile", "aks-admin", "--duration", "PT1H", "--justification", "e2e: cli")
	if code != 0 {
		t.Fatalf("send requested: exit %d\n%s%s", code, out, errOut)
	}
	var sent struct{ ID, RequestID, Type string }
	if err := json.Unmarshal([]byte(out), &sent); err != nil || sent.ID == "" || sent.RequestID != "cli-1" || sent.Type != "jit.access.requested" {
		t.Fatalf("send requested printed %q (%v)", out, err)
	}
	e.waitIdle()
	if v := e.mustGet("cli-1"); v.State != "pending" || v.Requester != seed.UserN01 {
		t.Fatalf("after send requested: %+v", v)
	}

	out, errOut, code = runCLI(t, "send", "approved", "--sandbox", base, "--request-id", "cli-1", "--approver", seed.UPN("p01"), "--comment", "ok")
	if code != 0 {
		t.Fatalf("send approved: exit %d\n%s%s", code, out, errOut)
	}
	e.waitIdle()

	out, errOut, code = runCLI(t, "get", "cli-1", "--url", base, "-o", "json")
	if code != 0 {
		t.Fatalf("get cli-1: exit %d\n%s%s", code, out, errOut)
	}
	var v view
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("get cli-1 printed %q: %v", out, err)
	}
	if v.ID != "cli-1" || v.State != "active" || len(v.Approvals) != 1 || v.Approvals[0].Approver != seed.UserP01 || v.has("approved") != 1 {
		t.Fatalf("get cli-1: %+v", v)
	}
	if !e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatal("n01 is not a member after the approval sent by the CLI")
	}

	out, errOut, code = runCLI(t, "list", "--state", "active", "--url", base, "-o", "json")
	if code != 0 {
		t.Fatalf("list --state active: exit %d\n%s%s", code, out, errOut)
	}
	var list []view
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].ID != "cli-1" || list[0].State != "active" {
		t.Fatalf("list --state active printed %q (%v)", out, err)
	}

	// Unknown id: exit 3.
	if out, errOut, code = runCLI(t, "get", "no-such-request", "--url", base); code != 3 {
		t.Fatalf("get of an unknown id: exit %d, want 3\n%s%s", code, out, errOut)
	}
}

// An invalid event is refused before anything is sent: exit 2, no request
// reaches the target, and the message says why.
func TestCLIRefusesInvalidEvent(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	for _, c := range []struct {
		name string
		args []string
		why  string
	}{
		{"no requester", []string{"send", "requested", "--sandbox", srv.URL, "--profile", "aks-admin", "--justification", "x"}, "requester"},
		{"bad duration", []string{"send", "requested", "--sandbox", srv.URL, "--requester", seed.UPN("n01"), "--profile", "aks-admin", "--duration", "an hour"}, "duration"},
		{"approval without request id", []string{"send", "approved", "--sandbox", srv.URL, "--approver", seed.UPN("p01")}, "request"},
		{"unknown type", []string{"send", "exploded", "--sandbox", srv.URL}, "exploded"},
	} {
		out, errOut, code := runCLI(t, c.args...)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2\n%s%s", c.name, code, out, errOut)
		}
		if !strings.Contains(strings.ToLower(errOut), c.why) {
			t.Errorf("%s: the message does not say why (%q): %q", c.name, c.why, errOut)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d requests reached the target for invalid events", n)
	}
}

// listPage is GET /api/requests.
func (e *env) listPage(query string) (int, []byte) {
	e.t.Helper()
	resp, err := http.Get(e.host.URL() + "/api/requests?" + query)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// The list API across pages, and its answers to bad parameters.
func TestListAPIPagesAndBadParameters(t *testing.T) {
	e := newEnv(t)
	want := map[string]bool{}
	for _, id := range []string{"page-1", "page-2", "page-3", "page-4", "page-5", "page-6", "page-7"} {
		e.send("jit.access.requested", request(id, seed.UPN("n01"), "PT1H"))
		want[id] = true
	}
	seen := map[string]int{}
	cont, pages := "", 0
	for {
		q := url.Values{"state": {"pending"}, "limit": {"3"}}
		if cont != "" {
			q.Set("continuation", cont)
		}
		code, body := e.listPage(q.Encode())
		if code != http.StatusOK {
			t.Fatalf("page %d: %d %s", pages+1, code, body)
		}
		var page struct {
			Items        []view `json:"items"`
			Continuation string `json:"continuation"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("page %d: %v: %s", pages+1, err, body)
		}
		pages++
		if len(page.Items) > 3 {
			t.Fatalf("page %d holds %d items with limit=3", pages, len(page.Items))
		}
		for _, it := range page.Items {
			seen[it.ID]++
			if it.State != "pending" {
				t.Errorf("%s listed as pending in state %s", it.ID, it.State)
			}
		}
		if page.Continuation == "" {
			break
		}
		if pages == 1 {
			// A tampered continuation is refused with a JSON error.
			tampered := []byte(page.Continuation)
			i := len(tampered) / 2
			if tampered[i] == 'A' {
				tampered[i] = 'B'
			} else {
				tampered[i] = 'A'
			}
			for _, bad := range []string{string(tampered), page.Continuation + "x", "not-a-token"} {
				code, body := e.listPage(url.Values{"state": {"pending"}, "limit": {"3"}, "continuation": {bad}}.Encode())
				checkJSONError(t, "tampered continuation "+bad, code, body)
			}
		}
		cont = page.Continuation
		if pages > 7 {
			t.Fatal("the listing does not end")
		}
	}
	if pages < 3 {
		t.Errorf("7 requests with limit=3 came in %d pages", pages)
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("%s listed %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if !want[id] {
			t.Errorf("unexpected %s listed %d times", id, n)
		}
	}

	for name, q := range map[string]string{
		"unknown parameter": "state=pending&colour=blue",
		"bad state":         "state=sleeping",
		"bad limit":         "limit=0",
	} {
		code, body := e.listPage(q)
		checkJSONError(t, name, code, body)
	}

	code, body := e.listPage("profile=no-such-profile")
	var empty struct {
		Items        []json.RawMessage `json:"items"`
		Continuation string            `json:"continuation"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &empty) != nil || len(empty.Items) != 0 || empty.Continuation != "" {
		t.Errorf("unknown profile: %d %s, want 200 with an empty list", code, body)
	}
}

func checkJSONError(t *testing.T, what string, code int, body []byte) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if code != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Errorf("%s: %d %s, want 400 with a JSON error", what, code, body)
	}
}

// send --wait through the built binary against the host stand-in: the
// outcome line and the exit code for an event that is applied, refused,
// rejected, or has no outcome in time.
func TestCLISendWait(t *testing.T) {
	e := newEnv(t)
	base := e.host.URL()
	send := func(want int, args ...string) string {
		t.Helper()
		out, errOut, code := runCLI(t, append([]string{"send"}, append(args, "--sandbox", base, "--wait", "--timeout", "30s")...)...)
		if code != want {
			t.Fatalf("send %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
		}
		if strings.Count(out, "\n") != 1 {
			t.Fatalf("send %s: the outcome is not one line: %q", strings.Join(args, " "), out)
		}
		return out
	}

	// A request, then its approval: applied (0) once the membership is there.
	out := send(0, "requested", "--request-id", "wait-1", "--requester", seed.UPN("n01"), "--profile", "aks-admin",
		"--duration", "PT1H", "--justification", "e2e: wait", "--ticket", "INC-7")
	if !strings.HasPrefix(out, "applied: request wait-1 is pending, approval deadline ") {
		t.Fatalf("requested: %q", out)
	}
	out = send(0, "approved", "--request-id", "wait-1", "--approver", seed.UPN("p01"), "--comment", "ok")
	if !strings.HasPrefix(out, "applied: request wait-1 is active until ") {
		t.Fatalf("approved: %q", out)
	}
	if !e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatal("send --wait said applied, but n01 is not a member")
	}
	// The same approver again, now by object id: refused (5).
	out = send(5, "approved", "--request-id", "wait-1", "--approver", seed.UserP01)
	if !strings.HasPrefix(out, "refused: approved: request is active; request wait-1 is active") {
		t.Fatalf("approval of an active request: %q", out)
	}

	// Self-approval: refused (5) with the reason; the request stays pending.
	send(0, "requested", "--request-id", "wait-2", "--requester", seed.UPN("a01"), "--profile", "aks-admin", "--justification", "e2e: self")
	out = send(5, "approved", "--request-id", "wait-2", "--approver", seed.UPN("a01"))
	if out != "refused: approved: requesters cannot approve or deny their own request; request wait-2 is pending\n" {
		t.Fatalf("self-approval: %q", out)
	}
	if v := e.mustGet("wait-2"); v.State != "pending" {
		t.Fatalf("after a refused self-approval: %+v", v)
	}

	// Events the handler rejects: 4 with the reason.
	out = send(4, "requested", "--request-id", "wait-3", "--requester", seed.UPN("n01"), "--profile", "aks-admin")
	if out != "rejected: a justification is required; request wait-3 is rejected\n" {
		t.Fatalf("no justification: %q", out)
	}
	out = send(4, "requested", "--request-id", "wait-4", "--requester", seed.UPN("n01"), "--profile", "no-such-profile", "--justification", "x")
	if out != "rejected: unknown profile \"no-such-profile\"; request wait-4 is rejected\n" {
		t.Fatalf("unknown profile: %q", out)
	}
	// The request id of wait-1 with other content: rejected, wait-1 unchanged.
	out = send(4, "requested", "--request-id", "wait-1", "--requester", seed.UPN("n01"), "--profile", "aks-admin", "--justification", "other")
	if out != "rejected: requestId is already used by a request with different content; request wait-1 is active\n" {
		t.Fatalf("reused request id: %q", out)
	}

	// Invalid before sending: 2, nothing sent.
	if out, errOut, code := runCLI(t, "send", "approved", "--sandbox", base, "--wait", "--request-id", "wait-1"); code != 2 {
		t.Fatalf("no approver: exit %d\n%s%s", code, out, errOut)
	}

	// An approval for a request that never came is held: timeout (7).
	out, errOut, code := runCLI(t, "send", "approved", "--sandbox", base, "--wait", "--timeout", "2s",
		"--request-id", "wait-never", "--approver", seed.UPN("p01"))
	if code != 7 || !strings.HasPrefix(out, "timeout: request wait-never is not visible after 2s") {
		t.Fatalf("held approval: exit %d\n%s%s", code, out, errOut)
	}

	// The read API is down: nothing is sent (1).
	before := len(e.mustGet("wait-2").History)
	out, errOut, code = runCLI(t, "send", "cancelled", "--sandbox", base, "--api", "http://127.0.0.1:1", "--wait",
		"--request-id", "wait-2", "--by", seed.UPN("a01"))
	if code != 1 || !strings.Contains(errOut, "nothing sent") {
		t.Fatalf("API down: exit %d\n%s%s", code, out, errOut)
	}
	e.waitIdle()
	if v := e.mustGet("wait-2"); len(v.History) != before || v.State != "pending" {
		t.Fatalf("an event was sent although the API could not be read: %+v", v)
	}
	// Cancelled by the requester: applied (0), the request ends.
	out = send(0, "cancelled", "--request-id", "wait-2", "--by", seed.UPN("a01"), "--reason", "not needed")
	if out != "applied: request wait-2 is cancelled: not needed\n" {
		t.Fatalf("cancel: %q", out)
	}
}

// get prints a table by default (local times; --utc) and the API's JSON
// with -o json; list follows continuations across pages.
func TestCLIGetTableAndList(t *testing.T) {
	e := newEnv(t)
	base := e.host.URL()
	for _, id := range []string{"tab-1", "tab-2", "tab-3"} {
		e.send("jit.access.requested", map[string]string{"requestId": id, "requester": seed.UPN("n01"), "profile": "aks-admin",
			"duration": "PT1H", "justification": "e2e: table\tfor " + id, "ticket": "INC-" + id})
	}
	e.send("jit.access.approved", map[string]string{"requestId": "tab-2", "approver": seed.UPN("p01"), "comment": "ok"})
	e.send("jit.access.revoked", map[string]string{"requestId": "tab-2", "by": seed.UPN("p01"), "reason": "done"})

	tokyo := []string{"TZ=Asia/Tokyo"}
	out, errOut, code := runCLIEnv(t, tokyo, "get", "tab-2", "--api", base)
	if code != 0 {
		t.Fatalf("get tab-2: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"id:              tab-2\n",
		"state:           revoked\n",
		"requester:       " + seed.UPN("n01") + " (" + seed.UserN01 + ")\n",
		"justification:   e2e: table\\tfor tab-2\n", // the tab shown escaped
		"ticket:          INC-tab-2\n",
		"reason:          done\n",
		"access gone by:  ",
		"\nhistory:\n  TIME ",
		" JST  approved ",
		" JST  membership-removed ",
		" JST  sessions-revoked ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("get tab-2: no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "UTC") {
		t.Errorf("get tab-2 in Tokyo shows UTC times:\n%s", out)
	}
	out, _, _ = runCLIEnv(t, tokyo, "get", "tab-2", "--api", base, "--utc")
	if !strings.Contains(out, " UTC  approved ") || strings.Contains(out, "JST") {
		t.Errorf("get --utc:\n%s", out)
	}
	out, _, code = runCLIEnv(t, tokyo, "get", "-o", "json", "tab-1", "--api", base)
	var one struct {
		view
		Justification    string `json:"justification"`
		Ticket           string `json:"ticket"`
		ApprovalDeadline string `json:"approvalDeadline"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &one) != nil || one.ID != "tab-1" || one.Justification != "e2e: table\tfor tab-1" ||
		one.Ticket != "INC-tab-1" || !strings.HasSuffix(one.ApprovalDeadline, "Z") || !strings.HasSuffix(one.RequestedAt, "Z") {
		t.Fatalf("get -o json: exit %d %s", code, out)
	}

	// Three requests in pages of one: the list follows the continuations.
	out, errOut, code = runCLI(t, "list", "--limit", "1", "-o", "json", "--api", base)
	var items []view
	if code != 0 || json.Unmarshal([]byte(out), &items) != nil || len(items) != 3 {
		t.Fatalf("list --limit 1 -o json: exit %d\n%s%s", code, out, errOut)
	}
	seen := map[string]bool{}
	for _, it := range items {
		seen[it.ID] = true
	}
	if !seen["tab-1"] || !seen["tab-2"] || !seen["tab-3"] {
		t.Fatalf("list --limit 1 -o json: %v", seen)
	}
	out, errOut, code = runCLIEnv(t, tokyo, "list", "--limit", "1", "--all", "--api", base)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "ID     STATE    REQUESTER ") {
		t.Fatalf("list --limit 1 --all: exit %d\n%s%s", code, out, errOut)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		switch f[0] {
		case "tab-1", "tab-3":
			if f[1] != "pending" || f[3] != "aks-admin" || f[4] != "-" || f[5] != "-" {
				t.Errorf("row %q", l)
			}
		case "tab-2": // ended (JST) and access gone by (JST)
			if f[1] != "revoked" || f[2] != seed.UPN("n01") || len(f) != 10 || f[6] != "JST" || f[9] != "JST" {
				t.Errorf("row %q", l)
			}
		default:
			t.Errorf("row %q", l)
		}
	}
	out, _, code = runCLI(t, "list", "--state", "revoked", "--requester", seed.UPN("n01"), "--limit", "1", "-o", "json", "--api", base)
	if code != 0 || json.Unmarshal([]byte(out), &items) != nil || len(items) != 1 || items[0].ID != "tab-2" {
		t.Fatalf("list --state revoked: exit %d %s", code, out)
	}
	if out, errOut, code = runCLI(t, "list", "--state", "sleeping", "--api", base); code != 2 {
		t.Fatalf("list --state sleeping: exit %d\n%s%s", code, out, errOut)
	}
}
