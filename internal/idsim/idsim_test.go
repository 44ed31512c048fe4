package idsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

const userAssignedClient = "a9900000-0000-4000-8000-0000000000u1"

func start(t *testing.T) *Server {
	t.Helper()
	s := New(Options{UserAssigned: []Identity{{ClientID: userAssignedClient, ObjectID: "0b100000-0000-4000-8000-0000000000u1"}}}).Start()
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, s *Server, q url.Values, header string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.Endpoint()+"?"+q.Encode(), nil)
	if header != "" {
		req.Header.Set("X-IDENTITY-HEADER", header)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func TestProtocol(t *testing.T) {
	s := start(t)
	q := url.Values{"api-version": {APIVersion}, "resource": {"https://graph.microsoft.com"}}
	st, m := get(t, s, q, s.Header())
	if st != 200 || m["token_type"] != "Bearer" || m["resource"] != "https://graph.microsoft.com" || m["client_id"] != DefaultClientID {
		t.Fatalf("%d %v", st, m)
	}
	exp, _ := m["expires_on"].(string)
	if !strings.HasPrefix(exp, "1") || len(exp) < 10 {
		t.Fatalf("expires_on %q", exp)
	}
	tok := m["access_token"].(string)
	c, ok := s.Check(tok)
	if !ok || c.Aud != "https://graph.microsoft.com" || c.AppID != DefaultClientID || c.Azp != DefaultClientID || c.Oid != DefaultObjectID || c.Tid != DefaultTenantID || c.Idtyp != "app" {
		t.Fatalf("claims %+v ok=%v", c, ok)
	}
	if !s.VerifyAudience("https://graph.microsoft.com/")(tok) || s.VerifyAudience("https://management.azure.com")(tok) {
		t.Fatal("VerifyAudience")
	}
	// Tampering and foreign tokens fail.
	p := strings.Split(tok, ".")
	if s.Verify(p[0]+"."+p[1]+"x."+p[2]) || s.Verify("a.b.c") || s.Verify("") {
		t.Fatal("tampered token verified")
	}
	if New(Options{}).Verify(tok) {
		t.Fatal("another server's key verified the token")
	}

	for name, tc := range map[string]struct {
		q      url.Values
		header string
		want   int
	}{
		"no header":      {q, "", 401},
		"wrong header":   {q, "nope", 401},
		"no api-version": {url.Values{"resource": {"x"}}, s.Header(), 400},
		"no resource":    {url.Values{"api-version": {APIVersion}}, s.Header(), 400},
		"unassigned id":  {url.Values{"api-version": {APIVersion}, "resource": {"x"}, "client_id": {"other"}}, s.Header(), 400},
	} {
		if st, _ := get(t, s, tc.q, tc.header); st != tc.want {
			t.Errorf("%s: status %d want %d", name, st, tc.want)
		}
	}
	if n := len(s.IssuedTokens()); n != 1 {
		t.Fatalf("issued %d", n)
	}
	if n := len(s.Requests()); n != 6 {
		t.Fatalf("requests %d", n)
	}
}

func TestExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := New(Options{Lifetime: time.Minute, Now: func() time.Time { return now }}).Start()
	defer s.Close()
	_, m := get(t, s, url.Values{"api-version": {APIVersion}, "resource": {"r"}}, s.Header())
	tok := m["access_token"].(string)
	if !s.Verify(tok) {
		t.Fatal("fresh token refused")
	}
	now = now.Add(2 * time.Minute)
	if s.Verify(tok) {
		t.Fatal("expired token accepted")
	}
}

// TestAzidentity runs the real ManagedIdentityCredential against the server.
func TestAzidentity(t *testing.T) {
	s := start(t)
	s.Setenv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// System-assigned. (MSAL caches managed identity tokens process-wide by
	// identity and resource, so every case, and every run under -count, asks
	// for its own resource.)
	res := func(n int) string { return fmt.Sprintf("api://idsim-%s-%d", s.Header(), n) }
	cred, err := azidentity.NewManagedIdentityCredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{res(1) + "/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	c, ok := s.Check(tk.Token)
	if !ok || c.Aud != res(1) || c.AppID != DefaultClientID {
		t.Fatalf("system-assigned: %+v %v", c, ok)
	}
	if time.Until(tk.ExpiresOn) < 50*time.Minute {
		t.Fatalf("ExpiresOn %v", tk.ExpiresOn)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].APIVersion != APIVersion || reqs[0].Resource != res(1) || reqs[0].ClientID != "" {
		t.Fatalf("requests %+v", reqs)
	}

	// User-assigned by client id (AZURE_CLIENT_ID in the app).
	cred, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(userAssignedClient)})
	if err != nil {
		t.Fatal(err)
	}
	tk, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{res(2) + "/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := s.Check(tk.Token); !ok || c.AppID != userAssignedClient {
		t.Fatalf("user-assigned: %+v %v", c, ok)
	}
	if r := s.Requests()[1]; r.ClientID != userAssignedClient {
		t.Fatalf("client id not sent: %+v", r)
	}

	// An identity not assigned to the app fails.
	cred, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID("not-assigned")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{res(3) + "/.default"}}); err == nil {
		t.Fatal("unassigned identity got a token")
	}
}
