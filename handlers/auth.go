package handlers

// Who may read (docs/design.md, The read API). App Service Authentication (Easy Auth, the
// Microsoft Entra ID provider) signs operators in and adds the principal to
// every request it lets through: X-MS-CLIENT-PRINCIPAL (base64 of a JSON
// object: auth_typ, claims [{typ, val}], name_typ, role_typ) and
// X-MS-CLIENT-PRINCIPAL-ID. The read API and the dashboard need the app role
// JIT_READ_ROLE (default JitAccess.Read) among the principal's role claims
// (claim type role_typ, or "roles"): no principal → 401, no role → 403, both
// without any data; each read is logged with the reader's object id.
//
// The header is only worth trusting because App Service Authentication
// removes client-supplied copies ("External requests aren't allowed to set
// these headers, so they're present only if set by App Service":
// learn.microsoft.com/azure/app-service/configure-authentication-user-identities).
// Without it in front, anyone could send the header. So the principal is
// trusted only when the platform says App Service Authentication is on:
// WEBSITE_AUTH_ENABLED true, the very setting with which the Functions host
// turns its own Easy Auth middleware on for Flex Consumption apps
// (azure-functions-host: HostEasyAuthOptionsSetup, JobHostEasyAuthMiddleware;
// the custom handler inherits the host's environment). Otherwise every read
// answers 401 "sign-in is not configured" and the start logs an error: the
// rest of the app keeps working (refusing to start would stop grants from
// ending). docs/deploy.md §6 and SECURITY.md say more.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/jitaccess/jitaccess/internal/access"
)

// Settings and headers of the sign-in.
const (
	// SettingReadRole names the app role a reader needs (docs/design.md, The contract: settings,
	// and who may read).
	SettingReadRole = "JIT_READ_ROLE"
	// DefaultReadRole is the app role infra/scripts/create-signin-app.sh
	// defines on the app registration.
	DefaultReadRole = "JitAccess.Read"
	// SettingPlatformAuth is set by App Service when App Service
	// Authentication is on (True/False, or 1/0), never by jitaccess.
	SettingPlatformAuth = "WEBSITE_AUTH_ENABLED"

	HeaderPrincipal   = "X-MS-CLIENT-PRINCIPAL"
	HeaderPrincipalID = "X-MS-CLIENT-PRINCIPAL-ID"

	// MaxPrincipalBytes bounds the encoded principal (an Entra principal
	// with a few dozen claims is 2–4 KiB).
	MaxPrincipalBytes = 32 << 10
	// MaxRoleLen bounds JIT_READ_ROLE.
	MaxRoleLen = 250
)

// Claim types of the object id in a principal: the mapped one App Service
// Authentication uses for Entra, and the token's own.
var objectIDClaims = []string{"http://schemas.microsoft.com/identity/claims/objectidentifier", "oid"}

// ReadAuth is who may read: the configuration of the sign-in check.
type ReadAuth struct {
	// Role is the app role a reader needs (JIT_READ_ROLE).
	Role string
	// PlatformSignIn: App Service Authentication is on (WEBSITE_AUTH_ENABLED
	// true), so the principal headers were set by it and can be trusted.
	// False: no principal is trusted and every read answers 401.
	PlatformSignIn bool
}

// ReadAuthFromEnv reads JIT_READ_ROLE and WEBSITE_AUTH_ENABLED. An invalid
// JIT_READ_ROLE is an error naming the setting.
func ReadAuthFromEnv(getenv func(string) string) (ReadAuth, error) {
	a := ReadAuth{Role: DefaultReadRole, PlatformSignIn: platformFlag(getenv(SettingPlatformAuth))}
	if v := getenv(SettingReadRole); v != "" {
		if err := validRole(v); err != nil {
			return ReadAuth{}, fmt.Errorf("%s: %w", SettingReadRole, err)
		}
		a.Role = v
	}
	return a, nil
}

// platformFlag reads WEBSITE_AUTH_ENABLED as the Functions host does
// (bool.TryParse, then a number: non-zero is true); anything else is false.
func platformFlag(v string) bool {
	v = strings.TrimSpace(v)
	switch {
	case strings.EqualFold(v, "true"):
		return true
	case strings.EqualFold(v, "false"), v == "":
		return false
	}
	n, err := strconv.Atoi(v)
	return err == nil && n != 0
}

// validRole accepts what Entra accepts as an app role value: no spaces or
// control characters, at most MaxRoleLen characters.
func validRole(v string) error {
	if len(v) > MaxRoleLen {
		return fmt.Errorf("the app role is longer than %d characters", MaxRoleLen)
	}
	for _, c := range v {
		if c > unicode.MaxASCII || !unicode.IsPrint(c) || unicode.IsSpace(c) {
			return errors.New("the app role must be printable ASCII without spaces, e.g. " + DefaultReadRole)
		}
	}
	return nil
}

