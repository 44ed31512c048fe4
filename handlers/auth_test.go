package handlers

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
)

// What App Service Authentication puts in X-MS-CLIENT-PRINCIPAL for Entra
// (the claim types are those of its claims mapping).
const (
	roleTypURI   = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
	nameTypURI   = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
	oidClaimURI  = "http://schemas.microsoft.com/identity/claims/objectidentifier"
	readerOID    = "7e7e0000-0000-4000-8000-000000000001"
	readerName   = "operator@contoso.com"
	secretSample = "secret justification" // sampleRequest's justification
)

// signedIn: App Service Authentication is on; the default read role.
var signedIn = &ReadAuth{Role: DefaultReadRole, PlatformSignIn: true}

type claim struct{ typ, val string }

// principalOf encodes a client principal as App Service Authentication does.
func principalOf(roleTyp string, claims ...claim) string {
	cs := make([]map[string]string, 0, len(claims))
	for _, c := range claims {
		cs = append(cs, map[string]string{"typ": c.typ, "val": c.val})
	}
	b, _ := json.Marshal(map[string]any{"auth_typ": "aad", "claims": cs, "name_typ": nameTypURI, "role_typ": roleTyp})
	return base64.StdEncoding.EncodeToString(b)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// readerPrincipal: an operator holding the read role in a "roles" claim.
var readerPrincipal = principalOf(roleTypURI, claim{oidClaimURI, readerOID}, claim{"name", readerName},
	claim{"preferred_username", readerName}, claim{"roles", DefaultReadRole})

// asReader signs r in as an operator with the read role.
func asReader(r *http.Request) *http.Request {
	r.Header.Set(HeaderPrincipal, readerPrincipal)
	r.Header.Set(HeaderPrincipalID, readerOID)
	return r
}

func logLines(t *testing.T, logs *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Bytes())
		}
		out = append(out, m)
	}
	return out
}

func lastWith(lines []map[string]any, msg string) map[string]any {
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i]["msg"] == msg {
			return lines[i]
		}
	}
	return nil
}

func readServer(t *testing.T, ra *ReadAuth) (http.Handler, *fakeLister, *bytes.Buffer) {
	t.Helper()
	st := &fakeLister{reqs: map[string]*access.Request{"req-001": sampleRequest()},
		page: broker.ListPage{Items: []*access.Request{sampleRequest()}}}
	h, logs := newTestServer(t, Deps{Store: st, ReadAuth: ra,
		Dashboard: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, "<html>req-001 "+secretSample+"</html>")
		})})
	return h, st, logs
}

var readTargets = []string{"/api/requests/req-001", "/api/requests?state=active", "/api/dashboard"}

