package arm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/jitaccess/jitaccess/internal/arm/armid"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/jitaccess/jitaccess/internal/armsim"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/idsim"
	"github.com/jitaccess/jitaccess/internal/simkit"
)

func TestManagedIdentityChain(t *testing.T) {
	e := newEnv(t, armsim.Options{}, Options{})
	before := len(ids.Requests())
	if _, err := e.c.List(ctxT(t), cluster, userN01); err != nil {
		t.Fatal(err)
	}
	reqs := ids.Requests()[before:]
	if len(reqs) != 1 {
		t.Fatalf("token requests %+v", reqs)
	}
	if r := reqs[0]; r.APIVersion != idsim.APIVersion || r.ClientID != appClientID || r.Resource != e.sim.URL() || r.Status != 200 {
		t.Fatalf("token request %+v (want resource %s)", r, e.sim.URL())
	}
	// Cached: a second call asks nothing more.
	if _, err := e.c.ListAtScope(ctxT(t), cluster); err != nil {
		t.Fatal(err)
	}
	if n := len(ids.Requests()) - before; n != 1 {
		t.Fatalf("%d token requests for two calls", n)
	}
	if calls := e.sim.Calls(); len(calls) != 2 || calls[0].Caller != appObjectID {
		t.Fatalf("calls %+v", calls)
	}
}

func TestTokenScopeDefaultAndOverride(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"https://management.azure.com", "https://management.azure.com/.default"},
		{"https://management.usgovcloudapi.net/", "https://management.usgovcloudapi.net/.default"},
		{"http://127.0.0.1:7072", "http://127.0.0.1:7072/.default"},
		{"https://arm.example:8443/prefix", "https://arm.example:8443/.default"},
	} {
		if got, err := DefaultScope(tc.base); err != nil || got != tc.want {
			t.Fatalf("DefaultScope(%q) = %q, %v", tc.base, got, err)
		}
	}
	if _, err := DefaultScope("management.azure.com"); err == nil {
		t.Fatal("relative base URL accepted")
	}

	// The default: the sim's own URL is the audience.
	e := newEnv(t, armsim.Options{}, Options{})
	if e.c.Scope() != e.sim.URL()+"/.default" || e.c.BaseURL() != e.sim.URL() {
		t.Fatalf("scope %q base %q", e.c.Scope(), e.c.BaseURL())
	}
	// An override (a sovereign cloud's audience differs from its host):
	// the token is asked for that resource and the sim accepts only it.
	// (a fresh one per run: MSAL caches tokens process-wide by resource)
	custom := fmt.Sprintf("https://management.core.usgovcloudapi.net/%d", time.Now().UnixNano())
	e = newEnv(t, armsim.Options{}, Options{Scope: custom + "/.default"})
	before := len(ids.Requests())
	if _, err := e.c.List(ctxT(t), cluster, userN01); err != nil {
		t.Fatal(err)
	}
	reqs := ids.Requests()[before:]
	if len(reqs) != 1 || reqs[0].Resource != custom {
		t.Fatalf("token requests %+v", reqs)
	}
	// A token for another audience is refused by the sim: 401 → permanent.
	wrong := "https://other.example"
	e.aud.Store(&wrong)
	_, err := e.c.List(ctxT(t), cluster, userN01)
	var ae *APIError
	if !fault.Permanent(err) || !errors.As(err, &ae) || ae.Status != 401 || ae.Code != "InvalidAuthenticationToken" {
		t.Fatalf("wrong audience: %v", err)
	}
	cred, _ := managedIdentityCredential(appClientID)
	if _, err := New(cred, Options{BaseURL: e.sim.URL(), Scope: custom}); err == nil || !strings.Contains(err.Error(), "/.default") {
		t.Fatalf("scope without /.default: %v", err)
	}
}

func TestBaseURL(t *testing.T) {
	cred, err := managedIdentityCredential(appClientID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		base string
		ok   bool
	}{
		{"", true}, // DefaultBaseURL
		{"https://management.chinacloudapi.cn/", true},
		{"http://127.0.0.1:7072", true},
		{"http://[::1]:7072", true},
		{"http://localhost:7072", true},
		{"http://arm.example", false}, // the token would travel in clear
		{"ftp://127.0.0.1", false},
		{"management.azure.com", false},
		{"https://management.azure.com?x=1", false},
	} {
		c, err := New(cred, Options{BaseURL: tc.base})
		if (err == nil) != tc.ok {
			t.Fatalf("New(%q): %v", tc.base, err)
		}
		if tc.base == "" && c.BaseURL() != DefaultBaseURL {
			t.Fatalf("default base %q", c.BaseURL())
		}
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Fatal("nil credential accepted")
	}
}

