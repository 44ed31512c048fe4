package dashboard

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

func day(s string) time.Time {
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseWindow(t *testing.T) {
	// now0 is 2026-11-23 10:00 UTC.
	for _, tc := range []struct {
		from, to   string
		start, end time.Time
		msg        string
	}{
		{"", "", now0.Add(-RecentWindow), now0, ""},
		{"2026-11-20", "2026-11-21", day("2026-11-20"), day("2026-11-22").Add(-time.Nanosecond), ""},
		{"2026-11-20", "2026-11-23", day("2026-11-20"), now0, ""},                          // today: up to now
		{"2026-11-20", "", day("2026-11-20"), now0, ""},                                    // from only: up to now
		{"", "2026-11-02", day("2026-11-02"), day("2026-11-03").Add(-time.Nanosecond), ""}, // to only: that day
		{"2026-11-23", "2026-11-24", day("2026-11-23"), now0, ""},                          // tomorrow is allowed (viewers ahead of UTC)
		{"2026-08-24", "2026-11-23", day("2026-08-24"), now0, ""},                          // 92 days
		{"2026-08-23", "2026-11-23", time.Time{}, time.Time{}, "longer than 92 days"},
		{"0001-01-01", "", time.Time{}, time.Time{}, "longer than 92 days"},
		{"2026-11-22", "2026-11-21", time.Time{}, time.Time{}, "The from date 2026-11-22 is after the to date 2026-11-21."},
		{"2026-11-20", "2026-11-25", time.Time{}, time.Time{}, "The to date 2026-11-25 lies in the future (today is 2026-11-23 UTC)."},
		{"2026-11-25", "", time.Time{}, time.Time{}, "The from date 2026-11-25 lies in the future"},
		{"23.11.2026", "", time.Time{}, time.Time{}, `The from date "23.11.2026" is not a date; use YYYY-MM-DD, e.g. 2026-11-23.`},
		{"", "2026-02-30", time.Time{}, time.Time{}, `The to date "2026-02-30" is not a date`},
		{"2026-11-20T00:00:00Z", "", time.Time{}, time.Time{}, "is not a date"},
	} {
		name := tc.from + ".." + tc.to
		w, msg := parseWindow(tc.from, tc.to, now0)
		if tc.msg != "" {
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("%s: message %q, want %q", name, msg, tc.msg)
			}
			continue
		}
		if msg != "" || !w.Start.Equal(tc.start) || !w.End.Equal(tc.end) {
			t.Errorf("%s: [%v, %v] %q, want [%v, %v]", name, w.Start, w.End, msg, tc.start, tc.end)
		}
		if w.Custom() != (tc.from != "" || tc.to != "") {
			t.Errorf("%s: custom %v", name, w.Custom())
		}
	}
}

func TestWindowWords(t *testing.T) {
	for _, tc := range []struct{ from, to, phrase, short string }{
		{"", "", "in the last 24 hours", "24 h"},
		{"2026-11-20", "2026-11-20", "on 20 Nov 2026 (UTC)", "20 Nov 2026"},
		{"2026-11-01", "2026-11-23", "from 1 Nov 2026 to 23 Nov 2026 (UTC days)", "1–23 Nov 2026"},
		{"2026-10-20", "2026-11-03", "from 20 Oct 2026 to 3 Nov 2026 (UTC days)", "20 Oct – 3 Nov 2026"},
		{"2025-12-20", "2026-01-03", "from 20 Dec 2025 to 3 Jan 2026 (UTC days)", "20 Dec 2025 – 3 Jan 2026"},
	} {
		w, msg := parseWindow(tc.from, tc.to, now0)
		if msg != "" {
			t.Fatal(msg)
		}
		if w.Phrase() != tc.phrase || w.Short() != tc.short {
			t.Errorf("%s..%s: %q / %q", tc.from, tc.to, w.Phrase(), w.Short())
		}
	}
	w, _ := parseWindow("2026-11-20", "2026-11-21", now0)
	for at, in := range map[time.Time]bool{
		day("2026-11-20"): true, day("2026-11-22").Add(-time.Second): true, day("2026-11-22"): false,
		day("2026-11-20").Add(-time.Second): false, {}: false,
	} {
		if w.Contains(at) != in {
			t.Errorf("Contains(%v) = %v", at, !in)
		}
	}
}

