package armsim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	sub       = "5b5b0000-0000-4000-8000-000000000001"
	rg        = "rg-aks"
	cluster   = "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/Microsoft.ContainerService/managedClusters/aks1"
	nsScope   = cluster + "/namespaces/team-a"
	roleAdmin = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b" // Azure Kubernetes Service RBAC Cluster Admin
	roleRead  = "7f6c6a51-bcf8-42ba-9220-52d62157d7db" // Azure Kubernetes Service RBAC Reader
	userA     = "0a0a0000-0000-4000-8000-00000000000a"
	userB     = "0b0b0000-0000-4000-8000-00000000000b"
	nameA     = "9a9a0000-0000-5000-8000-000000000001"
	nameB     = "9b9b0000-0000-5000-8000-000000000002"
	callerID  = "0c0c0000-0000-4000-8000-0000000000cc"
)

var fullRole = "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + roleAdmin

// fakeToken is an unsigned JWT whose oid is oid.
func fakeToken(oid string) string {
	enc := base64.RawURLEncoding
	pl, _ := json.Marshal(map[string]string{"oid": oid, "aud": "https://management.azure.com"})
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(pl) + ".sig"
}

type client struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (a answer) code() string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (a answer) msg() string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func (a answer) prop(k string) string {
	p, _ := a.body["properties"].(map[string]any)
	s, _ := p[k].(string)
	return s
}

func newSim(t *testing.T, opts Options) (*Sim, *client) {
	t.Helper()
	s := New(opts).AddScope(cluster).AddRoleDefinition(roleAdmin, roleRead).Start()
	t.Cleanup(s.Close)
	return s, &client{t: t, base: s.BaseURL(), token: fakeToken(callerID), hc: &http.Client{Timeout: 10 * time.Second}}
}

// do sends method to path (a scope path plus anything after) with
// api-version added unless the query already has one.
func (c *client) do(method, path string, body any) (answer, error) {
	c.t.Helper()
	u := c.base + path
	if !strings.Contains(path, "api-version=") {
		if strings.Contains(path, "?") {
			u += "&api-version=" + APIVersion
		} else {
			u += "?api-version=" + APIVersion
		}
	}
	if strings.HasPrefix(path, "http") {
		u = path
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			c.t.Fatalf("%s %s: body %q is not JSON", method, path, raw)
		}
	}
	return a, nil
}

