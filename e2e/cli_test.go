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
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
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

	out, errOut, code = runCLI(t, "get", "cli-1", "--url", base)
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

	out, errOut, code = runCLI(t, "get", "--state", "active", "--url", base)
	if code != 0 {
		t.Fatalf("get --state active: exit %d\n%s%s", code, out, errOut)
	}
	var list struct {
		Items []view `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Items) != 1 || list.Items[0].ID != "cli-1" || list.Items[0].State != "active" {
		t.Fatalf("get --state active printed %q (%v)", out, err)
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
