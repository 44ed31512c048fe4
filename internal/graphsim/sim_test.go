package graphsim

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/seed"
	"github.com/jitaccess/jitaccess/internal/simkit"
)

type client struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
}

func newSim(t *testing.T, opts Options) (*Sim, *client) {
	t.Helper()
	s := New(opts).SeedTenant().Start()
	t.Cleanup(s.Close)
	return s, &client{t: t, base: s.BaseURL(), token: "tok", hc: &http.Client{Timeout: 10 * time.Second}}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a answer) errCode() string {
	e, _ := a.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (a answer) errMsg() string {
	e, _ := a.body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func (c *client) do(method, path string, body []byte, hdr map[string]string) (answer, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			c.t.Fatalf("%s %s: non-JSON answer %q", method, path, raw)
		}
	}
	return a, nil
}

func (c *client) must(method, path string, body []byte) answer {
	c.t.Helper()
	a, err := c.do(method, path, body, nil)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

func jsonBody(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func refBody(id string) []byte {
	return jsonBody(map[string]string{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + id})
}

func TestGetUser(t *testing.T) {
	_, c := newSim(t, Options{})
	tests := []struct {
		name, key      string
		status         int
		id, upn, uType string
		enabled        bool
		wantCode       string
	}{
		{"by id", seed.UserN01, 200, seed.UserN01, "n01@contoso.com", "Member", true, ""},
		{"by id upper case", strings.ToUpper(seed.UserN01), 200, seed.UserN01, "n01@contoso.com", "Member", true, ""},
		{"by upn", "N01@Contoso.com", 200, seed.UserN01, "n01@contoso.com", "Member", true, ""},
		{"disabled", seed.UserD01, 200, seed.UserD01, "d01@contoso.com", "Member", false, ""},
		{"guest upn escaped", url.PathEscape(seed.GuestUPN), 200, seed.UserG01, seed.GuestUPN, "Guest", true, ""},
		{"unknown id", "5e5e0000-0000-4000-8000-0000000000ff", 404, "", "", "", false, "Request_ResourceNotFound"},
		{"unknown upn", "nobody@contoso.com", 404, "", "", "", false, "Request_ResourceNotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := c.must("GET", "/users/"+tc.key+"?$select=id,userPrincipalName", nil)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d (%v)", a.status, tc.status, a.body)
			}
			if tc.wantCode != "" {
				if a.errCode() != tc.wantCode {
					t.Fatalf("code %q, want %q", a.errCode(), tc.wantCode)
				}
				return
			}
			if a.body["id"] != tc.id || a.body["userPrincipalName"] != tc.upn || a.body["userType"] != tc.uType || a.body["accountEnabled"] != tc.enabled {
				t.Fatalf("got %v", a.body)
			}
			if _, ok := a.body["displayName"]; ok {
				t.Fatalf("displayName not selected but returned: %v", a.body)
			}
		})
	}
}

func TestGuestUPNMustBeEscaped(t *testing.T) {
	s, c := newSim(t, Options{})
	// A raw '#' starts the fragment: the server sees only the part before it.
	a := c.must("GET", "/users/"+seed.GuestUPN, nil)
	if a.status != 404 {
		t.Fatalf("unescaped guest UPN: status %d, want 404", a.status)
	}
	if calls := s.Calls(); calls[len(calls)-1].Path != "/users/g01_fabrikam.com" {
		t.Fatalf("path %q", calls[len(calls)-1].Path)
	}
}

func TestAuthRequired(t *testing.T) {
	s, c := newSim(t, Options{Verify: func(tok string) bool { return tok == "good" }})
	c.token = ""
	a := c.must("GET", "/users/"+seed.UserN01, nil)
	if a.status != 401 || a.errCode() != "InvalidAuthenticationToken" || a.errMsg() != MsgEmptyToken {
		t.Fatalf("no token: %d %v", a.status, a.body)
	}
	c.token = "bad"
	a = c.must("GET", "/users/"+seed.UserN01, nil)
	if a.status != 401 || a.errCode() != "InvalidAuthenticationToken" {
		t.Fatalf("bad token: %d %v", a.status, a.body)
	}
	c.token = "good"
	if a = c.must("GET", "/users/"+seed.UserN01, nil); a.status != 200 {
		t.Fatalf("good token: %d", a.status)
	}
	if got := s.CountCalls("GET", "/users/"+seed.UserN01); got != 3 {
		t.Fatalf("recorded %d calls", got)
	}
}

