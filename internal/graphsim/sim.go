// Package graphsim is an in-process Microsoft Graph simulator for tests and
// the sandbox. It speaks the operations of DESIGN §7 that jitaccess uses on
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
package graphsim

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BasePath is the path prefix of every endpoint (the SDK base URL is
// http://host:port/v1.0).
const BasePath = "/v1.0"

// Graph's own texts for the answers that callers interpret.
const (
	MsgAlreadyExists   = "One or more added object references already exist for the following modified properties: 'members'."
	MsgRemovedNotExist = "One or more removed object references do not exist for the following modified properties: 'members'."
	MsgInvalidPayload  = "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."
	MsgEmptyToken      = "Access token is empty."
	MsgInvalidToken    = "Access token validation failure. Invalid audience."
)

const maxBody = 1 << 20

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

// Call is one recorded request.
type Call struct {
	Method string
	// Path is the decoded path below BasePath, e.g. "/users/{id}/checkMemberGroups".
	Path string
	// RawPath is the path as sent (escaped), including BasePath.
	RawPath         string
	Query           string // raw query string
	Time            time.Time
	Status          int    // 0 when the connection was reset
	Fault           string // "", "fail", "reset", "delay" or "quota" (throttled by SetQuota)
	ContentEncoding string
	// ResourceUnits and WriteUnits are what the call was charged against
	// the quota (SetQuota; 0 without one, and off the metered paths).
	ResourceUnits, WriteUnits int
	// Body is the request body as received on the wire (before any gzip
	// decoding); nil when empty. Kept in memory for tests only, never logged.
	Body []byte
}

type rule struct {
	method, path string // path: case-insensitive substring of Call.Path
	n            int    // remaining uses; <0 forever
	kind         string // "fail", "reset", "delay"
	status       int
	code, msg    string
	retryAfter   time.Duration
	delay        time.Duration
}

func parseMatch(match string) (method, path string) {
	match = strings.TrimSpace(match)
	switch up := strings.ToUpper(match); up {
	case "GET", "POST", "DELETE", "PATCH", "PUT":
		return up, ""
	case "*":
		return "", ""
	}
	if i := strings.IndexByte(match, ' '); i > 0 {
		m := strings.ToUpper(match[:i])
		switch m {
		case "GET", "POST", "DELETE", "PATCH", "PUT", "*":
			if m == "*" {
				m = ""
			}
			return m, strings.ToLower(strings.TrimSpace(match[i+1:]))
		}
	}
	return "", strings.ToLower(match)
}

func (r *rule) matches(method, path string) bool {
	if r.n == 0 {
		return false
	}
	if r.method != "" && r.method != method {
		return false
	}
	return strings.Contains(strings.ToLower(path), r.path)
}

// Sim is a simulated Graph endpoint.
type Sim struct {
	opts Options

	mu    sync.Mutex
	t     tenant
	calls []Call
	// callBase is how many calls ResetCalls has forgotten: a handler's
	// record index minus callBase is its place in calls (handlers still
	// running across a ResetCalls find theirs gone and leave calls alone).
	callBase int
	rules    []*rule

	// done is closed by Close: delayed answers stop waiting.
	done   chan struct{}
	closed bool

	pim         map[pimKey]*PIMAssignment
	pimPolicies map[string]PIMPolicy
	audit       []map[string]any

	rep   replicas // lag.go
	quota quota    // quota.go

	srv    *httptest.Server
	server *http.Server
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
	s := &Sim{opts: opts, t: newTenant(), pim: map[pimKey]*PIMAssignment{}, pimPolicies: map[string]PIMPolicy{}, done: make(chan struct{})}
	s.setReplicaLagLocked(opts.ReplicaLag, opts.ReplicaSeed)
	return s
}

// Start serves the Sim on a new loopback httptest server and returns s.
func (s *Sim) Start() *Sim {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		s.srv = httptest.NewServer(s.Handler())
	}
	return s
}

// URL is the root URL of the server started by Start (no base path).
func (s *Sim) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return ""
	}
	return s.srv.URL
}

