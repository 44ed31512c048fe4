package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abs "github.com/microsoft/kiota-abstractions-go"

	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/graphsim"
	"github.com/jitaccess/jitaccess/internal/idsim"
	"github.com/jitaccess/jitaccess/internal/seed"
)

const (
	appClientID = "a9900000-0000-4000-8000-0000000000a1" // the app's user-assigned identity
	appObjectID = "0b100000-0000-4000-8000-0000000000a1"
)

// One token endpoint for the whole package: MSAL caches managed identity
// tokens process-wide per identity and resource, so a token cached from an
// earlier test must still verify.
var ids *idsim.Server

func TestMain(m *testing.M) {
	ids = idsim.New(idsim.Options{UserAssigned: []idsim.Identity{{ClientID: appClientID, ObjectID: appObjectID}}}).Start()
	code := m.Run()
	ids.Close()
	os.Exit(code)
}

// usedURLs are the sim URLs this process has served. MSAL caches tokens
// process-wide by identity and resource (the sim URL): a sim that got the
// port of an earlier one would find a token cached and ask idsim nothing,
// so tests that count token requests would see none.
var usedURLs sync.Map

// startSim starts a sim on a URL no earlier sim of this process had.
func startSim(t *testing.T, opts graphsim.Options) *graphsim.Sim {
	t.Helper()
	var spare []*graphsim.Sim
	defer func() {
		for _, s := range spare {
			s.Close()
		}
	}()
	for range 50 {
		sim := graphsim.New(opts).SeedTenant().Start()
		if _, seen := usedURLs.LoadOrStore(sim.URL(), true); !seen {
			t.Cleanup(sim.Close)
			return sim
		}
		spare = append(spare, sim) // held open until we have a new port
	}
	t.Fatal("no fresh port for graphsim")
	return nil
}

type env struct {
	sim *graphsim.Sim
	c   *Client
}

// newEnv starts a seeded graphsim that only accepts idsim tokens for its
// own audience, points azidentity at idsim through IDENTITY_ENDPOINT,
// IDENTITY_HEADER and AZURE_CLIENT_ID, and builds a Client on the real
// ManagedIdentityCredential.
func newEnv(t *testing.T, simOpts graphsim.Options, opts Options) *env {
	t.Helper()
	var aud atomic.Pointer[string]
	simOpts.Verify = func(tok string) bool {
		a := aud.Load()
		return a != nil && ids.VerifyAudience(*a)(tok)
	}
	sim := startSim(t, simOpts)
	u := sim.URL()
	aud.Store(&u)

	ids.Setenv(t)
	t.Setenv("AZURE_CLIENT_ID", appClientID)
	cred, err := NewManagedIdentityCredential(os.Getenv("AZURE_CLIENT_ID"))
	if err != nil {
		t.Fatal(err)
	}
	opts.BaseURL = sim.BaseURL()
	if opts.BaseBackoff == 0 {
		opts.BaseBackoff = 10 * time.Millisecond
	}
	if opts.AttemptTimeout == 0 {
		// Generous: under -race on a loaded machine the first attempt
		// also fetches the token. ctxT still bounds every test.
		opts.AttemptTimeout = 20 * time.Second
	}
	c, err := New(cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, c: c}
}

// warm fetches and caches the token for e's sim, so later attempts with
// tight time limits spend them on Graph, not on idsim.
func (e *env) warm(t *testing.T) {
	t.Helper()
	if _, err := e.c.Self(ctxT(t)); err != nil {
		t.Fatalf("warming the token: %v", err)
	}
}

// recordSleeps makes e's client record its waits between attempts (then
// wait as before).
func (e *env) recordSleeps() func() []time.Duration {
	var mu sync.Mutex
	var waits []time.Duration
	e.c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return sleepCtx(ctx, d)
	}
	return func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), waits...)
	}
}

// testCtxs holds each running test's context (see ctxT).
var testCtxs sync.Map // *testing.T → context.Context

