package devhost

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strings"
)

// SignInMode is how the stand-in plays App Service Authentication (Easy
// Auth) in front of the forwarded HTTP functions, as a deployment with
// infra/'s authsettingsV2 does. Whatever the mode, the X-MS-CLIENT-PRINCIPAL*
// and X-MS-TOKEN-* headers a client sends are removed first: App Service
// Authentication does not let external requests set them, which is the only
// reason the handler may trust them.
type SignInMode int

const (
	// SignInOperator (the default): a caller on loopback is signed in as
	// the local operator (LocalOperatorObjectID) holding the app role
	// Options.ReadRole, so `make run`'s walk-through, the dashboard in a
	// browser and `jitaccess get` work. A caller from elsewhere is not
	// signed in.
	SignInOperator SignInMode = iota
	// SignInNoRole: loopback callers are signed in as the local operator
	// without any app role (the handler answers 403).
	SignInNoRole
	// SignInOff: nobody is signed in (the handler answers 401).
	SignInOff
)

// The local operator the stand-in signs in.
const (
	LocalOperatorObjectID = "10ca1000-0000-4000-8000-0000000000a1"
	LocalOperatorName     = "operator@devhost.local"
	// DefaultReadRole is the app role the local operator holds (the
	// handler's default JIT_READ_ROLE).
	DefaultReadRole = "JitAccess.Read"
)

// Claim types App Service Authentication uses for Microsoft Entra.
const (
	claimObjectID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
	claimName     = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
	claimRole     = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
)

// Principal returns an X-MS-CLIENT-PRINCIPAL value as App Service
// Authentication builds it for a Microsoft Entra user: base64 of
// {"auth_typ":"aad","claims":[{"typ","val"}...],"name_typ","role_typ"}, the
// object id under the mapped objectidentifier claim, each app role as a
// "roles" claim (the token's claim name, kept by the mapping).
func Principal(objectID, name string, roles ...string) string {
	type claim struct {
		Typ string `json:"typ"`
		Val string `json:"val"`
	}
	claims := []claim{{claimObjectID, objectID}, {"name", name}, {"preferred_username", name}}
	for _, r := range roles {
		claims = append(claims, claim{"roles", r})
	}
	b, _ := json.Marshal(struct {
		AuthTyp string  `json:"auth_typ"`
		Claims  []claim `json:"claims"`
		NameTyp string  `json:"name_typ"`
		RoleTyp string  `json:"role_typ"`
	}{"aad", claims, claimName, claimRole})
	return base64.StdEncoding.EncodeToString(b)
}

// SignInHeaders sets the headers App Service Authentication adds for a
// signed-in Entra user on h.
func SignInHeaders(h http.Header, objectID, name string, roles ...string) {
	h.Set("X-MS-CLIENT-PRINCIPAL", Principal(objectID, name, roles...))
	h.Set("X-MS-CLIENT-PRINCIPAL-ID", objectID)
	h.Set("X-MS-CLIENT-PRINCIPAL-NAME", name)
	h.Set("X-MS-CLIENT-PRINCIPAL-IDP", "aad")
}

// stripSignIn removes every header only App Service Authentication may set.
func stripSignIn(h http.Header) {
	for k := range h {
		u := strings.ToUpper(k)
		if strings.HasPrefix(u, "X-MS-CLIENT-PRINCIPAL") || strings.HasPrefix(u, "X-MS-TOKEN-") {
			delete(h, k)
		}
	}
}

// signIn applies the sign-in mode to a forwarded request: in is what the
// client sent, out what the handler gets.
func (h *Host) signIn(in *http.Request, out http.Header) {
	stripSignIn(out)
	if h.o.SignIn == SignInOff || !fromLoopback(in) {
		return
	}
	var roles []string
	if h.o.SignIn == SignInOperator {
		roles = []string{h.o.ReadRole}
	}
	SignInHeaders(out, LocalOperatorObjectID, LocalOperatorName, roles...)
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