func TestAssign(t *testing.T) {
	e := newEnv(t, armsim.Options{}, Options{})
	ctx := ctxT(t)
	name := armid.AssignmentName("req-1")

	created, err := e.c.Assign(ctx, cluster, roleAdmin, strings.ToUpper(userN01), name)
	if err != nil || !created || !e.sim.HasAssignment(cluster, roleAdmin, userN01) {
		t.Fatalf("assign: %v %v", created, err)
	}
	// The wire: PUT with api-version, the full role id in the scope's
	// subscription, principalType User, lower-case ids.
	calls := e.sim.CallsTo("PUT", "/roleAssignments/"+name)
	if len(calls) != 1 || calls[0].Status != 201 {
		t.Fatalf("calls %+v", calls)
	}
	if q, _ := url.ParseQuery(calls[0].Query); q.Get("api-version") != armsim.APIVersion {
		t.Fatalf("query %q", calls[0].Query)
	}
	var body struct{ Properties map[string]string }
	if err := json.Unmarshal(calls[0].Body, &body); err != nil || body.Properties["roleDefinitionId"] != fullAdmin ||
		body.Properties["principalId"] != userN01 || body.Properties["principalType"] != "User" {
		t.Fatalf("body %s: %v", calls[0].Body, err)
	}
	// The same request again (redelivery): ARM answers 200, still ours.
	if created, err = e.c.Assign(ctx, cluster, fullAdmin, userN01, name); err != nil || !created {
		t.Fatalf("repeat: %v %v", created, err)
	}
	if st := e.sim.CallsTo("PUT", name)[1].Status; st != 200 {
		t.Fatalf("repeat status %d", st)
	}
	// Another request for the same user, role and scope: the user already
	// holds it (ours from req-1, or standing): not created, no error.
	if created, err = e.c.Assign(ctx, cluster, roleAdmin, userN01, armid.AssignmentName("req-2")); err != nil || created {
		t.Fatalf("exists: %v %v", created, err)
	}
	// A standing assignment made by someone else.
	e.sim.AddAssignment(armsim.Assignment{Scope: cluster, RoleDefinitionID: roleAdmin, PrincipalID: userP01})
	if created, err = e.c.Assign(ctx, cluster, roleAdmin, userP01, armid.AssignmentName("req-3")); err != nil || created {
		t.Fatalf("standing: %v %v", created, err)
	}
	// A namespace is another scope.
	if created, err = e.c.Assign(ctx, nsScope, roleAdmin, userN01, armid.AssignmentName("req-4")); err != nil || !created ||
		!e.sim.HasAssignment(nsScope, roleAdmin, userN01) {
		t.Fatalf("namespace: %v %v", created, err)
	}
	// The name taken by another principal: permanent, with ARM's code.
	_, err = e.c.Assign(ctx, cluster, roleReader, userP01, name)
	var ae *APIError
	if !fault.Permanent(err) || !errors.As(err, &ae) || ae.Status != 400 || ae.Code != CodeRoleAssignmentUpdateNotPermitted || ae.Message == "" {
		t.Fatalf("name taken: %v", err)
	}
	// A role ARM does not know: permanent.
	if _, err = e.c.Assign(ctx, cluster, "11111111-1111-4111-8111-111111111111", userN01, armid.AssignmentName("req-5")); !fault.Permanent(err) ||
		!errors.As(err, &ae) || ae.Code != CodeRoleDefinitionDoesNotExist {
		t.Fatalf("unknown role: %v", err)
	}
	// A cluster that does not exist (any more): not found.
	gone := strings.Replace(cluster, "aks1", "aks-gone", 1)
	if _, err = e.c.Assign(ctx, gone, roleAdmin, userN01, armid.AssignmentName("req-6")); !fault.NotFound(err) ||
		!errors.As(err, &ae) || ae.Code != "ResourceNotFound" {
		t.Fatalf("unknown cluster: %v", err)
	}
	// 403: jitaccess may not write it.
	e.sim.FailNext("PUT", 1, 403, 0)
	if _, err = e.c.Assign(ctx, cluster, roleAdmin, userN01, armid.AssignmentName("req-7")); !fault.Permanent(err) ||
		!errors.As(err, &ae) || ae.Code != "AuthorizationFailed" {
		t.Fatalf("403: %v", err)
	}
	if n := len(e.sim.Assignments()); n != 3 {
		t.Fatalf("%d assignments: %+v", n, e.sim.Assignments())
	}
}