func TestCheckMemberGroupsTransitive(t *testing.T) {
	_, c := newSim(t, Options{})
	all := []string{seed.GroupAKSDefault, seed.GroupAKSAdmin, seed.GroupAKSApprovers, seed.GroupFinanceAdmins, seed.GroupAKSOps}
	tests := []struct {
		user string
		want []string
	}{
		{seed.UserN01, []string{seed.GroupAKSDefault}},
		{seed.UserN02, []string{seed.GroupAKSDefault}},   // through default-nested
		{seed.UserP02, []string{seed.GroupAKSApprovers}}, // through approvers-nested
		{seed.UserS01, []string{seed.GroupAKSDefault, seed.GroupAKSAdmin}},
		{seed.UserA01, []string{seed.GroupAKSDefault, seed.GroupAKSApprovers}},
		{seed.UserX01, []string{}},
		{seed.UserD02, []string{seed.GroupAKSApprovers}},
		{seed.GuestUPN, []string{seed.GroupAKSDefault}},
	}
	for _, tc := range tests {
		a := c.must("POST", "/users/"+url.PathEscape(tc.user)+"/checkMemberGroups", jsonBody(map[string]any{"groupIds": all}))
		if a.status != 200 {
			t.Fatalf("%s: status %d %v", tc.user, a.status, a.body)
		}
		got, _ := a.body["value"].([]any)
		if len(got) != len(tc.want) {
			t.Fatalf("%s: got %v want %v", tc.user, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("%s: got %v want %v", tc.user, got, tc.want)
			}
		}
	}
	// More than 20 ids is refused, as on Graph.
	many := make([]string, 21)
	for i := range many {
		many[i] = seed.GroupAKSDefault
	}
	if a := c.must("POST", "/users/"+seed.UserN01+"/checkMemberGroups", jsonBody(map[string]any{"groupIds": many})); a.status != 400 {
		t.Fatalf("21 ids: status %d", a.status)
	}
	if a := c.must("POST", "/users/nobody@contoso.com/checkMemberGroups", jsonBody(map[string]any{"groupIds": all})); a.status != 404 {
		t.Fatalf("unknown user: status %d", a.status)
	}
	if a := c.must("POST", "/users/"+seed.UserN01+"/checkMemberGroups", nil); a.status != 400 {
		t.Fatalf("empty body: status %d", a.status)
	}
}

func TestAddRemoveMember(t *testing.T) {
	s, c := newSim(t, Options{})
	g := seed.GroupAKSAdmin
	a := c.must("POST", "/groups/"+g+"/members/$ref", refBody(seed.UserN01))
	if a.status != 204 || !s.IsDirectMember(g, seed.UserN01) {
		t.Fatalf("add: %d %v", a.status, a.body)
	}
	a = c.must("POST", "/groups/"+g+"/members/$ref", refBody(seed.UserN01))
	if a.status != 400 || a.errCode() != "Request_BadRequest" || a.errMsg() != MsgAlreadyExists {
		t.Fatalf("add again: %d %v", a.status, a.body)
	}
	if a = c.must("POST", "/groups/"+g+"/members/$ref", refBody("5e5e0000-0000-4000-8000-0000000000ff")); a.status != 404 || a.errCode() != "Request_ResourceNotFound" {
		t.Fatalf("unknown user: %d %v", a.status, a.body)
	}
	if a = c.must("POST", "/groups/1c1a0000-0000-4000-8000-0000000000ff/members/$ref", refBody(seed.UserN01)); a.status != 404 {
		t.Fatalf("unknown group: %d %v", a.status, a.body)
	}
	if a = c.must("POST", "/groups/"+g+"/members/$ref", []byte(`{"x":1}`)); a.status != 400 {
		t.Fatalf("bad body: %d", a.status)
	}
	a = c.must("DELETE", "/groups/"+g+"/members/"+seed.UserN01+"/$ref", nil)
	if a.status != 204 || s.IsDirectMember(g, seed.UserN01) {
		t.Fatalf("remove: %d %v", a.status, a.body)
	}
	a = c.must("DELETE", "/groups/"+g+"/members/"+seed.UserN01+"/$ref", nil)
	if a.status != 404 || a.errCode() != "Request_ResourceNotFound" || a.errMsg() != MsgRemovedNotExist {
		t.Fatalf("remove again: %d %v", a.status, a.body)
	}
	// Standing member s01 stays.
	if !s.IsDirectMember(g, seed.UserS01) {
		t.Fatal("s01 lost its standing membership")
	}
}