// ctxT is the test's context: one deadline, 45s after the first call, for
// every call of the test (subtests use their parent's), so that no test
// blocks much longer than that whatever goes wrong.
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

func TestManagedIdentityChain(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	before := len(ids.Requests())
	if _, err := e.c.LookupUser(ctxT(t), seed.UserN01); err != nil {
		t.Fatal(err)
	}
	reqs := ids.Requests()[before:]
	if len(reqs) != 1 {
		t.Fatalf("token requests %+v", reqs)
	}
	r := reqs[0]
	if r.APIVersion != idsim.APIVersion || r.ClientID != appClientID || r.Resource != e.sim.URL() || r.Status != 200 {
		t.Fatalf("token request %+v (want resource %s)", r, e.sim.URL())
	}
	// The token is cached: a second call asks nothing more of the endpoint.
	if _, err := e.c.LookupUser(ctxT(t), seed.UserP01); err != nil {
		t.Fatal(err)
	}
	if n := len(ids.Requests()) - before; n != 1 {
		t.Fatalf("%d token requests for two calls", n)
	}
}

func TestSelf(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	s, err := e.c.Self(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.AppID != appClientID || s.ObjectID != appObjectID || s.TenantID != idsim.DefaultTenantID {
		t.Fatalf("got %+v", s)
	}
}

func TestSystemAssignedIdentity(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	cred, err := NewManagedIdentityCredential("")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cred, Options{BaseURL: e.sim.BaseURL()})
	if err != nil {
		t.Fatal(err)
	}
	before := len(ids.Requests())
	if _, err := c.LookupUser(ctxT(t), seed.UserN01); err != nil {
		t.Fatal(err)
	}
	if r := ids.Requests()[before]; r.ClientID != "" || r.Resource != e.sim.URL() {
		t.Fatalf("token request %+v", r)
	}
}

func TestUnassignedIdentityIsPermanent(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	cred, err := NewManagedIdentityCredential("a9900000-0000-4000-8000-00000000dead")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cred, Options{BaseURL: e.sim.BaseURL()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.LookupUser(ctxT(t), seed.UserN01)
	if !fault.Permanent(err) {
		t.Fatalf("want permanent, got %v", err)
	}
	if e.sim.CountCalls("", "") != 0 {
		t.Fatal("Graph was called without a token")
	}
}

func TestLookupUser(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	tests := []struct {
		name, key      string
		id, upn        string
		enabled, guest bool
		notFound       bool
	}{
		{"by id", seed.UserN01, seed.UserN01, "n01@contoso.com", true, false, false},
		{"upper-case id", strings.ToUpper(seed.UserN01), seed.UserN01, "n01@contoso.com", true, false, false},
		{"by upn", "N01@CONTOSO.com", seed.UserN01, "n01@contoso.com", true, false, false},
		{"disabled", seed.UPN("d01"), seed.UserD01, "d01@contoso.com", false, false, false},
		{"guest by upn with #", seed.GuestUPN, seed.UserG01, seed.GuestUPN, true, true, false},
		{"guest by id", seed.UserG01, seed.UserG01, seed.GuestUPN, true, true, false},
		{"unknown id", "5e5e0000-0000-4000-8000-0000000000ff", "", "", false, false, true},
		{"unknown upn", "nobody@contoso.com", "", "", false, false, true},
		{"empty", "", "", "", false, false, true},
		{"dot-dot", "..", "", "", false, false, true},
	}
	ctx := ctxT(t) // one deadline for the subtests too
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := e.c.LookupUser(ctx, tc.key)
			if tc.notFound {
				if !fault.NotFound(err) {
					t.Fatalf("want not found, got %v %+v", err, u)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.ID != tc.id || u.UPN != tc.upn || u.Enabled != tc.enabled || u.Guest != tc.guest {
				t.Fatalf("got %+v", u)
			}
		})
	}
	// The guest UPN travelled path-escaped, with $select.
	var saw bool
	for _, c := range e.sim.Calls() {
		if strings.Contains(c.RawPath, "g01_fabrikam.com%23EXT%23") {
			saw = true
			if !strings.Contains(c.Query, "select=id,userPrincipalName,accountEnabled,userType") {
				t.Fatalf("query %q", c.Query)
			}
		}
	}
	if !saw {
		t.Fatal("guest UPN not sent escaped")
	}
}

