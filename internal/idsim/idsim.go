// Package idsim is a local managed-identity token endpoint for tests and the
// sandbox. It implements the App Service / Azure Functions protocol that
// azidentity's ManagedIdentityCredential (through MSAL's managedidentity
// package) uses when IDENTITY_ENDPOINT and IDENTITY_HEADER are set:
//
//	GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>[&client_id=|object_id=|principal_id=|mi_res_id=]
//	X-IDENTITY-HEADER: {IDENTITY_HEADER}
//
//	200 {"access_token":"<jwt>","expires_on":"<unix seconds>","resource":"<resource>","token_type":"Bearer","client_id":"<client id>"}
//
// Tokens are well-formed JWTs (header.payload.signature, base64url) signed
// with HS256 and a per-server random key, so Verify can tell its own tokens
// apart; they carry aud, iss, iat, nbf, exp, appid, azp, oid, sub, tid,
// idtyp and roles. Nothing here is real security: it exists so that the
// real azidentity chain runs against loopback.
package idsim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// APIVersion is the App Service managed identity protocol version MSAL sends.
const APIVersion = "2019-08-01"

// Defaults of the simulated identities.
const (
	DefaultTenantID = "7e7e0000-0000-4000-8000-000000000001"
	// System-assigned identity of the app.
	DefaultClientID = "a9900000-0000-4000-8000-000000000001"
	DefaultObjectID = "0b100000-0000-4000-8000-000000000001"
)

// DefaultRoles are the Graph application permissions jitaccess needs (docs/design.md, Operations), put in
// the roles claim.
var DefaultRoles = []string{
	"User.Read.All", "GroupMember.Read.All", "GroupMember.ReadWrite.All", "User.RevokeSessions.All",
	"PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup", "PrivilegedAssignmentSchedule.Read.AzureADGroup",
}

// Identity is a managed identity the endpoint can issue tokens for.
type Identity struct {
	ClientID   string // appid / azp claim
	ObjectID   string // oid claim (service principal object id)
	ResourceID string // ARM id, matched by mi_res_id
}

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// Header is the IDENTITY_HEADER secret (default: random).
	Header   string
	TenantID string
	// System is the system-assigned identity, used when the request names
	// none (default DefaultClientID / DefaultObjectID).
	System Identity
	// UserAssigned identities, selected by client_id, object_id /
	// principal_id or mi_res_id. Asking for one not listed gets 400, which
	// azidentity reports as "the requested identity isn't assigned to this
	// resource".
	UserAssigned []Identity
	// Lifetime of tokens (default 1h).
	Lifetime time.Duration
	Roles    []string
	Now      func() time.Time
}

// Request is one recorded token request.
type Request struct {
	Time       time.Time
	APIVersion string
	Resource   string
	// ClientID, ObjectID, ResourceID: the selector the caller sent (empty
	// for the system-assigned identity).
	ClientID, ObjectID, ResourceID string
	Status                         int
}

// Issued describes a token the server issued (the token itself is not kept).
type Issued struct {
	Time      time.Time
	Resource  string
	ClientID  string // identity the token is for
	ObjectID  string
	ExpiresOn time.Time
}

// Claims of an issued token.
type Claims struct {
	Aud   string   `json:"aud"`
	Iss   string   `json:"iss"`
	Iat   int64    `json:"iat"`
	Nbf   int64    `json:"nbf"`
	Exp   int64    `json:"exp"`
	AppID string   `json:"appid"`
	Azp   string   `json:"azp"`
	Oid   string   `json:"oid"`
	Sub   string   `json:"sub"`
	Tid   string   `json:"tid"`
	Idtyp string   `json:"idtyp"`
	Ver   string   `json:"ver"`
	Roles []string `json:"roles,omitempty"`
}

// Server is the token endpoint.
type Server struct {
	opts Options
	key  []byte

	mu       sync.Mutex
	requests []Request
	issued   []Issued
	srv      *httptest.Server
}

// New returns a Server; call Start (httptest) or serve Handler yourself.
func New(opts Options) *Server {
	if opts.Header == "" {
		opts.Header = randHex(16)
	}
	if opts.TenantID == "" {
		opts.TenantID = DefaultTenantID
	}
	if opts.System.ClientID == "" {
		opts.System.ClientID = DefaultClientID
	}
	if opts.System.ObjectID == "" {
		opts.System.ObjectID = DefaultObjectID
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = time.Hour
	}
	if opts.Roles == nil {
		opts.Roles = DefaultRoles
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &Server{opts: opts, key: key}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start serves on a new loopback httptest server and returns s.
func (s *Server) Start() *Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		s.srv = httptest.NewServer(s.Handler())
	}
	return s
}

// Endpoint is the IDENTITY_ENDPOINT value of the server started by Start.
func (s *Server) Endpoint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return ""
	}
	return s.srv.URL + "/msi/token"
}

// Header is the IDENTITY_HEADER value.
func (s *Server) Header() string { return s.opts.Header }

// Setenv points azidentity at this server: IDENTITY_ENDPOINT and
// IDENTITY_HEADER (pass a *testing.T; its Setenv restores them).
func (s *Server) Setenv(t interface{ Setenv(k, v string) }) {
	t.Setenv("IDENTITY_ENDPOINT", s.Endpoint())
	t.Setenv("IDENTITY_HEADER", s.Header())
}

// Close stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		// Handlers never block; closing the clients' connections first
		// keeps Close from waiting on a client that never finishes.
		srv.CloseClientConnections()
		srv.Close()
	}
}