func TestRevoke(t *testing.T) {
	s, c := newSim(t, Options{})
	for range 2 {
		a := c.must("POST", "/users/"+seed.UserN01+"/revokeSignInSessions", nil)
		if a.status != 200 || a.body["value"] != true || a.body["@odata.context"] == nil {
			t.Fatalf("revoke: %d %v", a.status, a.body)
		}
	}
	if got := s.RevokeCount(seed.UserN01); got != 2 {
		t.Fatalf("RevokeCount %d", got)
	}
	if a := c.must("POST", "/users/nobody@contoso.com/revokeSignInSessions", nil); a.status != 404 {
		t.Fatalf("unknown: %d", a.status)
	}
}

func TestMembersPaging(t *testing.T) {
	s, c := newSim(t, Options{PageSize: 2})
	g := seed.GroupAKSDefault
	want := s.Members(g) // n01, d01, g01, s01, a01, default-nested
	if len(want) != 6 {
		t.Fatalf("seeded members %v", want)
	}
	var got []string
	types := map[string]string{}
	next := c.base + "/groups/" + g + "/members?$select=id"
	pages := 0
	for next != "" {
		pages++
		c2 := *c
		c2.base = ""
		a := c2.must("GET", next, nil)
		if a.status != 200 {
			t.Fatalf("page %d: %d %v", pages, a.status, a.body)
		}
		for _, v := range a.body["value"].([]any) {
			m := v.(map[string]any)
			got = append(got, m["id"].(string))
			types[m["id"].(string)] = m["@odata.type"].(string)
		}
		next, _ = a.body["@odata.nextLink"].(string)
	}
	if pages != 3 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("pages %d got %v want %v", pages, got, want)
	}
	if types[seed.GroupNestedDefault] != "#microsoft.graph.group" || types[seed.UserN01] != "#microsoft.graph.user" {
		t.Fatalf("types %v", types)
	}
	if a := c.must("GET", "/groups/1c1a0000-0000-4000-8000-0000000000ff/members", nil); a.status != 404 {
		t.Fatalf("unknown group: %d", a.status)
	}
}

func TestGzipBodies(t *testing.T) {
	s, c := newSim(t, Options{})
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write(refBody(seed.UserX01))
	_ = zw.Close()
	a, err := c.do("POST", "/groups/"+seed.GroupAKSAdmin+"/members/$ref", zb.Bytes(), map[string]string{"Content-Encoding": "gzip"})
	if err != nil || a.status != 204 || !s.IsDirectMember(seed.GroupAKSAdmin, seed.UserX01) {
		t.Fatalf("gzip add: %v %d %v", err, a.status, a.body)
	}
	// kiota-http-go#183: gzip header, plain body → 400.
	a, err = c.do("POST", "/users/"+seed.UserN01+"/checkMemberGroups", jsonBody(map[string]any{"groupIds": []string{seed.GroupAKSDefault}}), map[string]string{"Content-Encoding": "gzip"})
	if err != nil || a.status != 400 || a.errMsg() != MsgInvalidPayload {
		t.Fatalf("plain body under gzip header: %v %d %v", err, a.status, a.body)
	}
	calls := s.CallsTo("POST", "/checkMemberGroups")
	if len(calls) != 1 || calls[0].ContentEncoding != "gzip" || calls[0].Status != 400 {
		t.Fatalf("calls %+v", calls)
	}
}