func TestMemberOfAny(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	eligible := []string{seed.GroupAKSDefault}
	approvers := []string{seed.GroupAKSApprovers}
	tests := []struct {
		name, user string
		groups     []string
		want       []string
	}{
		{"direct", seed.UserN01, eligible, eligible},
		{"nested eligible", seed.UserN02, eligible, eligible},
		{"nested approver", seed.UserP02, approvers, approvers},
		{"not approver", seed.UserN01, approvers, nil},
		{"no groups", seed.UserX01, append(eligible, approvers...), nil},
		{"disabled still member", seed.UserD02, approvers, approvers},
		{"guest", seed.UserG01, eligible, eligible},
		{"upper-case input", seed.UserA01, []string{strings.ToUpper(seed.GroupAKSApprovers), seed.GroupAKSDefault}, []string{seed.GroupAKSApprovers, seed.GroupAKSDefault}},
		{"none asked", seed.UserN01, nil, nil},
	}
	ctx := ctxT(t) // one deadline for the subtests too
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.c.MemberOfAny(ctx, tc.user, tc.groups)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v want %v", got, tc.want)
			}
		})
	}
	if _, err := e.c.MemberOfAny(ctx, "5e5e0000-0000-4000-8000-0000000000ff", eligible); !fault.NotFound(err) {
		t.Fatalf("unknown user: %v", err)
	}
}

func TestMemberOfAnyChunksAt20(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	var groups []string
	for i := range 43 {
		groups = append(groups, fmt.Sprintf("1c1a0000-0000-4000-8000-%012x", 0x100+i))
	}
	groups = append(groups, seed.GroupAKSApprovers) // 44th: in the third chunk
	got, err := e.c.MemberOfAny(ctxT(t), seed.UserP02, groups)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != seed.GroupAKSApprovers {
		t.Fatalf("got %v", got)
	}
	calls := e.sim.CallsTo("POST", "/checkMemberGroups")
	if len(calls) != 3 {
		t.Fatalf("%d calls", len(calls))
	}
	total := 0
	for _, c := range calls {
		var b struct{ GroupIDs []string }
		if err := json.Unmarshal(c.Body, &b); err != nil || len(b.GroupIDs) > 20 || c.Status != 200 {
			t.Fatalf("call %+v: %v", c, err)
		}
		total += len(b.GroupIDs)
	}
	if total != 44 {
		t.Fatalf("%d ids sent", total)
	}
}

func TestAddRemoveMember(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	ctx := ctxT(t)
	g := seed.GroupAKSAdmin

	added, err := e.c.AddMember(ctx, g, seed.UserN01)
	if err != nil || !added || !e.sim.IsDirectMember(g, seed.UserN01) {
		t.Fatalf("add: %v %v", added, err)
	}
	added, err = e.c.AddMember(ctx, g, seed.UserN01)
	if err != nil || added {
		t.Fatalf("add again: %v %v", added, err)
	}
	// s01 is a standing member: already there, nothing added.
	if added, err = e.c.AddMember(ctx, g, seed.UserS01); err != nil || added {
		t.Fatalf("standing member: %v %v", added, err)
	}
	if _, err = e.c.AddMember(ctx, g, "5e5e0000-0000-4000-8000-0000000000ff"); !fault.NotFound(err) {
		t.Fatalf("unknown user: %v", err)
	}
	if _, err = e.c.AddMember(ctx, "1c1a0000-0000-4000-8000-0000000000ff", seed.UserN01); !fault.NotFound(err) {
		t.Fatalf("unknown group: %v", err)
	}

	removed, err := e.c.RemoveMember(ctx, g, seed.UserN01)
	if err != nil || !removed || e.sim.IsDirectMember(g, seed.UserN01) {
		t.Fatalf("remove: %v %v", removed, err)
	}
	if removed, err = e.c.RemoveMember(ctx, g, seed.UserN01); err != nil || removed {
		t.Fatalf("remove again: %v %v", removed, err)
	}
	if !e.sim.IsDirectMember(g, seed.UserS01) {
		t.Fatal("standing member lost")
	}

	// Wire format: JSON reference body, never compressed.
	for _, c := range e.sim.CallsTo("POST", "/members/$ref") {
		if c.ContentEncoding != "" {
			t.Fatalf("Content-Encoding %q", c.ContentEncoding)
		}
		var b map[string]string
		if err := json.Unmarshal(c.Body, &b); err != nil || !strings.HasPrefix(b["@odata.id"], e.sim.BaseURL()+"/directoryObjects/") {
			t.Fatalf("body %q: %v", c.Body, err)
		}
	}
}

