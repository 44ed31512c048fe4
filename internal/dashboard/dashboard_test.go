package dashboard

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

func newTestHandler(store *fakeLister) http.Handler {
	o := Options{Profiles: profiles, Now: func() time.Time { return now0 }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if store != nil {
		o.Store = store
	}
	return New(o)
}

func get(t *testing.T, h http.Handler, target string, hdr ...string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, rec.Body.String()
}

// sectionHTML returns the markup of the section with the given id.
func sectionHTML(t *testing.T, body, id string) string {
	t.Helper()
	start := strings.Index(body, `<section id="`+id+`"`)
	if start < 0 {
		t.Fatalf("no section %q", id)
	}
	end := strings.Index(body[start:], "</section>")
	return body[start : start+end]
}

func mustContain(t *testing.T, where, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s: missing %q", where, w)
		}
	}
}

func mustNotContain(t *testing.T, where, s string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(s, b) {
			t.Errorf("%s: unexpected %q", where, b)
		}
	}
}

func TestSections(t *testing.T) {
	store := seed(now0)
	rec, body := get(t, newTestHandler(store), "/api/dashboard")
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
	mustContain(t, "page", body, `<meta http-equiv="refresh" content="15; url=?">`, `<html lang="en">`, "as of",
		`<time datetime="2026-11-23T10:00:00Z" title="2026-11-23 10:00:00 UTC" data-s>23`+nb+`Nov`+nb+`2026 10:00:00`+nb+`UTC</time>`)

	active := sectionHTML(t, body, "active")
	mustContain(t, "active", active, "<caption>", `<th scope="col">Time left</th>`,
		n01, p01, "12m 30s", "3h 05m", "alice@contoso.example", ">activating<", "bob@contoso.example", ">ending<", "ending now",
		"carol@contoso.example", "PIM portal", "PIM (activated in the portal)", "dave-oncall@contoso.example", "auto-approved",
		`datetime="2026-11-23T10:12:30Z"`, "ticket INC-42")
	mustNotContain(t, "active", active, "oob-5678", "erin@")
	if i, j := strings.Index(active, n01), strings.Index(active, "dave-oncall"); i > j {
		t.Errorf("active grants not sorted by end: %s before %s", "dave", n01)
	}

	pending := sectionHTML(t, body, "pending")
	mustContain(t, "pending", pending, "erin@contoso.example", "3m 20s", "1 / 2", "2h 00m", "rotate certificates", "id-f", "40m 00s", "0 / 1", p01)
	if strings.Index(pending, "id-f") > strings.Index(pending, "erin@") {
		t.Error("pending not sorted oldest first")
	}

	att := sectionHTML(t, body, "attention")
	mustContain(t, "attention", att, "gina@contoso.example", "Authorization_RequestDenied", ">failed<",
		"bob@contoso.example", "Graph work unfinished: removing the group membership (4 attempts)", "10m 00s")
	mustNotContain(t, "attention", att, "alice@") // 10 s old work is not stuck

	ends := sectionHTML(t, body, "endings")
	mustContain(t, "endings", ends, n01, ">expired<", "the granted duration elapsed", "revoked",
		"hank@contoso.example", "incident closed", p01, "ivan@contoso.example", "timed out", "no decision within the approval timeout")
	mustNotContain(t, "endings", ends, "old-expiry@", "oob-9999", "kim@")

	den := sectionHTML(t, body, "denied")
	mustContain(t, "denied", den, "kim@contoso.example", "not during the freeze", p01, "guest_x@contoso.example",
		"guest users cannot request access", "rejected event", "requested event, no request id", "data is not valid JSON", "event evt-77",
		"approved event for unknown request req-unknown", "no such request")
	mustNotContain(t, "denied", den, "ancient rejection")

	oob := sectionHTML(t, body, "outofband")
	mustContain(t, "outofband", oob, "9f9f9f9f-0000-4000-8000-00000000beef", "still a member", "added by mallory@contoso.example — added in the Entra portal",
		"9f9f9f9f-0000-4000-8000-00000000cafe", ">removed<", adminGrp)

	// Summary cards.
	for _, c := range []string{`<span class="n">6</span><span class="l">Active grants</span>`,
		`<span class="n">2</span><span class="l">Pending approvals</span>`,
		`<span class="n">2</span><span class="l">Need attention</span>`,
		`<span class="n">5</span><span class="l">Ended (24 h)</span>`,
		`<span class="n">4</span><span class="l">Denied / rejected (24 h)</span>`,
		`<span class="n">1</span><span class="l">Out-of-band members</span>`} {
		mustContain(t, "counts", body, c)
	}

	// Flat cost: one bounded listing per state, one rejection read.
	fs := store.seen()
	if len(fs) != len(listedStates) {
		t.Errorf("%d listings, want %d", len(fs), len(listedStates))
	}
	for _, f := range fs {
		if f.Limit != ListLimit || f.State == "" || f.Profile != "" || f.After != "" {
			t.Errorf("listing %+v", f)
		}
	}
	if len(store.rejLim) != 1 || store.rejLim[0] != RejectionLimit {
		t.Errorf("rejection reads %v", store.rejLim)
	}
}

