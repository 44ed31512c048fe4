// Package armsim is an in-process Azure Resource Manager simulator for the
// role-assignment operations of docs/design.md, Operations (azure-role profiles), for tests
// and the sandbox. It speaks ARM's JSON shapes and error bodies over plain
// net/http and does not import the Azure SDK, so the real armauthorization
// client can be pointed at it (BaseURL) and tests that use it stay fast.
//
// It answers, for a scope known to it (AddScope):
//
//	PUT    {scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01
//	DELETE {scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01
//	GET    {scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01
//	GET    {scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01[&$filter=...]
//
// with these answers (Microsoft's REST reference, "Role Assignments - Create /
// Delete / List For Scope", api-version 2022-04-01, and the RBAC
// troubleshooting guide; the error codes are ARM's, the messages close to
// its texts):
//
//	PUT     201 created; 200 the same name with the same scope, principal and
//	        role again (ARM's create-or-update; the name makes it idempotent);
//	        409 RoleAssignmentExists: the principal already holds that role at
//	        that scope under another name; 400 RoleAssignmentUpdateNotPermitted:
//	        the name is taken by an assignment with another scope, principal or
//	        role (names are unique across subscriptions); 400
//	        RoleDefinitionDoesNotExist, InvalidRoleDefinitionId,
//	        InvalidPrincipalId, InvalidRoleAssignmentId, InvalidRequestContent,
//	        RoleAssignmentLimitExceeded (MaxAssignmentsPerSubscription).
//	DELETE  200 with the deleted assignment; 204 when there was none by that
//	        name at that scope ("already deleted or does not exist").
//	GET     one: 200, or 404 RoleAssignmentNotFound. List: $filter
//	        "principalId eq '{id}'" (that principal's assignments at, above or
//	        below the scope), "atScope()" (every assignment at or above the
//	        scope), none (at, above or below); paged by nextLink with
//	        $skipToken (PageSize).
//	any     unknown scope: 404 SubscriptionNotFound, ResourceGroupNotFound or
//	        ResourceNotFound; a scope that names no subscription: 400
//	        MissingSubscription; no or unsupported api-version: 400
//	        MissingApiVersionParameter / InvalidApiVersionParameter; no bearer
//	        token: 401 AuthenticationFailed, a token Options.Verify refuses: 401
//	        InvalidAuthenticationToken (both with WWW-Authenticate).
//
// A namespace scope (.../managedClusters/{name}/namespaces/{ns}) is known
// whenever its cluster is: Kubernetes namespaces are not ARM resources and
// ARM does not check them (AKS "Use Azure RBAC for Kubernetes
// authorization", namespace-scoped role assignments).
//
// Every call is recorded (Calls, CallsTo) and faults can be injected
// (FailNext, FailNextWith, ResetNext, Delay, LoseAnswerNext). Reads can lag
// behind writes like ARM's replicated role-assignment store (SetReplicaLag,
// lag.go) and requests can be throttled by ARM's documented per-principal
// limits with 429 + Retry-After (SetThrottle, throttle.go). The test
// accessors (Assignments, HasAssignment, ...) always see the truth. The Sim
// is safe for concurrent use. What it shares with graphsim (serving, the
// call log, fault rules, the replica lag's log, token buckets) is
// internal/simkit.
package armsim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitaccess/jitaccess/internal/simkit"
)

// APIVersion is the api-version of Microsoft.Authorization role assignments
// that armauthorization/v2 sends.
const APIVersion = "2022-04-01"

// ProviderPath is what follows a scope in every role-assignment URL.
const ProviderPath = "/providers/Microsoft.Authorization/roleAssignments"

// ResourceType is the "type" of a role assignment.
const ResourceType = "Microsoft.Authorization/roleAssignments"

// ARM's texts for the answers callers interpret.
const (
	MsgExists             = "The role assignment already exists."
	MsgUpdateNotPermitted = "Tenant ID, application ID, principal ID, and scope are not allowed to be updated."
	MsgLimitExceeded      = "No more role assignments can be created."
	MsgMissingAuth        = "Authentication failed. The 'Authorization' header is missing."
	MsgInvalidToken       = "The access token is invalid."
)

// DefaultMaxAssignmentsPerSubscription is Azure's limit of role assignments
// per subscription ("Azure subscription and service limits": Azure RBAC
// limits, 4,000 role assignments per subscription).
const DefaultMaxAssignmentsPerSubscription = 4000