// BaseURL is URL()+BasePath, the SDK's base URL.
func (s *Sim) BaseURL() string { return s.URL() + BasePath }

// Serve listens on addr (e.g. "127.0.0.1:7071") and serves until Close; it
// returns http.ErrServerClosed after Close.
func (s *Sim) Serve(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.ServeListener(l)
}

// ServeListener serves on l until Close.
func (s *Sim) ServeListener(l net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.server = srv
	s.mu.Unlock()
	return srv.Serve(l)
}

// closeWait bounds how long Close waits for handlers still running.
const closeWait = 10 * time.Second

// Close stops the servers started by Start or Serve. Delayed answers are
// abandoned and client connections closed first, so Close does not wait on
// a client that never finishes; it returns within closeWait even if a
// handler is stuck.
func (s *Sim) Close() {
	s.mu.Lock()
	srv, server := s.srv, s.server
	s.srv, s.server = nil, nil
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.Close()
		}()
		t := time.NewTimer(closeWait)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			// A handler did not return: close what is left and give up
			// waiting rather than hang the caller.
			srv.CloseClientConnections()
		}
	}
	if server != nil {
		_ = server.Close() // closes every connection; does not wait for handlers
	}
}

// Handler is the Sim as an http.Handler (paths start with BasePath).
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// FailNext makes the next n calls matching match fail with status and a
// Graph error body; retryAfter > 0 adds a Retry-After header (whole seconds,
// rounded up). match is "[METHOD ]substring": an optional method (or "*")
// and a case-insensitive substring of the decoded path below /v1.0, e.g.
// "POST /checkMemberGroups", "/members/$ref", "DELETE" (every DELETE), ""
// (every call). Rules are tried in the order added. n < 0 means
// every matching call until ClearFaults.
func (s *Sim) FailNext(match string, n, status int, retryAfter time.Duration) {
	code, msg := errorText(status)
	s.FailNextWith(match, n, status, code, msg, retryAfter)
}

// FailNextWith is FailNext with an explicit Graph error code and message.
func (s *Sim) FailNextWith(match string, n, status int, code, message string, retryAfter time.Duration) {
	m, p := parseMatch(match)
	s.addRule(&rule{method: m, path: p, n: n, kind: "fail", status: status, code: code, msg: message, retryAfter: retryAfter})
}

// ResetNext makes the next n matching calls end with a TCP reset and no
// answer (n < 0: every matching call).
func (s *Sim) ResetNext(match string, n int) {
	m, p := parseMatch(match)
	s.addRule(&rule{method: m, path: p, n: n, kind: "reset"})
}

// Delay makes every matching call wait d before it is answered (or until the
// client gives up). A later Delay for the same match replaces it; d == 0
// removes it.
func (s *Sim) Delay(match string, d time.Duration) {
	m, p := parseMatch(match)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = slices.DeleteFunc(s.rules, func(r *rule) bool {
		return r.kind == "delay" && r.method == m && r.path == p
	})
	if d > 0 {
		s.rules = append(s.rules, &rule{method: m, path: p, n: -1, kind: "delay", delay: d})
	}
}

// ClearFaults removes every injected failure, reset and delay.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

func (s *Sim) addRule(r *rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, r)
}

// Calls returns a copy of every recorded call, oldest first.
func (s *Sim) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the recorded calls with the given method ("" = any) whose
// decoded path ends with pathSuffix (case-insensitive).
func (s *Sim) CallsTo(method, pathSuffix string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	suf := strings.ToLower(pathSuffix)
	for _, c := range s.calls {
		if (method == "" || strings.EqualFold(method, c.Method)) && strings.HasSuffix(strings.ToLower(c.Path), suf) {
			out = append(out, c)
		}
	}
	return out
}

// CountCalls is len(CallsTo(method, pathSuffix)).
func (s *Sim) CountCalls(method, pathSuffix string) int { return len(s.CallsTo(method, pathSuffix)) }

// ResetCalls forgets the recorded calls.
func (s *Sim) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callBase += len(s.calls)
	s.calls = nil
}

