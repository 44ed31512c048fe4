package dashboard

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

func TestNewCause(t *testing.T) {
	for detail, want := range map[string]struct {
		text string
		ids  []string
	}{
		access.DetailKeptPrefix + "req-a":                         {access.DetailKeptPrefix, []string{"req-a"}},
		access.DetailKeptPrefix + "req-a, pim-b":                  {access.DetailKeptPrefix, []string{"req-a", "pim-b"}},
		"membership already held through grant req-c":             {"membership already held through grant ", []string{"req-c"}},
		"membership already held through jitaccess's grant req-d": {"membership already held through jitaccess's grant ", []string{"req-d"}},
		access.DetailKeptHadBefore:                                {access.DetailKeptHadBefore, nil},
		access.DetailKeptPrefix:                                   {strings.TrimSpace(access.DetailKeptPrefix), nil},
		access.DetailKeptPrefix + "<b>x</b>":                      {access.DetailKeptPrefix + "<b>x</b>", nil},
		access.DetailKeptPrefix + "req-a, not an id":              {access.DetailKeptPrefix + "req-a, not an id", nil},
		"  " + access.DetailNothingAdded + "\n":                   {access.DetailNothingAdded, nil},
		"":                                                        {"", nil},
		"a\xffb":                                                  {"a\uFFFDb", nil},
	} {
		c := newCause(detail)
		var ids []string
		for _, r := range c.IDs {
			ids = append(ids, r.ID)
		}
		if c.Text != want.text || !slices.Equal(ids, want.ids) {
			t.Errorf("%q: %q %v, want %q %v", detail, c.Text, ids, want.text, want.ids)
		}
		if detail != "" && c.String() == "" {
			t.Errorf("%q: empty String", detail)
		}
	}
	if !newCause("").Empty() || newCause("x").Empty() {
		t.Error("Empty")
	}
}

func TestSessionsOf(t *testing.T) {
	at := now0.Add(-time.Hour)
	ended := func(mut func(r *access.Request)) *access.Request {
		r := &access.Request{ID: "r", State: access.Expired, ActivatedAt: at.Add(-time.Hour), EndedAt: at, RevokeSessionsOnEnd: true,
			History: []access.HistoryEntry{hist(at, access.HExpired, access.System, "")}}
		if mut != nil {
			mut(r)
		}
		return r
	}
	add := func(typ, detail string) func(r *access.Request) {
		return func(r *access.Request) { r.History = append(r.History, hist(at, typ, access.System, detail)) }
	}
	for name, tc := range map[string]struct {
		r     *access.Request
		text  string
		cause string
	}{
		"revoked":        {ended(add(access.HSessionsRevoked, "")), "revoked", ""},
		"timed out":      {&access.Request{State: access.TimedOut, RevokeSessionsOnEnd: true}, "—", ""},
		"never active":   {&access.Request{State: access.Cancelled, RevokeSessionsOnEnd: true}, "—", ""},
		"profile":        {ended(func(r *access.Request) { r.RevokeSessionsOnEnd = false }), "not revoked (profile does not ask)", ""},
		"active":         {&access.Request{State: access.Active, ActivatedAt: at, RevokeSessionsOnEnd: true}, "to be revoked when the grant ends", ""},
		"activating":     {&access.Request{State: access.Activating, RevokeSessionsOnEnd: true}, "to be revoked when the grant ends", ""},
		"removed":        {ended(add(access.HMembershipRemoved, "")), "not revoked yet", ""},
		"ending":         {ended(func(r *access.Request) { r.State = access.Ending }), "not revoked yet", ""},
		"kept":           {ended(add(access.HNote, access.DetailKeptPrefix+"req-2")), "not needed", access.DetailKeptPrefix + "req-2"},
		"had it before":  {ended(add(access.HNote, access.DetailKeptHadBefore)), "not needed", access.DetailKeptHadBefore},
		"nothing added":  {ended(add(access.HNote, access.DetailNothingAdded)), "not needed", access.DetailNothingAdded},
		"pim note":       {ended(func(r *access.Request) { r.PIMNote = "the assignment already existed" }), "not needed", "the assignment already existed"},
		"azure-role":     {ended(func(r *access.Request) { r.Activation = access.ActivationAzureRole }), "not needed", "no role assignment was removed"},
		"no explanation": {ended(nil), "not needed", "no membership was removed"},
		// The newest note wins: the end's, not the activation's.
		"newest note": {ended(func(r *access.Request) {
			r.History = append([]access.HistoryEntry{hist(at, access.HNote, access.System, "membership already held through grant req-1")},
				append(r.History, hist(at, access.HNote, access.System, access.DetailKeptPrefix+"req-1"))...)
		}), "not needed", access.DetailKeptPrefix + "req-1"},
	} {
		s := sessionsOf(tc.r)
		if s.Text != tc.text || s.Cause.String() != tc.cause {
			t.Errorf("%s: %q (%q), want %q (%q)", name, s.Text, s.Cause.String(), tc.text, tc.cause)
		}
	}
}

// Where a row says sessions were not needed, it says why: the cause the
// history records, with the grants it names linked.
func TestEndingsShowTheCause(t *testing.T) {
	_, body := get(t, newTestHandler(seed(now0)), "/api/dashboard")
	ends := sectionHTML(t, body, "endings")
	mustContain(t, "endings", ends,
		`<td>not needed<span class="cause">membership kept: still granted by <a href="?request=req-active-xss">req-active-xss</a></span></td>`)
	mustNotContain(t, "endings", ends, "not needed (no membership removed)")
}
