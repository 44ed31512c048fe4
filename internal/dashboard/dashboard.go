// Package dashboard serves the operators' pages under GET /api/dashboard
// (docs/design.md, The read API), all on the one route the function table gives it:
//
//	/api/dashboard                      active grants with the time left,
//	                                    pending approvals, requests that need
//	                                    attention, endings, denied and rejected
//	                                    requests and out-of-band findings
//	/api/dashboard?profile=P            the same for one profile
//	/api/dashboard?from=D&to=D          endings and denials of a date range
//	                                    (UTC days, YYYY-MM-DD, at most
//	                                    MaxRangeDays) instead of the last 24 h
//	/api/dashboard?q=TEXT               search: an exact request id answers 303
//	                                    to that request's page; anything else
//	                                    lists the requests of that requester
//	                                    (UPN or object id) or whose ticket or
//	                                    id contains TEXT
//	/api/dashboard?request=ID           one request: every field, approvals,
//	                                    the Graph or ARM steps and the history
//	                                    as a timeline; 404 page when unknown
//
// The pages are rendered on the server with html/template (every value is
// escaped by the template's contextual escaping) and have no external
// assets. The stylesheet is inline and allowed by a per-response CSP nonce;
// the one script — it shows the times in the viewer's time zone, UTC and the
// year staying in each time's title and being the text without script — is
// a constant allowed by its hash. Forms are plain GET forms; the dashboard
// and the page of an unfinished request refresh themselves with
// <meta http-equiv="refresh"> to their own canonical address.
//
// No key or token ever appears in a URL the pages render (docs/design.md, The read API): a
// code parameter (the function key the Functions host may forward) is
// accepted and ignored, and no link, form or refresh carries it. Any other
// unknown parameter, a repeated parameter, a bad date range or a profile
// that is not configured answers 400 with a page that says what is wrong —
// an unknown profile is refused rather than shown as an empty page, so that
// a typo in a bookmarked address is never mistaken for "no active grants".
// When Options.Profiles is empty (nothing to check against) any well-formed
// profile name is accepted. A client that asks for JSON (Accept:
// application/json without text/html) gets errors as {"error":"..."} like the
// read API; browsers get an HTML page.
//
// Cost is flat: one ListRequests call per state, each bounded by ListLimit
// (200), plus one RecentRejections call, plus — only when the store lists
// requests without their history — at most HistoryLookups (50) GetRequest
// calls for the rows that show who ended a request and whether sessions
// were revoked. With a date range, the listings of ended states read up to
// RangePages pages each. A section whose listing had more says so on the
// page. Failures and removed out-of-band members are shown for 7 days. A
// search makes the same listings (the ticket has no index: it is looked for
// among them, and the page says so) plus one listing by requester; a
// request's page is one GetRequest.
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
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
)

// UserResolver resolves a UPN to the user's object id, for the search by
// requester (broker.Directory satisfies it).
type UserResolver interface {
	LookupUser(ctx context.Context, idOrUPN string) (broker.User, error)
}

// Options configure the dashboard.
type Options struct {
	// Store is where requests are read from (required; nil answers 503).
	Store broker.Lister
	// Users, when set, resolves a UPN searched for to an object id, so that
	// the requester index finds all of that user's requests. Without it a
	// UPN is matched among the listed requests (and the object id of a
	// match is then looked up in the index).
	Users UserResolver
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
	// end needs attention (docs/design.md, real directory rule 4).
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
	// RangePages is how many pages of ListLimit the listing of an ended
	// state reads when a date range is asked for.
	RangePages = 5
	// RejectionLimit bounds the rejections without request id read per page.
	RejectionLimit = 50
	// RecentWindow is how far back endings, denials and rejections are shown
	// when no date range is asked for.
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
	// MaxText is how many characters of a free-text field are displayed in
	// a table; the full text is in the title attribute and on the request's
	// page.
	MaxText = 120
	// MaxUnreadableShown bounds the ids of unreadable stored requests the
	// page names (the count is always whole).
	MaxUnreadableShown = 20
	// MaxResults bounds the rows of a search.
	MaxResults = 200
)

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

// stdout is where the default logger writes.
var stdout = os.Stdout

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
	now := h.o.Now().UTC()
	q, msg := h.parseQuery(r.URL.RawQuery, now)
	if msg != "" {
		h.fail(w, r, nonce, http.StatusBadRequest, "Bad request", msg)
		return
	}
	if h.o.Store == nil {
		h.fail(w, r, nonce, http.StatusServiceUnavailable, "Storage is unreachable",
			"No request store is configured, so there is nothing to show.")
		return
	}
	f := frame{Nonce: nonce, Self: q.self(), Now: newStampSecs(now), Profile: q.profile, Search: q.search, Win: q.win,
		Profiles: h.profileOptions(q.profile)}
	switch {
	case q.request != "":
		h.serveDetail(w, r, f, q.request, now)
	case q.search != "":
		h.serveSearch(w, r, f, q, now)
	default:
		h.serveDashboard(w, r, f, q, now)
	}
}

func (h *handler) serveDashboard(w http.ResponseWriter, r *http.Request, f frame, q query, now time.Time) {
	g, err := h.gather(r.Context(), q, now)
	if err != nil {
		h.storeFailed(w, r, f.Nonce, err)
		return
	}
	p := build(g, q.profile, q.win, now, h.o.SweepInterval)
	f.Refresh = refreshSeconds(h.o.Refresh)
	p.frame = f
	h.render(w, r, f.Nonce, "page", p)
}

func (h *handler) storeFailed(w http.ResponseWriter, r *http.Request, nonce string, err error) {
	h.log.ErrorContext(r.Context(), "dashboard: storage failed", "kind", errKind(err))
	h.fail(w, r, nonce, http.StatusServiceUnavailable, "Storage is unreachable",
		"The request store did not answer, so the current state cannot be shown. The page retries by itself.")
}

// render executes the named template and answers 200.
func (h *handler) render(w http.ResponseWriter, r *http.Request, nonce, name string, data any) {
	var buf bytes.Buffer
	if err := pageTmpl.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.ErrorContext(r.Context(), "dashboard: render failed", "page", name, "error", err.Error())
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
// Pages of client errors link back to the dashboard ("?": no parameter, so
// no key either).
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
	switch status {
	case http.StatusServiceUnavailable:
		e.Refresh = refreshSeconds(h.o.Refresh)
	case http.StatusBadRequest, http.StatusNotFound:
		e.Home = true
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

// cspFormat is the Content-Security-Policy of every answer: %n is the style
// nonce, %h the hash of the one script (timeScript).
const cspFormat = "default-src 'none'; style-src 'nonce-%n'; script-src '%h'; img-src data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// scriptHash is the CSP source of timeScript: 'sha256-<base64>'.
var scriptHash = func() string {
	sum := sha256.Sum256([]byte(timeScript))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}()

func setHeaders(w http.ResponseWriter, nonce string) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", strings.NewReplacer("%n", nonce, "%h", scriptHash).Replace(cspFormat))
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