const maxBody = 1 << 20

// Options configure a Sim. Zero values take the defaults.
type Options struct {
	// PageSize of role-assignment listings (default 100).
	PageSize int
	// Verify, when set, must accept the bearer token or the call gets 401
	// InvalidAuthenticationToken. The token is never stored.
	Verify func(token string) bool
	// Now is the clock of call records, assignment times, the replica lag
	// and the throttle (default time.Now).
	Now func() time.Time
	// ReplicaLag, when > 0, makes reads answer as of a random moment within
	// the last ReplicaLag (lag.go; SetReplicaLag).
	ReplicaLag time.Duration
	// ReplicaSeed seeds the random source of those moments.
	ReplicaSeed int64
	// APIVersions accepted (default: APIVersion only).
	APIVersions []string
	// MaxAssignmentsPerSubscription (default
	// DefaultMaxAssignmentsPerSubscription).
	MaxAssignmentsPerSubscription int
}

// Assignment is one role assignment as the Sim holds it.
type Assignment struct {
	Name  string // a GUID, lower case
	Scope string // as registered by AddScope (namespace: cluster + "/namespaces/" + ns)
	// RoleDefinitionID is the full id in the scope's subscription:
	// /subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}.
	RoleDefinitionID string
	PrincipalID      string // lower case
	PrincipalType    string // User, Group, ServicePrincipal, ForeignGroup or ""
	CreatedOn        time.Time
	UpdatedOn        time.Time
	CreatedBy        string // oid of the caller's token ("" when seeded)
}

// RoleGUID is the role definition's GUID (the last segment of its id).
func (a Assignment) RoleGUID() string { return roleGUID(a.RoleDefinitionID) }

// Call is one recorded request.
type Call struct {
	Method string
	// Path is the decoded URL path, e.g.
	// "/subscriptions/{s}/.../providers/Microsoft.Authorization/roleAssignments/{name}".
	Path    string
	RawPath string // escaped, as sent
	Query   string // raw query string
	Time    time.Time
	// Status is the answer's status: 0 when the connection was reset.
	Status int
	// Fault is "", "fail", "reset", "delay", "lose" (the call was served,
	// its answer replaced) or "throttle" (SetThrottle).
	Fault string
	// Caller is the oid claim of the bearer token (unverified).
	Caller string
	// Body as received; nil when empty. Kept in memory for tests only.
	Body []byte
}

// Sim is a simulated Azure Resource Manager endpoint for role assignments.
type Sim struct {
	opts Options

	mu      sync.Mutex        // guards the state below
	scopes  map[string]string // lower-case scope → as registered
	roles   map[string]bool   // role definition GUIDs (lower case)
	assigns map[string]*Assignment
	rep     replicas // lag.go
	thr     throttle // throttle.go

	// The plumbing shared with graphsim, each with its own lock.
	log    simkit.Log[Call]
	faults simkit.Faults
	srv    simkit.Server
}

