// Package e2e drives the built jitaccess binary through the custom-handler
// protocol, as the Azure Functions host would: the binary runs as a child
// process against real Azurite, the Graph simulator and a local managed
// identity endpoint; internal/devhost plays the host (it reads
// functions/*/function.json and encodes every invocation like the real one).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/armsim"
	"github.com/jitaccess/jitaccess/internal/azuritetest"
	"github.com/jitaccess/jitaccess/internal/cli"
	"github.com/jitaccess/jitaccess/internal/devhost"
	"github.com/jitaccess/jitaccess/internal/graphsim"
	"github.com/jitaccess/jitaccess/internal/idsim"
	"github.com/jitaccess/jitaccess/internal/seed"
)

var (
	binary   string // the built jitaccess
	repoRoot string
)

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	dir, err := os.MkdirTemp("", "jitaccess-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "jitaccess")
	// The same build as `make build` (CGO off); the Go build cache makes it quick.
	build := exec.Command("go", "build", "-p", "2", "-trimpath", "-o", binary, ".")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building jitaccess: %v\n%s", err, out)
		os.Exit(1)
	}
	code := azuritetest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one running deployment: the binary, its host, its tenant and store.
type env struct {
	t        *testing.T
	graph    *graphsim.Sim
	arm      *armsim.Sim // the simulated AKS cluster's role assignments
	ids      *idsim.Server
	tables   string // connection string
	prefix   string
	profiles string
	vars     map[string]string
	proc     *process
	host     *devhost.Host
	hostCtx  context.CancelFunc
	port     int
	// hostConcurrency, when set, is the host stand-in's queue concurrency
	// (default: host.json's maxConcurrentCalls).
	hostConcurrency int
}

type process struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(b)
}

const testClientID = "0e0e0000-0000-4000-8000-0000000000c1"