// Every read needs a signed-in principal with the role: 401 without one or
// with one that cannot be read, 403 without the role, and no data either way.
func TestReadNeedsSignInAndRole(t *testing.T) {
	twoOIDs := principalOf(roleTypURI, claim{oidClaimURI, readerOID}, claim{"oid", "7e7e0000-0000-4000-8000-000000000002"}, claim{"roles", DefaultReadRole})
	cases := []struct {
		name    string
		headers map[string][]string
		status  int
		reason  string
	}{
		{"no principal", nil, 401, refuseNoPrincipal},
		{"empty principal", map[string][]string{HeaderPrincipal: {""}}, 401, refuseNoPrincipal},
		{"only the id header", map[string][]string{HeaderPrincipalID: {readerOID}}, 401, refuseNoPrincipal},
		{"not base64", map[string][]string{HeaderPrincipal: {"not base64!"}}, 401, refuseMalformed},
		{"base64 of text", map[string][]string{HeaderPrincipal: {b64("hello")}}, 401, refuseMalformed},
		{"a JSON array", map[string][]string{HeaderPrincipal: {b64(`[{"typ":"roles","val":"JitAccess.Read"}]`)}}, 401, refuseMalformed},
		{"no claims", map[string][]string{HeaderPrincipal: {b64(`{"auth_typ":"aad"}`)}}, 401, refuseMalformed},
		{"a claim value that is not a string", map[string][]string{HeaderPrincipal: {b64(`{"claims":[{"typ":"roles","val":1}]}`)}}, 401, refuseMalformed},
		{"trailing garbage", map[string][]string{HeaderPrincipal: {b64(`{"claims":[]}x`)}}, 401, refuseMalformed},
		{"two principals", map[string][]string{HeaderPrincipal: {readerPrincipal, readerPrincipal}}, 401, refuseMalformed},
		{"too long", map[string][]string{HeaderPrincipal: {strings.Repeat("A", MaxPrincipalBytes+4)}}, 401, refuseMalformed},
		{"no object id", map[string][]string{HeaderPrincipal: {principalOf(roleTypURI, claim{"roles", DefaultReadRole})}}, 401, refuseNoObjectID},
		{"an object id that is not a GUID", map[string][]string{HeaderPrincipal: {principalOf(roleTypURI, claim{"oid", "me"}, claim{"roles", DefaultReadRole})}}, 401, refuseNoObjectID},
		{"two object ids", map[string][]string{HeaderPrincipal: {twoOIDs}}, 401, refuseNoObjectID},
		{"forged, without the role", map[string][]string{HeaderPrincipal: {principalOf(roleTypURI, claim{oidClaimURI, readerOID}, claim{"name", readerName})}}, 403, refuseNoRole},
		{"another role", map[string][]string{HeaderPrincipal: {principalOf(roleTypURI, claim{oidClaimURI, readerOID}, claim{"roles", "JitAccess.Write"})}}, 403, refuseNoRole},
		{"the role in another case", map[string][]string{HeaderPrincipal: {principalOf(roleTypURI, claim{oidClaimURI, readerOID}, claim{"roles", "jitaccess.read"})}}, 403, refuseNoRole},
		{"the role as a group", map[string][]string{HeaderPrincipal: {principalOf(roleTypURI, claim{oidClaimURI, readerOID}, claim{"groups", DefaultReadRole})}}, 403, refuseNoRole},
		{"the role URI claim without role_typ", map[string][]string{HeaderPrincipal: {principalOf("", claim{oidClaimURI, readerOID}, claim{roleTypURI, DefaultReadRole})}}, 403, refuseNoRole},
		{"role via roles", map[string][]string{HeaderPrincipal: {readerPrincipal}}, 200, ""},
		{"role via role_typ", map[string][]string{HeaderPrincipal: {principalOf(roleTypURI, claim{oidClaimURI, readerOID}, claim{roleTypURI, DefaultReadRole})}}, 200, ""},
		{"role via a custom role_typ", map[string][]string{HeaderPrincipal: {principalOf("app-role", claim{"oid", readerOID}, claim{"app-role", DefaultReadRole})}}, 200, ""},
		{"object id from the id header", map[string][]string{HeaderPrincipal: {principalOf(roleTypURI, claim{"roles", DefaultReadRole})}, HeaderPrincipalID: {readerOID}}, 200, ""},
		{"unpadded base64", map[string][]string{HeaderPrincipal: {strings.TrimRight(principalOf(roleTypURI, claim{"oid", readerOID}, claim{"roles", DefaultReadRole}, claim{"x", "y"}), "=")}}, 200, ""},
	}
	for _, tc := range cases {
		for _, target := range readTargets {
			t.Run(tc.name+" "+target, func(t *testing.T) {
				h, st, logs := readServer(t, signedIn)
				req := httptest.NewRequest(http.MethodGet, target, nil)
				for k, vs := range tc.headers {
					for _, v := range vs {
						req.Header.Add(k, v)
					}
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				body := rec.Body.String()
				if rec.Code != tc.status {
					t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, body)
				}
				lines := logLines(t, logs)
				if tc.status == 200 {
					if l := lastWith(lines, "read"); l == nil || l["reader"] != readerOID {
						t.Fatalf("no read log line with the reader: %v", lines)
					}
					return
				}
				if strings.Contains(body, "req-001") || strings.Contains(body, secretSample) || strings.Contains(body, "n01") || st.lastF.Limit != 0 {
					t.Fatalf("a refused read leaked data or reached the store: %s (filter %+v)", body, st.lastF)
				}
				if tc.status == 401 && rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if target == "/api/dashboard" {
					if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") ||
						!strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") || !strings.Contains(body, "<h1>") {
						t.Fatalf("dashboard refusal is not a plain page: %q %s", ct, body)
					}
				} else {
					var e struct {
						Error string `json:"error"`
					}
					if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
						t.Fatalf("API refusal is not a JSON error: %s", body)
					}
				}
				l := lastWith(lines, "read refused")
				if l == nil || l["reason"] != tc.reason || l["status"] != float64(tc.status) {
					t.Fatalf("refusal log %v, want reason %s", l, tc.reason)
				}
				if tc.status == 403 && l["reader"] != readerOID {
					t.Fatalf("403 log does not name the reader: %v", l)
				}
				if lastWith(lines, "read") != nil {
					t.Fatal("a refused read was logged as a read")
				}
			})
		}
	}
}