func TestAssignPrincipalNotFoundIsTransient(t *testing.T) {
	e := newEnv(t, armsim.Options{}, Options{MaxRetries: 2})
	waits := e.recordSleeps(nil)
	msg := "Principal " + strings.ReplaceAll(userN01, "-", "") + " does not exist in the directory " + idsim.DefaultTenantID + "."
	// Refused twice (not processed: retried in place), then seen.
	e.sim.FailNextWith("PUT", 2, 400, CodePrincipalNotFound, msg, 0)
	created, err := e.c.Assign(ctxT(t), cluster, roleAdmin, userN01, armid.AssignmentName("r"))
	if err != nil || !created || e.sim.CountCalls("PUT", "") != 3 || len(waits()) != 2 {
		t.Fatalf("%v %v, %d calls, waits %v", created, err, e.sim.CountCalls("PUT", ""), waits())
	}
	// Still not visible after the retries: transient, for redelivery.
	e.sim.FailNextWith("PUT", -1, 400, CodePrincipalNotFound, msg, 0)
	_, err = e.c.Assign(ctxT(t), nsScope, roleAdmin, userN01, armid.AssignmentName("r2"))
	var ae *APIError
	if !fault.Transient(err) || !errors.As(err, &ae) || ae.Code != CodePrincipalNotFound {
		t.Fatalf("persistent: %v", err)
	}
}

func TestDelete(t *testing.T) {
	e := newEnv(t, armsim.Options{}, Options{})
	ctx := ctxT(t)
	name := armid.AssignmentName("req-1")
	if _, err := e.c.Assign(ctx, cluster, roleAdmin, userN01, name); err != nil {
		t.Fatal(err)
	}
	// At another scope: nothing there (204), nothing removed.
	if removed, err := e.c.Delete(ctx, nsScope, name); err != nil || removed || !e.sim.HasAssignment(cluster, roleAdmin, userN01) {
		t.Fatalf("other scope: %v %v", removed, err)
	}
	if removed, err := e.c.Delete(ctx, cluster, strings.ToUpper(name)); err != nil || !removed || e.sim.HasAssignment(cluster, roleAdmin, userN01) {
		t.Fatalf("delete: %v %v", removed, err)
	}
	if removed, err := e.c.Delete(ctx, cluster, name); err != nil || removed {
		t.Fatalf("again: %v %v", removed, err)
	}
	statuses := []int{}
	for _, c := range e.sim.CallsTo("DELETE", "") {
		statuses = append(statuses, c.Status)
	}
	if !slices.Equal(statuses, []int{204, 200, 204}) {
		t.Fatalf("statuses %v", statuses)
	}
	// The cluster is gone, and its assignments with it: not there.
	gone := strings.Replace(cluster, "aks1", "aks-gone", 1)
	if removed, err := e.c.Delete(ctx, gone, name); err != nil || removed {
		t.Fatalf("gone cluster: %v %v", removed, err)
	}
	// Someone else's assignment is never touched by our name.
	other := e.sim.AddAssignment(armsim.Assignment{Scope: cluster, RoleDefinitionID: roleAdmin, PrincipalID: userP01})
	if removed, err := e.c.Delete(ctx, cluster, armid.AssignmentName("req-2")); err != nil || removed {
		t.Fatalf("not ours: %v %v", removed, err)
	}
	if _, ok := e.sim.Assignment(other); !ok {
		t.Fatal("someone else's assignment went")
	}
	// A delete lock on the resource group: permanent.
	e.sim.FailNextWith("DELETE", 1, 409, "ScopeLocked", "The scope '"+cluster+"' cannot perform delete operation because following scope(s) are locked: '"+rgScope+"'.", 0)
	var ae *APIError
	if _, err := e.c.Delete(ctx, cluster, other); !fault.Permanent(err) || !errors.As(err, &ae) || ae.Code != "ScopeLocked" {
		t.Fatalf("locked: %v", err)
	}
}

