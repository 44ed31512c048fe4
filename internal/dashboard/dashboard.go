// Package dashboard serves the operators' page, GET /api/dashboard (DESIGN
// §8): active grants with the time left, pending approvals, requests that
// need attention, recent endings, denied and rejected requests and
// out-of-band findings, optionally for one profile.
//
// The page is rendered on the server with html/template (every value is
// escaped by the template's contextual escaping), has no external assets
// and no script: the stylesheet is inline and allowed by a per-response CSP
// nonce, the profile filter is a plain GET form and the page refreshes
// itself with <meta http-equiv="refresh">.
//
// Query parameters: profile (empty = all profiles) and code (the function
// key the Functions host forwards; it is carried over by the filter form so
// that applying a filter does not lose it). Any other parameter, a repeated
// parameter or a profile that is not configured answers 400 — an unknown
// profile is refused rather than shown as an empty page, so that a typo in a
// bookmarked address is never mistaken for "no active grants". When
// Options.Profiles is empty (nothing to check against) any well-formed
// profile name is accepted. A client that asks for JSON (Accept:
// application/json without text/html) gets errors as {"error":"..."} like the
// read API; browsers get an HTML page.
//
// Cost is flat: one ListRequests call per state, each bounded by ListLimit
// (200), plus one RecentRejections call, plus — only when the store lists
// requests without their history — at most HistoryLookups (50) GetRequest
// calls for the rows that show who ended a request and whether sessions
// were revoked. A section whose listing had more
// says so on the page. Ended states are filtered to a time window (24 h for
// endings, denials and rejections, 7 days for failures and removed
// out-of-band members); the store is expected to list ended states newest
// first, otherwise the window shows what the first page holds.
//
// When the store fails the answer is 503 with a page saying storage is
// unreachable (it keeps refreshing, so it recovers by itself). A stored
// request that cannot be decoded does not fail the page: the listings skip
// it (broker.ListPage.Skipped) and "Needs attention" says "N stored requests
// could not be read" with their ids, which the log explains.
package dashboard

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
)

// Options configure the dashboard.
type Options struct {
	// Store is where requests are read from (required; nil answers 503).
	Store broker.Lister
	// Profiles are the configured profiles; their names fill the filter.
	Profiles []access.Profile
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Refresh is how often the page reloads itself (default 15 s).
	Refresh time.Duration
	// Logger receives errors (default: JSON to stdout). Only ids, states,
	// kinds and counts are logged, never free text from requests.
	Logger *slog.Logger
	// SweepInterval is the interval of the expiry sweep (default
	// DefaultSweepInterval): a grant still active more than this past its
	// end needs attention (DESIGN §6b.4).
	SweepInterval time.Duration
}

// Tunables (exported so tests and docs can refer to them).
const (
	// DefaultRefresh is the default reload interval.
	DefaultRefresh = 15 * time.Second
	// DefaultSweepInterval is Options.SweepInterval's default (the
	// contract's schedule, every minute).
	DefaultSweepInterval = time.Minute
	// ListLimit bounds every listing the page makes.
	ListLimit = 200
	// RejectionLimit bounds the rejections without request id read per page.
	RejectionLimit = 50
	// RecentWindow is how far back endings, denials and rejections are shown.
	RecentWindow = 24 * time.Hour
	// AttentionWindow is how far back failures and removed out-of-band
	// members are shown.
	AttentionWindow = 7 * 24 * time.Hour
	// HistoryLookups bounds the requests read one by one for their history
	// (when the listing leaves it out), HistoryParallel how many at a time.
	HistoryLookups  = 50
	HistoryParallel = 8
	// StuckAfter is how old unfinished Graph work must be to need attention.
	StuckAfter = 5 * time.Minute
	// MaxText is how many characters of a free-text field are displayed; the
	// full text is in the title attribute.
	MaxText = 120
	// MaxUnreadableShown bounds the ids of unreadable stored requests the
	// page names (the count is always whole).
	MaxUnreadableShown = 20
)

// allowedParams are the query parameters the page understands.
var allowedParams = map[string]bool{"profile": true, "code": true}

type handler struct {
	o        Options
	log      *slog.Logger
	profiles []string
	known    map[string]bool
}

// New returns the dashboard handler. It answers GET and HEAD on whatever path
// it is mounted (the caller routes /api/dashboard to it).
func New(o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(stdout, nil))
	}
	h := &handler{o: o, log: o.Logger, known: map[string]bool{}}
	for _, p := range o.Profiles {
		if p.Name != "" && !h.known[p.Name] {
			h.known[p.Name] = true
			h.profiles = append(h.profiles, p.Name)
		}
	}
	slices.Sort(h.profiles)
	return h
}

