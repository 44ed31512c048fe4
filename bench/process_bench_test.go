package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/azuritetest"
	"github.com/jitaccess/jitaccess/internal/devhost"
	"github.com/jitaccess/jitaccess/internal/seed"
	"github.com/jitaccess/jitaccess/internal/tablestore"
)

// binaryPath is JIT_BENCH_BINARY, else dist/jitaccess (make build), else a
// build with the same flags into a temporary directory.
func binaryPath(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("JIT_BENCH_BINARY"); p != "" {
		return p
	}
	p := filepath.Join(repoRoot(), "dist", "jitaccess")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	p = filepath.Join(b.TempDir(), "jitaccess")
	cmd := exec.Command("go", "build", "-p", "2", "-trimpath", "-ldflags", "-s -w", "-o", p, ".")
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	return p
}

func freePort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// deployment is what the binary needs: Azurite tables, the tenant, the token
// endpoint and a profiles file.
type deployment struct {
	bin, tables, prefix, profiles string
	ten                           *tenant
}

func newDeployment(b *testing.B) *deployment {
	d := &deployment{bin: binaryPath(b), tables: azuritetest.Start(b), prefix: azuritetest.Prefix(b), ten: newTenant(b, 0)}
	raw, _ := json.Marshal(map[string]any{"profiles": []any{map[string]any{
		"name": "aks-admin", "targetGroupId": seed.GroupAKSAdmin,
		"eligibleGroupIds": []string{seed.GroupAKSDefault}, "approverGroupIds": []string{seed.GroupAKSApprovers},
		"approvalsRequired": 1, "defaultDuration": "PT1H", "maxDuration": "PT8H", "approvalTimeout": "PT24H",
		"requireJustification": true, "activation": "membership", "revokeSessionsOnEnd": true, "outOfBand": "record"}}})
	d.profiles = filepath.Join(b.TempDir(), "profiles.json")
	if err := os.WriteFile(d.profiles, raw, 0o644); err != nil {
		b.Fatal(err)
	}
	return d
}

type proc struct {
	cmd  *exec.Cmd
	port int
	done chan struct{}
}

// start execs the binary as the Functions host does.
func (d *deployment) start(b *testing.B) *proc {
	port := freePort(b)
	cmd := exec.Command(d.bin)
	cmd.Env = []string{
		"FUNCTIONS_CUSTOMHANDLER_PORT=" + strconv.Itoa(port),
		"JIT_TABLES_CONNECTION_STRING=" + d.tables,
		"JIT_TABLE_PREFIX=" + d.prefix,
		"JIT_GRAPH_BASE_URL=" + d.ten.sim.BaseURL(),
		"JIT_PROFILES_FILE=" + d.profiles,
		"IDENTITY_ENDPOINT=" + d.ten.ids.Endpoint(),
		"IDENTITY_HEADER=" + d.ten.ids.Header(),
		"JIT_LOG_LEVEL=warn",
		// Reads come signed in (readerGet), as behind App Service Authentication.
		"WEBSITE_AUTH_ENABLED=True",
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &proc{cmd: cmd, port: port, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) url(path string) string { return "http://127.0.0.1:" + strconv.Itoa(p.port) + path }

// readerGet reads u as a signed-in operator with the read role (the
// headers App Service Authentication adds; docs/design.md, The read API "Who may read").
func readerGet(client *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	devhost.SignInHeaders(req.Header, devhost.LocalOperatorObjectID, devhost.LocalOperatorName, devhost.DefaultReadRole)
	return client.Do(req)
}

// waitHealthy polls /api/health every millisecond until it answers 200.
func (p *proc) waitHealthy(b *testing.B, client *http.Client) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := client.Get(p.url("/api/health"))
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			b.Fatal("the binary exited before it was healthy")
		case <-time.After(time.Millisecond):
		}
	}
	b.Fatal("not healthy within 30 s")
}

// memKB reads VmRSS and VmHWM (peak) of pid, in KiB.
func memKB(b *testing.B, pid int) (rss, hwm int64) {
	m := procStatus(b, pid)
	return m["VmRSS:"], m["VmHWM:"]
}

// procStatus reads the kB fields of /proc/pid/status.
func procStatus(b *testing.B, pid int) map[string]int64 {
	m := map[string]int64{}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 {
			if v, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
				m[fields[0]] = v
			}
		}
	}
	return m
}

// reportRSSParts reports the resident memory of pid by kind: anonymous
// (heap, stacks: what the program allocates) and file (the mapped
// executable's pages that were touched).
func reportRSSParts(b *testing.B, pid int, prefix string) {
	m := procStatus(b, pid)
	b.ReportMetric(float64(m["RssAnon:"])/1024, prefix+"-anon-MiB")
	b.ReportMetric(float64(m["RssFile:"])/1024, prefix+"-file-MiB")
}