func TestList(t *testing.T) {
	e := newEnv(t, armsim.Options{PageSize: 2}, Options{})
	ctx := ctxT(t)
	e.sim.AddScope(subScope)
	atSub := e.sim.AddAssignment(armsim.Assignment{Scope: subScope, RoleDefinitionID: roleReader, PrincipalID: userN01})
	atRG := e.sim.AddAssignment(armsim.Assignment{Scope: rgScope, RoleDefinitionID: roleAdmin, PrincipalID: userP01, PrincipalType: "Group"})
	mine := armid.AssignmentName("req-1")
	inNS := armid.AssignmentName("req-2")
	for _, a := range []struct{ scope, name string }{{cluster, mine}, {nsScope, inNS}} {
		if _, err := e.c.Assign(ctx, a.scope, roleAdmin, userN01, a.name); err != nil {
			t.Fatal(err)
		}
	}
	names := func(as []Assignment) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.Name)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }

	// The principal's assignments at, above and below the cluster, over
	// two pages.
	got, err := e.c.List(ctx, cluster, strings.ToUpper(userN01))
	if err != nil || !slices.Equal(names(got), sorted(atSub, mine, inNS)) {
		t.Fatalf("list: %v %v", names(got), err)
	}
	if n := e.sim.CountCalls("GET", ""); n != 2 {
		t.Fatalf("%d pages", n)
	}
	// The filter arrived as ARM expects it.
	for i, c := range e.sim.CallsTo("GET", "") {
		q, _ := url.ParseQuery(c.Query)
		if q.Get("$filter") != "principalId eq '"+userN01+"'" || q.Get("api-version") != armsim.APIVersion || (i == 1) != (q.Get("$skipToken") != "") {
			t.Fatalf("call %d query %q", i, c.Query)
		}
	}
	var ours Assignment
	for _, a := range got {
		if a.Name == mine {
			ours = a
		}
	}
	if ours.Scope != cluster || ours.PrincipalID != userN01 || ours.PrincipalType != "User" || ours.RoleDefinitionID != fullAdmin {
		t.Fatalf("assignment %+v", ours)
	}
	// Grants: which of them give the admin role at the cluster.
	var grants []string
	for _, a := range got {
		if a.Grants(cluster, roleAdmin) {
			grants = append(grants, a.Name)
		}
	}
	if !slices.Equal(grants, []string{mine}) {
		t.Fatalf("grants %v", grants)
	}
	// Every principal's assignments at and above the cluster.
	e.sim.ResetCalls()
	got, err = e.c.ListAtScope(ctx, cluster)
	if err != nil || !slices.Equal(names(got), sorted(atSub, atRG, mine)) {
		t.Fatalf("at scope: %v %v", names(got), err)
	}
	if q, _ := url.ParseQuery(e.sim.Calls()[0].Query); q.Get("$filter") != "atScope()" {
		t.Fatalf("query %q", e.sim.Calls()[0].Query)
	}
	// Nobody: an empty, non-nil list.
	if got, err = e.c.List(ctx, cluster, "0e0e0000-0000-4000-8000-0000000000ff"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("nobody: %v %v", got, err)
	}
	// The scope does not exist: not found.
	if _, err = e.c.ListAtScope(ctx, strings.Replace(cluster, "aks1", "aks-gone", 1)); !fault.NotFound(err) {
		t.Fatalf("gone: %v", err)
	}
}

