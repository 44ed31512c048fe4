package devhost

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jitaccess/jitaccess/handlers"
)

type principal struct {
	AuthTyp string `json:"auth_typ"`
	Claims  []struct {
		Typ string `json:"typ"`
		Val string `json:"val"`
	} `json:"claims"`
	NameTyp string `json:"name_typ"`
	RoleTyp string `json:"role_typ"`
}

func decode(t *testing.T, v string) principal {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		t.Fatalf("principal is not base64: %v", err)
	}
	var p principal
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("principal is not JSON: %v", err)
	}
	return p
}

func (p principal) values(typ string) []string {
	var out []string
	for _, c := range p.Claims {
		if c.Typ == typ {
			out = append(out, c.Val)
		}
	}
	return out
}

// A forged principal and a token header, as a client could send them.
func forge(req *http.Request) {
	req.Header.Set("X-MS-CLIENT-PRINCIPAL", Principal("0bad0000-0000-4000-8000-000000000666", "mallory", "JitAccess.Read", "Admin"))
	req.Header.Set("x-ms-client-principal-id", "0bad0000-0000-4000-8000-000000000666")
	req.Header.Set("X-MS-CLIENT-PRINCIPAL-NAME", "mallory")
	req.Header.Set("X-MS-TOKEN-AAD-ACCESS-TOKEN", "eyJforged")
}

// What the handler receives in each mode: client-supplied principal and
// token headers never, the local operator (with or without the role) from
// loopback.
func TestSignInModes(t *testing.T) {
	cases := []struct {
		mode     SignInMode
		role     string
		signedIn bool
		roles    []string
	}{
		{SignInOperator, "", true, []string{DefaultReadRole}},
		{SignInOperator, "Ops.Reader", true, []string{"Ops.Reader"}},
		{SignInNoRole, "", true, nil},
		{SignInOff, "", false, nil},
	}
	for _, tc := range cases {
		f := newFakeHandler(t)
		h := start(t, f.URL, Options{SignIn: tc.mode, ReadRole: tc.role})
		for _, forged := range []bool{false, true} {
			req, _ := http.NewRequest(http.MethodGet, h.URL()+"/api/dashboard", nil)
			if forged {
				forge(req)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		calls := f.callsTo("/api/dashboard")
		if len(calls) != 2 {
			t.Fatalf("mode %d: %d calls", tc.mode, len(calls))
		}
		for i, c := range calls {
			if c.header.Get("X-MS-TOKEN-AAD-ACCESS-TOKEN") != "" {
				t.Fatalf("mode %d call %d: a client's token header was forwarded", tc.mode, i)
			}
			v := c.header.Values("X-MS-CLIENT-PRINCIPAL")
			if !tc.signedIn {
				for k := range c.header {
					if strings.HasPrefix(strings.ToUpper(k), "X-MS-CLIENT-PRINCIPAL") {
						t.Fatalf("mode %d call %d: %s reached the handler", tc.mode, i, k)
					}
				}
				continue
			}
			if len(v) != 1 {
				t.Fatalf("mode %d call %d: %d principal headers", tc.mode, i, len(v))
			}
			p := decode(t, v[0])
			if got := p.values(claimObjectID); len(got) != 1 || got[0] != LocalOperatorObjectID ||
				c.header.Get("X-MS-CLIENT-PRINCIPAL-ID") != LocalOperatorObjectID || c.header.Get("X-MS-CLIENT-PRINCIPAL-NAME") != LocalOperatorName {
				t.Fatalf("mode %d call %d: not the local operator: %+v %v", tc.mode, i, p, c.header)
			}
			if got := p.values("roles"); len(got) != len(tc.roles) || (len(got) == 1 && got[0] != tc.roles[0]) {
				t.Fatalf("mode %d call %d: roles %v, want %v", tc.mode, i, got, tc.roles)
			}
			if p.AuthTyp != "aad" || p.RoleTyp != claimRole || p.NameTyp != claimName {
				t.Fatalf("mode %d: principal shape %+v", tc.mode, p)
			}
		}
	}
}

// A caller that is not on loopback is not signed in, and its headers go.
func TestSignInOnlyFromLoopback(t *testing.T) {
	h := &Host{o: Options{SignIn: SignInOperator, ReadRole: DefaultReadRole}}
	for addr, want := range map[string]bool{"127.0.0.1:5000": true, "[::1]:5000": true, "192.0.2.7:5000": false, "[2001:db8::1]:80": false, "garbage": false} {
		in := httptest.NewRequest(http.MethodGet, "/api/requests", nil)
		in.RemoteAddr = addr
		forge(in)
		out := in.Header.Clone()
		h.signIn(in, out)
		if out.Get("X-MS-TOKEN-AAD-ACCESS-TOKEN") != "" || out.Get("X-MS-CLIENT-PRINCIPAL-NAME") == "mallory" {
			t.Fatalf("%s: forged headers kept: %v", addr, out)
		}
		got := out.Get("X-MS-CLIENT-PRINCIPAL-ID")
		if want && got != LocalOperatorObjectID || !want && got != "" {
			t.Fatalf("%s: principal id %q", addr, got)
		}
	}
}

// The stand-in and the real handler agree: the local operator reads, a
// forged principal never does, and each mode gives the handler's answer.
func TestSignInThroughHandlers(t *testing.T) {
	if DefaultReadRole != handlers.DefaultReadRole {
		t.Fatalf("devhost signs in with %q, the handler wants %q", DefaultReadRole, handlers.DefaultReadRole)
	}
	srv := httptest.NewServer(handlers.New(handlers.Deps{
		Logger:    slog.New(slog.DiscardHandler),
		ReadAuth:  &handlers.ReadAuth{Role: handlers.DefaultReadRole, PlatformSignIn: true},
		Dashboard: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "<html>ok</html>") }),
	}))
	t.Cleanup(srv.Close)
	for mode, want := range map[SignInMode]int{SignInOperator: 200, SignInNoRole: 403, SignInOff: 401} {
		h := start(t, srv.URL, Options{SignIn: mode})
		for _, forged := range []bool{false, true} {
			req, _ := http.NewRequest(http.MethodGet, h.URL()+"/api/dashboard", nil)
			if forged {
				forge(req)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("mode %d forged=%v: %d, want %d", mode, forged, resp.StatusCode, want)
			}
		}
		resp, err := http.Get(h.URL() + "/api/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 401 || resp.StatusCode == 403 {
			t.Fatalf("mode %d: health %d", mode, resp.StatusCode)
		}
	}
}