func TestHistoryReadForListingsWithout(t *testing.T) {
	store := seed(now0)
	store.noHistory = true
	_, body := get(t, newTestHandler(store), "/api/dashboard")
	ends := sectionHTML(t, body, "endings")
	mustContain(t, "endings", ends, "<td>"+p01+"</td>", "<td>revoked</td>")
	mustContain(t, "outofband", sectionHTML(t, body, "outofband"), "added by mallory@contoso.example")
	mustContain(t, "denied", sectionHTML(t, body, "denied"), "<td>"+p01+"</td>")
	// expired, revoked (two), kept, denied, two out-of-band: one read
	// each, no more.
	if store.gets != 7 {
		t.Errorf("%d history reads, want 7", store.gets)
	}
	// With many such rows the reads stay bounded.
	store = &fakeLister{noHistory: true}
	for i := range 3 * HistoryLookups {
		store.reqs = append(store.reqs, &access.Request{ID: fmt.Sprintf("e%03d", i), State: access.Expired, Requester: "u",
			EndedAt: now0.Add(-time.Duration(i) * time.Second), History: []access.HistoryEntry{hist(now0, "expired", "jitaccess", "")}})
	}
	get(t, newTestHandler(store), "/api/dashboard")
	if store.gets != HistoryLookups {
		t.Errorf("%d history reads, want %d", store.gets, HistoryLookups)
	}
	// Listings that carry the history cause no reads (but oob-9999, whose
	// seeded history is empty).
	store = seed(now0)
	get(t, newTestHandler(store), "/api/dashboard")
	if store.gets != 1 {
		t.Errorf("%d reads, want 1 (only the request without history)", store.gets)
	}
}

func TestEmptyPage(t *testing.T) {
	rec, body := get(t, newTestHandler(&fakeLister{}), "/api/dashboard")
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	mustContain(t, "empty", body, "No active grants.", "Nothing waits for approval.", "Nothing needs attention.",
		"Nothing ended in the last 24 hours.", "Nothing was denied or rejected in the last 24 hours.", "No out-of-band findings.")
	mustNotContain(t, "empty", body, "<table")
}