func TestValidationSendsNothing(t *testing.T) {
	e := newEnv(t, armsim.Options{}, Options{})
	ctx := ctxT(t)
	name := armid.AssignmentName("r")
	checks := []struct {
		name string
		call func() error
	}{
		{"scope with a query", func() error { _, err := e.c.Assign(ctx, cluster+"?x=1", roleAdmin, userN01, name); return err }},
		{"scope with ..", func() error { _, err := e.c.Delete(ctx, cluster+"/namespaces/..", name); return err }},
		{"resource group scope", func() error { _, err := e.c.ListAtScope(ctx, rgScope); return err }},
		{"name not a GUID", func() error { _, err := e.c.Delete(ctx, cluster, "req-1"); return err }},
		{"name with a slash", func() error { _, err := e.c.Assign(ctx, cluster, roleAdmin, userN01, name+"/x"); return err }},
		{"principal not a GUID", func() error { _, err := e.c.Assign(ctx, cluster, roleAdmin, "n01@contoso.com", name); return err }},
		{"role not an id", func() error { _, err := e.c.Assign(ctx, cluster, "Cluster Admin", userN01, name); return err }},
		{"list principal not a GUID", func() error { _, err := e.c.List(ctx, cluster, "' or 1 eq 1"); return err }},
	}
	for _, tc := range checks {
		if err := tc.call(); !fault.Permanent(err) {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	if n := len(e.sim.Calls()); n != 0 {
		t.Fatalf("%d calls sent", n)
	}
}

// TestThrottlingHonoursRetryAfter runs against armsim's documented-style
// token bucket on the sim's clock: each wait the client makes moves the
// clock, so a Retry-After that is honoured is exactly what refills the
// bucket.
func TestThrottlingHonoursRetryAfter(t *testing.T) {
	clk := simkit.NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	e := newEnv(t, armsim.Options{Now: clk.Now}, Options{MaxRetries: 3})
	waits := e.recordSleeps(clk.Add)
	e.sim.SetThrottle(armsim.Throttle{Writes: armsim.Bucket{Size: 2, RefillPerSecond: 0.5}, Reads: armsim.Bucket{Size: 1, RefillPerSecond: 1}})
	for i := range 4 {
		created, err := e.c.Assign(ctxT(t), cluster, roleAdmin, fmt.Sprintf("0e0e0000-0000-4000-8000-%012d", i), armid.AssignmentName(fmt.Sprint(i)))
		if err != nil || !created {
			t.Fatalf("assign %d: %v %v", i, created, err)
		}
	}
	// Writes 3 and 4 were each throttled once and waited the 2s ARM asked.
	if got := waits(); !slices.Equal(got, []time.Duration{2 * time.Second, 2 * time.Second}) {
		t.Fatalf("waits %v", got)
	}
	if n, th := e.sim.CountCalls("PUT", ""), e.sim.CountThrottled(); n != 6 || th != 2 {
		t.Fatalf("%d PUTs, %d throttled", n, th)
	}
	// Reads too.
	for range 3 {
		if _, err := e.c.ListAtScope(ctxT(t), cluster); err != nil {
			t.Fatal(err)
		}
	}
	if n, th := e.sim.CountCalls("GET", ""), e.sim.CountThrottled(); n != 5 || th != 4 {
		t.Fatalf("%d GETs, %d throttled", n, th)
	}
}

func TestRetryAfterRealWait(t *testing.T) {
	e := newEnv(t, armsim.Options{}, Options{})
	e.sim.FailNext("DELETE", 1, 429, time.Second)
	start := time.Now()
	if _, err := e.c.Delete(ctxT(t), cluster, armid.AssignmentName("r")); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("Retry-After not honoured: %v", el)
	}
	if calls := e.sim.CallsTo("DELETE", ""); len(calls) != 2 || calls[0].Status != 429 || calls[1].Status != 204 {
		t.Fatalf("calls %+v", calls)
	}
}

func TestRetryBudget(t *testing.T) {
	ctx := ctxT(t)
	// A Retry-After beyond what is left of MaxRetryWait: stop, transient,
	// with RetryAfter for the caller.
	e := newEnv(t, armsim.Options{}, Options{MaxRetryWait: 15 * time.Second})
	waits := e.recordSleeps(nil)
	e.sim.FailNext("GET", -1, 429, 10*time.Second)
	_, err := e.c.ListAtScope(ctx, cluster)
	var fe *fault.Error
	if !fault.Transient(err) || !errors.As(err, &fe) || fe.RetryAfter != 10*time.Second {
		t.Fatalf("budget: %v", err)
	}
	if n := e.sim.CountCalls("GET", ""); n != 2 || !slices.Equal(waits(), []time.Duration{10 * time.Second}) {
		t.Fatalf("%d calls, waits %v", n, waits())
	}
	// MaxRetries bounds the attempts; backoff doubles without Retry-After.
	for _, st := range []int{429, 500, 502, 503, 504} {
		t.Run(fmt.Sprint(st), func(t *testing.T) {
			e := newEnv(t, armsim.Options{}, Options{MaxRetries: 3, BaseBackoff: time.Second})
			waits := e.recordSleeps(nil)
			e.sim.FailNext("GET", -1, st, 0)
			_, err := e.c.List(ctx, cluster, userN01)
			var ae *APIError
			if !fault.Transient(err) || !errors.As(err, &ae) || ae.Status != st || ae.Code == "" || ae.Message == "" {
				t.Fatalf("%v", err)
			}
			if n := e.sim.CountCalls("GET", ""); n != 4 {
				t.Fatalf("%d attempts", n)
			}
			if !slices.Equal(waits(), []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}) {
				t.Fatalf("waits %v", waits())
			}
		})
	}
}