func (c *client) must(method, path string, body any) answer {
	c.t.Helper()
	a, err := c.do(method, path, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

func raPath(scope, name string) string {
	p := scope + ProviderPath
	if name != "" {
		p += "/" + name
	}
	return p
}

func putBody(role, principal string) map[string]any {
	return map[string]any{"properties": map[string]any{"roleDefinitionId": role, "principalId": principal, "principalType": "User"}}
}

func (c *client) put(scope, name, role, principal string) answer {
	c.t.Helper()
	return c.must("PUT", raPath(scope, name), putBody(role, principal))
}

func (c *client) listNames(scope, filter string) []string {
	c.t.Helper()
	p := raPath(scope, "")
	if filter != "" {
		p += "?$filter=" + url.QueryEscape(filter)
	}
	var names []string
	for p != "" {
		a := c.must("GET", p, nil)
		if a.status != 200 {
			c.t.Fatalf("list %s: %d %s", p, a.status, a.raw)
		}
		for _, v := range a.body["value"].([]any) {
			names = append(names, v.(map[string]any)["name"].(string))
		}
		p, _ = a.body["nextLink"].(string)
	}
	return names
}

func TestPutCreateRepeatConflict(t *testing.T) {
	s, c := newSim(t, Options{})
	a := c.put(cluster, nameA, fullRole, userA)
	if a.status != 201 || a.body["name"] != nameA || a.body["type"] != ResourceType ||
		a.prop("principalId") != userA || a.prop("roleDefinitionId") != fullRole || a.prop("scope") != cluster ||
		a.prop("principalType") != "User" || a.body["id"] != cluster+ProviderPath+"/"+nameA || a.prop("createdBy") != callerID {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	if !s.HasAssignment(cluster, roleAdmin, userA) || !s.HasAssignment(strings.ToUpper(cluster), fullRole, strings.ToUpper(userA)) {
		t.Fatal("truth does not have it")
	}
	// The same PUT again (a retry): 200, the same assignment.
	if a := c.put(cluster, strings.ToUpper(nameA), fullRole, strings.ToUpper(userA)); a.status != 200 || a.body["name"] != nameA {
		t.Fatalf("repeat: %d %s", a.status, a.raw)
	}
	// The same principal, role and scope under another name: someone else's.
	if a := c.put(cluster, nameB, fullRole, userA); a.status != 409 || a.code() != "RoleAssignmentExists" || a.msg() != MsgExists {
		t.Fatalf("duplicate: %d %s", a.status, a.raw)
	}
	// The name taken by another principal, role or scope.
	for _, tc := range []struct{ scope, role, principal string }{
		{cluster, fullRole, userB},
		{cluster, "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + roleRead, userA},
		{nsScope, fullRole, userA},
	} {
		if a := c.put(tc.scope, nameA, tc.role, tc.principal); a.status != 400 || a.code() != "RoleAssignmentUpdateNotPermitted" {
			t.Fatalf("%+v: %d %s", tc, a.status, a.raw)
		}
	}
	// Another role, or another scope (a namespace), is another assignment.
	if a := c.put(nsScope, nameB, fullRole, userA); a.status != 201 || a.prop("scope") != nsScope {
		t.Fatalf("namespace: %d %s", a.status, a.raw)
	}
	// The tenant-level role id form is accepted; ARM answers with the
	// subscription form.
	a = c.put(cluster, "9c9c0000-0000-5000-8000-000000000003", "/providers/Microsoft.Authorization/roleDefinitions/"+roleRead, userA)
	if a.status != 201 || !strings.HasPrefix(a.prop("roleDefinitionId"), "/subscriptions/"+sub+"/") {
		t.Fatalf("tenant role id: %d %s", a.status, a.raw)
	}
	if n := len(s.Assignments()); n != 3 {
		t.Fatalf("%d assignments", n)
	}
	got, ok := s.Assignment(nameA)
	if !ok || got.RoleGUID() != roleAdmin || got.CreatedBy != callerID || got.PrincipalType != "User" {
		t.Fatalf("Assignment: %+v %v", got, ok)
	}
}

func TestPutValidation(t *testing.T) {
	s, c := newSim(t, Options{MaxAssignmentsPerSubscription: 1})
	tests := []struct {
		name, asName string
		body         any
		status       int
		code         string
	}{
		{"unknown role", nameA, putBody("/subscriptions/"+sub+"/providers/Microsoft.Authorization/roleDefinitions/11111111-1111-4111-8111-111111111111", userA), 400, "RoleDefinitionDoesNotExist"},
		{"bare role GUID", nameA, putBody(roleAdmin, userA), 400, "InvalidRoleDefinitionId"},
		{"bad role id", nameA, putBody("/subscriptions/"+sub+"/roleDefinitions/x", userA), 400, "InvalidRoleDefinitionId"},
		{"principal not a GUID", nameA, putBody(fullRole, "n01@contoso.com"), 400, "InvalidPrincipalId"},
		{"name not a GUID", "req-1", putBody(fullRole, userA), 400, "InvalidRoleAssignmentId"},
		{"no properties", nameA, map[string]any{}, 400, "InvalidCreateRoleAssignmentRequest"},
		{"bad principal type", nameA, map[string]any{"properties": map[string]any{"roleDefinitionId": fullRole, "principalId": userA, "principalType": "Robot"}}, 400, "InvalidPrincipalType"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := c.must("PUT", raPath(cluster, tc.asName), tc.body)
			if a.status != tc.status || a.code() != tc.code {
				t.Fatalf("%d %s", a.status, a.raw)
			}
		})
	}
	// Not JSON.
	req, _ := http.NewRequest("PUT", c.base+raPath(cluster, nameA)+"?api-version="+APIVersion, strings.NewReader("{"))
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("bad JSON: %d", resp.StatusCode)
	}
	if len(s.Assignments()) != 0 {
		t.Fatal("an invalid PUT made an assignment")
	}
	// The subscription's limit.
	if a := c.put(cluster, nameA, fullRole, userA); a.status != 201 {
		t.Fatalf("first: %d", a.status)
	}
	if a := c.put(cluster, nameB, fullRole, userB); a.status != 400 || a.code() != "RoleAssignmentLimitExceeded" || a.msg() != MsgLimitExceeded {
		t.Fatalf("limit: %d %s", a.status, a.raw)
	}
}

func TestUnknownScopes(t *testing.T) {
	_, c := newSim(t, Options{})
	other := "5b5b0000-0000-4000-8000-0000000000ff"
	tests := []struct {
		name, scope string
		status      int
		code        string
	}{
		{"subscription", "/subscriptions/" + other + "/resourceGroups/" + rg + "/providers/Microsoft.ContainerService/managedClusters/aks1", 404, "SubscriptionNotFound"},
		{"resource group", "/subscriptions/" + sub + "/resourceGroups/rg-gone/providers/Microsoft.ContainerService/managedClusters/aks1", 404, "ResourceGroupNotFound"},
		{"cluster", "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/Microsoft.ContainerService/managedClusters/aks2", 404, "ResourceNotFound"},
		{"namespace of an unknown cluster", "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/Microsoft.ContainerService/managedClusters/aks2/namespaces/x", 404, "ResourceNotFound"},
		{"no subscription", "/resourceGroups/" + rg, 400, "MissingSubscription"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range []string{"PUT", "DELETE", "GET"} {
				name := nameA
				if m == "GET" {
					name = ""
				}
				a := c.must(m, raPath(tc.scope, name), putBody(fullRole, userA))
				if a.status != tc.status || a.code() != tc.code {
					t.Fatalf("%s: %d %s", m, a.status, a.raw)
				}
			}
		})
	}
	a := c.must("GET", raPath("/subscriptions/"+sub+"/resourceGroups/"+rg+"/providers/Microsoft.ContainerService/managedClusters/aks2", ""), nil)
	if !strings.Contains(a.msg(), "'Microsoft.ContainerService/managedClusters/aks2' under resource group '"+rg+"'") {
		t.Fatalf("message %q", a.msg())
	}
	// Known: the cluster (any case), its namespaces, its resource group and subscription.
	for _, scope := range []string{cluster, strings.ToLower(cluster), nsScope, "/subscriptions/" + sub + "/resourceGroups/" + rg, "/subscriptions/" + sub} {
		if a := c.must("GET", raPath(scope, ""), nil); a.status != 200 {
			t.Fatalf("%s: %d %s", scope, a.status, a.raw)
		}
	}
}

func TestDelete(t *testing.T) {
	s, c := newSim(t, Options{})
	c.put(cluster, nameA, fullRole, userA)
	// At another scope: not there (204), and nothing deleted.
	if a := c.must("DELETE", raPath(nsScope, nameA), nil); a.status != 204 || len(a.raw) != 0 {
		t.Fatalf("other scope: %d %s", a.status, a.raw)
	}
	a := c.must("DELETE", raPath(cluster, nameA), nil)
	if a.status != 200 || a.body["name"] != nameA || a.prop("principalId") != userA {
		t.Fatalf("delete: %d %s", a.status, a.raw)
	}
	if s.HasAssignment(cluster, roleAdmin, userA) {
		t.Fatal("still there")
	}
	if a := c.must("DELETE", raPath(cluster, nameA), nil); a.status != 204 {
		t.Fatalf("again: %d %s", a.status, a.raw)
	}
	if a := c.must("GET", raPath(cluster, nameA), nil); a.status != 404 || a.code() != "RoleAssignmentNotFound" {
		t.Fatalf("get: %d %s", a.status, a.raw)
	}
}

func TestListFilters(t *testing.T) {
	s, c := newSim(t, Options{})
	subScope := "/subscriptions/" + sub
	rgScope := subScope + "/resourceGroups/" + rg
	atSub := s.AddAssignment(Assignment{Scope: subScope, RoleDefinitionID: roleRead, PrincipalID: userA})
	atRG := s.AddAssignment(Assignment{Scope: rgScope, RoleDefinitionID: roleRead, PrincipalID: userB})
	c.put(cluster, nameA, fullRole, userA)
	c.put(nsScope, nameB, fullRole, userB)
	c.put(nsScope, "9c9c0000-0000-5000-8000-000000000003", fullRole, userA)

	same := func(got []string, want ...string) bool {
		if len(got) != len(want) {
			return false
		}
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || g == w
			}
			if !found {
				return false
			}
		}
		return true
	}
	if got := c.listNames(cluster, "principalId eq '"+userA+"'"); !same(got, atSub, nameA, "9c9c0000-0000-5000-8000-000000000003") {
		t.Fatalf("principal A at the cluster (at, above, below): %v", got)
	}
	if got := c.listNames(cluster, "principalId eq "+userB); !same(got, atRG, nameB) {
		t.Fatalf("principal B, unquoted: %v", got)
	}
	if got := c.listNames(cluster, "atScope()"); !same(got, atSub, atRG, nameA) {
		t.Fatalf("atScope at the cluster: %v", got)
	}
	if got := c.listNames(nsScope, "atScope()"); !same(got, atSub, atRG, nameA, nameB, "9c9c0000-0000-5000-8000-000000000003") {
		t.Fatalf("atScope at the namespace: %v", got)
	}
	if got := c.listNames(cluster, ""); len(got) != 5 {
		t.Fatalf("no filter: %v", got)
	}
	if a := c.must("GET", raPath(cluster, "")+"?$filter="+url.QueryEscape("roleDefinitionId eq 'x'"), nil); a.status != 400 || a.code() != "InvalidFilter" {
		t.Fatalf("bad filter: %d %s", a.status, a.raw)
	}
	// The answer's shape.
	a := c.must("GET", raPath(cluster, "")+"?$filter="+url.QueryEscape("principalId eq '"+userA+"'"), nil)
	v := a.body["value"].([]any)[0].(map[string]any)
	if v["type"] != ResourceType || v["properties"].(map[string]any)["scope"] == nil {
		t.Fatalf("shape %s", a.raw)
	}
}