func TestFailNextAndRetryAfter(t *testing.T) {
	s, c := newSim(t, Options{})
	s.FailNext("POST /checkMemberGroups", 2, 429, 1500*time.Millisecond)
	body := jsonBody(map[string]any{"groupIds": []string{seed.GroupAKSDefault}})
	for i := range 2 {
		a := c.must("POST", "/users/"+seed.UserN01+"/checkMemberGroups", body)
		if a.status != 429 || a.header.Get("Retry-After") != "2" || a.errCode() != "TooManyRequests" {
			t.Fatalf("try %d: %d %v %v", i, a.status, a.header, a.body)
		}
	}
	// Other paths are not affected, and the third call succeeds.
	if a := c.must("GET", "/users/"+seed.UserN01, nil); a.status != 200 {
		t.Fatalf("GET: %d", a.status)
	}
	if a := c.must("POST", "/users/"+seed.UserN01+"/checkMemberGroups", body); a.status != 200 {
		t.Fatalf("third: %d", a.status)
	}
	calls := s.CallsTo("POST", "/checkMemberGroups")
	if len(calls) != 3 || calls[0].Fault != "fail" || calls[2].Fault != "" || calls[2].Status != 200 {
		t.Fatalf("calls %+v", calls)
	}
	for _, st := range []int{500, 502, 503, 504, 403} {
		s.FailNext("", 1, st, 0)
		if a := c.must("GET", "/users/"+seed.UserN01, nil); a.status != st || a.errCode() == "" {
			t.Fatalf("%d: got %d %v", st, a.status, a.body)
		}
	}
	s.FailNext("GET /users/", -1, 503, time.Second)
	for range 3 {
		if a := c.must("GET", "/users/"+seed.UserN01, nil); a.status != 503 {
			t.Fatalf("forever: %d", a.status)
		}
	}
	s.ClearFaults()
	if a := c.must("GET", "/users/"+seed.UserN01, nil); a.status != 200 {
		t.Fatalf("after clear: %d", a.status)
	}
}

func TestResetAndDelay(t *testing.T) {
	s, c := newSim(t, Options{})
	s.ResetNext("POST /revokeSignInSessions", 1)
	_, err := c.do("POST", "/users/"+seed.UserN01+"/revokeSignInSessions", nil, nil)
	if err == nil {
		t.Fatal("reset: no error")
	}
	if s.RevokeCount(seed.UserN01) != 0 {
		t.Fatal("reset call revoked")
	}
	if calls := s.CallsTo("POST", "/revokeSignInSessions"); len(calls) != 1 || calls[0].Fault != "reset" || calls[0].Status != 0 {
		t.Fatalf("calls %+v", calls)
	}
	s.Delay("GET /users/", 300*time.Millisecond)
	start := time.Now()
	if a := c.must("GET", "/users/"+seed.UserN01, nil); a.status != 200 || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("delay: %d after %v", a.status, time.Since(start))
	}
	c.hc.Timeout = 50 * time.Millisecond
	_, err = c.do("GET", "/users/"+seed.UserN01, nil, nil)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("want client timeout, got %v", err)
	}
	s.Delay("GET /users/", 0)
	c.hc.Timeout = 5 * time.Second
	if a := c.must("GET", "/users/"+seed.UserN01, nil); a.status != 200 {
		t.Fatalf("after delay removed: %d", a.status)
	}
}

