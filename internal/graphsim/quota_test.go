package graphsim

import (
	"net/url"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/seed"
	"github.com/jitaccess/jitaccess/internal/simkit"
)

const otherAppID = "a9900000-0000-4000-8000-0000000000b2"

func newQuotaSim(t *testing.T, q Quota) (*Sim, *client, *simkit.Clock) {
	t.Helper()
	clk := simkit.NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	s, c := newSim(t, Options{Now: clk.Now})
	s.SetQuota(q)
	c.token = fakeJWT(testAppID, testOID)
	return s, c, clk
}

func addRef(c *client, group, member string) answer {
	c.t.Helper()
	return c.must("POST", "/groups/"+group+"/members/$ref", refBody(member))
}

func throttled(t *testing.T, a answer, retryAfter, scope, info string) {
	t.Helper()
	if a.status != 429 || a.errCode() != "TooManyRequests" {
		t.Fatalf("want 429 TooManyRequests, got %d %v", a.status, a.body)
	}
	if got := a.header.Get("Retry-After"); got != retryAfter {
		t.Fatalf("Retry-After %q, want %q", got, retryAfter)
	}
	if got := a.header.Get("x-ms-throttle-scope"); got != scope+"/"+AuditTenantID {
		t.Fatalf("x-ms-throttle-scope %q, want %q", got, scope+"/"+AuditTenantID)
	}
	if got := a.header.Get("x-ms-throttle-information"); got != info {
		t.Fatalf("x-ms-throttle-information %q", got)
	}
	if a.header.Get("x-ms-resource-unit") != "" {
		t.Fatal("a throttled answer carries x-ms-resource-unit")
	}
}

func TestQuotaOffByDefault(t *testing.T) {
	s, c := newSim(t, Options{})
	for _, u := range []string{seed.UserX01, seed.UserN01, seed.UserP01, seed.UserP02} {
		if a := addRef(c, seed.GroupAKSOps, u); a.status != 204 || a.header.Get("x-ms-resource-unit") != "" {
			t.Fatalf("add %s: %d %v", u, a.status, a.header)
		}
	}
	for _, call := range s.Calls() {
		if call.ResourceUnits != 0 || call.WriteUnits != 0 || call.Fault != "" {
			t.Fatalf("charged without a quota: %+v", call)
		}
	}
	s.SetQuota(Quota{Writes: 1, WriteWindow: time.Hour})
	s.SetQuota(Quota{})
	if a := addRef(c, seed.GroupAKSOps, seed.UserN02); a.status != 204 || s.CountThrottled() != 0 {
		t.Fatalf("Quota{} did not turn throttling off: %d", a.status)
	}
}

// Writes beyond the application+tenant write quota are refused with 429
// and a Retry-After that is exactly long enough; reads go on; a retry
// before Retry-After is charged and prolongs the throttling.
func TestQuotaWrites(t *testing.T) {
	s, c, clk := newQuotaSim(t, Quota{Writes: 5, WriteWindow: 10 * time.Second}) // refills 0.5 per second
	users := []string{seed.UserX01, seed.UserN01, seed.UserN02, seed.UserP01, seed.UserP02}
	for i, u := range users {
		a := addRef(c, seed.GroupAKSOps, u)
		if a.status != 204 || a.header.Get("x-ms-resource-unit") != "1" {
			t.Fatalf("write %d: %d %v", i, a.status, a.header)
		}
		// More than 0.8 of the limit used: x-ms-throttle-limit-percentage.
		if got, want := a.header.Get("x-ms-throttle-limit-percentage"), map[bool]string{true: "1.0", false: ""}[i == 4]; got != want {
			t.Fatalf("write %d: limit percentage %q want %q", i, got, want)
		}
	}
	// Sixth write: bucket at 0, charged to -1; back to 1 after 4 s.
	a := c.must("POST", "/users/"+seed.UserN01+"/revokeSignInSessions", nil)
	throttled(t, a, "4", "Tenant_Application/Write/"+testAppID, "WriteLimitExceeded")
	if s.RevokeCount(seed.UserN01) != 0 {
		t.Fatal("a throttled write was carried out")
	}
	last := s.Calls()[len(s.Calls())-1]
	if last.Status != 429 || last.Fault != "quota" || last.WriteUnits != 1 || s.CountThrottled() != 1 {
		t.Fatalf("call record %+v, throttled %d", last, s.CountThrottled())
	}
	// Reads are not writes: permitted while writes are throttled.
	if !memberOf(c, seed.UserX01, seed.GroupAKSOps) {
		t.Fatal("read refused or wrong")
	}
	// Waiting Retry-After is enough.
	clk.Add(4 * time.Second)
	if a := c.must("POST", "/users/"+seed.UserN01+"/revokeSignInSessions", nil); a.status != 200 {
		t.Fatalf("after Retry-After: %d %v", a.status, a.body)
	}
	// Now at 0 again: an early retry is charged and waits longer.
	throttled(t, c.must("DELETE", "/groups/"+seed.GroupAKSOps+"/members/"+seed.UserX01+"/$ref", nil),
		"4", "Tenant_Application/Write/"+testAppID, "WriteLimitExceeded") // -1
	clk.Add(3 * time.Second) // 0.5
	throttled(t, c.must("DELETE", "/groups/"+seed.GroupAKSOps+"/members/"+seed.UserX01+"/$ref", nil),
		"3", "Tenant_Application/Write/"+testAppID, "WriteLimitExceeded") // -0.5
	clk.Add(3 * time.Second) // 1
	if a := c.must("DELETE", "/groups/"+seed.GroupAKSOps+"/members/"+seed.UserX01+"/$ref", nil); a.status != 204 {
		t.Fatalf("after the second Retry-After: %d", a.status)
	}
	if s.CountThrottled() != 3 || !s.IsDirectMember(seed.GroupAKSOps, seed.UserN01) || s.IsDirectMember(seed.GroupAKSOps, seed.UserX01) {
		t.Fatalf("throttled %d", s.CountThrottled())
	}
	// The bucket never holds more than the quota: after an hour's rest,
	// five writes pass and the sixth is throttled.
	clk.Add(time.Hour)
	for _, u := range []string{seed.UserN02, seed.UserP01, seed.UserP02} {
		if a := c.must("DELETE", "/groups/"+seed.GroupAKSOps+"/members/"+u+"/$ref", nil); a.status != 204 {
			t.Fatalf("remove %s: %d", u, a.status)
		}
	}
	if addRef(c, seed.GroupAKSOps, seed.UserX01).status != 204 || c.must("POST", "/users/"+seed.UserN02+"/revokeSignInSessions", nil).status != 200 {
		t.Fatal("fourth or fifth write after the rest")
	}
	throttled(t, addRef(c, seed.GroupAKSOps, seed.UserA01), "4", "Tenant_Application/Write/"+testAppID, "WriteLimitExceeded")
}

