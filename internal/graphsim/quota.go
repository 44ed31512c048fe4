package graphsim

import (
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/simkit"
)

// Graph's throttling of identity and access requests (docs/design.md, Operations and The real directory), as
// Microsoft documents it in "Microsoft Graph service-specific throttling
// limits", section "Identity and access service limits":
// https://learn.microsoft.com/en-us/graph/throttling-limits#identity-and-access-service-limits
// (source: github.com/microsoftgraph/microsoft-graph-docs-contrib,
// concepts/throttling-limits.md), and "Microsoft Graph throttling guidance":
// https://learn.microsoft.com/en-us/graph/throttling
//
//   - Throttling is a token bucket that adds up the costs of requests; the
//     requests beyond a limit are answered 429 Too Many Requests.
//   - Limits per application+tenant pair: a resource unit quota of 3,500
//     (tenant under 50 users), 5,000 (50 to 500 users) or 8,000 (above 500
//     users) per 10 seconds, and a write quota of 3,000 per 2 minutes and 30
//     seconds. Per tenant, all applications together: a write quota of 18,000
//     per 5 minutes. (Per application across all tenants: 150,000 resource
//     units per 20 seconds and 70,000 writes per 5 minutes; in a one-tenant
//     simulator the pair limits above are always reached first, so those are
//     not modelled.)
//   - Costs: every request costs resource units (reads share the budget);
//     POST, PATCH, PUT and DELETE also cost one write, except the listed POSTs
//     that only read (checkMemberGroups, getByIds, ...). Base resource units
//     are 1 unless listed (costTable); $select takes 1 off, $expand adds 1,
//     $top below 20 takes 1 off, never below 1. The "me/" costs apply to
//     "users/{id}/" too.
//   - "All requests accrue against your usage limits" and Graph "continues to
//     log resource usage while a client is being throttled" (throttling
//     guidance): a throttled request is charged too, so retrying without
//     waiting prolongs the throttling. Retry-After gives the whole seconds
//     until the bucket again holds the request's cost.
//   - The limits apply to the identity and access resources (users, groups,
//     directory objects); PIM for Groups (/identityGovernance/...) is not in
//     that list and is not metered here.
//
// Throttled answers carry x-ms-throttle-scope and x-ms-throttle-information;
// metered answers carry x-ms-resource-unit, and x-ms-throttle-limit-percentage
// once more than 0.8 of a limit is used, as documented.

// Documented identity and access limits (see above).
const (
	ResourceUnitsSmallTenant  = 3500 // tenant under 50 users, per ResourceUnitWindow
	ResourceUnitsMediumTenant = 5000 // 50 to 500 users
	ResourceUnitsLargeTenant  = 8000 // above 500 users
	ResourceUnitWindow        = 10 * time.Second
	WritesPerAppTenant        = 3000 // per WriteWindow, application+tenant pair
	WriteWindow               = 150 * time.Second
	WritesPerTenant           = 18000 // per TenantWriteWindow, all applications
	TenantWriteWindow         = 5 * time.Minute
)

// Quota is the throttling the Sim applies (SetQuota). A count of 0 leaves
// that limit out; each limit is a token bucket that holds its count and
// refills at count per window (a window of 0 counts as one second).
type Quota struct {
	// ResourceUnits one application may spend per ResourceWindow.
	ResourceUnits  int
	ResourceWindow time.Duration
	// Writes one application may make per WriteWindow.
	Writes      int
	WriteWindow time.Duration
	// TenantWrites all applications together may make per
	// TenantWriteWindow.
	TenantWrites      int
	TenantWriteWindow time.Duration
}

// DocumentedQuota is Microsoft's documented identity and access quota for a
// tenant of tenantUsers users.
func DocumentedQuota(tenantUsers int) Quota {
	ru := ResourceUnitsMediumTenant
	switch {
	case tenantUsers < 50:
		ru = ResourceUnitsSmallTenant
	case tenantUsers > 500:
		ru = ResourceUnitsLargeTenant
	}
	return Quota{
		ResourceUnits: ru, ResourceWindow: ResourceUnitWindow,
		Writes: WritesPerAppTenant, WriteWindow: WriteWindow,
		TenantWrites: WritesPerTenant, TenantWriteWindow: TenantWriteWindow,
	}
}

// SetQuota throttles identity and access requests beyond q (buckets start
// full); Quota{} turns throttling off. Calls the quota throttles are
// recorded with Status 429 and Fault "quota" (CountThrottled).
func (s *Sim) SetQuota(q Quota) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quota = quota{q: q, apps: map[string]*appBuckets{}}
	if q.TenantWrites > 0 {
		s.quota.tenantWrites = newBucket(q.TenantWrites, q.TenantWriteWindow)
	}
}

// CountThrottled is how many recorded calls the quota answered with 429.
func (s *Sim) CountThrottled() int {
	return len(s.log.Select(func(c Call) bool { return c.Fault == faultQuota }))
}

const faultQuota = "quota"