// record appends c and returns its index (counting forgotten calls).
func (s *Sim) record(c Call) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	return s.callBase + len(s.calls) - 1
}

func (s *Sim) setStatus(idx, status int, fault string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := idx - s.callBase
	if i < 0 || i >= len(s.calls) {
		return // forgotten by ResetCalls while the call ran
	}
	s.calls[i].Status = status
	if fault != "" {
		s.calls[i].Fault = fault
	}
}

// pick returns the delay to apply and the first fail/reset rule that
// matches, consuming one use of it.
func (s *Sim) pick(method, path string) (time.Duration, *rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d time.Duration
	var hit *rule
	for _, r := range s.rules {
		if !r.matches(method, path) {
			continue
		}
		if r.kind == "delay" {
			d = max(d, r.delay)
			continue
		}
		if hit == nil {
			if r.n > 0 {
				r.n--
			}
			cp := *r
			hit = &cp
		}
	}
	s.rules = slices.DeleteFunc(s.rules, func(r *rule) bool { return r.n == 0 })
	return d, hit
}

// statusWriter records the status in the call record before the answer
// leaves, so a client never sees an answer whose record is not complete.
type statusWriter struct {
	http.ResponseWriter
	s      *Sim
	idx    int
	fault  string
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.s.setStatus(w.idx, code, w.fault)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (s *Sim) serveHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	path := strings.TrimPrefix(r.URL.Path, BasePath)
	c := Call{
		Method:          r.Method,
		Path:            path,
		RawPath:         r.URL.EscapedPath(),
		Query:           r.URL.RawQuery,
		Time:            s.opts.Now(),
		ContentEncoding: r.Header.Get("Content-Encoding"),
	}
	if len(raw) > 0 {
		c.Body = raw
	}
	idx := s.record(c)
	sw := &statusWriter{ResponseWriter: w, s: s, idx: idx}

	reqID := newID()
	h := w.Header()
	h.Set("request-id", reqID)
	if cid := r.Header.Get("client-request-id"); cid != "" {
		h.Set("client-request-id", cid)
	} else {
		h.Set("client-request-id", reqID)
	}

	if !strings.HasPrefix(r.URL.Path, BasePath+"/") {
		writeError(sw, r, http.StatusNotFound, "BadRequest", "Invalid version: "+strings.TrimPrefix(r.URL.Path, "/"), 0)
		return
	}

	delay, hit := s.pick(r.Method, path)
	if delay > 0 {
		sw.fault = "delay"
		s.setStatus(idx, 0, "delay")
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.done:
			t.Stop()
			return
		}
	}

	// Authentication.
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		writeError(sw, r, http.StatusUnauthorized, "InvalidAuthenticationToken", MsgEmptyToken, 0)
		return
	}
	if s.opts.Verify != nil && !s.opts.Verify(strings.TrimSpace(token)) {
		writeError(sw, r, http.StatusUnauthorized, "InvalidAuthenticationToken", MsgInvalidToken, 0)
		return
	}

	r = withCaller(r, strings.TrimSpace(token))
	if hit != nil {
		switch hit.kind {
		case "reset":
			s.setStatus(idx, 0, "reset")
			resetConn(w)
			return
		case "fail":
			sw.fault = "fail"
			writeError(sw, r, hit.status, hit.code, hit.msg, hit.retryAfter)
			return
		}
	}
	if q := s.admit(idx, callerOf(r).appID, r.Method, path, r.URL.Query()); q.metered {
		if q.used > 0.8 {
			h.Set("x-ms-throttle-limit-percentage", strconv.FormatFloat(min(q.used, 1.8), 'f', 1, 64))
		}
		if q.retryAfter > 0 {
			sw.fault = faultQuota
			h.Set("x-ms-throttle-scope", q.scope)
			h.Set("x-ms-throttle-information", q.info)
			code, msg := errorText(http.StatusTooManyRequests)
			writeError(sw, r, http.StatusTooManyRequests, code, msg, q.retryAfter)
			return
		}
		h.Set("x-ms-resource-unit", strconv.Itoa(q.units))
	}

	body, err := decodeBody(r.Header.Get("Content-Encoding"), raw)
	if err != nil {
		writeError(sw, r, http.StatusBadRequest, "BadRequest", MsgInvalidPayload, 0)
		return
	}
	s.route(sw, r, path, body)
}