// Every request spends resource units; checkMemberGroups costs 4, members
// 3 ($select −1, $top below 20 −1); PIM for Groups is not metered.
func TestQuotaResourceUnits(t *testing.T) {
	s, c, clk := newQuotaSim(t, Quota{ResourceUnits: 10, ResourceWindow: 10 * time.Second}) // 1 per second
	check := func() answer {
		return c.must("POST", "/users/"+seed.UserN01+"/checkMemberGroups", jsonBody(map[string]any{"groupIds": []string{seed.GroupAKSDefault}}))
	}
	for range 2 {
		if a := check(); a.status != 200 || a.header.Get("x-ms-resource-unit") != "4" {
			t.Fatalf("check: %d %v", a.status, a.header)
		}
	}
	// 2 left, cost 4: throttled, charged to -2, 4 again after 6 s.
	throttled(t, check(), "6", "Tenant_Application/ReadWrite/"+testAppID, "ResourceUnitLimitExceeded")
	// PIM requests are outside identity and access: answered even now.
	s.SetPIMPolicy(seed.GroupAKSOps, PIMPolicy{})
	a := c.must("POST", pimReqs, assignBody(seed.GroupAKSOps, seed.UserN01, "PT5M", ""))
	if a.status != 201 || a.header.Get("x-ms-resource-unit") != "" {
		t.Fatalf("PIM: %d %v", a.status, a.header)
	}
	clk.Add(6 * time.Second)
	if a := check(); a.status != 200 {
		t.Fatalf("after Retry-After: %d", a.status)
	}
	clk.Add(time.Minute)
	a = c.must("GET", "/groups/"+seed.GroupAKSDefault+"/members?$select=id", nil)
	b := c.must("GET", "/groups/"+seed.GroupAKSDefault+"/members?$select=id&$top=5", nil)
	u := c.must("GET", "/users/"+seed.UserN01+"?$select=id", nil)
	if a.header.Get("x-ms-resource-unit") != "2" || b.header.Get("x-ms-resource-unit") != "1" || u.header.Get("x-ms-resource-unit") != "1" {
		t.Fatalf("costs %q %q %q", a.header.Get("x-ms-resource-unit"), b.header.Get("x-ms-resource-unit"), u.header.Get("x-ms-resource-unit"))
	}
	want := map[string]int{"POST": 4, "GET": 0}
	for _, call := range s.CallsTo("", "/checkMemberGroups") {
		if call.ResourceUnits != want[call.Method] || call.WriteUnits != 0 {
			t.Fatalf("record %+v", call)
		}
	}
	for _, call := range s.CallsTo("POST", "/assignmentScheduleRequests") {
		if call.ResourceUnits != 0 || call.Fault != "" {
			t.Fatalf("PIM charged: %+v", call)
		}
	}
}