// newEnv starts Azurite (shared), the tenant, the token endpoint, the binary
// and the host stand-in.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, vars: map[string]string{}}
	e.tables = azuritetest.Start(t)
	e.prefix = azuritetest.Prefix(t)
	e.ids = idsim.New(idsim.Options{UserAssigned: []idsim.Identity{{ClientID: testClientID, ObjectID: "0e0e0000-0000-4000-8000-0000000000c2"}}})
	e.ids.Start()
	t.Cleanup(e.ids.Close)
	e.graph = graphsim.New(graphsim.Options{Verify: e.ids.Verify}).SeedTenant()
	e.graph.Start()
	t.Cleanup(e.graph.Close)
	e.arm = armsim.New(armsim.Options{Verify: e.ids.Verify}).AddScope(seed.AKSCluster).
		AddRoleDefinition(seed.RoleAKSRBACClusterAdmin, seed.RoleAKSRBACReader)
	e.arm.Start()
	t.Cleanup(e.arm.Close)
	e.profiles = filepath.Join(repoRoot, "e2e", "testdata", "profiles.json")
	e.start()
	return e
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (e *env) environ() []string {
	vars := map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT": strconv.Itoa(e.port),
		"JIT_TABLES_CONNECTION_STRING": e.tables,
		"JIT_TABLE_PREFIX":             e.prefix,
		"JIT_GRAPH_BASE_URL":           e.graph.BaseURL(),
		"JIT_ARM_BASE_URL":             e.arm.BaseURL(),
		"JIT_PROFILES_FILE":            e.profiles,
		"IDENTITY_ENDPOINT":            e.ids.Endpoint(),
		"IDENTITY_HEADER":              e.ids.Header(),
		"AZURE_CLIENT_ID":              testClientID,
		"JIT_LOG_LEVEL":                "debug",
		// Redeliveries come at once, as most tests expect; patience_test.go
		// turns the in-invocation patience on.
		"JIT_REDELIVERY_PATIENCE": "PT0S",
		// Audit records are checked with Graph a second after they arrive
		// (the shortest window; realdir_test.go lags the reads).
		"JIT_REPLICATION_WINDOW": "PT1S",
		// The host stand-in plays App Service Authentication (it signs
		// loopback callers in as the local operator), as the platform says
		// with this setting when it is on; signin_test.go turns it off.
		"WEBSITE_AUTH_ENABLED": "True",
		"PATH":                 os.Getenv("PATH"),
		"HOME":                 os.Getenv("HOME"),
	}
	for k, v := range e.vars {
		vars[k] = v
	}
	var out []string
	for k, v := range vars {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// start runs the binary and the host stand-in and waits until both answer.
func (e *env) start() {
	t := e.t
	t.Helper()
	e.port = freePort(t)
	p := &process{done: make(chan struct{})}
	p.cmd = exec.Command(binary)
	p.cmd.Env = e.environ()
	p.cmd.Stdout = lockedWriter{&p.mu, &p.out}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	e.proc = p
	t.Cleanup(func() { e.kill() })

	ctx, cancel := context.WithCancel(context.Background())
	host, err := devhost.New(devhost.Options{
		Dir:              repoRoot,
		Settings:         map[string]string{"JIT_SWEEP_SCHEDULE": "0 0 0 1 1 *"}, // fired by the tests
		HandlerURL:       "http://127.0.0.1:" + strconv.Itoa(e.port),
		Addr:             "127.0.0.1:0",
		MaxDeliveryCount: 5,
		RedeliveryDelay:  100 * time.Millisecond,
		Concurrency:      e.hostConcurrency,
		ReadyTimeout:     20 * time.Second,
		Logger:           discardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(ctx); err != nil {
		cancel()
		t.Fatalf("host start: %v\nbinary output:\n%s%s", err, p.output(), p.stderr.String())
	}
	e.host, e.hostCtx = host, cancel
	t.Cleanup(func() { cancel(); host.Wait() })
}

// kill ends the binary with SIGKILL (a crash) and stops the host stand-in.
func (e *env) kill() {
	if e.hostCtx != nil {
		e.hostCtx()
		e.host.Wait()
		e.hostCtx = nil
	}
	if e.proc != nil {
		_ = syscall.Kill(-e.proc.cmd.Process.Pid, syscall.SIGKILL)
		<-e.proc.done
	}
}

// restart crashes the binary and starts it again on the same store and tenant.
func (e *env) restart() {
	e.kill()
	e.start()
}

var seq atomic.Int64 // tests may run in parallel

func eventID() string { return fmt.Sprintf("evt-%d-%d", time.Now().UnixNano(), seq.Add(1)) }

// send enqueues an event as Service Bus would deliver it and waits until it
// is completed or dead-lettered.
func (e *env) send(typ string, data map[string]string) string {
	e.t.Helper()
	id := eventID()
	body, err := cli.BuildEvent(id, typ, "/e2e", time.Now(), data)
	if err != nil {
		e.t.Fatalf("build %s: %v", typ, err)
	}
	e.sendRaw(body)
	return id
}

func (e *env) sendRaw(body []byte) {
	e.t.Helper()
	e.host.Enqueue(body)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.host.WaitIdle(ctx); err != nil {
		e.t.Fatalf("queue not idle: %v", err)
	}
}

func (e *env) sweep() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.host.FireTimer(ctx, "ExpirySweep"); err != nil {
		e.t.Fatalf("sweep: %v\n%s", err, e.proc.output())
	}
}

// view is the read API's JSON for one request.
type view struct {
	ID           string `json:"id"`
	Source       string `json:"source"`
	State        string `json:"state"`
	Requester    string `json:"requester"`
	RequesterUPN string `json:"requesterUpn"`
	Profile      string `json:"profile"`
	GroupID      string `json:"groupId"`
	Duration     string `json:"duration"`
	RequestedAt  string `json:"requestedAt"`
	ActivatedAt  string `json:"activatedAt"`
	EndsAt       string `json:"endsAt"`
	EndedAt      string `json:"endedAt"`
	Reason       string `json:"reason"`
	Approvals    []struct {
		Approver string `json:"approver"`
		At       string `json:"at"`
	} `json:"approvals"`
	History []struct {
		At     string `json:"at"`
		Type   string `json:"type"`
		Actor  string `json:"actor"`
		Detail string `json:"detail"`
	} `json:"history"`
}

func (v view) types() []string {
	var out []string
	for _, h := range v.History {
		out = append(out, h.Type)
	}
	return out
}

func (v view) has(typ string) int {
	n := 0
	for _, h := range v.History {
		if h.Type == typ {
			n++
		}
	}
	return n
}

// get reads a request through the host's forwarded HTTP route.
func (e *env) get(id string) (view, int) {
	e.t.Helper()
	resp, err := http.Get(e.host.URL() + "/api/requests/" + id)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v view
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &v); err != nil {
			e.t.Fatalf("GET %s: %v: %s", id, err, b)
		}
	}
	return v, resp.StatusCode
}

func (e *env) mustGet(id string) view {
	e.t.Helper()
	v, code := e.get(id)
	if code != http.StatusOK {
		e.t.Fatalf("GET %s: %d\n%s", id, code, lastLines(e.proc.output(), 30))
	}
	return v
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logLines parses the binary's JSON log.
func (e *env) logLines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(e.proc.output()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// waitUntil polls cond (bounded) — for effects that follow an answered call.
func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
