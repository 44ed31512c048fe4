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
	for id, want := range map[string]string{"dash-active": "active", "dash-pending": "pending", "dash-rejected": "rejected"} {
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
	shot := filepath.Join(repoRoot, "artifacts", "e2e-dashboard.png")
	if err := browsertest.Screenshot(ctx, url, shot); err != nil {
		t.Fatalf("Screenshot: %v", err)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)

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
}