// New returns a Sim with no scopes, role definitions or assignments. Call
// Start to serve it on an httptest server, or Serve / Handler.
func New(opts Options) *Sim {
	if opts.PageSize <= 0 {
		opts.PageSize = 100
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if len(opts.APIVersions) == 0 {
		opts.APIVersions = []string{APIVersion}
	}
	if opts.MaxAssignmentsPerSubscription <= 0 {
		opts.MaxAssignmentsPerSubscription = DefaultMaxAssignmentsPerSubscription
	}
	s := &Sim{
		opts:    opts,
		scopes:  map[string]string{},
		roles:   map[string]bool{},
		assigns: map[string]*Assignment{},
	}
	s.rep.Set(opts.ReplicaLag, opts.ReplicaSeed, opts.Now())
	return s
}

// Start serves the Sim on a new loopback httptest server and returns s.
func (s *Sim) Start() *Sim {
	s.srv.Start(s.Handler())
	return s
}

// URL is the root URL of the server started by Start.
func (s *Sim) URL() string { return s.srv.URL() }

// BaseURL is the ARM endpoint for the SDK (JIT_ARM_BASE_URL): URL(), ARM
// has no base path.
func (s *Sim) BaseURL() string { return s.URL() }

// Serve listens on addr (e.g. "127.0.0.1:7072") and serves until Close.
func (s *Sim) Serve(addr string) error { return s.srv.Serve(addr, s.Handler()) }

// ServeListener serves on l until Close; it returns http.ErrServerClosed
// after Close.
func (s *Sim) ServeListener(l net.Listener) error { return s.srv.ServeListener(l, s.Handler()) }

// Close stops the servers started by Start or Serve. Delayed answers are
// abandoned; it returns within simkit.CloseWait even if a handler is stuck.
func (s *Sim) Close() { s.srv.Close() }

// Handler is the Sim as an http.Handler.
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// FailNext makes the next n calls matching match fail with status and an
// ARM error body (a code and message fitting the status); retryAfter > 0
// adds Retry-After (whole seconds, rounded up). match is "[METHOD
// ]substring": an optional method (or "*") and a case-insensitive
// substring of the decoded path, e.g. "PUT", "DELETE /roleAssignments/",
// "GET /providers/Microsoft.Authorization/roleAssignments", "" (every
// call). n < 0: every matching call until ClearFaults. Rules are tried in
// the order added; a fault answers before any change is made.
func (s *Sim) FailNext(match string, n, status int, retryAfter time.Duration) {
	s.FailNextWith(match, n, status, "", "", retryAfter)
}

// FailNextWith is FailNext with an explicit ARM error code and message
// (empty: the ones FailNext would use).
func (s *Sim) FailNextWith(match string, n, status int, code, message string, retryAfter time.Duration) {
	s.faults.Add(match, n, simkit.Rule{Kind: simkit.FaultFail, Status: status, Code: code, Message: message, RetryAfter: retryAfter})
}

// ResetNext makes the next n matching calls end with a TCP reset and no
// answer, before any change is made (n < 0: every matching call).
func (s *Sim) ResetNext(match string, n int) {
	s.faults.Add(match, n, simkit.Rule{Kind: simkit.FaultReset})
}

// LoseAnswerNext makes the next n matching calls be served (a write takes
// effect) and their answer lost: replaced by status with an ARM error body,
// or by a TCP reset when status is 0. This is the ambiguous write: the
// caller cannot tell whether it happened.
func (s *Sim) LoseAnswerNext(match string, n, status int) {
	s.faults.Add(match, n, simkit.Rule{Kind: simkit.FaultLose, Status: status})
}

// Delay makes every matching call wait d before it is answered (or until
// the client gives up). A later Delay for the same match replaces it; d ==
// 0 removes it.
func (s *Sim) Delay(match string, d time.Duration) { s.faults.Delay(match, d) }

// ClearFaults removes every injected failure, reset, lost answer and delay.
func (s *Sim) ClearFaults() { s.faults.Clear() }

// Calls returns a copy of every recorded call, oldest first.
func (s *Sim) Calls() []Call { return s.log.All() }

// CallsTo returns the recorded calls with the given method ("" = any)
// whose decoded path contains pathPart (case-insensitive).
func (s *Sim) CallsTo(method, pathPart string) []Call {
	p := strings.ToLower(pathPart)
	return s.log.Select(func(c Call) bool {
		return (method == "" || strings.EqualFold(method, c.Method)) && strings.Contains(strings.ToLower(c.Path), p)
	})
}

// CountCalls is len(CallsTo(method, pathPart)).
func (s *Sim) CountCalls(method, pathPart string) int { return len(s.CallsTo(method, pathPart)) }

// ResetCalls forgets the recorded calls.
func (s *Sim) ResetCalls() { s.log.Reset() }

// setStatus records the answer's status of call idx (0: the connection was
// reset) and the fault it came from ("": leave it).
func (s *Sim) setStatus(idx, status int, fault string) {
	s.log.Update(idx, func(c *Call) {
		c.Status = status
		if fault != "" {
			c.Fault = fault
		}
	})
}

// discardWriter serves a call whose answer is to be lost.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// request is what the handlers need to know about one call.
type request struct {
	r      *http.Request
	caller string // oid claim
	body   []byte
}

func (s *Sim) serveHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	auth := r.Header.Get("Authorization")
	token, hasToken := strings.CutPrefix(auth, "Bearer ")
	token = strings.TrimSpace(token)
	c := Call{
		Method:  r.Method,
		Path:    r.URL.Path,
		RawPath: r.URL.EscapedPath(),
		Query:   r.URL.RawQuery,
		Time:    s.opts.Now(),
		Caller:  tokenOID(token),
	}
	if len(raw) > 0 {
		c.Body = raw
	}
	idx := s.log.Record(c)
	sw := &simkit.StatusWriter{ResponseWriter: w, Set: func(status int, fault string) { s.setStatus(idx, status, fault) }}

	reqID := simkit.NewID()
	h := w.Header()
	h.Set("x-ms-request-id", reqID)
	h.Set("x-ms-correlation-request-id", reqID)
	if cid := r.Header.Get("x-ms-client-request-id"); cid != "" {
		h.Set("x-ms-client-request-id", cid)
	}

	delay, hit := s.faults.Pick(r.Method, r.URL.Path)
	if delay > 0 {
		sw.Fault = simkit.FaultDelay
		s.setStatus(idx, 0, simkit.FaultDelay)
		if !s.srv.Wait(r.Context(), delay) {
			return
		}
	}

	// Authentication.
	if !hasToken || token == "" {
		h.Set("WWW-Authenticate", `Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."`)
		writeError(sw, http.StatusUnauthorized, "AuthenticationFailed", MsgMissingAuth, 0)
		return
	}
	if s.opts.Verify != nil && !s.opts.Verify(token) {
		h.Set("WWW-Authenticate", `Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", error_description="The access token is invalid."`)
		writeError(sw, http.StatusUnauthorized, "InvalidAuthenticationToken", MsgInvalidToken, 0)
		return
	}
	req := &request{r: r, caller: c.Caller, body: raw}

	var lose *simkit.Rule
	if hit != nil {
		switch hit.Kind {
		case simkit.FaultReset:
			s.setStatus(idx, 0, simkit.FaultReset)
			simkit.ResetConn(w)
			return
		case simkit.FaultFail:
			sw.Fault = simkit.FaultFail
			code, msg := hit.Code, hit.Message
			if code == "" || msg == "" {
				dc, dm := errorText(hit.Status, r.Method, scopeOf(r.URL.Path), c.Caller)
				code, msg = orDefault(code, dc), orDefault(msg, dm)
			}
			writeError(sw, hit.Status, code, msg, hit.RetryAfter)
			return
		case simkit.FaultLose:
			lose = hit
		}
	}

	if !s.checkAPIVersion(sw, r) {
		return
	}
	if q := s.admit(r.Method, r.URL.Path, c.Caller); q.header != "" {
		if q.retryAfter > 0 {
			sw.Fault = faultThrottle
			writeError(sw, http.StatusTooManyRequests, "SubscriptionRequestsThrottled", q.message, q.retryAfter)
			return
		}
		h.Set(q.header, strconv.Itoa(q.remaining))
	}

	if lose == nil {
		s.route(sw, req)
		return
	}
	// Serve the call for its effect, then lose the answer.
	s.route(&discardWriter{h: http.Header{}}, req)
	sw.Fault = simkit.FaultLose
	if lose.Status == 0 {
		s.setStatus(idx, 0, simkit.FaultLose)
		simkit.ResetConn(w)
		return
	}
	code, msg := errorText(lose.Status, r.Method, scopeOf(r.URL.Path), c.Caller)
	writeError(sw, lose.Status, code, msg, 0)
}