// readAuth is the checked configuration the server uses.
type readAuth struct {
	ReadAuth
	// problem: a bad setting; every read answers 503 and names it.
	problem string
}

// newReadAuth takes Deps.ReadAuth, or the environment when it is nil, and
// logs at start what reads will require.
func newReadAuth(d *ReadAuth, log *slog.Logger) readAuth {
	var a readAuth
	if d != nil {
		a.ReadAuth = *d
		if a.Role == "" {
			a.Role = DefaultReadRole
		}
		if err := validRole(a.Role); err != nil {
			a.problem = SettingReadRole + ": " + err.Error()
		}
	} else if ra, err := ReadAuthFromEnv(os.Getenv); err != nil {
		a.problem = err.Error()
	} else {
		a.ReadAuth = ra
	}
	switch {
	case a.problem != "":
		log.Error("read API closed: bad setting; /api/requests and /api/dashboard answer 503 until it is fixed", "problem", a.problem)
	case !a.PlatformSignIn:
		log.Error("read API closed: App Service Authentication is off ("+SettingPlatformAuth+" is not true), so no signed-in "+
			"principal can be trusted; /api/requests and /api/dashboard answer 401 (docs/deploy.md §6)", "readRole", a.Role)
	default:
		log.Info("read API: readers signed in by App Service Authentication with the app role", "readRole", a.Role)
	}
	return a
}

// Reasons a read is refused (logged as "reason").
const (
	refuseMisconfigured = "misconfigured"
	refuseSignInOff     = "sign-in-not-configured"
	refuseNoPrincipal   = "no-principal"
	refuseMalformed     = "malformed-principal"
	refuseNoObjectID    = "no-object-id"
	refuseNoRole        = "no-role"
)

type refusal struct {
	status int
	reason string
	msg    string
	reader string // object id, when known
}

type clientPrincipal struct {
	AuthTyp string `json:"auth_typ"`
	Claims  []struct {
		Typ string `json:"typ"`
		Val string `json:"val"`
	} `json:"claims"`
	NameTyp string `json:"name_typ"`
	RoleTyp string `json:"role_typ"`
}

// decodePrincipal reads X-MS-CLIENT-PRINCIPAL. ok is false when there is
// none; err when it cannot be read (more than one, too long, not base64 of a
// JSON object of the documented shape).
func decodePrincipal(h http.Header) (p clientPrincipal, ok bool, err error) {
	vs := h.Values(HeaderPrincipal)
	switch {
	case len(vs) == 0:
		return p, false, nil
	case len(vs) > 1:
		return p, true, errors.New("more than one principal header")
	case len(vs[0]) > MaxPrincipalBytes:
		return p, true, errors.New("principal header too long")
	case strings.TrimSpace(vs[0]) == "":
		return p, false, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(vs[0]))
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(strings.TrimSpace(vs[0])); err != nil {
			return p, true, errors.New("principal header is not base64")
		}
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, true, errors.New("principal is not a JSON object of the client principal's shape")
	}
	if p.Claims == nil {
		return p, true, errors.New("principal has no claims")
	}
	return p, true, nil
}