func TestListPaging(t *testing.T) {
	s, c := newSim(t, Options{PageSize: 2})
	var want []string
	for i := range 5 {
		n := fmt.Sprintf("9d9d0000-0000-5000-8000-%012d", i)
		p := fmt.Sprintf("0e0e0000-0000-4000-8000-%012d", i)
		if a := c.put(cluster, n, fullRole, p); a.status != 201 {
			t.Fatal(a.status)
		}
		want = append(want, n)
	}
	got := c.listNames(cluster, "atScope()")
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v", got)
	}
	if n := s.CountCalls("GET", ProviderPath); n != 3 {
		t.Fatalf("%d pages", n)
	}
	for _, call := range s.CallsTo("GET", ProviderPath)[1:] {
		q, _ := url.ParseQuery(call.Query)
		if q.Get("$skipToken") == "" || q.Get("$filter") != "atScope()" || q.Get("api-version") != APIVersion {
			t.Fatalf("next page query %q", call.Query)
		}
	}
	if a := c.must("GET", raPath(cluster, "")+"?$skipToken=!!", nil); a.status != 400 {
		t.Fatalf("bad skip token: %d", a.status)
	}
}

func TestAuthAndAPIVersion(t *testing.T) {
	verify := func(tok string) bool { return tokenOID(tok) == callerID }
	s, c := newSim(t, Options{Verify: verify})
	c.token = ""
	a := c.must("GET", raPath(cluster, ""), nil)
	if a.status != 401 || a.code() != "AuthenticationFailed" || a.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d %s", a.status, a.raw)
	}
	c.token = fakeToken(userB)
	if a := c.must("GET", raPath(cluster, ""), nil); a.status != 401 || a.code() != "InvalidAuthenticationToken" {
		t.Fatalf("refused token: %d %s", a.status, a.raw)
	}
	c.token = fakeToken(callerID)
	if a := c.must("GET", raPath(cluster, "")+"?api-version=", nil); a.status != 400 || a.code() != "MissingApiVersionParameter" {
		t.Fatalf("no api-version: %d %s", a.status, a.raw)
	}
	if a := c.must("GET", raPath(cluster, "")+"?api-version=2015-07-01", nil); a.status != 400 || a.code() != "InvalidApiVersionParameter" ||
		!strings.Contains(a.msg(), APIVersion) {
		t.Fatalf("old api-version: %d %s", a.status, a.raw)
	}
	if a := c.must("GET", raPath(cluster, ""), nil); a.status != 200 {
		t.Fatalf("ok: %d %s", a.status, a.raw)
	}
	calls := s.Calls()
	if len(calls) != 5 || calls[4].Caller != callerID || calls[0].Status != 401 || calls[4].Status != 200 {
		t.Fatalf("calls %+v", calls)
	}
	if a := c.must("POST", raPath(cluster, ""), nil); a.status != 405 {
		t.Fatalf("POST: %d", a.status)
	}
	if a := c.must("GET", "/subscriptions/"+sub+"/resourceGroups", nil); a.status != 404 {
		t.Fatalf("other path: %d", a.status)
	}
}