// decodeBody undoes Content-Encoding: gzip. A body announced as gzip that is
// not gzip (or an empty one) is an error, as on Graph.
func decodeBody(enc string, raw []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "identity":
		return raw, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		out, err := io.ReadAll(io.LimitReader(zr, maxBody))
		if err != nil {
			return nil, err
		}
		return out, zr.Close()
	default:
		return nil, fmt.Errorf("unsupported content encoding %q", enc)
	}
}

func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST instead of FIN
	}
	_ = conn.Close()
}

func (s *Sim) route(w http.ResponseWriter, r *http.Request, path string, body []byte) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	n := len(seg)
	switch {
	case n == 2 && seg[0] == "users" && r.Method == http.MethodGet:
		s.getUser(w, r, seg[1])
	case n == 3 && seg[0] == "users" && seg[2] == "checkMemberGroups" && r.Method == http.MethodPost:
		s.checkMemberGroups(w, r, seg[1], body)
	case n == 3 && seg[0] == "users" && seg[2] == "revokeSignInSessions" && r.Method == http.MethodPost:
		s.revoke(w, r, seg[1])
	case n == 2 && seg[0] == "groups" && r.Method == http.MethodGet:
		s.getGroup(w, r, seg[1])
	case n == 3 && seg[0] == "groups" && seg[2] == "members" && r.Method == http.MethodGet:
		s.listMembers(w, r, seg[1])
	case n == 4 && seg[0] == "groups" && seg[2] == "members" && seg[3] == "$ref" && r.Method == http.MethodPost:
		s.addMemberRef(w, r, seg[1], body)
	case n == 5 && seg[0] == "groups" && seg[2] == "members" && seg[4] == "$ref" && r.Method == http.MethodDelete:
		s.removeMemberRef(w, r, seg[1], seg[3])
	case n == 4 && seg[0] == "identityGovernance" && seg[1] == "privilegedAccess" && seg[2] == "group" &&
		seg[3] == "assignmentScheduleRequests" && r.Method == http.MethodPost:
		s.pimScheduleRequest(w, r, body)
	case n == 4 && seg[0] == "identityGovernance" && seg[1] == "privilegedAccess" && seg[2] == "group" &&
		seg[3] == "assignmentScheduleInstances" && r.Method == http.MethodGet:
		s.pimInstances(w, r)
	default:
		writeError(w, r, http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+seg[n-1]+"'.", 0)
	}
}

func notFound(w http.ResponseWriter, r *http.Request, id string) {
	writeError(w, r, http.StatusNotFound, "Request_ResourceNotFound",
		"Resource '"+id+"' does not exist or one of its queried reference-property objects are not present.", 0)
}

func userJSON(u *User, sel map[string]bool) map[string]any {
	ut := "Member"
	if u.Guest {
		ut = "Guest"
	}
	m := map[string]any{
		"id":                u.ID,
		"userPrincipalName": u.UPN,
		"accountEnabled":    u.Enabled,
		"userType":          ut,
	}
	if len(sel) == 0 || sel["displayname"] {
		m["displayName"] = u.DisplayName
	}
	if sel["mail"] {
		m["mail"] = nil
	}
	return m
}

func selectSet(r *http.Request) (map[string]bool, []string) {
	v := r.URL.Query().Get("$select")
	if v == "" {
		return nil, nil
	}
	set := map[string]bool{}
	var names []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f != "" {
			set[strings.ToLower(f)] = true
			names = append(names, f)
		}
	}
	return set, names
}

