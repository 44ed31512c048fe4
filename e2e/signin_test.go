package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/devhost"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// Who may read (docs/design.md, The read API), through the built binary: the host stand-in
// plays App Service Authentication in front of it (devhost.Options.SignIn)
// and the binary decides from the principal it forwards.

// front starts another host stand-in in front of the running binary, with
// its own sign-in mode.
func (e *env) front(mode devhost.SignInMode) string {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h, err := devhost.New(devhost.Options{
		Dir:          repoRoot,
		Settings:     map[string]string{"JIT_SWEEP_SCHEDULE": "0 0 0 1 1 *"},
		HandlerURL:   "http://127.0.0.1:" + strconv.Itoa(e.port),
		Addr:         "127.0.0.1:0",
		ReadyTimeout: 20 * time.Second,
		Logger:       discardLogger(),
		SignIn:       mode,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := h.Start(ctx); err != nil {
		cancel()
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cancel(); h.Wait() })
	return h.URL()
}

type answer struct {
	status      int
	contentType string
	body        string
}

// fetch GETs u, with extra headers (a client forging a principal).
func fetch(t *testing.T, u string, headers map[string]string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// logged waits for a log line with msg whose fields include want.
func (e *env) logged(msg string, want map[string]any) map[string]any {
	e.t.Helper()
	var found map[string]any
	waitUntil(e.t, "log line "+msg, 10*time.Second, func() bool {
		for _, l := range e.logLines() {
			if l["msg"] != msg {
				continue
			}
			ok := true
			for k, v := range want {
				if l[k] != v {
					ok = false
				}
			}
			if ok {
				found = l
				return true
			}
		}
		return false
	})
	return found
}

// A principal a client made up: another operator, with the role.
var forgedPrincipal = map[string]string{
	"X-MS-CLIENT-PRINCIPAL":    devhost.Principal("0bad0000-0000-4000-8000-000000000666", "mallory@contoso.com", "JitAccess.Read"),
	"X-MS-CLIENT-PRINCIPAL-ID": "0bad0000-0000-4000-8000-000000000666",
}

const signInJustification = "e2e: sign-in needs a secret justification"

func TestSignInReads(t *testing.T) {
	e := newEnv(t)
	req := request("signin-1", seed.UPN("n01"), "PT1H")
	req["justification"] = signInJustification
	e.send(access.TypeRequested, req)

	operator, noRole, off := e.host.URL(), e.front(devhost.SignInNoRole), e.front(devhost.SignInOff)
	paths := []string{"/api/requests/signin-1", "/api/requests?state=pending&profile=aks-admin", "/api/dashboard"}

	// 200: the local operator holds JitAccess.Read; each read is logged
	// with its object id, the route and the request id or filters.
	for _, p := range paths {
		a := fetch(t, operator+p, nil)
		if a.status != 200 || !strings.Contains(a.body, "signin-1") {
			t.Fatalf("operator %s: %d %s", p, a.status, a.body)
		}
	}
	e.logged("read", map[string]any{"reader": devhost.LocalOperatorObjectID, "route": "/api/requests/{id}", "requestId": "signin-1", "status": float64(200)})
	e.logged("read", map[string]any{"reader": devhost.LocalOperatorObjectID, "route": "/api/requests", "state": "pending", "profile": "aks-admin"})
	e.logged("read", map[string]any{"reader": devhost.LocalOperatorObjectID, "route": "/api/dashboard", "status": float64(200)})

	// 403 without the role, 401 without a principal: no data, a JSON error
	// for the API and a plain page for the dashboard.
	for _, tc := range []struct {
		base   string
		status int
		reason string
	}{{noRole, 403, "no-role"}, {off, 401, "no-principal"}} {
		for _, p := range paths {
			a := fetch(t, tc.base+p, nil)
			if a.status != tc.status {
				t.Fatalf("%s %s: %d, want %d: %s", tc.reason, p, a.status, tc.status, a.body)
			}
			for _, leak := range []string{"signin-1", signInJustification, seed.UPN("n01"), seed.UserN01} {
				if strings.Contains(a.body, leak) {
					t.Fatalf("%s %s: the refusal holds %q: %s", tc.reason, p, leak, a.body)
				}
			}
			if p == "/api/dashboard" {
				if !strings.HasPrefix(a.contentType, "text/html") || !strings.Contains(a.body, "<h1>") {
					t.Fatalf("%s dashboard: not a page: %q %s", tc.reason, a.contentType, a.body)
				}
			} else {
				var body struct {
					Error string `json:"error"`
				}
				if json.Unmarshal([]byte(a.body), &body) != nil || body.Error == "" {
					t.Fatalf("%s %s: not a JSON error: %s", tc.reason, p, a.body)
				}
			}
		}
		want := map[string]any{"reason": tc.reason, "route": "/api/requests/{id}", "requestId": "signin-1", "status": float64(tc.status)}
		if tc.status == 403 {
			want["reader"] = devhost.LocalOperatorObjectID
		}
		e.logged("read refused", want)
	}

	// A principal the client made up never reaches the binary: refused
	// where nobody is signed in, replaced by the real one where someone is.
	if a := fetch(t, off+"/api/requests/signin-1", forgedPrincipal); a.status != 401 {
		t.Fatalf("forged principal: %d %s", a.status, a.body)
	}
	if a := fetch(t, noRole+"/api/requests/signin-1", forgedPrincipal); a.status != 403 {
		t.Fatalf("forged principal with the role, signed in without it: %d %s", a.status, a.body)
	}
	if a := fetch(t, operator+"/api/requests/signin-1", forgedPrincipal); a.status != 200 {
		t.Fatalf("operator with a forged principal: %d", a.status)
	}

	// /api/health stays anonymous.
	if a := fetch(t, off+"/api/health", nil); a.status != 200 {
		t.Fatalf("health without sign-in: %d %s", a.status, a.body)
	}

	// jitaccess get: signed in through the stand-in, refused without.
	if out, errOut, code := runCLI(t, "get", "signin-1", "--url", operator); code != 0 || !strings.Contains(out, "signin-1") {
		t.Fatalf("get as the operator: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := runCLI(t, "get", "signin-1", "--url", off); code != 1 || !strings.Contains(errOut, "401") || strings.Contains(out+errOut, signInJustification) {
		t.Fatalf("get without sign-in: exit %d\n%s%s", code, out, errOut)
	}

	// The log names readers by object id only: no principal, name or token.
	logs := e.proc.output()
	for _, leak := range []string{"0bad0000-0000-4000-8000-000000000666", "mallory", devhost.LocalOperatorName, forgedPrincipal["X-MS-CLIENT-PRINCIPAL"], signInJustification} {
		if strings.Contains(logs, leak) {
			t.Fatalf("the log holds %q", leak)
		}
	}
}

// Without App Service Authentication (WEBSITE_AUTH_ENABLED not true) the
// binary trusts no principal: every read is 401 and the start says why,
// while events are still processed.
func TestSignInNotConfigured(t *testing.T) {
	e := newEnv(t)
	e.vars["WEBSITE_AUTH_ENABLED"] = "" // unset
	e.restart()
	e.logged("read API closed: App Service Authentication is off (WEBSITE_AUTH_ENABLED is not true), so no signed-in principal can be "+
		"trusted; /api/requests and /api/dashboard answer 401 (docs/deploy.md §6)", map[string]any{"level": "ERROR"})
	e.send(access.TypeRequested, request("signin-off", seed.UPN("n01"), "PT1H"))
	for _, p := range []string{"/api/requests/signin-off", "/api/requests", "/api/dashboard"} {
		a := fetch(t, e.host.URL()+p, nil)
		if a.status != 401 || !strings.Contains(a.body, "sign-in is not configured") || strings.Contains(a.body, "signin-off") {
			t.Fatalf("%s: %d %s", p, a.status, a.body)
		}
	}
	e.logged("read refused", map[string]any{"reason": "sign-in-not-configured", "requestId": "signin-off"})
	if a := fetch(t, e.host.URL()+"/api/health", nil); a.status != 200 {
		t.Fatalf("health: %d", a.status)
	}
	// The event was processed all the same: readable once sign-in is on.
	delete(e.vars, "WEBSITE_AUTH_ENABLED")
	e.restart()
	if v := e.mustGet("signin-off"); v.State != "pending" {
		t.Fatalf("signin-off: %+v", v)
	}
}