func TestQueryCombinations(t *testing.T) {
	h := newTestHandler(seed(now0))
	for _, tc := range []struct {
		target string
		status int
		want   string
	}{
		{"/api/dashboard?request=req-kept&profile=aks-admin", 400, "cannot be combined with profile, from, to or q"},
		{"/api/dashboard?request=req-kept&q=x", 400, "cannot be combined"},
		{"/api/dashboard?q=x&from=2026-11-20", 400, "A search (q) looks through all dates"},
		{"/api/dashboard?q=" + strings.Repeat("a", MaxQueryLen+1), 400, "The search text is too long"},
		{"/api/dashboard?q=a&q=b", 400, "given more than once"},
		{"/api/dashboard?from=nope", 400, "is not a date; use YYYY-MM-DD"},
		{"/api/dashboard?from=2026-11-22&to=2026-11-01", 400, "is after the to date"},
		{"/api/dashboard?to=2030-01-01", 400, "lies in the future"},
		{"/api/dashboard?q=%ff", 400, "not valid text"},
		{"/api/dashboard?state=active", 400, "The dashboard understands profile, from, to, q and request."},
		// Empty values are absent (an empty form submits them so).
		{"/api/dashboard?profile=&from=&to=", 200, "Recent endings"},
		{"/api/dashboard?q=", 200, "Recent endings"},
		{"/api/dashboard?request=", 200, "Recent endings"},
		{"/api/dashboard?q=INC-42&profile=aks-admin", 200, "Requests matching"},
	} {
		rec, body := get(t, h, tc.target)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.target, rec.Code, tc.status)
		}
		mustContain(t, tc.target, body, tc.want)
		if tc.status == 400 {
			mustContain(t, tc.target, body, `<a href="?">Show the dashboard</a>`)
		}
	}
}

func TestSelf(t *testing.T) {
	w, _ := parseWindow("2026-11-20", "", now0)
	for _, tc := range []struct {
		q    query
		want string
	}{
		{query{}, "?"},
		{query{profile: "aks-admin"}, "?profile=aks-admin"},
		{query{profile: "a b&c", win: w}, "?from=2026-11-20&profile=a+b%26c&to=2026-11-23"},
		{query{search: "n01@contoso.example", profile: "aks-admin"}, "?profile=aks-admin&q=n01%40contoso.example"},
		{query{request: "req-1"}, "?request=req-1"},
	} {
		if got := tc.q.self(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.q, got, tc.want)
		}
	}
}

// The endings and denials follow the date range; the listings of ended
// states then read up to RangePages pages, and say when more remain.
func TestDateRange(t *testing.T) {
	store := seed(now0)
	h := newTestHandler(store)
	rec, body := get(t, h, "/api/dashboard?from=2026-11-20&to=2026-11-20")
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, body)
	}
	ends := sectionHTML(t, body, "endings")
	mustContain(t, "endings", ends, "old-expiry@contoso.example", "Endings <span", "on 20 Nov 2026 (UTC)")
	mustNotContain(t, "endings", ends, "hank@", "ivan@", "Recent endings")
	mustContain(t, "denied", sectionHTML(t, body, "denied"), "Nothing was denied or rejected on 20 Nov 2026 (UTC).")
	mustContain(t, "cards", body, `<span class="n">1</span><span class="l">Ended (20 Nov 2026)</span>`,
		`<span class="n">0</span><span class="l">Denied / rejected (20 Nov 2026)</span>`)
	mustContain(t, "form", body, `<input type="date" id="from" name="from" value="2026-11-20">`,
		`<input type="date" id="to" name="to" value="2026-11-20">`, `<a href="?">Reset</a>`,
		`<meta http-equiv="refresh" content="15; url=?from=2026-11-20&amp;to=2026-11-20">`)
	// Active grants and the rest do not depend on the range.
	mustContain(t, "active", sectionHTML(t, body, "active"), "dave-oncall@contoso.example")

	// Paging: 3 pages of expired requests, each ended on the 20th.
	store = &fakeLister{}
	for i := range 2*ListLimit + 10 {
		store.reqs = append(store.reqs, &access.Request{ID: fmt.Sprintf("x%04d", i), State: access.Expired, Requester: "u",
			Profile: "aks-admin", ActivatedAt: day("2026-11-20"), EndedAt: day("2026-11-20").Add(time.Duration(i) * time.Second)})
	}
	h = newTestHandler(store)
	_, body = get(t, h, "/api/dashboard?from=2026-11-20&to=2026-11-21")
	mustContain(t, "paged", body, fmt.Sprintf(`<span class="n">%d</span><span class="l">Ended (20–21 Nov 2026)</span>`, 2*ListLimit+10))
	mustNotContain(t, "paged", sectionHTML(t, body, "endings"), `class="more"`)
	expired := 0
	for _, f := range store.seen() {
		if f.State == access.Expired {
			expired++
		}
	}
	if expired != 3 {
		t.Errorf("%d listings of expired, want 3 pages", expired)
	}
	// The default view reads one page per state, and says that it had more.
	store.filters = nil
	_, body = get(t, h, "/api/dashboard")
	if n := len(store.seen()); n != len(listedStates) {
		t.Errorf("default view: %d listings, want %d", n, len(listedStates))
	}
	// Beyond RangePages pages the section says so, with the bound.
	for i := range RangePages * ListLimit {
		store.reqs = append(store.reqs, &access.Request{ID: fmt.Sprintf("y%04d", i), State: access.Expired, Requester: "u",
			Profile: "aks-admin", EndedAt: day("2026-11-21")})
	}
	_, body = get(t, h, "/api/dashboard?from=2026-11-20&to=2026-11-21")
	mustContain(t, "bounded", sectionHTML(t, body, "endings"), fmt.Sprintf("had more than %d requests", RangePages*ListLimit))
}