func (s *Sim) getUser(w http.ResponseWriter, r *http.Request, key string) {
	set, names := selectSet(r)
	var u *User
	var out map[string]any
	s.locked(func() {
		u = s.t.resolveUser(key)
		if u != nil {
			out = userJSON(u, set)
		}
	})
	if u == nil {
		notFound(w, r, key)
		return
	}
	ctx := "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
	if len(names) > 0 {
		ctx = "https://graph.microsoft.com/v1.0/$metadata#users(" + strings.Join(names, ",") + ")/$entity"
	}
	out["@odata.context"] = ctx
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) getGroup(w http.ResponseWriter, r *http.Request, key string) {
	var g *Group
	var out map[string]any
	s.locked(func() {
		g = s.t.groups[norm(key)]
		if g != nil {
			out = map[string]any{
				"@odata.context":  "https://graph.microsoft.com/v1.0/$metadata#groups/$entity",
				"id":              g.ID,
				"displayName":     g.DisplayName,
				"securityEnabled": true,
				"mailEnabled":     false,
			}
		}
	})
	if g == nil {
		notFound(w, r, key)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) checkMemberGroups(w http.ResponseWriter, r *http.Request, key string, body []byte) {
	var in struct {
		GroupIDs []string `json:"groupIds"`
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(w, r, http.StatusBadRequest, "Request_BadRequest", "Empty Payload. JSON content expected.", 0)
		return
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, r, http.StatusBadRequest, "BadRequest", MsgInvalidPayload, 0)
		return
	}
	if len(in.GroupIDs) > 20 {
		writeError(w, r, http.StatusBadRequest, "Request_BadRequest",
			"Invalid value specified for property 'groupIds' of resource 'User'. The number of group ids must be at most 20.", 0)
		return
	}
	var u *User
	var hits []string
	s.locked(func() {
		u = s.t.resolveUser(key)
		if u != nil {
			tg := s.readView().transitiveGroups(u.ID)
			seen := map[string]bool{}
			for _, g := range in.GroupIDs {
				k := norm(g)
				if tg[k] && !seen[k] {
					seen[k] = true
					hits = append(hits, k)
				}
			}
		}
	})
	if u == nil {
		notFound(w, r, key)
		return
	}
	if hits == nil {
		hits = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)",
		"value":          hits,
	})
}

func (s *Sim) revoke(w http.ResponseWriter, r *http.Request, key string) {
	var u *User
	s.locked(func() {
		u = s.t.resolveUser(key)
		if u != nil {
			s.t.revokes[u.ID]++
		}
	})
	if u == nil {
		notFound(w, r, key)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean",
		"value":          true,
	})
}

func (s *Sim) listMembers(w http.ResponseWriter, r *http.Request, key string) {
	q := r.URL.Query()
	size := s.opts.PageSize
	if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 999 {
			writeError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery", "Invalid page size specified: '"+t+"'. Must be between 1 and 999 inclusive.", 0)
			return
		}
		size = n
	}
	after := q.Get("$skiptoken")
	var g *Group
	var page []map[string]any
	more := false
	s.locked(func() {
		g = s.t.groups[norm(key)]
		if g != nil {
			for _, m := range s.readView().sortedMembers(g.ID) {
				if after != "" && m <= after {
					continue
				}
				if len(page) == size {
					more = true
					break
				}
				page = append(page, map[string]any{"@odata.type": s.t.objectType(m), "id": m})
			}
		}
	})
	if g == nil {
		notFound(w, r, key)
		return
	}
	if page == nil {
		page = []map[string]any{}
	}
	out := map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects(id)",
		"value":          page,
	}
	if more {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		nq := url.Values{}
		if sel := q.Get("$select"); sel != "" {
			nq.Set("$select", sel)
		}
		nq.Set("$top", strconv.Itoa(size))
		nq.Set("$skiptoken", page[len(page)-1]["id"].(string))
		out["@odata.nextLink"] = scheme + "://" + r.Host + BasePath + "/groups/" + g.ID + "/members?" + nq.Encode()
	}
	writeJSON(w, http.StatusOK, out)
}

