// Package azuritetest gives tests a real Table Storage: Azurite (the npm package
// "azurite", table service only) on a free loopback port, in memory.
//
//   - JIT_TEST_TABLES_CONNECTION_STRING set: that account is used and no
//     process is started (Stop and Restart then fail).
//   - JIT_SKIP_AZURITE=1: tests that need Azurite are skipped. This is the
//     only way to skip them: when Azurite cannot be found or installed, the
//     test fails.
//   - Otherwise azurite-table is looked up in <repo>/.tools/node_modules/.bin,
//     then on PATH, and installed with npm into <repo>/.tools when missing
//     (one install at a time, across processes, by a lock file).
//
// Start(t) returns the connection string of one Azurite shared by the whole
// test binary; give each test its own table prefix (Prefix) so they do not
// collide. New(t) starts a dedicated Azurite that the test may Stop and
// Restart on the same port (fault tests); it persists to a temporary
// directory so that a restart keeps the data.
//
// Every Azurite runs under a small shell guard that kills it when the test
// binary goes away without cleaning up (crash, timeout), so no process is
// left behind. Call Main from TestMain to stop the shared one at the end.
package azuritetest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Pinned version, installed when no azurite-table is found.
const Version = "3.35.0"

// Environment variables.
const (
	EnvConnString = "JIT_TEST_TABLES_CONNECTION_STRING"
	EnvSkip       = "JIT_SKIP_AZURITE"
)

// The well-known Azurite development account (public, documented by
// Microsoft; not a secret).
const (
	AccountName = "devstoreaccount1"
	AccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// ConnString returns the connection string of the development account on a
// table endpoint such as http://127.0.0.1:10002/devstoreaccount1.
func ConnString(tableEndpoint string) string {
	return "DefaultEndpointsProtocol=http;AccountName=" + AccountName + ";AccountKey=" + AccountKey +
		";TableEndpoint=" + tableEndpoint + ";"
}

// Server is one Azurite table service.
type Server struct {
	bin      string
	port     int
	dir      string // "" = in memory
	logPath  string
	external string

	mu    sync.Mutex
	cmd   *exec.Cmd
	guard io.WriteCloser // the guard's stdin; closing it (or exiting) kills Azurite
	done  chan struct{}
}

// ConnString is the server's connection string.
func (s *Server) ConnString() string {
	if s.external != "" {
		return s.external
	}
	return ConnString(s.Endpoint())
}

// Endpoint is the table endpoint URL (empty for an external account).
func (s *Server) Endpoint() string {
	if s.external != "" {
		return ""
	}
	return "http://127.0.0.1:" + strconv.Itoa(s.port) + "/" + AccountName
}

// Port is the loopback port Azurite listens on (0 for an external account).
func (s *Server) Port() int { return s.port }

// External reports whether the server is an account given by
// JIT_TEST_TABLES_CONNECTION_STRING (not a process of ours).
func (s *Server) External() bool { return s.external != "" }

var errExternal = errors.New("azurite: the account comes from " + EnvConnString + "; it cannot be stopped or restarted")

// Running reports whether the Azurite process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.external != "" || s.cmd != nil
}

// Stop stops Azurite (its whole process group); the port then refuses
// connections. Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	if s.external != "" {
		return errExternal
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked()
}

