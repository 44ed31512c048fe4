package dashboard

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/dashboard/browsertest"
)

// marker is what the injected script would set if it ran.
const marker = `data-injected-script="ran"`

// injected wraps the dashboard and inserts an inline script (and an inline
// style without the nonce) into the page, as a failure of escaping would: the
// CSP must keep it from running. keepCSP false is the control run that shows
// the marker check can see a script that did run.
func injected(h http.Handler, keepCSP bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			if k == "Content-Length" || (!keepCSP && k == "Content-Security-Policy") {
				continue
			}
			w.Header()[k] = v
		}
		body := bytes.Replace(rec.Body.Bytes(), []byte("<main id=\"main\">"),
			[]byte(`<script>document.documentElement.setAttribute('data-injected-script','ran')</script><main id="main">`), 1)
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// shotDir is where the screenshots go: $JIT_SCREENSHOT_DIR, else a
// directory under the system's temporary directory (never the repository),
// kept after the test so that a person can look at them.
func shotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("JIT_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "jitaccess-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// timeText is the text of the first <time> whose datetime is iso, its
// no-break spaces as spaces.
func timeText(t *testing.T, dom, iso string) (text, title string) {
	t.Helper()
	m := regexp.MustCompile(`<time datetime="` + regexp.QuoteMeta(iso) + `" title="([^"]*)"[^>]*>([^<]*)</time>`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no <time datetime=%q> in the DOM", iso)
	}
	return strings.NewReplacer("&nbsp;", " ", "\u00a0", " ").Replace(m[2]), m[1]
}

// noScript serves the dashboard with a CSP that lets no script run, as a
// browser without JavaScript shows the page.
func noScript(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Security-Policy", strings.Replace(rec.Header().Get("Content-Security-Policy"), "'"+scriptHash+"'", "'none'", 1))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func TestBrowser(t *testing.T) {
	browsertest.Require(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()

	dash := New(Options{Store: seed(now0), Profiles: profiles, Now: func() time.Time { return now0 },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	mux := http.NewServeMux()
	mux.Handle("GET /api/dashboard", dash)
	mux.Handle("GET /injected", injected(dash, true))
	mux.Handle("GET /injected-no-csp", injected(dash, false))
	mux.Handle("GET /no-script", noScript(dash))
	srv := httptest.NewServer(mux) // 127.0.0.1
	defer srv.Close()
	base := srv.URL + "/api/dashboard"
	kolkata := browsertest.TimeZone("Asia/Kolkata") // UTC+05:30, no daylight saving

	t.Run("dom", func(t *testing.T) {
		dom, err := browsertest.DumpDOM(ctx, base+"?code=SECRET-KEY", kolkata)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`Just-in-time access</a></h1>`,
			`<h2 id="active-h">Active grants`, `<h2 id="pending-h">Pending approvals`, `<h2 id="attention-h">Needs attention`,
			`<h2 id="endings-h">Recent endings`, `<h2 id="denied-h">Denied and rejected`, `<h2 id="outofband-h">Out-of-band findings`,
			n01, p01, "12m 30s", "erin@contoso.example", "1 / 2", "Authorization_RequestDenied", "still a member",
			xssText, // the justification, as text
			`<a class="id" href="?request=req-active-xss">req-active-xss</a>`,
			`not needed<span class="cause">membership kept: still granted by <a href="?request=req-active-xss">req-active-xss</a></span>`,
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("rendered DOM lacks %q", want)
			}
		}
		low := strings.ToLower(dom)
		for _, bad := range []string{"<img", `src="x"`, "onerror", marker} {
			if bad == "onerror" {
				// Present only as text inside the escaped justification.
				if strings.Count(low, "onerror") != strings.Count(low, "onerror=alert(1)&gt;") {
					t.Errorf("onerror appears outside the escaped text")
				}
				continue
			}
			if strings.Contains(low, bad) {
				t.Errorf("rendered DOM contains %q", bad)
			}
		}
		if n := strings.Count(low, "<script"); n != 1 {
			t.Errorf("%d scripts in the DOM, want only the time script", n)
		}
		// The key the page was opened with is in no link, form or refresh.
		if strings.Contains(dom, "SECRET-KEY") {
			t.Error("the code parameter appears in the rendered page")
		}

		// The time script ran under the CSP: times in the viewer's zone,
		// with the year; UTC in the title.
		text, title := timeText(t, dom, "2026-11-23T10:00:00Z")
		if !strings.HasPrefix(text, "23 Nov 2026 15:30:00 ") || strings.Contains(text, "UTC") {
			t.Errorf("'as of' in Kolkata shows %q, want 23 Nov 2026 15:30:00 in the local zone", text)
		}
		if title != "2026-11-23 10:00:00 UTC" {
			t.Errorf("title %q", title)
		}
		text, _ = timeText(t, dom, "2026-11-23T10:12:30Z") // the soonest end, minutes only
		if !strings.HasPrefix(text, "23 Nov 2026 15:42 ") {
			t.Errorf("end shows %q", text)
		}
		if !strings.Contains(dom, "Times are in your time zone, Asia/Kolkata; hover over a time for UTC.") &&
			!strings.Contains(dom, "Times are in your time zone, Asia/Calcutta; hover over a time for UTC.") { // ICU's older name
			t.Error("the footer does not name the viewer's zone")
		}
	})

	t.Run("without script", func(t *testing.T) {
		dom, err := browsertest.DumpDOM(ctx, srv.URL+"/no-script", kolkata)
		if err != nil {
			t.Fatal(err)
		}
		if text, _ := timeText(t, dom, "2026-11-23T10:00:00Z"); text != "23 Nov 2026 10:00:00 UTC" {
			t.Errorf("without script 'as of' shows %q, want UTC with the year", text)
		}
		if !strings.Contains(dom, `<p id="tz">Times are UTC.</p>`) {
			t.Error("without script the footer should say the times are UTC")
		}
	})

	t.Run("request page", func(t *testing.T) {
		dom, err := browsertest.DumpDOM(ctx, base+"?request=req-kept", kolkata)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`<h2>Request <code>req-kept</code></h2>`, "Access may linger until", "CHG-7", "check the node pool",
			"ok &lt;b&gt;for&lt;/b&gt; 30m", // the approval comment, as text
			`<h2 id="history-h">History`, `<h2 id="steps-h">Graph and ARM steps`,
			`membership kept: still granted by <a href="?request=req-active-xss">req-active-xss</a>`,
			"event evt-kept-1", "object id " + n01ID, adminGrp,
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("request page lacks %q", want)
			}
		}
		if strings.Contains(strings.ToLower(dom), "<b>for") {
			t.Error("the approval comment was interpreted as HTML")
		}
		if text, title := timeText(t, dom, "2026-11-23T09:20:00Z"); !strings.HasPrefix(text, "23 Nov 2026 14:50:00 ") || title != "2026-11-23 09:20:00 UTC" {
			t.Errorf("ended shows %q (%q)", text, title)
		}
	})

	t.Run("search opens the request", func(t *testing.T) {
		dom, err := browsertest.DumpDOM(ctx, base+"?q=req-role")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`<h2>Request <code>req-role</code></h2>`, "ARM: role assignment deleted", "Graph: sign-in sessions revoked", "managedClusters/aks-prod"} {
			if !strings.Contains(dom, want) {
				t.Errorf("search for an id did not open its page: lacks %q", want)
			}
		}
	})

	t.Run("csp blocks inline script", func(t *testing.T) {
		dom, err := browsertest.DumpDOM(ctx, srv.URL+"/injected")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(dom, "<script>document.documentElement") {
			t.Fatal("the injected script is not in the page; the check would prove nothing")
		}
		if strings.Contains(dom, marker) {
			t.Error("an inline script ran despite the CSP")
		}
		// Control: without the CSP the same script runs and the marker shows.
		dom, err = browsertest.DumpDOM(ctx, srv.URL+"/injected-no-csp")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(dom, marker) {
			t.Error("control run: the inline script did not run without CSP, so the marker check is blind")
		}
	})

	t.Run("screenshots", func(t *testing.T) {
		dir := shotDir(t)
		berlin := browsertest.TimeZone("Europe/Berlin")
		for _, s := range []struct {
			name, query string
			w, h        int
		}{
			{"dashboard.png", "", 1280, 1000},
			{"dashboard-full.png", "", 1280, 3400},
			{"dashboard-narrow.png", "", 420, 2600},
			{"request.png", "?request=req-kept", 1280, 1500},
			{"request-narrow.png", "?request=req-kept", 420, 3200},
			{"request-role.png", "?request=req-role", 1280, 1500},
			{"search.png", "?q=n01%40contoso.example", 1280, 800},
			{"range.png", "?from=2026-11-20&to=2026-11-23", 1280, 1000},
		} {
			path := filepath.Join(dir, s.name)
			if err := browsertest.ScreenshotSize(ctx, base+s.query, path, s.w, s.h, berlin); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 10_000 {
				t.Fatalf("%s: not a plausible PNG (%d bytes, %v)", path, len(b), err)
			}
			t.Logf("screenshot: %s", path)
		}
	})
}
