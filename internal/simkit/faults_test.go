package simkit

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestParseMatch(t *testing.T) {
	tests := []struct {
		match, method, path string
	}{
		{"", "", ""},
		{"*", "", ""},
		{"get", "GET", ""},
		{" DELETE ", "DELETE", ""},
		{"PUT /roleAssignments/", "PUT", "/roleassignments/"},
		{"post /users/X/checkMemberGroups", "POST", "/users/x/checkmembergroups"},
		{"* /Members/$ref", "", "/members/$ref"},
		{"/members/$ref", "", "/members/$ref"},
		{"PATCH  /a b ", "PATCH", "/a b"},
		{"FETCH /x", "", "fetch /x"}, // not a method: all of it is the path
	}
	for _, tc := range tests {
		m, p := ParseMatch(tc.match)
		if m != tc.method || p != tc.path {
			t.Errorf("ParseMatch(%q) = %q, %q; want %q, %q", tc.match, m, p, tc.method, tc.path)
		}
	}
}

// call is one call made against Faults and what it met.
type call struct {
	method, path string
	delay        time.Duration
	kind         string // "" when no rule hit
	status       int
}

func TestFaultsPick(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *Faults)
		calls []call
	}{
		{
			name:  "none",
			setup: func(f *Faults) {},
			calls: []call{{method: "GET", path: "/a"}},
		},
		{
			name: "n uses, then gone",
			setup: func(f *Faults) {
				f.Add("PUT", 2, Rule{Kind: FaultFail, Status: 503})
			},
			calls: []call{
				{method: "GET", path: "/a"},
				{method: "PUT", path: "/a", kind: FaultFail, status: 503},
				{method: "PUT", path: "/b", kind: FaultFail, status: 503},
				{method: "PUT", path: "/c"},
			},
		},
		{
			name: "forever, path case-insensitive",
			setup: func(f *Faults) {
				f.Add("/Members/", -1, Rule{Kind: FaultReset})
			},
			calls: []call{
				{method: "POST", path: "/groups/g/members/$ref", kind: FaultReset},
				{method: "DELETE", path: "/groups/g/MEMBERS/u/$ref", kind: FaultReset},
				{method: "GET", path: "/groups/g", kind: ""},
				{method: "GET", path: "/groups/g/members", kind: ""}, // no "/members/" in it
			},
		},
		{
			name: "first added first; the second waits its turn",
			setup: func(f *Faults) {
				f.Add("", 1, Rule{Kind: FaultFail, Status: 429})
				f.Add("GET", 1, Rule{Kind: FaultLose, Status: 500})
			},
			calls: []call{
				{method: "GET", path: "/a", kind: FaultFail, status: 429},
				{method: "GET", path: "/a", kind: FaultLose, status: 500},
				{method: "GET", path: "/a"},
			},
		},
		{
			name: "delays: the longest, alongside a rule",
			setup: func(f *Faults) {
				f.Delay("GET", time.Second)
				f.Delay("/slow", 3*time.Second)
				f.Add("GET /slow", 1, Rule{Kind: FaultFail, Status: 500})
			},
			calls: []call{
				{method: "GET", path: "/slow", delay: 3 * time.Second, kind: FaultFail, status: 500},
				{method: "GET", path: "/slow", delay: 3 * time.Second},
				{method: "GET", path: "/fast", delay: time.Second},
				{method: "PUT", path: "/fast"},
			},
		},
		{
			name: "a later delay for the same match replaces it; 0 removes it",
			setup: func(f *Faults) {
				f.Delay("get /a", time.Second)
				f.Delay("GET /A", 2*time.Second)
				f.Delay("/b", time.Second)
				f.Delay("/b", 0)
			},
			calls: []call{
				{method: "GET", path: "/a", delay: 2 * time.Second},
				{method: "GET", path: "/b"},
			},
		},
		{
			name: "clear",
			setup: func(f *Faults) {
				f.Add("", -1, Rule{Kind: FaultFail, Status: 500})
				f.Delay("", time.Second)
				f.Clear()
			},
			calls: []call{{method: "GET", path: "/a"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f Faults
			tc.setup(&f)
			for i, c := range tc.calls {
				d, hit := f.Pick(c.method, c.path)
				kind, status := "", 0
				if hit != nil {
					kind, status = hit.Kind, hit.Status
				}
				if d != c.delay || kind != c.kind || status != c.status {
					t.Errorf("call %d %s %s: delay %v, %q %d; want %v, %q %d", i, c.method, c.path, d, kind, status, c.delay, c.kind, c.status)
				}
			}
		})
	}
}

// Pick hands out a copy: a caller changing it changes no rule.
func TestFaultsPickCopies(t *testing.T) {
	var f Faults
	f.Add("", 2, Rule{Kind: FaultFail, Status: 500, Code: "c", Message: "m", RetryAfter: time.Second})
	_, hit := f.Pick("GET", "/")
	if hit.Code != "c" || hit.Message != "m" || hit.RetryAfter != time.Second {
		t.Fatalf("hit %+v", hit)
	}
	hit.Status = 200
	if _, again := f.Pick("GET", "/"); again == nil || again.Status != 500 {
		t.Fatalf("second hit %+v", again)
	}
}

func TestResetConn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ResetConn(w) }))
	defer srv.Close()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("an answer: %d", resp.StatusCode)
	}
}
