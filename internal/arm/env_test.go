package arm

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/jitaccess/jitaccess/internal/armsim"
	"github.com/jitaccess/jitaccess/internal/idsim"
)

const (
	appClientID = "a9900000-0000-4000-8000-0000000000a1" // the app's user-assigned identity
	appObjectID = "0b100000-0000-4000-8000-0000000000a1"

	sub      = "5b5b0000-0000-4000-8000-000000000001"
	rg       = "rg-aks"
	cluster  = "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/Microsoft.ContainerService/managedClusters/aks1"
	nsScope  = cluster + "/namespaces/team-a"
	subScope = "/subscriptions/" + sub
	rgScope  = subScope + "/resourceGroups/" + rg

	roleAdmin  = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b" // Azure Kubernetes Service RBAC Cluster Admin
	roleReader = "7f6c6a51-bcf8-42ba-9220-52d62157d7db" // Azure Kubernetes Service RBAC Reader

	userN01 = "0a0a0000-0000-4000-8000-00000000000a"
	userP01 = "0b0b0000-0000-4000-8000-00000000000b"
)

var fullAdmin = "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + roleAdmin

// One token endpoint for the whole package: MSAL caches managed identity
// tokens process-wide per identity and resource.
var ids *idsim.Server

func TestMain(m *testing.M) {
	ids = idsim.New(idsim.Options{UserAssigned: []idsim.Identity{{ClientID: appClientID, ObjectID: appObjectID}}}).Start()
	code := m.Run()
	ids.Close()
	os.Exit(code)
}

// usedURLs are the sim URLs this process has served: a sim on the port of
// an earlier one would find MSAL's cached token for that resource and ask
// idsim nothing.
var usedURLs sync.Map

func startSim(t *testing.T, opts armsim.Options) *armsim.Sim {
	t.Helper()
	var spare []*armsim.Sim
	defer func() {
		for _, s := range spare {
			s.Close()
		}
	}()
	for range 50 {
		sim := armsim.New(opts).AddScope(cluster).AddRoleDefinition(roleAdmin, roleReader).Start()
		if _, seen := usedURLs.LoadOrStore(sim.URL(), true); !seen {
			t.Cleanup(sim.Close)
			return sim
		}
		spare = append(spare, sim)
	}
	t.Fatal("no fresh port for armsim")
	return nil
}

type env struct {
	sim *armsim.Sim
	c   *Client
	aud *atomic.Pointer[string] // the audience the sim accepts
}

// newEnv starts an armsim that only accepts idsim tokens for its own
// audience (or aud, when set), points azidentity at idsim through
// IDENTITY_ENDPOINT, IDENTITY_HEADER and AZURE_CLIENT_ID, and builds a
// Client on the real ManagedIdentityCredential.
func newEnv(t *testing.T, simOpts armsim.Options, opts Options) *env {
	t.Helper()
	aud := &atomic.Pointer[string]{}
	simOpts.Verify = func(tok string) bool {
		a := aud.Load()
		return a != nil && ids.VerifyAudience(*a)(tok)
	}
	sim := startSim(t, simOpts)
	if opts.Scope == "" {
		u := sim.URL()
		aud.Store(&u)
	} else {
		a := opts.Scope[:len(opts.Scope)-len("/.default")]
		aud.Store(&a)
	}
	ids.Setenv(t)
	t.Setenv("AZURE_CLIENT_ID", appClientID)
	cred, err := managedIdentityCredential(os.Getenv("AZURE_CLIENT_ID"))
	if err != nil {
		t.Fatal(err)
	}
	opts.BaseURL = sim.BaseURL()
	if opts.BaseBackoff == 0 {
		opts.BaseBackoff = 10 * time.Millisecond
	}
	if opts.AttemptTimeout == 0 {
		opts.AttemptTimeout = 20 * time.Second // generous under -race; ctxT bounds every test
	}
	c, err := New(cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, c: c, aud: aud}
}

// recordSleeps makes e's client record its waits between attempts and,
// instead of sleeping, call advance (nil: do not wait at all).
func (e *env) recordSleeps(advance func(time.Duration)) func() []time.Duration {
	var mu sync.Mutex
	var waits []time.Duration
	e.c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		if advance != nil {
			advance(d)
		}
		return ctx.Err()
	}
	return func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), waits...)
	}
}

var testCtxs sync.Map // *testing.T → context.Context

// ctxT is the test's context: one deadline, 45s after the first call.
func ctxT(t *testing.T) context.Context {
	if ctx, ok := testCtxs.Load(t); ok {
		return ctx.(context.Context)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	testCtxs.Store(t, ctx)
	t.Cleanup(func() {
		cancel()
		testCtxs.Delete(t)
	})
	return ctx
}

// managedIdentityCredential returns azidentity's managed identity
// credential: the user-assigned identity clientID when not empty (the
// app's AZURE_CLIENT_ID), else the system-assigned one (the app makes its
// own with graph.NewManagedIdentityCredential; the adapter's tests do not
// import the Graph SDK).
func managedIdentityCredential(clientID string) (azcore.TokenCredential, error) {
	var o *azidentity.ManagedIdentityCredentialOptions
	if clientID != "" {
		o = &azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(clientID)}
	}
	return azidentity.NewManagedIdentityCredential(o)
}