// newBucket is a token bucket that holds n and refills at n per window (a
// window of 0 counts as one second); its level may go below zero
// (throttled requests are charged too).
func newBucket(n int, window time.Duration) *simkit.TokenBucket {
	if window <= 0 {
		window = time.Second
	}
	return simkit.NewTokenBucket(float64(n), float64(n)/window.Seconds())
}

type appBuckets struct{ units, writes *simkit.TokenBucket }

type quota struct {
	q            Quota
	apps         map[string]*appBuckets // by application id
	tenantWrites *simkit.TokenBucket
}

func (q *quota) on() bool { return q.q.ResourceUnits > 0 || q.q.Writes > 0 || q.q.TenantWrites > 0 }

func (q *quota) app(id string) *appBuckets {
	a := q.apps[id]
	if a == nil {
		a = &appBuckets{}
		if q.q.ResourceUnits > 0 {
			a.units = newBucket(q.q.ResourceUnits, q.q.ResourceWindow)
		}
		if q.q.Writes > 0 {
			a.writes = newBucket(q.q.Writes, q.q.WriteWindow)
		}
		q.apps[id] = a
	}
	return a
}

// costTable lists the documented base resource units other than 1 of the
// identity paths (path pattern with {id} for one segment; "users/{id}/x"
// stands for "me/x" too). Its POSTs cost no write.
var costTable = map[string]int{
	"GET users":                                     2,
	"GET applications":                              2,
	"GET groups/{id}/members":                       3,
	"GET groups/{id}/transitiveMembers":             5,
	"POST directoryObjects/getByIds":                3,
	"POST users/{id}/checkMemberGroups":             4,
	"POST users/{id}/checkMemberObjects":            4,
	"POST users/{id}/getMemberGroups":               2,
	"POST users/{id}/getMemberObjects":              2,
	"GET users/{id}/licenseDetails":                 2,
	"GET users/{id}/memberOf":                       2,
	"GET users/{id}/ownedObjects":                   2,
	"GET users/{id}/transitiveMemberOf":             2,
	"GET servicePrincipals/{id}/appRoleAssignments": 2,
}

// requestCost is what a request costs: resource units and writes; metered
// is false off the identity and access resources.
func requestCost(method, path string, query url.Values) (units, writes int, metered bool) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	switch seg[0] {
	case "users", "groups", "directoryObjects", "applications", "servicePrincipals":
	default:
		return 0, 0, false
	}
	pattern := make([]string, len(seg))
	for i, p := range seg {
		pattern[i] = p
		if i%2 == 1 && seg[0] != "directoryObjects" {
			pattern[i] = "{id}"
		}
	}
	key := method + " " + strings.Join(pattern, "/")
	units, listed := costTable[key]
	if !listed {
		units = 1
	}
	switch method {
	case "POST", "PATCH", "PUT", "DELETE":
		if !listed {
			writes = 1
		}
	}
	if query.Has("$select") {
		units--
	}
	if query.Has("$expand") {
		units++
	}
	if n, err := strconv.Atoi(query.Get("$top")); err == nil && n < 20 {
		units--
	}
	return max(units, 1), writes, true
}

// quotaAnswer is the quota's verdict on one request.
type quotaAnswer struct {
	metered    bool
	units      int
	used       float64       // highest share used of the caller's limits
	retryAfter time.Duration // > 0: throttled
	scope      string        // x-ms-throttle-scope
	info       string        // x-ms-throttle-information
}

// admit charges the request of call idx (by application appID) to the
// quota and says whether it is throttled.
func (s *Sim) admit(idx int, appID, method, path string, query url.Values) quotaAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.quota.on() {
		return quotaAnswer{}
	}
	units, writes, metered := requestCost(method, path, query)
	if !metered {
		return quotaAnswer{}
	}
	now := s.opts.Now()
	app := s.quota.app(appID)
	if appID == "" {
		appID = "00000000-0000-0000-0000-000000000000"
	}
	type charge struct {
		b           *simkit.TokenBucket
		cost        float64
		scope, info string
	}
	charges := []charge{
		{app.units, float64(units), "Tenant_Application/ReadWrite/", "ResourceUnitLimitExceeded"},
	}
	if writes > 0 {
		charges = append(charges,
			charge{app.writes, float64(writes), "Tenant_Application/Write/", "WriteLimitExceeded"},
			charge{s.quota.tenantWrites, float64(writes), "Tenant/Write/", "WriteLimitExceeded"})
	}
	ans := quotaAnswer{metered: true, units: units}
	throttled := false
	for _, c := range charges {
		if c.b == nil {
			continue
		}
		c.b.Refill(now)
		if c.b.Level < c.cost {
			throttled = true
		}
	}
	for _, c := range charges {
		if c.b == nil {
			continue
		}
		c.b.Level -= c.cost
		if c.b != s.quota.tenantWrites {
			ans.used = math.Max(ans.used, (c.b.Size-c.b.Level)/c.b.Size)
		}
		if w := c.b.Wait(c.cost); throttled && w > ans.retryAfter {
			ans.retryAfter, ans.scope, ans.info = w, c.scope+appID+"/"+AuditTenantID, c.info
		}
	}
	s.log.Update(idx, func(c *Call) { c.ResourceUnits, c.WriteUnits = units, writes })
	return ans
}
