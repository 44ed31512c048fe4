package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/dashboard/browsertest"
	"github.com/jitaccess/jitaccess/internal/seed"
)

const xssJustification = `<img src=x onerror=alert(1)>`

// section returns the HTML of <section id="id"> in a DOM dump.
func section(t *testing.T, dom, id string) string {
	t.Helper()
	start := strings.Index(dom, `<section id="`+id+`"`)
	if start < 0 {
		t.Fatalf("no section %q in the page", id)
	}
	end := strings.Index(dom[start:], "</section>")
	if end < 0 {
		t.Fatalf("section %q not closed", id)
	}
	return dom[start : start+end]
}

// The dashboard as an operator sees it, served by the running binary through
// the host and rendered by headless Chromium.
func TestDashboardInBrowser(t *testing.T) {
	browsertest.Require(t)
	e := newEnv(t)
	e.send(access.TypeRequested, request("dash-active", seed.UPN("n01"), "PT1H"))
	e.send(access.TypeApproved, map[string]string{"requestId": "dash-active", "approver": seed.UPN("p01"), "comment": "ok"})
	pending := request("dash-pending", seed.UPN("n01"), "PT30M")
	pending["justification"] = xssJustification
	e.send(access.TypeRequested, pending)
	e.send(access.TypeRequested, request("dash-rejected", seed.UPN("x01"), ""))
	// n02's grant, revoked: membership added and removed, sessions revoked.
	ended := request("dash-revoked", seed.UPN("n02"), "PT1H")
	ended["ticket"] = "CHG-4711"
	e.send(access.TypeRequested, ended)
	e.send(access.TypeApproved, map[string]string{"requestId": "dash-revoked", "approver": seed.UPN("p01"), "comment": "go ahead"})
	e.send(access.TypeRevoked, map[string]string{"requestId": "dash-revoked", "by": seed.UPN("p01"), "reason": "work done"})
	// n01's second grant, revoked while dash-active still holds the
	// membership: nothing removed, so sessions are not needed — and the page
	// says why.
	e.send(access.TypeRequested, request("dash-kept", seed.UPN("n01"), "PT1H"))
	e.send(access.TypeApproved, map[string]string{"requestId": "dash-kept", "approver": seed.UPN("p01")})
	e.send(access.TypeRevoked, map[string]string{"requestId": "dash-kept", "by": seed.UPN("p01"), "reason": "not needed after all"})
	for id, want := range map[string]string{"dash-active": "active", "dash-pending": "pending", "dash-rejected": "rejected",
		"dash-revoked": "revoked", "dash-kept": "revoked"} {
		if v := e.mustGet(id); v.State != want {
			t.Fatalf("%s: state %s, want %s", id, v.State, want)
		}
	}

	url := e.host.URL() + "/api/dashboard"

	// Security headers, with a plain GET.
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /api/dashboard: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", got)
	}
	if strings.Contains(string(body), xssJustification) {
		t.Error("the justification is served unescaped")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	dom, err := browsertest.DumpDOM(ctx, url)
	if err != nil {
		t.Fatalf("DumpDOM: %v", err)
	}
	// Screenshots go under the temporary directory, never the repository.
	shots := os.Getenv("JIT_SCREENSHOT_DIR")
	if shots == "" {
		shots = filepath.Join(os.TempDir(), "jitaccess-screenshots")
	}
	for name, page := range map[string]string{"e2e-dashboard.png": url, "e2e-request.png": url + "?request=dash-revoked",
		"e2e-request-kept.png": url + "?request=dash-kept"} {
		shot := filepath.Join(shots, name)
		if err := browsertest.ScreenshotSize(ctx, page, shot, 1280, 1400); err != nil {
			t.Fatalf("Screenshot: %v", err)
		}
		if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
			t.Fatalf("screenshot %s: %v", shot, err)
		}
		t.Logf("screenshot: %s", shot)
	}

	for _, h := range []string{"Just-in-time access", "Active grants", "Pending approvals", "Needs attention", "Recent endings", "Denied and rejected"} {
		if !strings.Contains(dom, h) {
			t.Errorf("heading %q not on the page", h)
		}
	}
	active := section(t, dom, "active")
	if !strings.Contains(active, seed.UPN("n01")) || !strings.Contains(active, "dash-active") || !strings.Contains(active, "aks-admin") {
		t.Errorf("active grants do not show n01's grant:\n%s", active)
	}
	// Time left of a fresh one-hour grant: "59m 58s" or so.
	if !regexp.MustCompile(`class="left">(59m \d{2}s|1h 00m)<`).MatchString(active) {
		t.Errorf("no time left shown for the active grant:\n%s", active)
	}
	pend := section(t, dom, "pending")
	if !strings.Contains(pend, "dash-pending") || !strings.Contains(pend, seed.UPN("n01")) {
		t.Errorf("pending approvals do not show dash-pending:\n%s", pend)
	}
	if strings.Contains(active, "dash-pending") || strings.Contains(pend, "dash-active") {
		t.Error("a request is listed in the wrong section")
	}
	denied := section(t, dom, "denied")
	if !strings.Contains(denied, "dash-rejected") || !strings.Contains(denied, "not a member") {
		t.Errorf("the rejection is not shown with its reason:\n%s", denied)
	}
	// The XSS attempt is text: escaped in the DOM, no <img> element built.
	if !strings.Contains(pend, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("the justification is not shown as text:\n%s", pend)
	}
	if strings.Contains(strings.ToLower(dom), "<img") {
		t.Error("the page holds an <img> element: the justification was interpreted as HTML")
	}
	// Every row links to its request's page; where sessions were not
	// needed, the row says why, with the grant that keeps the membership.
	endings := section(t, dom, "endings")
	if !strings.Contains(active, `href="?request=dash-active"`) || !strings.Contains(endings, `href="?request=dash-revoked"`) {
		t.Error("rows do not link to their request's page")
	}
	if !strings.Contains(endings, `not needed<span class="cause">membership kept: still granted by <a href="?request=dash-active">dash-active</a></span>`) {
		t.Errorf("the kept membership's cause is not shown:\n%s", endings)
	}

	// The request's page, through the host: the fields, the approval, the
	// Graph steps with their times, the history.
	dom, err = browsertest.DumpDOM(ctx, url+"?request=dash-revoked")
	if err != nil {
		t.Fatalf("DumpDOM: %v", err)
	}
	for _, want := range []string{"<h2>Request <code>dash-revoked</code></h2>", "CHG-4711", "e2e: rotate certificates", "work done", "go ahead",
		"Graph: membership added", "Graph: membership removed", "Graph: sign-in sessions revoked", "<dt>Access gone by</dt>",
		`<h2 id="history-h">History`, seed.UPN("p01")} {
		if !strings.Contains(dom, want) {
			t.Errorf("the request's page lacks %q", want)
		}
	}
	// The time script ran under the CSP: the header's time is no longer the
	// server's UTC text (the browser runs in UTC unless TZ says otherwise,
	// so compare with a zone that is not UTC).
	dom, err = browsertest.DumpDOM(ctx, url+"?request=dash-revoked", browsertest.TimeZone("Asia/Tokyo"))
	if err != nil {
		t.Fatalf("DumpDOM: %v", err)
	}
	if !regexp.MustCompile(`data-s="">\d{1,2}&nbsp;[A-Z][a-z]{2,3}&nbsp;20\d\d \d\d:\d\d:\d\d&nbsp;(GMT\+9|JST)</time>`).MatchString(dom) {
		t.Errorf("times are not shown in the viewer's zone (Asia/Tokyo):\n%s", lastLines(dom, 5))
	}

	// Search: an exact id opens the request (303 through the host); a UPN
	// lists that requester's requests; a ticket finds its request.
	resp, err = (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(url + "?q=dash-revoked")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "?request=dash-revoked" {
		t.Errorf("search by id: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for q, want := range map[string][]string{
		seed.UPN("n01"): {"dash-active", "dash-pending", "dash-kept"},
		"chg-4711":      {"dash-revoked"},
	} {
		dom, err := browsertest.DumpDOM(ctx, url+"?q="+q)
		if err != nil {
			t.Fatalf("DumpDOM: %v", err)
		}
		res := section(t, dom, "results")
		for _, id := range want {
			if !strings.Contains(res, `href="?request=`+id+`"`) {
				t.Errorf("search %q does not find %s:\n%s", q, id, res)
			}
		}
		if strings.Contains(res, "dash-rejected") || q != "chg-4711" && strings.Contains(res, "dash-revoked") {
			t.Errorf("search %q finds another requester's request:\n%s", q, res)
		}
	}

	// A date range for the endings; a bad one is a 400 page, not a 500.
	today := time.Now().UTC().Format("2006-01-02")
	dom, err = browsertest.DumpDOM(ctx, url+"?from="+today+"&to="+today)
	if err != nil {
		t.Fatalf("DumpDOM: %v", err)
	}
	if !strings.Contains(section(t, dom, "endings"), "dash-revoked") {
		t.Error("today's range does not show today's ending")
	}
	resp, err = http.Get(url + "?from=yesterday")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "is not a date; use YYYY-MM-DD") {
		t.Errorf("bad range: %d\n%s", resp.StatusCode, body)
	}
}