// The read log line names the reader, the route and the request id or the
// filters — never the principal, a name, the continuation or free text.
func TestReadLogLine(t *testing.T) {
	h, _, logs := readServer(t, signedIn)
	upper := principalOf(roleTypURI, claim{oidClaimURI, strings.ToUpper(readerOID)}, claim{"name", readerName}, claim{"roles", DefaultReadRole})
	do := func(target string) map[string]any {
		t.Helper()
		logs.Reset()
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set(HeaderPrincipal, upper)
		req.Header.Set("X-Azure-Functions-InvocationId", "inv-1")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		l := lastWith(logLines(t, logs), "read")
		if l == nil {
			t.Fatalf("%s: no read log line: %s", target, logs)
		}
		for _, leak := range []string{upper, readerName, secretSample, "<script>", "pos-"} {
			if strings.Contains(logs.String(), leak) {
				t.Fatalf("%s: the log holds %q: %s", target, leak, logs)
			}
		}
		if l["reader"] != readerOID || l["invocationId"] != "inv-1" {
			t.Fatalf("%s: %v", target, l)
		}
		return l
	}
	l := do("/api/requests/req-001")
	if l["route"] != "/api/requests/{id}" || l["requestId"] != "req-001" || l["status"] != float64(200) {
		t.Fatalf("get: %v", l)
	}
	l = do("/api/requests?state=active&profile=aks-admin&requester=n01@contoso.com&limit=5&continuation=pos-2")
	if l["route"] != "/api/requests" || l["state"] != "active" || l["profile"] != "aks-admin" || l["requester"] != "n01@contoso.com" ||
		l["limit"] != "5" || l["continuation"] != true || l["status"] != float64(400) {
		t.Fatalf("list: %v", l)
	}
	l = do("/api/requests?state=%3Cscript%3E&profile=%3Cscript%3E&requester=a%20b")
	if l["state"] != "invalid" || l["profile"] != "invalid" || l["requester"] != "invalid" {
		t.Fatalf("free text in the filters: %v", l)
	}
	l = do("/api/dashboard")
	if l["route"] != "/api/dashboard" || l["status"] != float64(200) {
		t.Fatalf("dashboard: %v", l)
	}
}

// /api/health stays anonymous, whatever the sign-in.
func TestHealthStaysAnonymous(t *testing.T) {
	for _, ra := range []*ReadAuth{signedIn, {PlatformSignIn: false}, {Role: "bad role", PlatformSignIn: true}} {
		h, _, _ := readServer(t, ra)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/health", nil))
		if rec.Code != 200 {
			t.Fatalf("%+v: health %d", ra, rec.Code)
		}
	}
}

