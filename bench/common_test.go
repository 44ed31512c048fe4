package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/azuritetest"
	"github.com/jitaccess/jitaccess/internal/cli"
	"github.com/jitaccess/jitaccess/internal/graph"
	"github.com/jitaccess/jitaccess/internal/graphsim"
	"github.com/jitaccess/jitaccess/internal/idsim"
	"github.com/jitaccess/jitaccess/internal/policy"
	"github.com/jitaccess/jitaccess/internal/seed"
)

func TestMain(m *testing.M) { os.Exit(azuritetest.Main(m)) }

// repoRoot is the module root (for functions/*/function.json and the build).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
}

// benchProfiles: aks-admin needs one approval (the full lifecycle), oncall
// is auto-approved. Both in membership mode with session revocation.
func benchProfiles(tb testing.TB) *policy.Set {
	tb.Helper()
	p := func(name string, approvals int) map[string]any {
		return map[string]any{
			"name": name, "targetGroupId": seed.GroupAKSAdmin,
			"eligibleGroupIds": []string{seed.GroupAKSDefault}, "approverGroupIds": []string{seed.GroupAKSApprovers},
			"approvalsRequired": approvals, "defaultDuration": "PT1H", "maxDuration": "PT8H",
			"approvalTimeout": "PT24H", "requireJustification": true, "activation": "membership",
			"revokeSessionsOnEnd": true, "outOfBand": "record",
		}
	}
	raw, _ := json.Marshal(map[string]any{"profiles": []any{p("aks-admin", 1), p("aks-admin-oncall", 0)}})
	s, err := policy.Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// tenant is the simulated Graph tenant, its token endpoint and the real
// Graph client (msgraph-sdk-go through internal/graph) pointed at it.
type tenant struct {
	sim   *graphsim.Sim
	ids   *idsim.Server
	dir   *graph.Client
	cred  azcore.TokenCredential
	users []string // ids of the benchmark users (eligible: in aks-default)
}

// benchUserID is the object id of benchmark user i.
func benchUserID(i int) string { return fmt.Sprintf("b0b00000-0000-4000-8000-%012d", i) }

func newTenant(tb testing.TB, nUsers int) *tenant {
	tb.Helper()
	ids := idsim.New(idsim.Options{})
	ids.Start()
	tb.Cleanup(ids.Close)
	tb.Setenv("IDENTITY_ENDPOINT", ids.Endpoint())
	tb.Setenv("IDENTITY_HEADER", ids.Header())
	os.Unsetenv("MSI_ENDPOINT")
	sim := graphsim.New(graphsim.Options{Verify: ids.Verify}).SeedTenant()
	t := &tenant{sim: sim, ids: ids}
	for i := range nUsers {
		id := benchUserID(i)
		sim.AddUser(graphsim.User{ID: id, UPN: fmt.Sprintf("bench%05d@contoso.com", i), DisplayName: "bench", Enabled: true})
		sim.AddMember(seed.GroupAKSDefault, id)
		t.users = append(t.users, id)
	}
	sim.Start()
	tb.Cleanup(sim.Close)
	cred, err := graph.NewManagedIdentityCredential("")
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := graph.New(cred, graph.Options{BaseURL: sim.BaseURL()})
	if err != nil {
		tb.Fatal(err)
	}
	t.dir, t.cred = dir, cred
	return t
}

var evSeq int

// event builds a CloudEvent body as senders do (cli.BuildEvent).
func event(tb testing.TB, typ string, data map[string]string) (id string, body []byte) {
	evSeq++
	id = fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), evSeq)
	body, err := cli.BuildEvent(id, typ, "/bench", time.Now().UTC(), data)
	if err != nil {
		tb.Fatal(err)
	}
	return id, body
}

func requested(tb testing.TB, reqID, user, profile, duration string) []byte {
	_, b := event(tb, access.TypeRequested, map[string]string{
		"requestId": reqID, "requester": user, "profile": profile, "duration": duration, "justification": "bench"})
	return b
}

func approved(tb testing.TB, reqID string) []byte {
	_, b := event(tb, access.TypeApproved, map[string]string{"requestId": reqID, "approver": seed.UPN("p01"), "comment": "ok"})
	return b
}

func expire(tb testing.TB, reqID string) []byte {
	_, b := event(tb, access.TypeExpire, map[string]string{"requestId": reqID})
	return b
}

// callKind names a Graph call without the ids in its path.
func callKind(c graphsim.Call) string {
	seg := strings.Split(strings.Trim(c.Path, "/"), "/")
	for i := range seg {
		if i%2 == 1 && seg[i] != "$ref" && seg[0] != "identityGovernance" {
			seg[i] = "{id}"
		}
	}
	return c.Method + " /" + strings.Join(seg, "/")
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(p*float64(len(s))+0.999999) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(s) {
		k = len(s) - 1
	}
	return s[k]
}

func ctxTimeout(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}