func TestEscaping(t *testing.T) {
	store := seed(now0)
	store.reqs[0].Ticket = `"><svg onload=alert(2)>`
	store.rejs[0].Reason = `</td></tr></table><script>alert(3)</script>`
	_, body := get(t, newTestHandler(store), "/api/dashboard")
	mustContain(t, "page", body, xssText, "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;script&gt;alert(3)&lt;/script&gt;",
		"&#34;&gt;&lt;svg onload=alert(2)&gt;")
	for _, bad := range []string{"<img", "<svg", "onerror=alert(1)>", `"><b>`} {
		if strings.Contains(strings.ToLower(body), bad) {
			t.Errorf("page contains raw %q", bad)
		}
	}
	onlyTimeScript(t, "page", body)
	// The long UPN with a quote stays inside its title attribute.
	mustContain(t, "long upn", body, `title="`+html.EscapeString(longUPN)[:40])
	if strings.Count(body, "<table") != strings.Count(body, "</table>") || strings.Count(body, "<tr>") != strings.Count(body, "</tr>") {
		t.Error("table markup is unbalanced")
	}

	// Values from the query are escaped on error pages too.
	rec, body := get(t, newTestHandler(store), "/api/dashboard?profile=%3Cscript%3Ealert(4)%3C/script%3E")
	if rec.Code != 400 {
		t.Fatalf("status %d", rec.Code)
	}
	mustNotContain(t, "400 page", body, "<script>")
	mustContain(t, "400 page", body, "&lt;script&gt;alert(4)&lt;/script&gt;")
}

func TestLongFieldsAreCut(t *testing.T) {
	_, body := get(t, newTestHandler(seed(now0)), "/api/dashboard")
	cut := strings.Repeat("Z", MaxText-1) + "…"
	mustContain(t, "justification", body, `<span class="long" title="`+longJust+`">`+cut+`</span>`)
	if strings.Contains(body, ">"+longJust+"<") {
		t.Error("long justification shown uncut")
	}
	// The long UPN: cut in the text, whole (escaped) in the title with the object id.
	want := `<span class="who long" title="` + html.EscapeString(longUPN) + ` · object id id-long">` + strings.Repeat("x", MaxText-1) + "…</span>"
	mustContain(t, "upn", strings.ReplaceAll(body, "&#34;", "&quot;"), strings.ReplaceAll(want, "&#34;", "&quot;"))
	mustContain(t, "css", body, "overflow-wrap:anywhere")
}

var cspRe = regexp.MustCompile(`^default-src 'none'; style-src 'nonce-([A-Za-z0-9_-]{20,})'; script-src '(sha256-[A-Za-z0-9+/]{43}=)'; img-src data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'$`)

// nb is the no-break space of the displayed times.
const nb = "\u00a0"

// onlyTimeScript checks that the one script of a page is the time script,
// whose hash the CSP allows.
func onlyTimeScript(t *testing.T, where, body string) {
	t.Helper()
	if n := strings.Count(strings.ToLower(body), "<script"); n != 1 {
		t.Errorf("%s: %d scripts, want only the time script", where, n)
	}
	mustContain(t, where, body, "<script>"+timeScript+"</script>")
}

func TestHeaders(t *testing.T) {
	h := newTestHandler(seed(now0))
	var nonces []string
	for _, target := range []string{"/api/dashboard", "/api/dashboard", "/api/dashboard?bogus=1"} {
		rec, body := get(t, h, target)
		hd := rec.Header()
		m := cspRe.FindStringSubmatch(hd.Get("Content-Security-Policy"))
		if m == nil {
			t.Fatalf("%s: CSP %q", target, hd.Get("Content-Security-Policy"))
		}
		nonces = append(nonces, m[1])
		if n := strings.Count(body, "<style"); n != 1 || !strings.Contains(body, `<style nonce="`+m[1]+`">`) {
			t.Errorf("%s: style element does not carry the header's nonce", target)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
			"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
			if hd.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", target, k, hd.Get(k), v)
			}
		}
		mustNotContain(t, target, body, " style=", "http://", "https://", "<link rel=\"stylesheet\"")
		if rec.Code == 200 {
			onlyTimeScript(t, target, body)
			sum := sha256.Sum256([]byte(timeScript))
			if want := "sha256-" + base64.StdEncoding.EncodeToString(sum[:]); m[2] != want {
				t.Errorf("%s: CSP allows %s, the script's hash is %s", target, m[2], want)
			}
		} else {
			mustNotContain(t, target, body, "<script")
		}
	}
	if nonces[0] == nonces[1] {
		t.Error("nonce reused across responses")
	}
}