// objectID is the reader's object id: the principal's object id claim, else
// X-MS-CLIENT-PRINCIPAL-ID; it must be a GUID (Entra object ids are).
func objectID(p clientPrincipal, h http.Header) (string, error) {
	var found string
	for _, c := range p.Claims {
		for _, t := range objectIDClaims {
			if c.Typ != t {
				continue
			}
			v := strings.ToLower(c.Val)
			if found != "" && found != v {
				return "", errors.New("principal names two object ids")
			}
			found = v
		}
	}
	if found == "" {
		found = strings.ToLower(strings.TrimSpace(h.Get(HeaderPrincipalID)))
	}
	if !isGUID(found) {
		return "", errors.New("no object id")
	}
	return found, nil
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// hasRole reports whether the principal holds role in a claim of its
// role_typ or of type "roles" (Entra's app roles claim).
func hasRole(p clientPrincipal, role string) bool {
	for _, c := range p.Claims {
		if (c.Typ == "roles" || p.RoleTyp != "" && c.Typ == p.RoleTyp) && c.Val == role {
			return true
		}
	}
	return false
}

// authorize decides one read: the reader's object id, or why not.
func (a readAuth) authorize(r *http.Request) (string, *refusal) {
	switch {
	case a.problem != "":
		return "", &refusal{status: http.StatusServiceUnavailable, reason: refuseMisconfigured,
			msg: "the read API is not configured: " + a.problem}
	case !a.PlatformSignIn:
		return "", &refusal{status: http.StatusUnauthorized, reason: refuseSignInOff,
			msg: "sign-in is not configured: App Service Authentication is off for this app, so no reader can be signed in"}
	}
	p, present, err := decodePrincipal(r.Header)
	switch {
	case err != nil:
		return "", &refusal{status: http.StatusUnauthorized, reason: refuseMalformed,
			msg: "sign-in required: the signed-in principal cannot be read"}
	case !present:
		return "", &refusal{status: http.StatusUnauthorized, reason: refuseNoPrincipal,
			msg: "sign-in required: sign in with Microsoft Entra ID (App Service Authentication)"}
	}
	oid, err := objectID(p, r.Header)
	if err != nil {
		return "", &refusal{status: http.StatusUnauthorized, reason: refuseNoObjectID,
			msg: "sign-in required: the signed-in principal has no object id"}
	}
	if !hasRole(p, a.Role) {
		return oid, &refusal{status: http.StatusForbidden, reason: refuseNoRole, reader: oid,
			msg: "forbidden: reading needs the app role " + a.Role + "; ask an administrator of the jitaccess app registration to assign it to you"}
	}
	return oid, nil
}

// Kinds of read answers.
const (
	answerJSON = iota // the read API
	answerPage        // the dashboard
)

// reader guards a read function: it lets only signed-in readers with the
// role through, and logs each read (and each refusal) with the reader's
// object id, the route and the request id or filters.
func (s *server) reader(kind int, fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		route := strings.TrimPrefix(r.Pattern, http.MethodGet+" ")
		oid, no := s.auth.authorize(r)
		if no != nil {
			attrs := append([]any{"route", route, "invocationId", invocationID(r), "status", no.status, "reason", no.reason}, readTarget(r)...)
			if no.reader != "" {
				attrs = append(attrs, "reader", no.reader)
			}
			s.log.WarnContext(r.Context(), "read refused", attrs...)
			refuse(w, kind, no)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		fn(rec, r)
		attrs := append([]any{"reader", oid, "route", route, "invocationId", invocationID(r), "status", rec.status}, readTarget(r)...)
		s.log.InfoContext(r.Context(), "read", attrs...)
	}
}

// readTarget is what a read asked for, as far as it may be logged: the
// request id, or the list filters — only values of a known shape (an invalid
// one is logged as "invalid"), never free text, never the continuation token.
func readTarget(r *http.Request) []any {
	if id := r.PathValue("id"); id != "" {
		if !access.ValidRequestID(id) {
			id = "invalid"
		}
		return []any{"requestId", id}
	}
	if !strings.HasPrefix(r.URL.Path, "/api/requests") {
		return nil
	}
	q := r.URL.Query()
	var out []any
	if v := q.Get("state"); v != "" {
		if _, ok := parseState(v); !ok {
			v = "invalid"
		}
		out = append(out, "state", v)
	}
	if v := q.Get("profile"); v != "" {
		if !plainToken(v, access.MaxProfileLen) {
			v = "invalid"
		}
		out = append(out, "profile", v)
	}
	if v := strings.TrimSpace(q.Get("requester")); v != "" {
		if !plainToken(v, access.MaxIdentityLen) {
			v = "invalid"
		}
		out = append(out, "requester", v)
	}
	if v := q.Get("limit"); v != "" {
		if _, err := strconv.Atoi(v); err != nil || len(v) > 4 {
			v = "invalid"
		}
		out = append(out, "limit", v)
	}
	if q.Get("continuation") != "" {
		out = append(out, "continuation", true)
	}
	return out
}

// plainToken: an identifier-like value (names, object ids, UPNs).
func plainToken(v string, max int) bool {
	if len(v) > max {
		return false
	}
	for _, c := range v {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-_.@", c)) {
			return false
		}
	}
	return true
}

// refuse answers a refused read with no data: a JSON error for the API, a
// small page for the dashboard.
func refuse(w http.ResponseWriter, kind int, no *refusal) {
	if no.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="jitaccess"`)
	}
	if kind == answerJSON {
		writeError(w, no.status, no.msg)
		return
	}
	title := "Sign-in required"
	switch no.status {
	case http.StatusForbidden:
		title = "Not allowed"
	case http.StatusServiceUnavailable:
		title = "Not available"
	}
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>jitaccess — `)
	b.WriteString(title)
	b.WriteString(`</title></head><body><h1>`)
	b.WriteString(title)
	b.WriteString(`</h1><p>`)
	b.WriteString(html.EscapeString(no.msg))
	b.WriteString(`.</p>`)
	switch no.reason {
	case refuseNoPrincipal, refuseMalformed, refuseNoObjectID:
		// App Service Authentication's sign-in endpoint, back to this page:
		// a path, no key or token in it.
		b.WriteString(`<p><a href="/.auth/login/aad?post_login_redirect_uri=/api/dashboard">Sign in</a></p>`)
	case refuseNoRole:
		b.WriteString(`<p>Signed in as object id <code>`)
		b.WriteString(html.EscapeString(no.reader))
		b.WriteString(`</code>. <a href="/.auth/logout">Sign out</a></p>`)
	}
	b.WriteString("</body></html>\n")
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(no.status)
	_, _ = w.Write([]byte(b.String()))
}