func (s *Server) stopLocked() error {
	if s.cmd == nil {
		return nil
	}
	// Closing the guard's stdin makes it interrupt Azurite (SIGINT: Azurite
	// saves its data and closes) and wait for it.
	_ = s.guard.Close()
	pgid := s.cmd.Process.Pid
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // anything left in the group
	s.cmd, s.guard, s.done = nil, nil, nil
	// Wait until the port is really free, so a restart can take it.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && dialable(s.port) {
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Start starts a stopped server again on the same port (and, for a
// dedicated server, with the same data).
func (s *Server) Start() error {
	if s.external != "" {
		return errExternal
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	return s.startLocked()
}

// Restart stops and starts the server.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Start()
}

func (s *Server) startLocked() error {
	args := []string{"--tableHost", "127.0.0.1", "--tablePort", strconv.Itoa(s.port),
		"--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent"}
	if s.dir == "" {
		args = append(args, "--inMemoryPersistence")
	} else {
		args = append(args, "--location", s.dir)
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	// The guard: runs Azurite and, as soon as its stdin reaches EOF (Stop
	// closes it; the OS closes it when this process exits however it
	// exits), interrupts it and waits for it. Azurite saves and closes on
	// SIGINT only (SIGTERM kills it on the spot).
	script := `"$0" "$@" & child=$!; read -r _; kill -INT $child 2>/dev/null; wait $child`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, s.bin}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.dir != "" {
		cmd.Dir = s.dir
	} else {
		cmd.Dir = os.TempDir()
	}
	guard, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("azurite: start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.guard, s.done = cmd, guard, done
	deadline := time.Now().Add(60 * time.Second)
	for {
		if dialable(s.port) {
			return nil
		}
		select {
		case <-done:
			s.cmd, s.guard, s.done = nil, nil, nil
			return fmt.Errorf("azurite: exited before listening on 127.0.0.1:%d; log %s:\n%s", s.port, s.logPath, tail(s.logPath))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.stopLocked()
			return fmt.Errorf("azurite: not listening on 127.0.0.1:%d after 60s; log %s:\n%s", s.port, s.logPath, tail(s.logPath))
		}
	}
}

// Close stops the server for good.
func (s *Server) Close() {
	if s.external == "" {
		_ = s.Stop()
	}
}

func dialable(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// launch starts a new Azurite on a free port (retrying if another process
// grabbed the port in between).
func launch(dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	logDir, err := os.MkdirTemp("", "azurite-log-")
	if err != nil {
		return nil, err
	}
	var last error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{bin: bin, port: port, dir: dir, logPath: filepath.Join(logDir, "azurite-"+strconv.Itoa(port)+".log")}
		s.mu.Lock()
		last = s.startLocked()
		s.mu.Unlock()
		if last == nil {
			return s, nil
		}
	}
	return nil, last
}

var shared struct {
	mu  sync.Mutex
	srv *Server
	err error
}

func skipOrExternal(t testing.TB) *Server {
	t.Helper()
	if os.Getenv(EnvSkip) == "1" {
		t.Skip("Azurite tests skipped: " + EnvSkip + "=1")
	}
	if cs := os.Getenv(EnvConnString); cs != "" {
		return &Server{external: cs}
	}
	return nil
}

// Shared returns the Azurite shared by the test binary, starting it on first
// use. It fails the test when Azurite cannot be started.
func Shared(t testing.TB) *Server {
	t.Helper()
	if s := skipOrExternal(t); s != nil {
		return s
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = launch("")
	}
	if shared.err != nil {
		t.Fatalf("Azurite is required (set %s=1 to skip these tests explicitly): %v", EnvSkip, shared.err)
	}
	if !shared.srv.Running() {
		// A test stopped the shared one; bring it back.
		if err := shared.srv.Start(); err != nil {
			t.Fatalf("restart shared Azurite: %v", err)
		}
	}
	return shared.srv
}

// Start returns the connection string of the shared Azurite.
func Start(t testing.TB) string {
	t.Helper()
	return Shared(t).ConnString()
}

// New starts a dedicated Azurite for this test, persisting to a temporary
// directory (so Restart keeps the data), stopped when the test ends. With
// JIT_TEST_TABLES_CONNECTION_STRING set, the test is skipped: an external
// account cannot be stopped.
func New(t testing.TB) *Server {
	t.Helper()
	if s := skipOrExternal(t); s != nil {
		t.Skip("a dedicated Azurite is needed (it is stopped and restarted); " + EnvConnString + " is set")
	}
	s, err := launch(t.TempDir())
	if err != nil {
		t.Fatalf("Azurite is required (set %s=1 to skip these tests explicitly): %v", EnvSkip, err)
	}
	t.Cleanup(s.Close)
	return s
}

// Main runs the tests and then stops the shared Azurite:
//
//	func TestMain(m *testing.M) { os.Exit(azurite.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	if shared.srv != nil {
		shared.srv.Close()
	}
	shared.mu.Unlock()
	return code
}

// Prefix returns a table prefix no other test uses: letters and digits,
// starting with a letter, 12 characters.
func Prefix(t testing.TB) string {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b[:]) + "x"
}

// RepoRoot walks up from the working directory to the directory holding
// go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("azurite: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Binary finds azurite-table: <repo>/.tools/node_modules/.bin first, then
// PATH; when neither has it, it installs azurite@Version into <repo>/.tools
// with npm.
func Binary() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	tools := filepath.Join(root, ".tools")
	local := filepath.Join(tools, "node_modules", ".bin", "azurite-table")
	if isExec(local) {
		return local, nil
	}
	if p, err := exec.LookPath("azurite-table"); err == nil {
		return p, nil
	}
	if err := os.MkdirAll(tools, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(filepath.Join(tools, ".azurite-install.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if isExec(local) { // installed by whoever held the lock
		return local, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("azurite-table is not in %s nor on PATH, and npm is not available to install azurite@%s: %w", local, Version, err)
	}
	cmd := exec.Command(npm, "install", "--prefix", tools, "azurite@"+Version, "--no-audit", "--no-fund")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm install azurite@%s into %s: %w\n%s", Version, tools, err, strings.TrimSpace(out.String()))
	}
	if !isExec(local) {
		return "", fmt.Errorf("npm installed azurite@%s but %s is missing", Version, local)
	}
	return local, nil
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// lockFile takes an exclusive lock on path (released on unlock or when the
// process dies).
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