func TestRevokeSessions(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	for _, u := range []string{seed.UserN01, seed.UserD01} {
		if err := e.c.RevokeSessions(ctxT(t), u); err != nil {
			t.Fatal(err)
		}
		if e.sim.RevokeCount(u) != 1 {
			t.Fatalf("%s: count %d", u, e.sim.RevokeCount(u))
		}
	}
	if err := e.c.RevokeSessions(ctxT(t), "5e5e0000-0000-4000-8000-0000000000ff"); !fault.NotFound(err) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestDirectMembers(t *testing.T) {
	e := newEnv(t, graphsim.Options{PageSize: 2}, Options{})
	got, err := e.c.DirectMembers(ctxT(t), seed.GroupAKSDefault)
	if err != nil {
		t.Fatal(err)
	}
	want := e.sim.Members(seed.GroupAKSDefault)
	if len(want) != 6 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v want %v", got, want)
	}
	if n := e.sim.CountCalls("GET", "/members"); n != 3 {
		t.Fatalf("%d pages", n)
	}
	if got, err = e.c.DirectMembers(ctxT(t), seed.GroupAKSOps); err != nil || len(got) != 0 || got == nil {
		t.Fatalf("empty group: %v %v", got, err)
	}
	if _, err = e.c.DirectMembers(ctxT(t), "1c1a0000-0000-4000-8000-0000000000ff"); !fault.NotFound(err) {
		t.Fatalf("unknown group: %v", err)
	}

	e2 := newEnv(t, graphsim.Options{PageSize: 2}, Options{MembersPageSize: 5})
	if got, err = e2.c.DirectMembers(ctxT(t), seed.GroupAKSDefault); err != nil || len(got) != 6 {
		t.Fatalf("$top 5: %v %v", got, err)
	}
	if n := e2.sim.CountCalls("GET", "/members"); n != 2 {
		t.Fatalf("$top 5: %d pages", n)
	}
}

