// Package browsertest runs headless Chromium for tests: it loads a page and
// returns the DOM as the browser built it (after parsing, CSP and any script
// that was allowed to run), or saves a screenshot. The dashboard's tests use
// it, and so can the end-to-end suite against the running binary. A run may
// take the viewer's time zone (TimeZone).
//
// Every run gets a fresh, temporary profile directory, no network beyond the
// page itself (background networking, component updates, sync and QUIC are
// off), is bounded by the caller's context (and by DefaultTimeout when the
// context has no deadline), and runs in its own process group, which is
// killed when the run ends so that no renderer or zygote outlives it.
package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// DefaultTimeout bounds a run whose context has no deadline.
const DefaultTimeout = 60 * time.Second

// EnvBrowser names an environment variable that may point at the browser
// binary (checked first).
const EnvBrowser = "JIT_CHROMIUM"

// EnvSkip, set to 1, lets tests skip instead of fail when no browser is
// installed (see Require).
const EnvSkip = "JIT_SKIP_BROWSER"

// ErrNotFound: no Chromium binary was found.
var ErrNotFound = errors.New("browsertest: chromium not found (install it: apt-get install -y chromium; or set " + EnvBrowser + ")")

// Find returns the path of the Chromium binary: $JIT_CHROMIUM, then
// /usr/bin/chromium, then chromium, chromium-browser, google-chrome or
// google-chrome-stable in PATH.
func Find() (string, error) {
	if p := os.Getenv(EnvBrowser); p != "" {
		if isExec(p) {
			return p, nil
		}
		return "", fmt.Errorf("%w: %s=%q is not an executable file", ErrNotFound, EnvBrowser, p)
	}
	if isExec("/usr/bin/chromium") {
		return "/usr/bin/chromium", nil
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", ErrNotFound
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// TB is the part of testing.TB that Require uses.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Require returns the browser's path. Without a browser the test fails,
// unless JIT_SKIP_BROWSER=1, when it is skipped.
func Require(t TB) string {
	t.Helper()
	p, err := Find()
	if err == nil {
		return p
	}
	if os.Getenv(EnvSkip) == "1" {
		t.Skipf("%v (skipped: %s=1)", err, EnvSkip)
	}
	t.Fatalf("%v; set %s=1 to skip browser tests", err, EnvSkip)
	return ""
}

// baseArgs are the flags of every run.
var baseArgs = []string{
	"--headless",
	"--no-sandbox", // containers and CI run as root
	"--disable-gpu",
	"--no-first-run",
	"--no-default-browser-check",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	"--disable-quic",
	"--disable-extensions",
	"--disable-dev-shm-usage",
	"--metrics-recording-only",
	"--mute-audio",
	"--hide-scrollbars",
}

// Option changes one run.
type Option func(*config)

type config struct {
	tz string
}

// TimeZone runs the browser in the IANA time zone tz (e.g. "Asia/Kolkata"),
// as a viewer there would see the page; default: the environment's.
func TimeZone(tz string) Option { return func(c *config) { c.tz = tz } }

// DumpDOM loads url and returns the serialised DOM after the page loaded.
func DumpDOM(ctx context.Context, url string, opts ...Option) (string, error) {
	out, err := run(ctx, opts, "--dump-dom", url)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// ScreenshotSize loads url in a width×height window and saves a PNG at
// path (directories are created).
func ScreenshotSize(ctx context.Context, url, path string, width, height int, opts ...Option) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return err
	}
	_ = os.Remove(abs)
	if _, err := run(ctx, opts, "--screenshot="+abs, fmt.Sprintf("--window-size=%d,%d", width, height), url); err != nil {
		return err
	}
	st, err := os.Stat(abs)
	if err != nil || st.Size() == 0 {
		return fmt.Errorf("browsertest: no screenshot written to %s", abs)
	}
	return nil
}

// run starts the browser with the base flags, a temporary profile and args,
// and returns its standard output.
func run(ctx context.Context, opts []Option, args ...string) ([]byte, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	bin, err := Find()
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	dir, err := os.MkdirTemp("", "jit-chromium-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	all := append(append(append([]string{}, baseArgs...), "--user-data-dir="+dir, "--crash-dumps-dir="+dir), args...)
	cmd := exec.CommandContext(ctx, bin, all...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir)
	if c.tz != "" {
		cmd.Env = append(cmd.Env, "TZ="+c.tz)
	}
	ownGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("browsertest: start %s: %w", bin, err)
	}
	err = cmd.Wait()
	killGroup(cmd) // whatever the browser left behind
	if ctx.Err() != nil {
		return nil, fmt.Errorf("browsertest: browser did not finish: %w (stderr: %s)", ctx.Err(), tail(stderr.String()))
	}
	if err != nil {
		return nil, fmt.Errorf("browsertest: %s: %w (stderr: %s)", filepath.Base(bin), err, tail(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}