// TestWritesNotRetriedInPlace: a write whose answer is ambiguous (5xx other
// than 503, a reset, a lost answer, a timeout) is returned as transient
// after one attempt; 429 and 503 (not processed) are retried.
func TestWritesNotRetriedInPlace(t *testing.T) {
	ctx := ctxT(t)
	type write struct {
		method string
		run    func(e *env, name string) error
	}
	writes := []write{
		{"PUT", func(e *env, name string) error {
			_, err := e.c.Assign(ctx, cluster, roleAdmin, userN01, name)
			return err
		}},
		{"DELETE", func(e *env, name string) error { _, err := e.c.Delete(ctx, cluster, name); return err }},
	}
	for _, w := range writes {
		for _, st := range []int{500, 502, 504} {
			t.Run(fmt.Sprintf("%s %d", w.method, st), func(t *testing.T) {
				e := newEnv(t, armsim.Options{}, Options{})
				e.sim.FailNext(w.method, -1, st, 0)
				err := w.run(e, armid.AssignmentName("r"))
				if !fault.Transient(err) || e.sim.CountCalls(w.method, "") != 1 {
					t.Fatalf("%v after %d calls", err, e.sim.CountCalls(w.method, ""))
				}
			})
		}
		t.Run(w.method+" reset", func(t *testing.T) {
			e := newEnv(t, armsim.Options{}, Options{})
			e.sim.ResetNext(w.method, -1)
			if err := w.run(e, armid.AssignmentName("r")); !fault.Transient(err) || e.sim.CountCalls(w.method, "") != 1 {
				t.Fatalf("%v after %d calls", err, e.sim.CountCalls(w.method, ""))
			}
		})
		for _, st := range []int{429, 503} {
			t.Run(fmt.Sprintf("%s %d retried", w.method, st), func(t *testing.T) {
				e := newEnv(t, armsim.Options{}, Options{})
				e.sim.FailNext(w.method, 2, st, 0)
				if err := w.run(e, armid.AssignmentName("r")); err != nil || e.sim.CountCalls(w.method, "") != 3 {
					t.Fatalf("%v after %d calls", err, e.sim.CountCalls(w.method, ""))
				}
			})
		}
		t.Run(w.method+" timeout", func(t *testing.T) {
			e := newEnv(t, armsim.Options{}, Options{})
			if _, err := e.c.ListAtScope(ctx, cluster); err != nil { // the token, before the tight deadline
				t.Fatal(err)
			}
			e.c.opts.AttemptTimeout = 200 * time.Millisecond
			e.sim.Delay(w.method, 2*time.Second)
			if err := w.run(e, armid.AssignmentName("r")); !fault.Transient(err) || e.sim.CountCalls(w.method, "") != 1 {
				t.Fatalf("%v after %d calls", err, e.sim.CountCalls(w.method, ""))
			}
		})
	}
}

// TestLostAnswers: the write happened but its answer was lost. The call is
// transient; the request's next attempt reads ARM's answer to the same
// write: PUT by the same name → 200, ours (created); DELETE → 204, which
// says "not there" although this request removed it.
func TestLostAnswers(t *testing.T) {
	e := newEnv(t, armsim.Options{}, Options{})
	ctx := ctxT(t)
	name := armid.AssignmentName("req-1")
	for _, st := range []int{0, 500} {
		e.sim.LoseAnswerNext("PUT", 1, st)
		if _, err := e.c.Assign(ctx, cluster, roleAdmin, userN01, name); !fault.Transient(err) {
			t.Fatalf("lost PUT (%d): %v", st, err)
		}
		if !e.sim.HasAssignment(cluster, roleAdmin, userN01) {
			t.Fatal("the lost PUT did not happen")
		}
		if created, err := e.c.Assign(ctx, cluster, roleAdmin, userN01, name); err != nil || !created {
			t.Fatalf("after a lost PUT: %v %v", created, err)
		}
	}
	e.sim.LoseAnswerNext("DELETE", 1, 0)
	if _, err := e.c.Delete(ctx, cluster, name); !fault.Transient(err) {
		t.Fatalf("lost DELETE: %v", err)
	}
	if e.sim.HasAssignment(cluster, roleAdmin, userN01) {
		t.Fatal("the lost DELETE did not happen")
	}
	if removed, err := e.c.Delete(ctx, cluster, name); err != nil || removed {
		t.Fatalf("after a lost DELETE: %v %v", removed, err)
	}
	if n := e.sim.CountCalls("PUT", ""); n != 4 {
		t.Fatalf("%d PUTs", n)
	}
}