// Each application has its own buckets; the tenant's write quota is shared
// by all of them.
func TestQuotaPerAppAndTenant(t *testing.T) {
	s, c, _ := newQuotaSim(t, Quota{Writes: 2, WriteWindow: 10 * time.Second, TenantWrites: 3, TenantWriteWindow: 10 * time.Second})
	other := *c
	other.token = fakeJWT(otherAppID, testOID)
	if addRef(c, seed.GroupAKSOps, seed.UserX01).status != 204 || addRef(c, seed.GroupAKSOps, seed.UserN01).status != 204 {
		t.Fatal("app A's writes")
	}
	if a := addRef(&other, seed.GroupAKSOps, seed.UserN02); a.status != 204 {
		t.Fatalf("app B's first write: %d", a.status)
	}
	// B has 1 left of its own, the tenant 0: the tenant's bucket (0.3/s)
	// throttles, charged to -1: 2 units away = 6.67 s → 7.
	throttled(t, addRef(&other, seed.GroupAKSOps, seed.UserP01), "7", "Tenant/Write/"+otherAppID, "WriteLimitExceeded")
	if s.IsDirectMember(seed.GroupAKSOps, seed.UserP01) {
		t.Fatal("throttled write carried out")
	}
}

func TestDocumentedQuota(t *testing.T) {
	for users, ru := range map[int]int{1: 3500, 49: 3500, 50: 5000, 500: 5000, 501: 8000, 100000: 8000} {
		q := DocumentedQuota(users)
		if q.ResourceUnits != ru || q.ResourceWindow != 10*time.Second || q.Writes != 3000 || q.WriteWindow != 150*time.Second ||
			q.TenantWrites != 18000 || q.TenantWriteWindow != 5*time.Minute {
			t.Fatalf("%d users: %+v", users, q)
		}
	}
	// A burst of removals against the documented quota: 3,000 pass, the next
	// is throttled for 1 s (20 writes a second come back).
	clk := simkit.NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	s := New(Options{Now: clk.Now})
	s.SetQuota(DocumentedQuota(10))
	q := url.Values{}
	for i := range 3000 {
		if a := s.admit(-1, testAppID, "DELETE", "/groups/g/members/u/$ref", q); a.retryAfter != 0 {
			t.Fatalf("write %d throttled", i)
		}
	}
	a := s.admit(-1, testAppID, "DELETE", "/groups/g/members/u/$ref", q)
	if a.retryAfter <= 0 || a.retryAfter > time.Second {
		t.Fatalf("write 3001: retry after %v", a.retryAfter)
	}
	// The resource unit quota (3,500 per 10 s) was spent too: 3,001 of it.
	clk.Add(time.Second)
	if a := s.admit(-1, testAppID, "POST", "/users/u/checkMemberGroups", q); a.retryAfter != 0 {
		t.Fatalf("read throttled: %v", a.retryAfter)
	}
}

func TestRequestCost(t *testing.T) {
	for _, tc := range []struct {
		method, path, query string
		units, writes       int
		metered             bool
	}{
		{"GET", "/users/u1", "$select=id,userPrincipalName,accountEnabled", 1, 0, true},
		{"GET", "/users", "", 2, 0, true},
		{"GET", "/users", "$select=id", 1, 0, true},
		{"POST", "/users/u1/checkMemberGroups", "", 4, 0, true},
		{"POST", "/users/u1/revokeSignInSessions", "", 1, 1, true},
		{"GET", "/groups/g1", "", 1, 0, true},
		{"GET", "/groups/g1/members", "$select=id", 2, 0, true},
		{"GET", "/groups/g1/members", "$select=id&$top=999", 2, 0, true},
		{"GET", "/groups/g1/members", "$top=10", 2, 0, true},
		{"GET", "/groups/g1/members", "$select=id&$top=10", 1, 0, true},
		{"GET", "/groups/g1/members", "$select=id&$top=1&$expand=x", 2, 0, true},
		{"GET", "/groups/g1/transitiveMembers", "", 5, 0, true},
		{"POST", "/groups/g1/members/$ref", "", 1, 1, true},
		{"DELETE", "/groups/g1/members/u1/$ref", "", 1, 1, true},
		{"POST", "/directoryObjects/getByIds", "", 3, 0, true},
		{"POST", "/identityGovernance/privilegedAccess/group/assignmentScheduleRequests", "", 0, 0, false},
		{"GET", "/identityGovernance/privilegedAccess/group/assignmentScheduleInstances", "", 0, 0, false},
	} {
		q, _ := url.ParseQuery(tc.query)
		u, w, m := requestCost(tc.method, tc.path, q)
		if u != tc.units || w != tc.writes || m != tc.metered {
			t.Errorf("%s %s?%s: %d %d %v, want %d %d %v", tc.method, tc.path, tc.query, u, w, m, tc.units, tc.writes, tc.metered)
		}
	}
}
