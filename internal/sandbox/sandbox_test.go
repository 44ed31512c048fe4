package sandbox

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/cli"
	"github.com/jitaccess/jitaccess/internal/policy"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// repoRoot is the function app folder (host.json, functions/).
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}()

// The sandbox grants through its whole wiring: an event queued on the host
// stand-in is applied by the handler, the approval adds the membership in
// the simulated tenant with a token from the local identity endpoint, and
// the process environment is left as it was.
func TestSandboxGrants(t *testing.T) {
	for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT"} {
		if v, ok := os.LookupEnv(k); ok {
			t.Skipf("%s is set in this environment (%q)", k, v)
		}
	}
	profiles, err := policy.LoadFile(filepath.Join(repoRoot, "profiles.sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb, err := start(ctx, options{Addr: "127.0.0.1:0", AppDir: repoRoot, Sweep: "0 0 0 1 1 *", Profiles: profiles,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.stop()
	for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT"} {
		if v, ok := os.LookupEnv(k); ok {
			t.Fatalf("the sandbox set %s=%q", k, v)
		}
	}
	send := func(id, typ string, data map[string]string) {
		t.Helper()
		data["requestId"] = "sbx-grant"
		body, err := cli.BuildEvent(id, typ, "/sandbox-test", time.Now(), data)
		if err != nil {
			t.Fatal(err)
		}
		sb.host.Enqueue(body)
	}
	send("e-1", access.TypeRequested, map[string]string{"requester": seed.UPN("n01"), "profile": "aks-admin",
		"duration": "PT1H", "justification": "sandbox test"})
	send("e-2", access.TypeApproved, map[string]string{"approver": seed.UPN("p01")})
	n01, ok := sb.graph.User(seed.UPN("n01"))
	if !ok {
		t.Fatal("n01 not in the simulated tenant")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := sb.store.GetRequest(ctx, "sbx-grant")
		if err == nil && r.State == access.Active && sb.graph.IsDirectMember(seed.GroupAKSAdmin, n01.ID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not granted: %+v %v (dead letters %v)", r, err, sb.host.DeadLetters())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(sb.ids.IssuedTokens()) == 0 {
		t.Fatal("no token issued by the identity endpoint")
	}
}

// Flags: --help prints the usage; a bad flag is a usage error.
func TestRunFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), []string{"--help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "usage: jitaccess sandbox") {
		t.Fatalf("--help: %d %q", code, out.String())
	}
	if code := Run(context.Background(), []string{"--nope"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "bad arguments") {
		t.Fatalf("--nope: %d %q", code, errOut.String())
	}
}
