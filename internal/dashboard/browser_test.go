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
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/dashboard/browsertest"
)

// repoRoot is the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("go.mod not found")
		}
		dir = up
	}
}

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

func TestBrowser(t *testing.T) {
	browsertest.Require(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	dash := New(Options{Store: seed(now0), Profiles: profiles, Now: func() time.Time { return now0 },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	mux := http.NewServeMux()
	mux.Handle("GET /api/dashboard", dash)
	mux.Handle("GET /injected", injected(dash, true))
	mux.Handle("GET /injected-no-csp", injected(dash, false))
	srv := httptest.NewServer(mux) // 127.0.0.1
	defer srv.Close()

	t.Run("dom", func(t *testing.T) {
		dom, err := browsertest.DumpDOM(ctx, srv.URL+"/api/dashboard")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`<h1>Just-in-time access</h1>`,
			`<h2 id="active-h">Active grants`, `<h2 id="pending-h">Pending approvals`, `<h2 id="attention-h">Needs attention`,
			`<h2 id="endings-h">Recent endings`, `<h2 id="denied-h">Denied and rejected`, `<h2 id="outofband-h">Out-of-band findings`,
			n01, p01, "12m 30s", "erin@contoso.example", "1 / 2", "Authorization_RequestDenied", "still a member",
			xssText, // the justification, as text
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("rendered DOM lacks %q", want)
			}
		}
		low := strings.ToLower(dom)
		for _, bad := range []string{"<img", "<script", `src="x"`, "onerror", marker} {
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

	t.Run("screenshot", func(t *testing.T) {
		art := filepath.Join(repoRoot(t), "artifacts")
		for name, size := range map[string][2]int{"dashboard.png": {1280, 1000}, "dashboard-narrow.png": {420, 1000}, "dashboard-full.png": {1280, 3000}} {
			path := filepath.Join(art, name)
			if err := browsertest.ScreenshotSize(ctx, srv.URL+"/api/dashboard", path, size[0], size[1]); err != nil {
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