// errStore marks a storage failure (any error of the Lister).
var errStore = errors.New("storage is unreachable")

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	nonce := newNonce()
	setHeaders(w, nonce)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.fail(w, r, nonce, http.StatusMethodNotAllowed, "Method not allowed", "The dashboard only answers GET.")
		return
	}
	profile, code, msg := h.parseQuery(r)
	if msg != "" {
		h.fail(w, r, nonce, http.StatusBadRequest, "Bad request", msg)
		return
	}
	if h.o.Store == nil {
		h.fail(w, r, nonce, http.StatusServiceUnavailable, "Storage is unreachable",
			"No request store is configured, so there is nothing to show.")
		return
	}
	now := h.o.Now().UTC()
	p, err := h.gather(r.Context(), profile, now)
	if err != nil {
		h.log.ErrorContext(r.Context(), "dashboard: storage failed", "kind", errKind(err))
		h.fail(w, r, nonce, http.StatusServiceUnavailable, "Storage is unreachable",
			"The request store did not answer, so the current state cannot be shown. The page retries by itself.")
		return
	}
	p.Nonce, p.Refresh, p.Code = nonce, refreshSeconds(h.o.Refresh), code
	p.Profiles = h.profileOptions(profile)
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, p); err != nil {
		h.log.ErrorContext(r.Context(), "dashboard: render failed", "error", err.Error())
		h.fail(w, r, nonce, http.StatusInternalServerError, "Internal error", "The page could not be rendered.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// parseQuery validates the query; msg is the 400 message when it is bad.
func (h *handler) parseQuery(r *http.Request) (profile, code, msg string) {
	q, err := parseQueryStrict(r.URL.RawQuery)
	if err != nil {
		return "", "", "The query string cannot be read."
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !allowedParams[k] {
			return "", "", "Unknown query parameter " + strconv.Quote(clipRunes(k, 32)) + ". The dashboard understands only profile."
		}
		if len(q[k]) > 1 {
			return "", "", "Query parameter " + strconv.Quote(k) + " is given more than once."
		}
	}
	profile = strings.TrimSpace(q.Get("profile"))
	code = q.Get("code")
	if len(code) > 1024 || !utf8.ValidString(code) {
		return "", "", "The code parameter is not valid."
	}
	if profile == "" {
		return "", code, ""
	}
	if len(profile) > access.MaxProfileLen || !utf8.ValidString(profile) {
		return "", "", "The profile name is too long or not valid text."
	}
	if len(h.known) > 0 && !h.known[profile] {
		return "", "", "There is no profile named " + strconv.Quote(profile) + ". Known profiles: " + strings.Join(h.profiles, ", ") + "."
	}
	return profile, code, ""
}

func (h *handler) profileOptions(selected string) []profileOption {
	out := make([]profileOption, 0, len(h.profiles)+1)
	for _, n := range h.profiles {
		out = append(out, profileOption{Name: n, Selected: n == selected})
	}
	if selected != "" && !h.known[selected] {
		// No configured profiles to check against: keep the chosen one visible.
		out = append(out, profileOption{Name: selected, Selected: true})
	}
	return out
}

// fail answers an error: an HTML page, or JSON for clients that ask for it.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, nonce string, status int, title, msg string) {
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
		}
		return
	}
	var buf bytes.Buffer
	e := errorPage{Nonce: nonce, Status: status, Title: title, Message: msg}
	if status == http.StatusServiceUnavailable {
		e.Refresh = refreshSeconds(h.o.Refresh)
	}
	if status == http.StatusBadRequest {
		e.Home = "?"
		if code := r.URL.Query().Get("code"); code != "" && len(code) <= 1024 {
			e.Home = "?code=" + urlQueryEscape(code)
		}
	}
	if err := errorTmpl.Execute(&buf, e); err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, msg+"\n")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// wantsJSON: the client accepts JSON and not HTML.
func wantsJSON(r *http.Request) bool {
	json, html := false, false
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json":
			json = true
		case "text/html", "application/xhtml+xml", "*/*", "text/*":
			html = true
		}
	}
	return json && !html
}

// CSP is the Content-Security-Policy of every answer; %s is the style nonce.
const cspFormat = "default-src 'none'; style-src 'nonce-%s'; img-src data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func setHeaders(w http.ResponseWriter, nonce string) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", strings.Replace(cspFormat, "%s", nonce, 1))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
}

func newNonce() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

func refreshSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

func errKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return "store"
}