// Requests returns the recorded token requests.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// IssuedTokens returns what was issued, oldest first.
func (s *Server) IssuedTokens() []Issued {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// Handler answers token requests on any path.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rec := Request{
		Time:       s.opts.Now(),
		APIVersion: q.Get("api-version"),
		Resource:   q.Get("resource"),
		ClientID:   q.Get("client_id"),
		ObjectID:   firstNonEmpty(q.Get("object_id"), q.Get("principal_id")),
		ResourceID: firstNonEmpty(q.Get("mi_res_id"), q.Get("msi_res_id")),
	}
	status := s.answer(w, r, rec)
	rec.Status = status
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func fail(w http.ResponseWriter, status int, msg string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"statusCode": status, "message": msg})
	_, _ = w.Write(b)
	return status
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, rec Request) int {
	if r.Method != http.MethodGet {
		return fail(w, http.StatusMethodNotAllowed, "method not allowed")
	}
	if !hmac.Equal([]byte(r.Header.Get("X-IDENTITY-HEADER")), []byte(s.opts.Header)) {
		return fail(w, http.StatusUnauthorized, "X-IDENTITY-HEADER is missing or wrong")
	}
	if rec.APIVersion != APIVersion {
		return fail(w, http.StatusBadRequest, "unsupported api-version")
	}
	if rec.Resource == "" {
		return fail(w, http.StatusBadRequest, "resource is required")
	}
	id, ok := s.identity(rec)
	if !ok {
		return fail(w, http.StatusBadRequest, "No managed identity found for the requested identity")
	}
	now := s.opts.Now()
	exp := now.Add(s.opts.Lifetime).Truncate(time.Second)
	tok := s.mint(id, rec.Resource, now, exp)
	s.mu.Lock()
	s.issued = append(s.issued, Issued{Time: now, Resource: rec.Resource, ClientID: id.ClientID, ObjectID: id.ObjectID, ExpiresOn: exp})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	b, _ := json.Marshal(map[string]string{
		"access_token": tok,
		"expires_on":   strconv.FormatInt(exp.Unix(), 10),
		"resource":     rec.Resource,
		"token_type":   "Bearer",
		"client_id":    id.ClientID,
	})
	_, _ = w.Write(b)
	return http.StatusOK
}

func (s *Server) identity(rec Request) (Identity, bool) {
	if rec.ClientID == "" && rec.ObjectID == "" && rec.ResourceID == "" {
		return s.opts.System, true
	}
	for _, id := range s.opts.UserAssigned {
		switch {
		case rec.ClientID != "" && strings.EqualFold(rec.ClientID, id.ClientID),
			rec.ObjectID != "" && strings.EqualFold(rec.ObjectID, id.ObjectID),
			rec.ResourceID != "" && id.ResourceID != "" && strings.EqualFold(rec.ResourceID, id.ResourceID):
			return id, true
		}
	}
	return Identity{}, false
}

var b64 = base64.RawURLEncoding

func (s *Server) mint(id Identity, resource string, now, exp time.Time) string {
	hdr, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "HS256", "kid": "idsim"})
	c := Claims{
		Aud: resource, Iss: "https://sts.windows.net/" + s.opts.TenantID + "/",
		Iat: now.Unix(), Nbf: now.Unix(), Exp: exp.Unix(),
		AppID: id.ClientID, Azp: id.ClientID, Oid: id.ObjectID, Sub: id.ObjectID,
		Tid: s.opts.TenantID, Idtyp: "app", Ver: "1.0", Roles: s.opts.Roles,
	}
	pl, _ := json.Marshal(c)
	signing := b64.EncodeToString(hdr) + "." + b64.EncodeToString(pl)
	return signing + "." + b64.EncodeToString(s.sign(signing))
}

func (s *Server) sign(signing string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(signing))
	return m.Sum(nil)
}

// Parse returns the claims of a token without checking it.
func Parse(token string) (Claims, bool) {
	p := strings.Split(token, ".")
	if len(p) != 3 {
		return Claims{}, false
	}
	raw, err := b64.DecodeString(p[1])
	if err != nil {
		return Claims{}, false
	}
	var c Claims
	if json.Unmarshal(raw, &c) != nil {
		return Claims{}, false
	}
	return c, true
}

// Check returns the claims of a token this server issued that has not
// expired.
func (s *Server) Check(token string) (Claims, bool) {
	p := strings.Split(token, ".")
	if len(p) != 3 {
		return Claims{}, false
	}
	sig, err := b64.DecodeString(p[2])
	if err != nil || !hmac.Equal(sig, s.sign(p[0]+"."+p[1])) {
		return Claims{}, false
	}
	c, ok := Parse(token)
	if !ok || s.opts.Now().Unix() >= c.Exp {
		return Claims{}, false
	}
	return c, true
}

// Verify reports whether token was issued by this server and is unexpired.
func (s *Server) Verify(token string) bool {
	_, ok := s.Check(token)
	return ok
}

// VerifyAudience returns a verifier (for graphsim.Options.Verify) that also
// requires the aud claim to be audience (trailing "/" ignored).
func (s *Server) VerifyAudience(audience string) func(string) bool {
	want := strings.TrimSuffix(audience, "/")
	return func(token string) bool {
		c, ok := s.Check(token)
		return ok && strings.EqualFold(strings.TrimSuffix(c.Aud, "/"), want)
	}
}