// TestRetryAfterThenSuccessSendsValidBody is the kiota-http-go#183 check:
// a retried POST carries the same valid, uncompressed JSON body and
// succeeds. Ending operations retry after a 429 once its Retry-After has
// passed; routine ones are not retried after a 429 (throttle.go) but are
// after a 503 without Retry-After, with backoff.
func TestRetryAfterThenSuccessSendsValidBody(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	e.sim.SetPIMPolicy(seed.GroupAKSOps, graphsim.PIMPolicy{})
	if _, _, err := e.c.AssignPIM(ctxT(t), seed.GroupAKSOps, seed.UserN02, time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, match, suffix string
		status              int
		retryAfter          time.Duration
		run                 func(ctx context.Context) error
	}{
		{"checkMemberGroups", "POST /checkMemberGroups", "/checkMemberGroups", 503, 0, func(ctx context.Context) error {
			got, err := e.c.MemberOfAny(ctx, seed.UserN01, []string{seed.GroupAKSDefault})
			if err == nil && len(got) != 1 {
				err = fmt.Errorf("got %v", got)
			}
			return err
		}},
		{"members/$ref", "POST /members/$ref", "/members/$ref", 503, 0, func(ctx context.Context) error {
			added, err := e.c.AddMember(ctx, seed.GroupAKSAdmin, seed.UserN01)
			if err == nil && !added {
				err = errors.New("not added")
			}
			return err
		}},
		{"revokeSignInSessions", "POST /revokeSignInSessions", "/revokeSignInSessions", 429, time.Second, func(ctx context.Context) error {
			return e.c.RevokeSessions(ctx, seed.UserN01)
		}},
		{"adminRemove", "POST /assignmentScheduleRequests", "/assignmentScheduleRequests", 429, time.Second, func(ctx context.Context) error {
			return e.c.RemovePIM(ctx, seed.GroupAKSOps, seed.UserN02)
		}},
	}
	ctx := ctxT(t) // one deadline for the subtests too
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.sim.ResetCalls()
			e.sim.FailNext(tc.match, 1, tc.status, tc.retryAfter)
			start := time.Now()
			if err := tc.run(ctx); err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el < tc.retryAfter {
				t.Fatalf("Retry-After not honoured: %v", el)
			}
			calls := e.sim.CallsTo("POST", tc.suffix)
			if len(calls) != 2 || calls[0].Status != tc.status || calls[1].Status/100 != 2 {
				t.Fatalf("calls %+v", calls)
			}
			for _, c := range calls {
				if c.ContentEncoding != "" {
					t.Fatalf("Content-Encoding %q on %+v", c.ContentEncoding, c)
				}
			}
			if string(calls[0].Body) != string(calls[1].Body) {
				t.Fatalf("retried body differs: %q vs %q", calls[0].Body, calls[1].Body)
			}
			if len(calls[1].Body) > 0 && !json.Valid(calls[1].Body) {
				t.Fatalf("retried body not JSON: %q", calls[1].Body)
			}
		})
	}
	if e.sim.RevokeCount(seed.UserN01) != 1 || !e.sim.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.sim.IsDirectMember(seed.GroupAKSOps, seed.UserN02) {
		t.Fatal("effects missing")
	}
}

