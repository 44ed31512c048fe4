package dashboard

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jitaccess/jitaccess/internal/access"
)

// Query parameters of /api/dashboard:
//
//	profile  the profile filter (empty: all profiles)
//	from, to the endings' date range, UTC days as YYYY-MM-DD (both optional;
//	         neither: the last RecentWindow)
//	q        a search: an exact request id opens that request, anything else
//	         lists the requests of that requester (UPN or object id) or with
//	         that ticket
//	request  one request's page
//	code     accepted and ignored: a function key the Functions host may
//	         forward. It is never written into any URL the page renders.
var allowedParams = map[string]bool{"profile": true, "from": true, "to": true, "q": true, "request": true, "code": true}

// Bounds of the query.
const (
	// MaxRangeDays bounds the endings' date range.
	MaxRangeDays = 92
	// MaxQueryLen bounds the search text (a UPN, an object id or a ticket).
	MaxQueryLen = 256
	dateLayout  = "2006-01-02"
)

// window is the time range of the endings and denials sections.
type window struct {
	Start, End time.Time
	// From and To are the UTC days asked for (empty: the default window).
	From, To string
}

// Custom reports whether a date range was asked for.
func (w window) Custom() bool { return w.From != "" }

// Phrase says the range in words, for hints and empty sections: "in the last
// 24 hours", "on 23 Nov 2026", "from 1 Nov 2026 to 23 Nov 2026".
func (w window) Phrase() string {
	switch {
	case !w.Custom():
		return "in the last " + spanWords(RecentWindow)
	case w.From == w.To:
		return "on " + dayLabel(w.From) + " (UTC)"
	}
	return "from " + dayLabel(w.From) + " to " + dayLabel(w.To) + " (UTC days)"
}

// Short is the range for the summary cards: "24 h", "23 Nov 2026",
// "1–23 Nov 2026", "20 Nov – 3 Dec 2026", "20 Dec 2025 – 3 Jan 2026".
func (w window) Short() string {
	switch {
	case !w.Custom():
		return strconv.Itoa(int(RecentWindow/time.Hour)) + " h"
	case w.From == w.To:
		return dayLabel(w.From)
	}
	f, err1 := time.Parse(dateLayout, w.From)
	t, err2 := time.Parse(dateLayout, w.To)
	switch {
	case err1 != nil || err2 != nil || f.Year() != t.Year():
		return dayLabel(w.From) + " – " + dayLabel(w.To)
	case f.Month() != t.Month():
		return f.Format("2 Jan") + " – " + t.Format("2 Jan 2006")
	}
	return f.Format("2") + "–" + t.Format("2 Jan 2006")
}

// Contains reports whether t falls in the window.
func (w window) Contains(t time.Time) bool {
	return !t.IsZero() && !t.Before(w.Start) && !t.After(w.End)
}

func dayLabel(d string) string {
	t, err := time.Parse(dateLayout, d)
	if err != nil {
		return d
	}
	return t.Format("2 Jan 2006")
}

func spanWords(d time.Duration) string {
	if d%(24*time.Hour) == 0 && d > 24*time.Hour {
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	}
	return strconv.Itoa(int(d/time.Hour)) + " hours"
}

// query is a validated query string.
type query struct {
	profile string
	search  string // q
	request string
	win     window
}

// self is the canonical address of the page the query asks for, relative
// ("?…"), without code: what the refresh reloads.
func (q query) self() string {
	v := url.Values{}
	switch {
	case q.request != "":
		v.Set("request", q.request)
	case q.search != "":
		v.Set("q", q.search)
		if q.profile != "" {
			v.Set("profile", q.profile)
		}
	default:
		if q.profile != "" {
			v.Set("profile", q.profile)
		}
		if q.win.Custom() {
			v.Set("from", q.win.From)
			v.Set("to", q.win.To)
		}
	}
	return "?" + v.Encode()
}

