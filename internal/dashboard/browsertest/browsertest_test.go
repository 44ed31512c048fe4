package browsertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFindOverride(t *testing.T) {
	t.Setenv(EnvBrowser, filepath.Join(t.TempDir(), "no-such-browser"))
	if _, err := Find(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find with a bad override: %v", err)
	}
}

func TestDumpDOMAndScreenshot(t *testing.T) {
	Require(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!DOCTYPE html><title>t</title><p id="x">hello &amp; welcome</p>`)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dom, err := DumpDOM(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dom, `<p id="x">hello &amp; welcome</p>`) || !strings.Contains(dom, "<body>") {
		t.Errorf("DOM: %s", dom)
	}
	path := filepath.Join(t.TempDir(), "sub", "shot.png")
	if err := ScreenshotSize(ctx, srv.URL, path, 320, 200); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("screenshot: %v", err)
	}
}

func TestBoundedByContext(t *testing.T) {
	Require(t)
	// A page that never finishes loading: the run must end with the context.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(200)
		fmt.Fprint(w, "<p>loading")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	defer srv.CloseClientConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := DumpDOM(ctx, srv.URL)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a deadline error, got %v", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %v after a 3 s deadline", d)
	}
}

func TestTimeZone(t *testing.T) {
	Require(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!DOCTYPE html><title>t</title><p id="z"></p><script>`+
			`document.getElementById("z").textContent = "offset " + new Date(Date.UTC(2026, 0, 15)).getTimezoneOffset();</script>`)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for tz, want := range map[string]string{"Asia/Tokyo": "offset -540", "America/Sao_Paulo": "offset 180", "UTC": "offset 0"} {
		dom, err := DumpDOM(ctx, srv.URL, TimeZone(tz))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(dom, `<p id="z">`+want+`</p>`) {
			t.Errorf("%s: %s", tz, dom)
		}
	}
}