// TestTransientAfterBoundedRetries: a read retries 5xx answers up to
// MaxRetries, then fails transient. A 429 is not retried by a routine call:
// it closes the gate (throttle.go), and the quota that comes back is for
// ending work; an ending call retries it up to MaxRetries.
func TestTransientAfterBoundedRetries(t *testing.T) {
	ctx := ctxT(t) // one deadline for the subtests too
	for _, st := range []int{429, 500, 502, 503, 504} {
		t.Run(fmt.Sprint(st), func(t *testing.T) {
			e := newEnv(t, graphsim.Options{}, Options{MaxRetries: 3})
			e.sim.FailNext("GET /users/", -1, st, 0)
			_, err := e.c.LookupUser(ctx, seed.UserN01)
			if !fault.Transient(err) {
				t.Fatalf("want transient, got %v", err)
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != st || ae.Code == "" || ae.Message == "" {
				t.Fatalf("APIError %+v", ae)
			}
			want := 4
			if st == 429 {
				want = 1
			}
			if n := e.sim.CountCalls("GET", ""); n != want {
				t.Fatalf("%d attempts, want %d", n, want)
			}
			if st != 429 {
				return
			}
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.RetryAfter != e.c.opts.BaseBackoff {
				t.Fatalf("429 without Retry-After: RetryAfter %+v, want the base backoff", fe)
			}
			// An ending call retries a 429 within its budget.
			e.sim.FailNext("POST /revokeSignInSessions", -1, 429, 0)
			if err := e.c.RevokeSessions(ctx, seed.UserN01); !fault.Transient(err) {
				t.Fatalf("revoke: %v", err)
			}
			if n := e.sim.CountCalls("POST", "/revokeSignInSessions"); n != 4 {
				t.Fatalf("revoke: %d attempts, want 4", n)
			}
		})
	}
}

func TestRetryAfterBeyondBudget(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{MaxRetryWait: 2 * time.Second})
	waits := e.recordSleeps()
	e.sim.FailNext("POST /revokeSignInSessions", -1, 429, 120*time.Second)
	err := e.c.RevokeSessions(ctxT(t), seed.UserN01)
	var fe *fault.Error
	if !fault.Transient(err) || !errors.As(err, &fe) || fe.RetryAfter != 120*time.Second {
		t.Fatalf("got %v (%+v)", err, fe)
	}
	if w := waits(); len(w) != 0 || e.sim.CountCalls("POST", "/revokeSignInSessions") != 1 {
		t.Fatalf("waited %v although Retry-After exceeds the budget", w)
	}

	// The gate stays closed for the 120 s: another ending call is not sent
	// (its budget cannot cover the wait), and says how long is left.
	e.sim.ClearFaults()
	err = e.c.RevokeSessions(ctxT(t), seed.UserN02)
	if !fault.Transient(err) || !errors.As(err, &fe) || fe.RetryAfter < 110*time.Second || !errors.Is(err, errHeldBack) {
		t.Fatalf("while closed: %v (%+v)", err, fe)
	}
	if e.sim.CountCalls("POST", "/revokeSignInSessions") != 1 {
		t.Fatal("sent while the gate was closed")
	}

	// Total waiting is bounded: 1s + 1s fit a 2s budget, the third wait not.
	e = newEnv(t, graphsim.Options{}, Options{MaxRetryWait: 2 * time.Second})
	waits = e.recordSleeps()
	e.sim.FailNext("POST /revokeSignInSessions", -1, 503, time.Second)
	err = e.c.RevokeSessions(ctxT(t), seed.UserN01)
	if !fault.Transient(err) || !errors.As(err, &fe) || fe.RetryAfter != time.Second {
		t.Fatalf("got %v", err)
	}
	if n := e.sim.CountCalls("POST", "/revokeSignInSessions"); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	// The waits are for the gate the 503's Retry-After closed: from the
	// answer's arrival, so a hair under the second.
	w := waits()
	if len(w) != 2 {
		t.Fatalf("waits %v, want two of about 1s", w)
	}
	for _, d := range w {
		if d > time.Second || d < 800*time.Millisecond {
			t.Fatalf("waits %v, want two of about 1s", w)
		}
	}
}

func TestPermanent(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	e.sim.FailNext("POST /members/$ref", 1, 403, 0)
	_, err := e.c.AddMember(ctxT(t), seed.GroupAKSAdmin, seed.UserN01)
	if !fault.Permanent(err) || !strings.Contains(err.Error(), "Authorization_RequestDenied") || !strings.Contains(err.Error(), "Insufficient privileges") {
		t.Fatalf("403: %v", err)
	}
	if n := e.sim.CountCalls("POST", "/members/$ref"); n != 1 {
		t.Fatalf("403 retried: %d", n)
	}
	e.sim.FailNextWith("DELETE", 1, 400, "Request_BadRequest", "Invalid object identifier.", 0)
	if _, err = e.c.RemoveMember(ctxT(t), seed.GroupAKSAdmin, seed.UserS01); !fault.Permanent(err) {
		t.Fatalf("other 400: %v", err)
	}
	e.sim.FailNext("GET", 1, 401, 0)
	if _, err = e.c.LookupUser(ctxT(t), seed.UserN01); !fault.Permanent(err) {
		t.Fatalf("401: %v", err)
	}
}