// parseQuery validates the query; msg is the 400 message when it is bad.
func (h *handler) parseQuery(raw string, now time.Time) (q query, msg string) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return q, "The query string cannot be read."
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !allowedParams[k] {
			return q, "Unknown query parameter " + strconv.Quote(clipRunes(k, 32)) + ". The dashboard understands profile, from, to, q and request."
		}
		if len(vals[k]) > 1 {
			return q, "Query parameter " + strconv.Quote(k) + " is given more than once."
		}
		if v := vals[k][0]; len(v) > 1024 || !utf8.ValidString(v) {
			return q, "The " + k + " parameter is too long or not valid text."
		}
	}
	get := func(k string) string { return strings.TrimSpace(vals.Get(k)) }
	q.profile, q.search, q.request = get("profile"), get("q"), get("request")
	from, to := get("from"), get("to")

	switch {
	case q.request != "" && (q.profile != "" || q.search != "" || from != "" || to != ""):
		return q, "The request parameter shows one request; it cannot be combined with profile, from, to or q."
	case q.search != "" && (from != "" || to != ""):
		return q, "A search (q) looks through all dates; it cannot be combined with from or to."
	case len(q.search) > MaxQueryLen:
		return q, "The search text is too long (at most " + strconv.Itoa(MaxQueryLen) + " characters)."
	}
	if q.profile != "" {
		if len(q.profile) > access.MaxProfileLen {
			return q, "The profile name is too long or not valid text."
		}
		if len(h.known) > 0 && !h.known[q.profile] {
			return q, "There is no profile named " + strconv.Quote(q.profile) + ". Known profiles: " + strings.Join(h.profiles, ", ") + "."
		}
	}
	q.win, msg = parseWindow(from, to, now)
	return q, msg
}

// parseWindow turns from and to (UTC days, YYYY-MM-DD, inclusive) into the
// endings' window. Neither: the last RecentWindow. Only from: up to now.
// Only to: that day. The window ends at now at the latest; to may be
// tomorrow (UTC) for a viewer ahead of UTC, not later.
func parseWindow(from, to string, now time.Time) (window, string) {
	if from == "" && to == "" {
		return window{Start: now.Add(-RecentWindow), End: now}, ""
	}
	today := now.UTC().Truncate(24 * time.Hour)
	day := func(name, s string) (time.Time, string) {
		t, err := time.Parse(dateLayout, s)
		if err != nil {
			return t, "The " + name + " date " + strconv.Quote(clipRunes(s, 32)) + " is not a date; use YYYY-MM-DD, e.g. " + today.Format(dateLayout) + "."
		}
		return t, ""
	}
	var f, t time.Time
	var msg string
	if from != "" {
		if f, msg = day("from", from); msg != "" {
			return window{}, msg
		}
	}
	if to != "" {
		if t, msg = day("to", to); msg != "" {
			return window{}, msg
		}
	}
	switch {
	case from == "":
		f = t
	case to == "":
		t = today
		if f.After(t) {
			t = f
		}
	}
	switch {
	case f.After(today.Add(24 * time.Hour)):
		return window{}, "The from date " + f.Format(dateLayout) + " lies in the future (today is " + today.Format(dateLayout) + " UTC)."
	case t.After(today.Add(24 * time.Hour)):
		return window{}, "The to date " + t.Format(dateLayout) + " lies in the future (today is " + today.Format(dateLayout) + " UTC)."
	case f.After(t):
		return window{}, "The from date " + f.Format(dateLayout) + " is after the to date " + t.Format(dateLayout) + "."
	case t.Sub(f) >= MaxRangeDays*24*time.Hour:
		return window{}, "The date range is longer than " + strconv.Itoa(MaxRangeDays) + " days; choose a shorter one."
	}
	w := window{Start: f, End: t.Add(24*time.Hour - time.Nanosecond), From: f.Format(dateLayout), To: t.Format(dateLayout)}
	if w.End.After(now) {
		w.End = now
	}
	return w, ""
}