func orDefault(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Sim) checkAPIVersion(w http.ResponseWriter, r *http.Request) bool {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		writeError(w, http.StatusBadRequest, "MissingApiVersionParameter",
			"The api-version query parameter (?api-version=) is required for all requests.", 0)
		return false
	}
	if !slices.Contains(s.opts.APIVersions, v) {
		writeError(w, http.StatusBadRequest, "InvalidApiVersionParameter",
			fmt.Sprintf("The api-version '%s' is invalid. The supported versions are '%s'.", v, strings.Join(s.opts.APIVersions, ",")), 0)
		return false
	}
	return true
}

// splitPath cuts a role-assignment path into scope and the rest after
// ProviderPath ("" for the collection, "/{name}" for one). ok is false when
// the path is not a role-assignment path.
func splitPath(path string) (scope, rest string, ok bool) {
	i := strings.LastIndex(strings.ToLower(path), strings.ToLower(ProviderPath))
	if i < 0 {
		return "", "", false
	}
	return strings.TrimSuffix(path[:i], "/"), path[i+len(ProviderPath):], true
}

func scopeOf(path string) string {
	scope, _, _ := splitPath(path)
	return scope
}

func (s *Sim) route(w http.ResponseWriter, q *request) {
	scope, rest, ok := splitPath(q.r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, "NotFound", "The simulator serves Microsoft.Authorization/roleAssignments only.", 0)
		return
	}
	canon, ok := s.knownScope(w, scope)
	if !ok {
		return
	}
	switch {
	case rest == "" || rest == "/":
		if q.r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested method is not allowed on role assignment collections.", 0)
			return
		}
		s.list(w, q, canon)
	case strings.Count(rest, "/") == 1:
		name := strings.TrimPrefix(rest, "/")
		switch q.r.Method {
		case http.MethodPut:
			s.put(w, q, canon, name)
		case http.MethodDelete:
			s.delete(w, canon, name)
		case http.MethodGet:
			s.get(w, canon, name)
		default:
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested method is not allowed on role assignments.", 0)
		}
	default:
		writeError(w, http.StatusNotFound, "NotFound", "No such role assignment path.", 0)
	}
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isGUID(s string) bool { return guidRE.MatchString(s) }

