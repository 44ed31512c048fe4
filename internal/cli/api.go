package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jitaccess/jitaccess/internal/api"
)

// apiClient reads the read API (docs/design.md, The read API). Its credentials go in headers
// only, never in a URL (a URL ends up in error messages and logs): the
// function key as x-functions-key, an Entra access token as a bearer token
// (App Service Authentication accepts one for the read API once sign-in is
// on). Neither is ever printed.
type apiClient struct {
	base  string // scheme://host[:port][/path], without the trailing slash
	key   string
	token string
	http  *http.Client
}

// apiFlags are the flags every reading command shares.
type apiFlags struct {
	url   string // --api (or --url, its older name)
	key   string // --code
	token string // --api-token
}

// newAPIClient checks the base URL and the credentials' transport.
func newAPIClient(env Env, base string, f apiFlags) (*apiClient, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("the API URL %q is not an http(s) base URL such as https://<app>.azurewebsites.net", clip(base, 200))
	}
	c := &apiClient{
		base:  strings.TrimRight(u.String(), "/"),
		key:   orEnv(f.key, env.Getenv("JIT_FUNCTION_KEY")),
		token: orEnv(f.token, env.Getenv("JIT_API_TOKEN")),
	}
	if (c.key != "" || c.token != "") && u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("refusing to send a function key or token over plain http to %s: use https", u.Host)
	}
	// No redirects: the read API answers directly, App Service
	// Authentication redirects only a caller that is not signed in (to the
	// sign-in page), and a redirect must not carry the function key to
	// another host.
	hc := *env.HTTP
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	return c, nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// apiAnswer is one answer of the read API.
type apiAnswer struct {
	Status int
	Body   []byte
}

// message is the API's JSON error ({"error": "..."}), or the status.
func (a apiAnswer) message() string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(a.Body, &e) == nil && e.Error != "" {
		return clean(clip(e.Error, 300))
	}
	return fmt.Sprintf("%d %s", a.Status, http.StatusText(a.Status))
}

// denied reports an answer that says the caller may not read.
func (a apiAnswer) denied() bool {
	return a.Status == http.StatusUnauthorized || a.Status == http.StatusForbidden || a.Status/100 == 3
}

// deniedHint explains a refused read.
func (a apiAnswer) deniedHint() string {
	switch {
	case a.Status/100 == 3:
		return fmt.Sprintf("the API redirected (%d), most likely to sign-in: give an Entra access token (--api-token or $JIT_API_TOKEN)", a.Status)
	case a.Status == http.StatusUnauthorized:
		return "the API refused the read (401): give the function key (--code or $JIT_FUNCTION_KEY) or an Entra access token (--api-token or $JIT_API_TOKEN)"
	}
	return "the API refused the read (403): the signed-in identity lacks the JitAccess.Read app role"
}

// errTransport wraps a failure to get any answer.
type errTransport struct{ err error }

func (e errTransport) Error() string { return e.err.Error() }

// get reads path (below /api) with the query q.
func (c *apiClient) get(ctx context.Context, path string, q url.Values) (apiAnswer, error) {
	u := c.base + "/api/" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return apiAnswer{}, err
	}
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("x-functions-key", c.key)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is printed once, by the caller
		}
		return apiAnswer{}, errTransport{err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return apiAnswer{}, errTransport{fmt.Errorf("reading the answer: %w", err)}
	}
	return apiAnswer{Status: resp.StatusCode, Body: b}, nil
}

// getRequest reads one request.
func (c *apiClient) getRequest(ctx context.Context, id string) (apiAnswer, error) {
	return c.get(ctx, "requests/"+url.PathEscape(id), nil)
}

// who is the requester as a person reads it: the UPN, else the object id.
func who(r *api.Request) string {
	if r.RequesterUPN != "" {
		return r.RequesterUPN
	}
	return r.Requester
}

// inFlight reports a state that is on its way to another (docs/design.md, Semantics:
// in-flight states): Graph or ARM work recorded as intent is under way.
func inFlight(state string) bool {
	return state == "activating" || state == "ending" || state == "confirming"
}

// clean makes text safe for one line of a terminal: the read API returns
// what senders wrote (justification, comments, reasons), which may hold
// line breaks, tabs (they would break the table's columns), terminal
// escape sequences or bidirectional overrides. Those are shown escaped.
func clean(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			b.WriteRune('\uFFFD')
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C:
		return true // bidirectional controls
	case r == 0x2028 || r == 0x2029:
		return true // line and paragraph separators
	}
	return false
}

// clip shortens s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