// refID extracts the object id from "@odata.id" (…/directoryObjects/{id},
// …/users/{id} or …/groups/{id}).
func refID(body []byte) (string, error) {
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		return "", err
	}
	v, _ := in["@odata.id"].(string)
	if v == "" {
		return "", errors.New("missing @odata.id")
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", err
	}
	p := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(p) < 2 {
		return "", errors.New("bad @odata.id")
	}
	switch p[len(p)-2] {
	case "directoryObjects", "users", "groups":
	default:
		return "", errors.New("bad @odata.id")
	}
	return p[len(p)-1], nil
}

func (s *Sim) addMemberRef(w http.ResponseWriter, r *http.Request, key string, body []byte) {
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(w, r, http.StatusBadRequest, "Request_BadRequest", "Empty Payload. JSON content expected.", 0)
		return
	}
	id, err := refID(body)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "BadRequest", MsgInvalidPayload, 0)
		return
	}
	var g *Group
	var typ string
	var exists bool
	s.locked(func() {
		g = s.t.groups[norm(key)]
		typ = s.t.objectType(norm(id))
		exists = g != nil && s.t.members[g.ID][norm(id)]
		if g != nil && typ != "" && !exists {
			now := s.opts.Now().UTC()
			s.t.members[g.ID][norm(id)] = true
			s.logMember(now, g.ID, norm(id), false)
			s.auditMembership(now, true, g.ID, norm(id), callerOf(r))
		}
	})
	switch {
	case g == nil:
		notFound(w, r, key)
	case typ == "":
		notFound(w, r, id)
	case exists:
		writeError(w, r, http.StatusBadRequest, "Request_BadRequest", MsgAlreadyExists, 0)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Sim) removeMemberRef(w http.ResponseWriter, r *http.Request, key, member string) {
	var g *Group
	var was bool
	s.locked(func() {
		g = s.t.groups[norm(key)]
		was = g != nil && s.t.members[g.ID][norm(member)]
		if was {
			now := s.opts.Now().UTC()
			delete(s.t.members[g.ID], norm(member))
			s.logMember(now, g.ID, norm(member), true)
			s.auditMembership(now, false, g.ID, norm(member), callerOf(r))
		}
	})
	switch {
	case g == nil:
		notFound(w, r, key)
	case !was:
		writeError(w, r, http.StatusNotFound, "Request_ResourceNotFound", MsgRemovedNotExist, 0)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError answers with Graph's error shape.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	writeJSON(w, status, map[string]any{
		"error": map[string]any{
			"code":    code,
			"message": msg,
			"innerError": map[string]any{
				"date":              time.Now().UTC().Format("2006-01-02T15:04:05"),
				"request-id":        w.Header().Get("request-id"),
				"client-request-id": w.Header().Get("client-request-id"),
			},
		},
	})
}

// errorText gives Graph's code and message for an injected status.
func errorText(status int) (string, string) {
	switch status {
	case http.StatusTooManyRequests:
		return "TooManyRequests", "Too many requests. Please retry after the time given in the Retry-After header."
	case http.StatusServiceUnavailable:
		return "serviceNotAvailable", "The service is temporarily unavailable. Please retry after a delay."
	case http.StatusGatewayTimeout:
		return "timeout", "The operation timed out before it could be completed."
	case http.StatusBadGateway:
		return "badGateway", "The service received an invalid response from an upstream server."
	case http.StatusInternalServerError:
		return "generalException", "An unspecified error has occurred."
	case http.StatusForbidden:
		return "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
	case http.StatusUnauthorized:
		return "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
	case http.StatusNotFound:
		return "Request_ResourceNotFound", "Resource does not exist or one of its queried reference-property objects are not present."
	case http.StatusBadRequest:
		return "Request_BadRequest", "Invalid request."
	}
	return "UnknownError", http.StatusText(status)
}

// newID returns a random RFC 4122 version 4 id for request-id headers.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// locked runs f with s.mu held; the lock is released even if f panics (a
// handler's panic is recovered by net/http, and a lock left held would
// hang every later call and Close).
func (s *Sim) locked(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}