// BenchmarkColdStart: exec of the built binary → first 200 from
// /api/health (the store answers), 20 starts (JIT_BENCH_STARTS), against
// Azurite; reports the median and the idle RSS after the start, and the
// binary's size.
func BenchmarkColdStart(b *testing.B) {
	d := newDeployment(b)
	fi, err := os.Stat(d.bin)
	if err != nil {
		b.Fatal(err)
	}
	starts := 20
	if n, err := strconv.Atoi(os.Getenv("JIT_BENCH_STARTS")); err == nil && n > 0 {
		starts = n
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	// One start creates the tables; not counted.
	p := d.start(b)
	p.waitHealthy(b, client)
	p.stop()
	for it := 0; it < b.N; it++ {
		var times []time.Duration
		var rss []time.Duration // KiB, sorted with percentile
		for range starts {
			t0 := time.Now()
			p := d.start(b)
			p.waitHealthy(b, client)
			times = append(times, time.Since(t0))
			time.Sleep(500 * time.Millisecond) // settle: idle
			r, _ := memKB(b, p.cmd.Process.Pid)
			rss = append(rss, time.Duration(r))
			if len(rss) == starts {
				reportRSSParts(b, p.cmd.Process.Pid, "idle")
			}
			p.stop()
		}
		b.ReportMetric(float64(percentile(times, 0.5).Microseconds())/1000, "median-start-ms")
		b.ReportMetric(float64(percentile(times, 0.9).Microseconds())/1000, "p90-start-ms")
		b.ReportMetric(float64(percentile(rss, 0.5))/1024, "idle-rss-MiB")
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "binary-MiB")
}

// BenchmarkMemoryLoaded: RSS of the binary with 10k active grants stored
// (JIT_BENCH_LOADED) after it has listed them all (GET
// /api/requests?state=active, pages of 1000), rendered the dashboard and run
// a sweep.
func BenchmarkMemoryLoaded(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("JIT_BENCH_LOADED")); err == nil && v > 0 {
		n = v
	}
	d := newDeployment(b)
	st, err := tablestore.NewFromConnectionString(d.tables, tablestore.Options{Prefix: d.prefix})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := st.EnsureTables(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.DeleteTables(context.Background()) })
	t0 := time.Now()
	fillActive(b, st, n)
	b.Logf("stored %d active grants in %v", n, time.Since(t0).Round(time.Second))
	client := &http.Client{Timeout: 2 * time.Minute}
	for it := 0; it < b.N; it++ {
		p := d.start(b)
		p.waitHealthy(b, client)
		time.Sleep(500 * time.Millisecond)
		idle, _ := memKB(b, p.cmd.Process.Pid)
		listed := 0
		cont := ""
		for {
			u := p.url("/api/requests?state=active&limit=1000")
			if cont != "" {
				u += "&continuation=" + url.QueryEscape(cont)
			}
			res, err := readerGet(client, u)
			if err != nil {
				b.Fatal(err)
			}
			var page struct {
				Items        []json.RawMessage `json:"items"`
				Continuation string            `json:"continuation"`
			}
			err = json.NewDecoder(res.Body).Decode(&page)
			res.Body.Close()
			if err != nil || res.StatusCode != 200 {
				b.Fatalf("list: %d %v", res.StatusCode, err)
			}
			listed += len(page.Items)
			if page.Continuation == "" {
				break
			}
			cont = page.Continuation
		}
		if res, err := readerGet(client, p.url("/api/dashboard")); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		now := time.Now()
		res, err := client.Post(p.url("/ExpirySweep"), "application/json",
			strings.NewReader(string(timerPayload(now))))
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		time.Sleep(500 * time.Millisecond)
		rss, hwm := memKB(b, p.cmd.Process.Pid)
		reportRSSParts(b, p.cmd.Process.Pid, "loaded")
		p.stop()
		if listed != n {
			b.Fatalf("listed %d of %d active grants", listed, n)
		}
		b.ReportMetric(float64(idle)/1024, "idle-rss-MiB")
		b.ReportMetric(float64(rss)/1024, "loaded-rss-MiB")
		b.ReportMetric(float64(hwm)/1024, "peak-rss-MiB")
	}
}

// fillActive stores n active grants (due in an hour) through SaveRequest
// with 16 workers.
func fillActive(b *testing.B, st *tablestore.Store, n int) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	now := time.Now().UTC()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				r := activeRequest(fmt.Sprintf("load-%07d", i), i, now)
				var err error
				for try := 0; try < 5; try++ {
					if err = st.SaveRequest(ctx, r); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
					if _, gerr := st.GetRequest(ctx, r.ID); gerr == nil {
						err = nil
						break
					}
				}
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("fill: %v", err)
	}
}

// activeRequest is an active grant as the broker leaves it.
func activeRequest(id string, i int, now time.Time) *access.Request {
	at := now.Add(-time.Minute)
	r := &access.Request{
		ID: id, Source: access.SourceEvents, State: access.Active,
		Requester: benchUserID(i), RequesterUPN: fmt.Sprintf("bench%05d@contoso.com", i),
		Profile: "aks-admin", GroupID: seed.GroupAKSAdmin,
		Duration: access.Duration(2 * time.Hour), Justification: "bench " + strconv.Itoa(i), Ticket: "INC-" + strconv.Itoa(i),
		RequestedAt: at, ApprovalsRequired: 1,
		Approvals:   []access.Approval{{Approver: seed.UserP01, ApproverUPN: seed.UPN("p01"), At: at}},
		ActivatedAt: at, EndsAt: at.Add(2 * time.Hour),
		History: []access.HistoryEntry{
			{At: at, Type: access.HRequested, Actor: "requester", EventID: "ev-r-" + id},
			{At: at, Type: access.HApproved, Actor: "p01", EventID: "ev-a-" + id},
			{At: at, Type: access.HActivated, Actor: access.System},
		},
		EventIDs: []string{"ev-r-" + id, "ev-a-" + id},
	}
	r.DueAt = r.EndsAt
	return r
}

func timerPayload(now time.Time) []byte {
	return devhost.TimerPayload("ExpirySweep", "timer", now.Add(-time.Minute), now.Add(time.Minute), now, false)
}