func TestMutationHelpers(t *testing.T) {
	s := New(Options{}).SeedTenant()
	if !s.IsTransitiveMember(seed.GroupAKSApprovers, seed.UserP02) || s.IsDirectMember(seed.GroupAKSApprovers, seed.UserP02) {
		t.Fatal("p02 nesting")
	}
	if !s.SetEnabled(seed.UserN01, false) {
		t.Fatal("SetEnabled")
	}
	if u, _ := s.User(seed.UPN("n01")); u.Enabled {
		t.Fatal("still enabled")
	}
	s.AddUser(User{ID: "5E5E0000-0000-4000-8000-0000000000AA", UPN: "new@contoso.com", Enabled: true})
	if u, ok := s.User("NEW@contoso.com"); !ok || u.ID != "5e5e0000-0000-4000-8000-0000000000aa" {
		t.Fatalf("AddUser: %+v", u)
	}
	if !s.AddMember(seed.GroupAKSOps, "5e5e0000-0000-4000-8000-0000000000aa") || s.AddMember(seed.GroupAKSOps, "5e5e0000-0000-4000-8000-0000000000aa") {
		t.Fatal("AddMember")
	}
	if s.AddMember(seed.GroupAKSOps, "unknown") {
		t.Fatal("AddMember unknown")
	}
	if !s.RemoveMember(seed.GroupAKSOps, "5e5e0000-0000-4000-8000-0000000000aa") || s.RemoveMember(seed.GroupAKSOps, "5e5e0000-0000-4000-8000-0000000000aa") {
		t.Fatal("RemoveMember")
	}
	s.DeleteUser(seed.UserS01)
	if s.IsDirectMember(seed.GroupAKSAdmin, seed.UserS01) {
		t.Fatal("DeleteUser kept membership")
	}
}

func TestConcurrent(t *testing.T) {
	s, c := newSim(t, Options{})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 4 {
			case 0:
				c.do("POST", "/groups/"+seed.GroupAKSAdmin+"/members/$ref", refBody(seed.UserN01), nil)
			case 1:
				c.do("DELETE", "/groups/"+seed.GroupAKSAdmin+"/members/"+seed.UserN01+"/$ref", nil, nil)
			case 2:
				s.FailNext("GET", 1, 503, 0)
				c.do("GET", "/users/"+seed.UserN01, nil, nil)
			case 3:
				_ = s.Members(seed.GroupAKSAdmin)
				_ = s.Calls()
			}
		}()
	}
	wg.Wait()
	if len(s.Calls()) != 15 {
		t.Fatalf("recorded %d calls", len(s.Calls()))
	}
}

func TestServeOnListener(t *testing.T) {
	s := New(Options{}).SeedTenant()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.ServeListener(l) }()
	c := &client{t: t, base: "http://" + l.Addr().String() + BasePath, token: "x", hc: &http.Client{Timeout: 5 * time.Second}}
	if a := c.must("GET", "/users/"+seed.UserN01, nil); a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	if a := c.must("GET", "/nope", nil); a.status != 400 {
		t.Fatalf("unknown segment: %d", a.status)
	}
	s.Close()
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
}

// TestCloseDoesNotWaitForDelayedCalls: a delayed call whose client never
// gives up does not hold Close, and a ResetCalls while a call runs is safe.
func TestCloseDoesNotWaitForDelayedCalls(t *testing.T) {
	s := New(Options{}).SeedTenant().Start()
	s.Delay("GET /users/", time.Hour)
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", s.BaseURL()+"/users/"+seed.UserN01, nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	for deadline := time.Now().Add(20 * time.Second); s.CountCalls("GET", "") == 0; {
		if time.Now().After(deadline) {
			t.Fatal("call never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.ResetCalls()
	start := time.Now()
	s.Close()
	if el := time.Since(start); el > simkit.CloseWait {
		t.Fatalf("Close took %v", el)
	}
	select {
	case <-errc:
	case <-time.After(20 * time.Second):
		t.Fatal("client still waiting after Close")
	}
	if n := len(s.Calls()); n != 0 {
		t.Fatalf("%d calls after ResetCalls", n)
	}
}