var roleIDRE = regexp.MustCompile(`(?i)^(/subscriptions/[0-9a-f-]{36})?/providers/Microsoft\.Authorization/roleDefinitions/([0-9a-f-]{36})$`)

// roleGUID is the GUID of a role definition id (full or bare), lower case;
// "" when malformed.
func roleGUID(id string) string {
	if isGUID(id) {
		return strings.ToLower(id)
	}
	if m := roleIDRE.FindStringSubmatch(id); m != nil && isGUID(m[2]) {
		return strings.ToLower(m[2])
	}
	return ""
}

func subscriptionOf(scope string) string {
	seg := strings.Split(strings.Trim(scope, "/"), "/")
	if len(seg) >= 2 && strings.EqualFold(seg[0], "subscriptions") {
		return seg[1]
	}
	return ""
}

func roleID(scope, guid string) string {
	return "/subscriptions/" + subscriptionOf(scope) + "/providers/Microsoft.Authorization/roleDefinitions/" + guid
}

var principalTypes = []string{"User", "Group", "ServicePrincipal", "ForeignGroup", "Device"}

func (s *Sim) put(w http.ResponseWriter, q *request, scope, name string) {
	if !isGUID(name) {
		writeError(w, http.StatusBadRequest, "InvalidRoleAssignmentId",
			fmt.Sprintf("The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", name), 0)
		return
	}
	name = strings.ToLower(name)
	var in struct {
		Properties *struct {
			RoleDefinitionID string `json:"roleDefinitionId"`
			PrincipalID      string `json:"principalId"`
			PrincipalType    string `json:"principalType"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(q.body, &in); err != nil || len(bytes.TrimSpace(q.body)) == 0 {
		writeError(w, http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized.", 0)
		return
	}
	if in.Properties == nil || in.Properties.RoleDefinitionID == "" || in.Properties.PrincipalID == "" {
		writeError(w, http.StatusBadRequest, "InvalidCreateRoleAssignmentRequest",
			fmt.Sprintf("The request to create role assignment '%s' is not valid. Role definition ID and principal ID are required.", name), 0)
		return
	}
	p := in.Properties
	g := roleGUID(p.RoleDefinitionID)
	if g == "" || isGUID(p.RoleDefinitionID) {
		writeError(w, http.StatusBadRequest, "InvalidRoleDefinitionId",
			fmt.Sprintf("The role definition ID '%s' is not valid.", p.RoleDefinitionID), 0)
		return
	}
	if !isGUID(p.PrincipalID) {
		writeError(w, http.StatusBadRequest, "InvalidPrincipalId",
			fmt.Sprintf("The principal ID '%s' is not valid. Principal ID must be a GUID.", p.PrincipalID), 0)
		return
	}
	pt := ""
	if p.PrincipalType != "" {
		i := slices.IndexFunc(principalTypes, func(t string) bool { return strings.EqualFold(t, p.PrincipalType) })
		if i < 0 {
			writeError(w, http.StatusBadRequest, "InvalidPrincipalType",
				fmt.Sprintf("The principal type '%s' is not valid.", p.PrincipalType), 0)
			return
		}
		pt = principalTypes[i]
	}
	principal := strings.ToLower(p.PrincipalID)

	var status int
	var out map[string]any
	var code, msg string
	s.locked(func() {
		if !s.roles[g] {
			status, code, msg = http.StatusBadRequest, "RoleDefinitionDoesNotExist",
				fmt.Sprintf("The specified role definition with ID '%s' does not exist.", g)
			return
		}
		now := s.opts.Now().UTC()
		if a := s.assigns[name]; a != nil {
			if !strings.EqualFold(a.Scope, scope) || a.PrincipalID != principal || a.RoleGUID() != g {
				status, code, msg = http.StatusBadRequest, "RoleAssignmentUpdateNotPermitted", MsgUpdateNotPermitted
				return
			}
			before := *a
			if pt != "" {
				a.PrincipalType = pt
			}
			a.UpdatedOn = now
			s.logChange(now, name, &before)
			status, out = http.StatusOK, assignmentJSON(a)
			return
		}
		n := 0
		for _, a := range s.assigns {
			if strings.EqualFold(a.Scope, scope) && a.PrincipalID == principal && a.RoleGUID() == g {
				status, code, msg = http.StatusConflict, "RoleAssignmentExists", MsgExists
				return
			}
			if strings.EqualFold(subscriptionOf(a.Scope), subscriptionOf(scope)) {
				n++
			}
		}
		if n >= s.opts.MaxAssignmentsPerSubscription {
			status, code, msg = http.StatusBadRequest, "RoleAssignmentLimitExceeded", MsgLimitExceeded
			return
		}
		a := &Assignment{
			Name: name, Scope: scope, RoleDefinitionID: roleID(scope, g), PrincipalID: principal,
			PrincipalType: pt, CreatedOn: now, UpdatedOn: now, CreatedBy: q.caller,
		}
		s.assigns[name] = a
		s.logChange(now, name, nil)
		status, out = http.StatusCreated, assignmentJSON(a)
	})
	if out == nil {
		writeError(w, status, code, msg, 0)
		return
	}
	writeJSON(w, status, out)
}

func (s *Sim) delete(w http.ResponseWriter, scope, name string) {
	var out map[string]any
	s.locked(func() {
		a := s.assigns[strings.ToLower(name)]
		if a == nil || !strings.EqualFold(a.Scope, scope) {
			return
		}
		before := *a
		delete(s.assigns, a.Name)
		s.logChange(s.opts.Now().UTC(), a.Name, &before)
		out = assignmentJSON(&before)
	})
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) get(w http.ResponseWriter, scope, name string) {
	var out map[string]any
	s.locked(func() {
		a := s.readView()[strings.ToLower(name)]
		if a != nil && strings.EqualFold(a.Scope, scope) {
			out = assignmentJSON(a)
		}
	})
	if out == nil {
		writeError(w, http.StatusNotFound, "RoleAssignmentNotFound", fmt.Sprintf("The role assignment '%s' is not found.", name), 0)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// isAtOrAbove reports whether scope a is b or an ancestor of b.
func isAtOrAbove(a, b string) bool {
	a, b = strings.ToLower(strings.TrimSuffix(a, "/")), strings.ToLower(strings.TrimSuffix(b, "/"))
	return a == b || strings.HasPrefix(b, a+"/")
}

var principalFilterRE = regexp.MustCompile(`(?i)^principalId\s+eq\s+'?([0-9a-f-]{36})'?$`)

func (s *Sim) list(w http.ResponseWriter, q *request, scope string) {
	query := q.r.URL.Query()
	filter := strings.TrimSpace(query.Get("$filter"))
	var keep func(a *Assignment) bool
	switch m := principalFilterRE.FindStringSubmatch(filter); {
	case filter == "":
		keep = func(a *Assignment) bool { return isAtOrAbove(a.Scope, scope) || isAtOrAbove(scope, a.Scope) }
	case strings.EqualFold(filter, "atScope()"):
		keep = func(a *Assignment) bool { return isAtOrAbove(a.Scope, scope) }
	case m != nil && isGUID(m[1]):
		p := strings.ToLower(m[1])
		keep = func(a *Assignment) bool {
			return a.PrincipalID == p && (isAtOrAbove(a.Scope, scope) || isAtOrAbove(scope, a.Scope))
		}
	default:
		writeError(w, http.StatusBadRequest, "InvalidFilter",
			fmt.Sprintf("The filter '%s' is not supported. Supported filters are atScope() and principalId eq '{id}'.", filter), 0)
		return
	}
	after := ""
	if tok := query.Get("$skipToken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			writeError(w, http.StatusBadRequest, "InvalidSkipToken", "The skip token is not valid.", 0)
			return
		}
		after = string(b)
	}
	var page []map[string]any
	last, more := "", false
	s.locked(func() {
		view := s.readView()
		var ids []string
		byID := map[string]*Assignment{}
		for _, a := range view {
			if keep(a) {
				id := strings.ToLower(assignmentID(a))
				ids = append(ids, id)
				byID[id] = a
			}
		}
		slices.Sort(ids)
		for _, id := range ids {
			if after != "" && id <= after {
				continue
			}
			if len(page) == s.opts.PageSize {
				more = true
				break
			}
			page = append(page, assignmentJSON(byID[id]))
			last = id
		}
	})
	if page == nil {
		page = []map[string]any{}
	}
	out := map[string]any{"value": page}
	if more {
		scheme := "http"
		if q.r.TLS != nil {
			scheme = "https"
		}
		nq := url.Values{}
		nq.Set("api-version", query.Get("api-version"))
		if filter != "" {
			nq.Set("$filter", filter)
		}
		nq.Set("$skipToken", base64.RawURLEncoding.EncodeToString([]byte(last)))
		out["nextLink"] = scheme + "://" + q.r.Host + (&url.URL{Path: q.r.URL.Path}).EscapedPath() + "?" + nq.Encode()
	}
	writeJSON(w, http.StatusOK, out)
}

func assignmentID(a *Assignment) string {
	return a.Scope + ProviderPath + "/" + a.Name
}

func armTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.0000000Z")
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func assignmentJSON(a *Assignment) map[string]any {
	return map[string]any{
		"properties": map[string]any{
			"roleDefinitionId":                   a.RoleDefinitionID,
			"principalId":                        a.PrincipalID,
			"principalType":                      nullable(a.PrincipalType),
			"scope":                              a.Scope,
			"condition":                          nil,
			"conditionVersion":                   nil,
			"createdOn":                          armTime(a.CreatedOn),
			"updatedOn":                          armTime(a.UpdatedOn),
			"createdBy":                          nullable(a.CreatedBy),
			"updatedBy":                          nullable(a.CreatedBy),
			"delegatedManagedIdentityResourceId": nil,
			"description":                        nil,
		},
		"id":   assignmentID(a),
		"type": ResourceType,
		"name": a.Name,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	simkit.WriteJSON(w, status, "application/json; charset=utf-8", v)
}

// writeError answers with ARM's error shape; ARM also names the code in
// x-ms-failure-cause for some errors, not modelled.
func writeError(w http.ResponseWriter, status int, code, msg string, retryAfter time.Duration) {
	simkit.SetRetryAfter(w.Header(), retryAfter)
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// errorText gives ARM's code and message for an injected status.
func errorText(status int, method, scope, caller string) (string, string) {
	switch status {
	case http.StatusTooManyRequests:
		return "TooManyRequests", "The request is being throttled. Please retry after the time given in the Retry-After header."
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable", "The service is unavailable. Please retry the request later."
	case http.StatusGatewayTimeout:
		return "GatewayTimeout", "The gateway did not receive a response from 'Microsoft.Authorization' within the specified time period."
	case http.StatusBadGateway:
		return "BadGateway", "The gateway received an invalid response from 'Microsoft.Authorization'."
	case http.StatusInternalServerError:
		return "InternalServerError", "Encountered internal server error."
	case http.StatusForbidden:
		action := "Microsoft.Authorization/roleAssignments/read"
		switch method {
		case http.MethodPut:
			action = "Microsoft.Authorization/roleAssignments/write"
		case http.MethodDelete:
			action = "Microsoft.Authorization/roleAssignments/delete"
		}
		return "AuthorizationFailed", fmt.Sprintf("The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.", caller, caller, action, scope)
	case http.StatusUnauthorized:
		return "InvalidAuthenticationToken", MsgInvalidToken
	case http.StatusNotFound:
		return "NotFound", "The requested resource was not found."
	case http.StatusConflict:
		return "Conflict", "The request conflicts with the current state of the resource."
	case http.StatusBadRequest:
		return "BadRequest", "The request is not valid."
	}
	return "UnknownError", http.StatusText(status)
}

// tokenOID reads the oid claim of a JWT without verifying it.
func tokenOID(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var cl struct {
		Oid string `json:"oid"`
	}
	if json.Unmarshal(raw, &cl) != nil {
		return ""
	}
	return strings.ToLower(cl.Oid)
}

// locked runs f with s.mu held, released even if f panics.
func (s *Sim) locked(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}