func TestFaults(t *testing.T) {
	s, c := newSim(t, Options{})
	s.FailNext("PUT", 1, 429, 1500*time.Millisecond)
	a := c.put(cluster, nameA, fullRole, userA)
	if a.status != 429 || a.header.Get("Retry-After") != "2" || a.code() != "TooManyRequests" {
		t.Fatalf("429: %d %v %s", a.status, a.header, a.raw)
	}
	if len(s.Assignments()) != 0 {
		t.Fatal("a failed PUT made an assignment")
	}
	s.FailNext("PUT /roleAssignments/", 1, 403, 0)
	if a := c.put(cluster, nameA, fullRole, userA); a.status != 403 || a.code() != "AuthorizationFailed" ||
		!strings.Contains(a.msg(), "roleAssignments/write") || !strings.Contains(a.msg(), callerID) {
		t.Fatalf("403: %d %s", a.status, a.raw)
	}
	s.FailNextWith("PUT", 1, 400, "PrincipalNotFound", "Principal x does not exist in the directory y.", 0)
	if a := c.put(cluster, nameA, fullRole, userA); a.status != 400 || a.code() != "PrincipalNotFound" {
		t.Fatalf("with: %d %s", a.status, a.raw)
	}
	if a := c.put(cluster, nameA, fullRole, userA); a.status != 201 {
		t.Fatalf("after the faults: %d %s", a.status, a.raw)
	}

	// A reset answers nothing and changes nothing.
	s.ResetNext("DELETE", 1)
	if _, err := c.do("DELETE", raPath(cluster, nameA), nil); err == nil {
		t.Fatal("reset: got an answer")
	}
	if !s.HasAssignment(cluster, roleAdmin, userA) {
		t.Fatal("reset DELETE deleted")
	}
	// A lost answer: the DELETE happened, the caller saw a 500 / a reset.
	s.LoseAnswerNext("DELETE", 1, 500)
	if a := c.must("DELETE", raPath(cluster, nameA), nil); a.status != 500 || a.code() != "InternalServerError" {
		t.Fatalf("lost: %d %s", a.status, a.raw)
	}
	if s.HasAssignment(cluster, roleAdmin, userA) {
		t.Fatal("lost-answer DELETE did not delete")
	}
	s.LoseAnswerNext("PUT", 1, 0)
	if _, err := c.do("PUT", raPath(cluster, nameB), putBody(fullRole, userB)); err == nil {
		t.Fatal("lost with reset: got an answer")
	}
	if !s.HasAssignment(cluster, roleAdmin, userB) {
		t.Fatal("lost-answer PUT did not create")
	}
	faults := map[string]int{}
	for _, call := range s.Calls() {
		faults[call.Fault]++
	}
	if faults["fail"] != 3 || faults["reset"] != 1 || faults["lose"] != 2 {
		t.Fatalf("faults %v", faults)
	}

	// Delay, and a client that gives up.
	s.Delay("GET", 300*time.Millisecond)
	c.hc.Timeout = 100 * time.Millisecond
	if _, err := c.do("GET", raPath(cluster, ""), nil); err == nil {
		t.Fatal("delay: answered in time")
	}
	c.hc.Timeout = 10 * time.Second
	start := time.Now()
	if a := c.must("GET", raPath(cluster, ""), nil); a.status != 200 || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("delay: %d after %v", a.status, time.Since(start))
	}
	s.ClearFaults()
	s.FailNext("", -1, 503, 0)
	for range 3 {
		if a := c.must("GET", raPath(cluster, ""), nil); a.status != 503 {
			t.Fatalf("forever: %d", a.status)
		}
	}
	s.ClearFaults()
	if a := c.must("GET", raPath(cluster, ""), nil); a.status != 200 {
		t.Fatalf("cleared: %d", a.status)
	}
	s.ResetCalls()
	if len(s.Calls()) != 0 {
		t.Fatal("ResetCalls")
	}
}