func TestProfileFilter(t *testing.T) {
	store := seed(now0)
	rec, body := get(t, newTestHandler(store), "/api/dashboard?profile=aks-oncall")
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	for _, f := range store.seen() {
		if f.Profile != "aks-oncall" {
			t.Errorf("listing without the profile filter: %+v", f)
		}
	}
	if len(store.rejLim) != 0 {
		t.Error("rejections without request (no profile) read for a filtered page")
	}
	mustContain(t, "filtered", body, "dave-oncall@contoso.example", `<option value="aks-oncall" selected>aks-oncall</option>`,
		`<option value="aks-admin">aks-admin</option>`, `<option value="">All profiles</option>`, "profile <strong>aks-oncall</strong>")
	mustNotContain(t, "filtered", body, n01, "erin@", "kim@", "data is not valid JSON")
	mustContain(t, "form", body, `<form class="filter" method="get"`, `<select id="profile" name="profile">`, `<label for="profile">`)

	// A function key in the query is accepted and never rendered: not in
	// the forms, the links or the refresh.
	for _, target := range []string{"/api/dashboard?code=K3Y-S3CR3T&profile=aks-admin", "/api/dashboard?code=K3Y-S3CR3T",
		"/api/dashboard?code=K3Y-S3CR3T&q=INC", "/api/dashboard?code=K3Y-S3CR3T&request=req-kept",
		"/api/dashboard?code=K3Y-S3CR3T&from=2026-11-22", "/api/dashboard?code=K3Y-S3CR3T&request=nope", "/api/dashboard?code=K3Y-S3CR3T&bogus=1"} {
		rec, body := get(t, newTestHandler(seed(now0)), target)
		if rec.Code >= 500 {
			t.Errorf("%s: %d", target, rec.Code)
		}
		mustNotContain(t, target, body, "K3Y", `name="code"`, "code=")
		mustNotContain(t, target, rec.Header().Get("Location"), "K3Y")
	}
	_, body = get(t, newTestHandler(seed(now0)), "/api/dashboard?code=K3Y-S3CR3T&profile=aks-admin")
	mustContain(t, "refresh", body, `<meta http-equiv="refresh" content="15; url=?profile=aks-admin">`)

	// No configured profiles: any well-formed name filters.
	store = seed(now0)
	h := New(Options{Store: store, Now: func() time.Time { return now0 }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rec, body = get(t, h, "/api/dashboard?profile=whatever")
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	mustContain(t, "unconfigured", body, `<option value="whatever" selected>whatever</option>`, "No active grants.")
}

func TestBadRequests(t *testing.T) {
	h := newTestHandler(seed(now0))
	for _, tc := range []struct{ target, want string }{
		{"/api/dashboard?state=active", `Unknown query parameter &#34;state&#34;`},
		{"/api/dashboard?profile=aks-admin&profile=aks-oncall", "given more than once"},
		{"/api/dashboard?profile=nope", `There is no profile named &#34;nope&#34;. Known profiles: aks-admin, aks-oncall.`},
		{"/api/dashboard?profile=" + strings.Repeat("p", 65), "too long"},
		{"/api/dashboard?profile=%zz", "cannot be read"},
	} {
		rec, body := get(t, h, tc.target)
		if rec.Code != 400 {
			t.Errorf("%s: status %d", tc.target, rec.Code)
		}
		if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Errorf("%s: content type %q", tc.target, rec.Header().Get("Content-Type"))
		}
		mustContain(t, tc.target, body, tc.want, "<h1>Bad request</h1>", `href="?"`)
		mustNotContain(t, tc.target, body, "http-equiv=\"refresh\"")
	}
	// JSON for clients that ask for it, like the read API.
	rec, body := get(t, h, "/api/dashboard?profile=nope", "Accept", "application/json")
	var e struct{ Error string }
	if rec.Code != 400 || rec.Header().Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body), &e) != nil ||
		!strings.Contains(e.Error, `no profile named "nope"`) {
		t.Errorf("json 400: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), body)
	}
	// A browser's Accept gets HTML.
	rec, _ = get(t, h, "/api/dashboard?x=1", "Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Errorf("browser got %q", rec.Header().Get("Content-Type"))
	}
	// Only GET and HEAD.
	req := httptest.NewRequest(http.MethodPost, "/api/dashboard", nil)
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	if rr.Code != 405 || rr.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %q", rr.Code, rr.Header().Get("Allow"))
	}
	req = httptest.NewRequest(http.MethodHead, "/api/dashboard", nil)
	rr = httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	if rr.Code != 200 || rr.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", rr.Code, rr.Body.Len())
	}
}