// Without App Service Authentication nobody can be signed in: even a
// well-formed principal with the role is refused, and the start says why.
func TestPrincipalNotTrustedWithoutPlatformSignIn(t *testing.T) {
	h, st, logs := readServer(t, &ReadAuth{Role: DefaultReadRole})
	if l := lastWith(logLines(t, logs), "read API closed: App Service Authentication is off ("+SettingPlatformAuth+
		" is not true), so no signed-in principal can be trusted; /api/requests and /api/dashboard answer 401 (docs/deploy.md §6)"); l == nil || l["level"] != "ERROR" {
		t.Fatalf("no start error: %s", logs)
	}
	for _, target := range readTargets {
		rec := get(h, target)
		if rec.Code != 401 || strings.Contains(rec.Body.String(), "req-001") || !strings.Contains(rec.Body.String(), "sign-in is not configured") {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
		if l := lastWith(logLines(t, logs), "read refused"); l == nil || l["reason"] != refuseSignInOff {
			t.Fatalf("%s: %v", target, l)
		}
	}
	if st.lastF.Limit != 0 {
		t.Fatal("the store was read")
	}
}

// A bad JIT_READ_ROLE closes reads with 503 naming the setting.
func TestBadReadRoleClosesReads(t *testing.T) {
	h, _, logs := readServer(t, &ReadAuth{Role: "Jit Access", PlatformSignIn: true})
	if !strings.Contains(logs.String(), SettingReadRole) {
		t.Fatalf("start log does not name %s: %s", SettingReadRole, logs)
	}
	for _, target := range readTargets {
		if rec := get(h, target); rec.Code != 503 || !strings.Contains(rec.Body.String(), SettingReadRole) {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
	}
}

// JIT_READ_ROLE names the role: the default one then no longer reads.
func TestCustomReadRole(t *testing.T) {
	h, _, _ := readServer(t, &ReadAuth{Role: "Ops.Reader", PlatformSignIn: true})
	if rec := get(h, "/api/requests/req-001"); rec.Code != 403 {
		t.Fatalf("JitAccess.Read: %d", rec.Code)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/requests/req-001", nil)
	req.Header.Set(HeaderPrincipal, principalOf(roleTypURI, claim{"oid", readerOID}, claim{"roles", "Ops.Reader"}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("Ops.Reader: %d %s", rec.Code, rec.Body)
	}
}

func TestReadAuthFromEnv(t *testing.T) {
	cases := []struct {
		platform, role string
		want           ReadAuth
		err            bool
	}{
		{"", "", ReadAuth{Role: DefaultReadRole}, false},
		{"True", "", ReadAuth{Role: DefaultReadRole, PlatformSignIn: true}, false},
		{" true ", "", ReadAuth{Role: DefaultReadRole, PlatformSignIn: true}, false},
		{"1", "", ReadAuth{Role: DefaultReadRole, PlatformSignIn: true}, false},
		{"False", "", ReadAuth{Role: DefaultReadRole}, false},
		{"0", "", ReadAuth{Role: DefaultReadRole}, false},
		{"yes", "", ReadAuth{Role: DefaultReadRole}, false},
		{"True", "Ops.Reader", ReadAuth{Role: "Ops.Reader", PlatformSignIn: true}, false},
		{"True", "two words", ReadAuth{}, true},
		{"True", "tab\there", ReadAuth{}, true},
		{"True", "rôle", ReadAuth{}, true},
		{"True", strings.Repeat("r", MaxRoleLen+1), ReadAuth{}, true},
	}
	for _, tc := range cases {
		env := map[string]string{SettingPlatformAuth: tc.platform, SettingReadRole: tc.role}
		got, err := ReadAuthFromEnv(func(k string) string { return env[k] })
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%q %q: %+v %v", tc.platform, tc.role, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), SettingReadRole) {
			t.Errorf("error does not name the setting: %v", err)
		}
	}
}

// Without Deps.ReadAuth the handler reads the environment at start.
func TestReadAuthDefaultsToTheEnvironment(t *testing.T) {
	st := &fakeLister{reqs: map[string]*access.Request{"req-001": sampleRequest()}}
	t.Setenv(SettingPlatformAuth, "True")
	t.Setenv(SettingReadRole, "")
	h := New(Deps{Store: st, Logger: slog.New(slog.DiscardHandler)})
	if rec := get(h, "/api/requests/req-001"); rec.Code != 200 {
		t.Fatalf("with App Service Authentication on: %d", rec.Code)
	}
	t.Setenv(SettingPlatformAuth, "")
	h = New(Deps{Store: st, Logger: slog.New(slog.DiscardHandler)})
	if rec := get(h, "/api/requests/req-001"); rec.Code != 401 {
		t.Fatalf("with App Service Authentication off: %d", rec.Code)
	}
}

// FuzzPrincipal: whatever X-MS-CLIENT-PRINCIPAL holds, a read is answered
// 200 only for a principal with an object id and the role, otherwise 401 or
// 403 without data — never a 5xx, never a panic.
func FuzzPrincipal(f *testing.F) {
	for _, s := range []string{readerPrincipal, "", "x", b64("{}"), b64(`{"claims":null}`), b64(`{"claims":[{"typ":"roles","val":"JitAccess.Read"}]}`),
		b64(`{"claims":[{"typ":"oid","val":"` + readerOID + `"},{"typ":"roles","val":"JitAccess.Read"}]}`), b64(`[]`), b64(`{"claims":[{}]}`)} {
		f.Add(s)
	}
	st := &fakeLister{reqs: map[string]*access.Request{"req-001": sampleRequest()}}
	h := New(Deps{Store: st, Logger: slog.New(slog.DiscardHandler), ReadAuth: signedIn})
	f.Fuzz(func(t *testing.T, v string) {
		req := httptest.NewRequest(http.MethodGet, "/api/requests/req-001", nil)
		req.Header[HeaderPrincipal] = []string{v}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200:
			p, _, err := decodePrincipal(req.Header)
			if err != nil || !hasRole(p, DefaultReadRole) {
				t.Fatalf("%q read without the role", v)
			}
		case 401, 403:
			if strings.Contains(rec.Body.String(), "req-001") {
				t.Fatalf("%q: refusal with data", v)
			}
		default:
			t.Fatalf("%q: %d", v, rec.Code)
		}
	})
}