func TestReadsRetried(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, armsim.Options{}, Options{})
	e.sim.FailNext("GET", 1, 500, 0)
	if _, err := e.c.ListAtScope(ctx, cluster); err != nil || e.sim.CountCalls("GET", "") != 2 {
		t.Fatalf("500: %v, %d calls", err, e.sim.CountCalls("GET", ""))
	}
	e.sim.ResetCalls()
	e.sim.ResetNext("GET", 1)
	if _, err := e.c.ListAtScope(ctx, cluster); err != nil || e.sim.CountCalls("GET", "") < 2 {
		t.Fatalf("reset: %v, %d calls", err, e.sim.CountCalls("GET", ""))
	}
	// A read cut by the attempt deadline is retried too.
	e.sim.ResetCalls()
	e.c.opts.AttemptTimeout = 300 * time.Millisecond
	e.c.opts.MaxRetries = 1
	e.sim.Delay("GET", 2*time.Second)
	if _, err := e.c.ListAtScope(ctx, cluster); !fault.Transient(err) || e.sim.CountCalls("GET", "") != 2 {
		t.Fatalf("timeout: %v, %d calls", err, e.sim.CountCalls("GET", ""))
	}
	e.sim.Delay("GET", 0)
	// The caller's own deadline: transient, no retry.
	e.sim.ResetCalls()
	e.c.opts.AttemptTimeout = 20 * time.Second
	e.sim.Delay("GET", 2*time.Second)
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := e.c.ListAtScope(cctx, cluster); !fault.Transient(err) || e.sim.CountCalls("GET", "") != 1 {
		t.Fatalf("caller deadline: %v, %d calls", err, e.sim.CountCalls("GET", ""))
	}
}

// failOnce is a transport that answers 503 itself to the first request
// whose query has a $skipToken (a second page), and passes the rest on.
type failOnce struct {
	next  http.RoundTripper
	fired bool
}

func (f *failOnce) RoundTrip(r *http.Request) (*http.Response, error) {
	if !f.fired && strings.Contains(strings.ToLower(r.URL.RawQuery), "skiptoken") {
		f.fired = true
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Type", "application/json")
		rec.WriteHeader(503)
		_, _ = rec.WriteString(`{"error":{"code":"ServiceUnavailable","message":"try again"}}`)
		resp := rec.Result()
		resp.Request = r
		return resp, nil
	}
	return f.next.RoundTrip(r)
}

func TestPageFailureRestartsListing(t *testing.T) {
	ft := &failOnce{next: http.DefaultTransport}
	e := newEnv(t, armsim.Options{PageSize: 1}, Options{HTTPClient: &http.Client{Transport: ft}})
	for i := range 3 {
		e.sim.AddAssignment(armsim.Assignment{Scope: cluster, RoleDefinitionID: roleAdmin, PrincipalID: fmt.Sprintf("0e0e0000-0000-4000-8000-%012d", i)})
	}
	got, err := e.c.ListAtScope(ctxT(t), cluster)
	if err != nil || len(got) != 3 {
		t.Fatalf("%v %v", got, err)
	}
	// Page 1, (page 2 failed before the sim), then pages 1, 2, 3.
	if n := e.sim.CountCalls("GET", ""); n != 4 || !ft.fired {
		t.Fatalf("%d calls", n)
	}
}