func TestStorageDown(t *testing.T) {
	for name, h := range map[string]http.Handler{
		"failing store": newTestHandler(&fakeLister{err: fault.Wrap(fault.ErrTransient, "list", errors.New("dial tcp: connection refused"))}),
		"no store":      New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}),
	} {
		rec, body := get(t, h, "/api/dashboard")
		if rec.Code != 503 {
			t.Errorf("%s: status %d", name, rec.Code)
		}
		mustContain(t, name, body, "<h1>Storage is unreachable</h1>", `<meta http-equiv="refresh" content="15">`, `role="alert"`)
		mustNotContain(t, name, body, `url=`)
		mustNotContain(t, name, body, "connection refused", "dial tcp")
		if cspRe.FindString(rec.Header().Get("Content-Security-Policy")) == "" || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", name, rec.Header())
		}
		rec, body = get(t, h, "/api/dashboard", "Accept", "application/json")
		if rec.Code != 503 || !strings.Contains(body, `"error"`) {
			t.Errorf("%s json: %d %s", name, rec.Code, body)
		}
	}
}

func TestTruncatedListing(t *testing.T) {
	store := &fakeLister{}
	for i := range ListLimit + 1 {
		store.reqs = append(store.reqs, &access.Request{ID: fmt.Sprintf("p%03d", i), State: access.Pending, Requester: "u",
			Profile: "aks-admin", RequestedAt: now0.Add(-time.Duration(i) * time.Second), ApprovalsRequired: 1})
	}
	_, body := get(t, newTestHandler(store), "/api/dashboard")
	mustContain(t, "truncated", body, `<span class="n">200&#43;</span><span class="l">Pending approvals</span>`, "only the first 200 were considered")
	if strings.Count(sectionHTML(t, body, "pending"), "<tr>") != ListLimit+1 { // + header row
		t.Error("pending rows")
	}
}

func TestRefreshOption(t *testing.T) {
	h := New(Options{Store: &fakeLister{}, Refresh: 1500 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_, body := get(t, h, "/")
	mustContain(t, "refresh", body, `<meta http-equiv="refresh" content="2; url=?">`, "refreshes every 2 s")
}

func TestSpan(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 45 * time.Second: "45s", 12*time.Minute + 30*time.Second: "12m 30s", time.Hour + 5*time.Minute + 59*time.Second: "1h 05m",
		49 * time.Hour: "2d 1h", -(90 * time.Second): "1m 30s", 999 * time.Millisecond: "0s",
	} {
		if got := span(d); got != want {
			t.Errorf("span(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestNewText(t *testing.T) {
	if tx := newText("short"); tx.Cut() || tx.Short != "short" {
		t.Errorf("%+v", tx)
	}
	s := strings.Repeat("é", MaxText+5)
	tx := newText(s)
	if !tx.Cut() || tx.Full != s || len([]rune(tx.Short)) != MaxText {
		t.Errorf("cut %d runes", len([]rune(tx.Short)))
	}
	if tx := newText("a\xffb"); tx.Short != "a\uFFFDb" {
		t.Errorf("invalid utf-8: %q", tx.Short)
	}
}