func TestMutationHelpers(t *testing.T) {
	s, c := newSim(t, Options{})
	n := s.AddAssignment(Assignment{Scope: strings.ToLower(cluster), RoleDefinitionID: fullRole, PrincipalID: strings.ToUpper(userA)})
	a, ok := s.Assignment(n)
	if !ok || a.Scope != cluster || a.PrincipalID != userA || a.PrincipalType != "User" || a.RoleDefinitionID != fullRole {
		t.Fatalf("%+v", a)
	}
	// Someone else's standing assignment makes ours a conflict.
	if a := c.put(cluster, nameA, fullRole, userA); a.status != 409 || a.code() != "RoleAssignmentExists" {
		t.Fatalf("put: %d %s", a.status, a.raw)
	}
	if !s.RemoveAssignment(n) || s.RemoveAssignment(n) {
		t.Fatal("RemoveAssignment")
	}
	c.put(cluster, nameA, fullRole, userA)
	c.put(nsScope, nameB, fullRole, userA)
	if got := s.RemoveScope(cluster); got != 2 {
		t.Fatalf("RemoveScope removed %d", got)
	}
	if a := c.must("GET", raPath(cluster, ""), nil); a.status != 404 || a.code() != "ResourceNotFound" {
		t.Fatalf("after RemoveScope: %d %s", a.status, a.raw)
	}
	if a := c.must("GET", raPath("/subscriptions/"+sub+"/resourceGroups/"+rg, ""), nil); a.status != 200 {
		t.Fatalf("resource group went too: %d", a.status)
	}
	if got := s.Scopes(); len(got) != 2 {
		t.Fatalf("scopes %v", got)
	}
	for _, bad := range []string{"subscriptions/x", "/subscriptions/x/resourceGroups", "/subscriptions/x/resourceGroups/rg/providers/a/b", "/subscriptions/x/../y"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("AddScope(%q) accepted", bad)
				}
			}()
			s.AddScope(bad)
		}()
	}
}

func TestConcurrentPuts(t *testing.T) {
	s, c := newSim(t, Options{})
	// Ten callers race to assign the same role to the same principal under
	// ten names: exactly one creates it, the others get 409.
	var wg sync.WaitGroup
	statuses := make(chan int, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := c.do("PUT", raPath(cluster, fmt.Sprintf("9e9e0000-0000-5000-8000-%012d", i)), putBody(fullRole, userA))
			if err != nil {
				statuses <- -1
				return
			}
			statuses <- a.status
		}()
	}
	wg.Wait()
	close(statuses)
	got := map[int]int{}
	for st := range statuses {
		got[st]++
	}
	if got[201] != 1 || got[409] != 9 || len(s.Assignments()) != 1 {
		t.Fatalf("statuses %v", got)
	}
}

func TestServeOnListener(t *testing.T) {
	s := New(Options{}).AddScope(cluster).AddRoleDefinition(roleAdmin)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve("127.0.0.1:0") }()
	// Serve on a port we cannot know: Close must still stop it.
	time.Sleep(50 * time.Millisecond)
	s.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not stop")
	}
}