func TestNextLinkElsewhereRefused(t *testing.T) {
	var elsewhere int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere++
		_, _ = w.Write([]byte(`{"value":[]}`))
	}))
	defer other.Close()
	var tokens []string
	armSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens = append(tokens, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"value":[],"nextLink":%q}`, other.URL+r.URL.Path+"?api-version=2022-04-01&$skipToken=x")
	}))
	defer armSrv.Close()
	c, err := New(staticCred{}, Options{BaseURL: armSrv.URL, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListAtScope(ctxT(t), cluster); !fault.Permanent(err) || !strings.Contains(err.Error(), "outside the ARM base URL") {
		t.Fatalf("%v", err)
	}
	if elsewhere != 0 || len(tokens) != 1 || tokens[0] != "Bearer static" {
		t.Fatalf("elsewhere %d, tokens %v", elsewhere, tokens)
	}
}

type staticCred struct{}

func (staticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "static", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

type errCred struct{ block bool }

func (c errCred) GetToken(ctx context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if c.block {
		<-ctx.Done()
		return azcore.AccessToken{}, ctx.Err()
	}
	return azcore.AccessToken{}, errors.New("no identity here")
}

func TestTokenFailures(t *testing.T) {
	e := newEnv(t, armsim.Options{}, Options{})
	ctx := ctxT(t)
	// An identity not assigned to this app: permanent, nothing sent.
	cred, err := managedIdentityCredential("a9900000-0000-4000-8000-00000000dead")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cred, Options{BaseURL: e.sim.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Assign(ctx, cluster, roleAdmin, userN01, armid.AssignmentName("r")); !fault.Permanent(err) {
		t.Fatalf("unassigned identity: %v", err)
	}
	c, _ = New(errCred{}, Options{BaseURL: e.sim.URL()})
	if _, err := c.ListAtScope(ctx, cluster); !fault.Permanent(err) || !strings.Contains(err.Error(), "acquiring a token") {
		t.Fatalf("no identity: %v", err)
	}
	// A token endpoint that does not answer in time: transient (a write
	// may retry it: nothing was sent).
	c, _ = New(errCred{block: true}, Options{BaseURL: e.sim.URL(), AttemptTimeout: 100 * time.Millisecond, MaxRetries: 1, BaseBackoff: time.Millisecond})
	if _, err := c.Delete(ctx, cluster, armid.AssignmentName("r")); !fault.Transient(err) {
		t.Fatalf("slow token endpoint: %v", err)
	}
	if n := len(e.sim.Calls()); n != 0 {
		t.Fatalf("%d calls without a token", n)
	}
}

func TestErrorMapping(t *testing.T) {
	e := newEnv(t, armsim.Options{}, Options{MaxRetries: -1})
	ctx := ctxT(t)
	tests := []struct {
		status int
		kind   error
	}{
		{400, fault.ErrPermanent}, {401, fault.ErrPermanent}, {403, fault.ErrPermanent},
		{404, fault.ErrNotFound}, {408, fault.ErrTransient}, {409, fault.ErrPermanent},
		{429, fault.ErrTransient}, {500, fault.ErrTransient}, {501, fault.ErrPermanent},
		{502, fault.ErrTransient}, {503, fault.ErrTransient}, {504, fault.ErrTransient},
	}
	for _, tc := range tests {
		e.sim.FailNext("GET", 1, tc.status, 3*time.Second)
		_, err := e.c.List(ctx, cluster, userN01)
		if !errors.Is(err, tc.kind) {
			t.Fatalf("%d: %v", tc.status, err)
		}
		var ae *APIError
		var fe *fault.Error
		if !errors.As(err, &ae) || ae.Status != tc.status || !errors.As(err, &fe) || fe.RetryAfter != 3*time.Second {
			t.Fatalf("%d: %v", tc.status, err)
		}
		// Never the URL (scope, principal filter) or a token in the text.
		if s := err.Error(); strings.Contains(s, "http") || strings.Contains(s, "Bearer") || !strings.HasPrefix(s, "arm list role assignments: ") {
			t.Fatalf("%d: error text %q", tc.status, s)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, armsim.Options{}, Options{})
	ctx := ctxT(t)
	errs := make(chan error, 20)
	for i := range 20 {
		go func() {
			p := fmt.Sprintf("0e0e0000-0000-4000-8000-%012d", i%10)
			_, err := e.c.Assign(ctx, cluster, roleAdmin, p, armid.AssignmentName(fmt.Sprint(i%10)))
			if err == nil {
				_, err = e.c.List(ctx, cluster, p)
			}
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.sim.Assignments()); n != 10 {
		t.Fatalf("%d assignments", n)
	}
}