func TestTokenRejectedByGraphIsPermanent(t *testing.T) {
	// A Graph that does not accept this audience (tokens for another host).
	sim := startSim(t, graphsim.Options{Verify: ids.VerifyAudience("https://graph.microsoft.com")})
	ids.Setenv(t)
	cred, err := NewManagedIdentityCredential(appClientID)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cred, Options{BaseURL: sim.BaseURL()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.LookupUser(ctxT(t), seed.UserN01)
	if !fault.Permanent(err) || !strings.Contains(err.Error(), "InvalidAuthenticationToken") {
		t.Fatalf("got %v", err)
	}
}

func TestWritesNotRetriedWhenAmbiguous(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	for _, st := range []int{500, 502, 504} {
		e.sim.ResetCalls()
		e.sim.FailNext("POST /members/$ref", 1, st, 0)
		if _, err := e.c.AddMember(ctxT(t), seed.GroupAKSAdmin, seed.UserN01); !fault.Transient(err) {
			t.Fatalf("%d: %v", st, err)
		}
		if n := e.sim.CountCalls("POST", "/members/$ref"); n != 1 {
			t.Fatalf("%d: add retried (%d calls)", st, n)
		}
	}
	e.sim.ResetCalls()
	e.sim.FailNext("POST /members/$ref", 1, 503, 0)
	if added, err := e.c.AddMember(ctxT(t), seed.GroupAKSAdmin, seed.UserN01); err != nil || !added {
		t.Fatalf("503 then success: %v %v", added, err)
	}
	e.sim.ResetCalls()
	e.sim.FailNext("DELETE", 1, 504, 0)
	if _, err := e.c.RemoveMember(ctxT(t), seed.GroupAKSAdmin, seed.UserN01); !fault.Transient(err) {
		t.Fatalf("remove 504: %v", err)
	}
	if n := e.sim.CountCalls("DELETE", ""); n != 1 || !e.sim.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatalf("remove retried (%d calls)", n)
	}
}

