// Package graphsim is an in-process Microsoft Graph simulator for tests and
// the sandbox. It speaks the operations of docs/design.md, Operations that jitaccess uses on
// users and groups, with Graph's JSON shapes and error bodies, over plain
// net/http (it does not import the Graph SDK, so tests that use it stay
// fast).
//
// It models a tenant of users (id, userPrincipalName, accountEnabled,
// userType) and groups with direct members (users and nested groups), and
// answers, under the base path /v1.0:
//
//	GET    /users/{id|upn}                  user (id, userPrincipalName, accountEnabled, userType always)
//	POST   /users/{id|upn}/checkMemberGroups {"groupIds":[...]} → transitive memberships (≤ 20 ids)
//	POST   /users/{id|upn}/revokeSignInSessions
//	GET    /groups/{id}                     group
//	GET    /groups/{id}/members             direct members, paged by @odata.nextLink ($top honoured)
//	POST   /groups/{id}/members/$ref        {"@odata.id":".../directoryObjects/{id}"}
//	DELETE /groups/{id}/members/{id}/$ref
//	POST   /identityGovernance/privilegedAccess/group/assignmentScheduleRequests (pim.go)
//	GET    /identityGovernance/privilegedAccess/group/assignmentScheduleInstances
//
// Membership changes it makes (and PIM's) are kept as Entra audit records
// (AuditRecords), initiated by the app named in the caller's token.
//
// Every call needs "Authorization: Bearer <token>" (optionally checked by
// Options.Verify). Request bodies may be gzip-compressed; a body announced
// as gzip that is not gzip is refused with 400, as Graph does. Every call is
// recorded (Calls, CallsTo) and faults can be injected (FailNext, ResetNext,
// Delay). The directory can behave as Entra really does: membership reads
// lag behind writes (SetReplicaLag, lag.go) and identity requests are
// throttled by Graph's documented quota with 429 + Retry-After (SetQuota,
// quota.go). The Sim is safe for concurrent use.
//
// Where things are: the directory in tenant.go; what every call goes
// through and the routes in routing.go; the endpoints in users.go,
// groups.go and pim.go; Graph's answers and error texts in answers.go;
// injected faults in faults.go; the call log in calls.go; serving the Sim
// in server.go; audit records in auditlog.go. What these share with armsim
// (serving, the call log, fault rules, the replica lag's log, token
// buckets) is internal/simkit.
package graphsim

import (
	"sync"
	"time"

	"github.com/jitaccess/jitaccess/internal/simkit"
)

// BasePath is the path prefix of every endpoint (the SDK base URL is
// http://host:port/v1.0).
const BasePath = "/v1.0"

// Options configure a Sim.
type Options struct {
	// PageSize of GET /groups/{id}/members when the caller gives no $top
	// (default 100).
	PageSize int
	// Verify, when set, must accept the bearer token or the call gets 401
	// InvalidAuthenticationToken. The token is never stored.
	Verify func(token string) bool
	// Now is the clock used for call records, PIM schedules, the replica
	// lag and the quota (default time.Now).
	Now func() time.Time
	// ReplicaLag, when > 0, makes membership reads answer as of a random
	// moment within the last ReplicaLag (lag.go; SetReplicaLag).
	ReplicaLag time.Duration
	// ReplicaSeed seeds the random source of those moments.
	ReplicaSeed int64
}

// Sim is a simulated Graph endpoint.
type Sim struct {
	opts Options

	mu          sync.Mutex // guards the state below
	t           tenant
	pim         map[pimKey]*PIMAssignment
	pimPolicies map[string]PIMPolicy
	audit       []map[string]any
	rep         replicas // lag.go
	quota       quota    // quota.go

	// The plumbing shared with armsim, each with its own lock.
	log    simkit.Log[Call] // calls.go
	faults simkit.Faults    // faults.go
	srv    simkit.Server    // server.go
}

// New returns a Sim with an empty tenant (see SeedTenant). Call Start to
// serve it on an httptest server, or Serve / Handler to serve it yourself.
func New(opts Options) *Sim {
	if opts.PageSize <= 0 {
		opts.PageSize = 100
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Sim{opts: opts, t: newTenant(), pim: map[pimKey]*PIMAssignment{}, pimPolicies: map[string]PIMPolicy{}}
	s.rep.Set(opts.ReplicaLag, opts.ReplicaSeed, opts.Now())
	return s
}

// locked runs f with s.mu held; the lock is released even if f panics (a
// handler's panic is recovered by net/http, and a lock left held would
// hang every later call and Close).
func (s *Sim) locked(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}