func TestDeadlineIsTransient(t *testing.T) {
	// The delays are far beyond every limit below: each call is cut by a
	// deadline, never answered (the sim drops delayed answers on Close).
	e := newEnv(t, graphsim.Options{}, Options{})
	e.warm(t)
	e.sim.Delay("POST /checkMemberGroups", 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.c.MemberOfAny(ctx, seed.UserN01, []string{seed.GroupAKSDefault})
	if !fault.Transient(err) {
		t.Fatalf("got %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("did not stop at the deadline (%v)", el)
	}

	// Per-attempt timeout: each slow attempt is cut, retried, then transient.
	e2 := newEnv(t, graphsim.Options{}, Options{AttemptTimeout: 2 * time.Second, MaxRetries: 1})
	e2.warm(t)
	e2.sim.Delay("GET /users/", 30*time.Second)
	if _, err := e2.c.LookupUser(ctxT(t), seed.UserN01); !fault.Transient(err) {
		t.Fatalf("attempt timeout: %v", err)
	}
	if n := e2.sim.CountCalls("GET", ""); n != 2 {
		t.Fatalf("%d attempts", n)
	}
}

func TestConnectionReset(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{MaxRetries: 2})
	// Always reset: transient once retries are spent.
	e.sim.ResetNext("GET /users/", -1)
	if _, err := e.c.LookupUser(ctxT(t), seed.UserN01); !fault.Transient(err) {
		t.Fatalf("lookup: %v", err)
	}
	e.sim.ClearFaults()

	// A reset on an idempotent action is retried.
	e.sim.ResetNext("POST /revokeSignInSessions", 1)
	if err := e.c.RevokeSessions(ctxT(t), seed.UserN01); err != nil {
		t.Fatalf("revoke after one reset: %v", err)
	}
	if e.sim.RevokeCount(seed.UserN01) != 1 {
		t.Fatal("not revoked")
	}

	// A reset on add is ambiguous: transient, not retried.
	e.sim.ResetNext("POST /members/$ref", 1)
	_, err := e.c.AddMember(ctxT(t), seed.GroupAKSAdmin, seed.UserN01)
	if !fault.Transient(err) {
		t.Fatalf("add: %v", err)
	}
	if strings.Contains(err.Error(), "http://") {
		t.Fatalf("error leaks the URL: %v", err)
	}
	if n := e.sim.CountCalls("POST", "/members/$ref"); n != 1 {
		t.Fatalf("add retried: %d", n)
	}
}

func TestDefaultScopeAndOptions(t *testing.T) {
	for in, want := range map[string]string{
		"https://graph.microsoft.com/v1.0":             "https://graph.microsoft.com/.default",
		"http://127.0.0.1:8123/v1.0":                   "http://127.0.0.1:8123/.default",
		"https://graph.microsoft.us/v1.0/":             "https://graph.microsoft.us/.default",
		"https://microsoftgraph.chinacloudapi.cn/v1.0": "https://microsoftgraph.chinacloudapi.cn/.default",
	} {
		if got, err := DefaultScope(in); err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
	if _, err := DefaultScope("graph.microsoft.com"); err == nil {
		t.Error("relative URL accepted")
	}
	cred, _ := NewManagedIdentityCredential("")
	if _, err := New(cred, Options{BaseURL: "ftp://x/v1.0"}); err == nil {
		t.Error("ftp accepted")
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("nil credential accepted")
	}
	c, err := New(cred, Options{})
	if err != nil || c.opts.BaseURL != DefaultBaseURL || c.opts.Scope != "https://graph.microsoft.com/.default" || c.opts.MaxRetries != 3 {
		t.Fatalf("defaults %+v %v", c.opts, err)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	h := abs.NewResponseHeaders()
	if retryAfter(h, now) != 0 || retryAfter(nil, now) != 0 {
		t.Fatal("empty")
	}
	h.Add("Retry-After", "7")
	if got := retryAfter(h, now); got != 7*time.Second {
		t.Fatalf("seconds: %v", got)
	}
	h = abs.NewResponseHeaders()
	h.Add("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat))
	if got := retryAfter(h, now); got != 90*time.Second {
		t.Fatalf("date: %v", got)
	}
	h = abs.NewResponseHeaders()
	h.Add("Retry-After", "soon")
	if got := retryAfter(h, now); got != 0 {
		t.Fatalf("junk: %v", got)
	}
}

// TestTokenCutByAttemptTimeoutIsTransient: azidentity reports a token
// request cut by the attempt's deadline as an AuthenticationFailedError
// without a response; that is a timeout (transient), and since nothing was
// sent, even a write retries it.
func TestTokenCutByAttemptTimeoutIsTransient(t *testing.T) {
	cred, _ := NewManagedIdentityCredential("")
	c, err := New(cred, Options{BaseURL: "http://127.0.0.1:1/v1.0", AttemptTimeout: 20 * time.Millisecond, MaxRetries: 1, BaseBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	attempts := 0
	f := c.call(ctxT(t), opAddMember, func(ctx context.Context) error {
		attempts++
		<-ctx.Done()
		return &azidentity.AuthenticationFailedError{}
	})
	if f == nil || !errors.Is(f.err("op"), fault.ErrTransient) || attempts != 2 {
		t.Fatalf("failure %+v after %d attempts", f, attempts)
	}
	// The same error without the deadline stays permanent.
	f = c.call(ctxT(t), opAddMember, func(context.Context) error { return &azidentity.AuthenticationFailedError{} })
	if f == nil || !errors.Is(f.err("op"), fault.ErrPermanent) {
		t.Fatalf("failure %+v", f)
	}
}

// TestConcurrentCalls: one Client serves concurrent invocations (Service
// Bus delivers several messages at once). Under -race this failed while
// every call built a new service client, which rewrites the shared
// adapter's serializer factories.
func TestConcurrentCalls(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := e.c.LookupUser(ctx, seed.UserN01); err != nil {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := e.c.MemberOfAny(ctx, seed.UserN01, []string{seed.GroupAKSDefault, fmt.Sprintf("00000000-0000-4000-8000-%012d", i)}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
