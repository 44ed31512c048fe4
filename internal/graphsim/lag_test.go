package graphsim

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/seed"
	"github.com/jitaccess/jitaccess/internal/simkit"
)

const testLag = 5 * time.Second

// newLagSim is a seeded tenant on a fake clock whose membership reads lag
// by testLag.
func newLagSim(t *testing.T, opts Options) (*Sim, *client, *simkit.Clock) {
	t.Helper()
	clk := simkit.NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	opts.Now = clk.Now
	opts.ReplicaLag = testLag
	if opts.ReplicaSeed == 0 {
		opts.ReplicaSeed = 42
	}
	s, c := newSim(t, opts)
	return s, c, clk
}

// memberOf asks checkMemberGroups whether user is in group.
func memberOf(c *client, user, group string) bool {
	c.t.Helper()
	a := c.must("POST", "/users/"+user+"/checkMemberGroups", jsonBody(map[string]any{"groupIds": []string{group}}))
	if a.status != 200 {
		c.t.Fatalf("checkMemberGroups: %d %v", a.status, a.body)
	}
	return len(a.body["value"].([]any)) == 1
}

func TestLagAddSeenLate(t *testing.T) {
	s, c, clk := newLagSim(t, Options{})
	g, u := seed.GroupAKSOps, seed.UserX01

	if a := c.must("POST", "/groups/"+g+"/members/$ref", refBody(u)); a.status != 204 {
		t.Fatalf("add: %d %v", a.status, a.body)
	}
	// The truth, for writes and the test's accessors, right away.
	if !s.IsDirectMember(g, u) || !s.IsTransitiveMember(g, u) || !slices.Contains(s.Members(g), u) {
		t.Fatal("accessors do not see the add")
	}
	if a := c.must("POST", "/groups/"+g+"/members/$ref", refBody(u)); a.status != 400 || a.errMsg() != MsgAlreadyExists {
		t.Fatalf("second add under lag: %d %v", a.status, a.body)
	}
	// At the moment of the add, no replica has it yet.
	if got := simkit.Reads(20, func() bool { return memberOf(c, u, g) }); simkit.Count(got, true) != 0 {
		t.Fatalf("reads at the add saw it: %v", got)
	}
	// Halfway through the lag, some replicas have it and some do not, and
	// reads in a row can go back in time.
	clk.Add(testLag / 2)
	got := simkit.Reads(40, func() bool { return memberOf(c, u, g) })
	if simkit.Count(got, true) == 0 || simkit.Count(got, false) == 0 || !simkit.WentBack(got, true) {
		t.Fatalf("halfway: %v", got)
	}
	// Once the lag has passed, every read sees it.
	clk.Add(testLag / 2)
	if got := simkit.Reads(40, func() bool { return memberOf(c, u, g) }); simkit.Count(got, false) != 0 {
		t.Fatalf("after the lag: %v", got)
	}
}

func TestLagRemoveSeenLate(t *testing.T) {
	s, c, clk := newLagSim(t, Options{})
	g, u := seed.GroupAKSDefault, seed.UserN01

	if a := c.must("DELETE", "/groups/"+g+"/members/"+u+"/$ref", nil); a.status != 204 {
		t.Fatalf("remove: %d %v", a.status, a.body)
	}
	if s.IsDirectMember(g, u) {
		t.Fatal("accessor still sees the member")
	}
	if a := c.must("DELETE", "/groups/"+g+"/members/"+u+"/$ref", nil); a.status != 404 || a.errMsg() != MsgRemovedNotExist {
		t.Fatalf("second remove under lag: %d %v", a.status, a.body)
	}
	// A read that predates the removal still shows the member.
	if got := simkit.Reads(20, func() bool { return memberOf(c, u, g) }); simkit.Count(got, false) != 0 {
		t.Fatalf("reads at the removal: %v", got)
	}
	clk.Add(testLag / 2)
	got := simkit.Reads(40, func() bool { return memberOf(c, u, g) })
	if simkit.Count(got, true) == 0 || simkit.Count(got, false) == 0 || !simkit.WentBack(got, false) {
		t.Fatalf("halfway: %v", got)
	}
	clk.Add(testLag / 2)
	if got := simkit.Reads(40, func() bool { return memberOf(c, u, g) }); simkit.Count(got, true) != 0 {
		t.Fatalf("after the lag: %v", got)
	}
	// Adding back right away is answered from the truth too.
	if a := c.must("POST", "/groups/"+g+"/members/$ref", refBody(u)); a.status != 204 {
		t.Fatalf("add back: %d %v", a.status, a.body)
	}
}

// An administrator's change (the test's own AddMember / RemoveMember) lags
// as well, and nested groups are evaluated as of the read's moment.
func TestLagNestedAndAdminChanges(t *testing.T) {
	s, c, clk := newLagSim(t, Options{})
	// p02 is in aks-approvers through approvers-nested only.
	if !s.RemoveMember(seed.GroupAKSApprovers, seed.GroupNestedApprovers) {
		t.Fatal("remove nested")
	}
	if s.IsTransitiveMember(seed.GroupAKSApprovers, seed.UserP02) {
		t.Fatal("accessor sees the nested membership")
	}
	if !memberOf(c, seed.UserP02, seed.GroupAKSApprovers) {
		t.Fatal("a read at the removal of the nested group already misses it")
	}
	// x01 joins approvers-nested: aks-approvers through the nested group
	// (removed meanwhile) as of some moments only.
	clk.Add(time.Second)
	if !s.AddMember(seed.GroupAKSApprovers, seed.GroupNestedApprovers) || !s.AddMember(seed.GroupNestedApprovers, seed.UserX01) {
		t.Fatal("add")
	}
	clk.Add(testLag / 2)
	got := simkit.Reads(60, func() bool { return memberOf(c, seed.UserP02, seed.GroupAKSApprovers) })
	if simkit.Count(got, true) == 0 || simkit.Count(got, false) == 0 {
		t.Fatalf("p02 halfway: %v", got)
	}
	got = simkit.Reads(60, func() bool { return memberOf(c, seed.UserX01, seed.GroupAKSApprovers) })
	if simkit.Count(got, true) == 0 || simkit.Count(got, false) == 0 {
		t.Fatalf("x01 halfway: %v", got)
	}
	clk.Add(testLag)
	if !memberOf(c, seed.UserP02, seed.GroupAKSApprovers) || !memberOf(c, seed.UserX01, seed.GroupAKSApprovers) {
		t.Fatal("after the lag")
	}
}

// listAll reads every page of the group's direct members.
func listAll(c *client, group string) []string {
	c.t.Helper()
	var got []string
	next := c.base + "/groups/" + group + "/members?$select=id"
	for next != "" {
		c2 := *c
		c2.base = ""
		a := c2.must("GET", next, nil)
		if a.status != 200 {
			c.t.Fatalf("page: %d %v", a.status, a.body)
		}
		for _, v := range a.body["value"].([]any) {
			got = append(got, v.(map[string]any)["id"].(string))
		}
		next, _ = a.body["@odata.nextLink"].(string)
	}
	return got
}

// Each page is read from its own replica: a listing under lag may miss or
// show the members that changed within the lag, but never repeats one,
// stays sorted, and always shows those that did not change.
func TestLagMembersPaging(t *testing.T) {
	s, c, clk := newLagSim(t, Options{PageSize: 2})
	g := seed.GroupAKSDefault
	stable := s.Members(g)                                        // n01, d01, g01, s01, a01, default-nested
	changed := []string{seed.UserX01, seed.UserP01, seed.UserP03} // added now
	for _, u := range changed {
		if a := c.must("POST", "/groups/"+g+"/members/$ref", refBody(u)); a.status != 204 {
			t.Fatalf("add %s: %d", u, a.status)
		}
	}
	removed := seed.UserA01
	if a := c.must("DELETE", "/groups/"+g+"/members/"+removed+"/$ref", nil); a.status != 204 {
		t.Fatal("remove")
	}
	stable = slices.DeleteFunc(stable, func(m string) bool { return m == removed })
	changed = append(changed, removed)

	clk.Add(testLag / 2)
	shapes := map[string]bool{}
	for range 30 {
		got := listAll(c, g)
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("listing not sorted or repeats: %v", got)
		}
		for _, m := range stable {
			if !slices.Contains(got, m) {
				t.Fatalf("stable member %s missing: %v", m, got)
			}
		}
		for _, m := range got {
			if !slices.Contains(stable, m) && !slices.Contains(changed, m) {
				t.Fatalf("unknown member %s", m)
			}
		}
		shapes[strings.Join(got, ",")] = true
	}
	if len(shapes) < 2 {
		t.Fatalf("every listing alike under lag: %v", shapes)
	}
	clk.Add(testLag / 2)
	for range 10 {
		if got, want := listAll(c, g), s.Members(g); !slices.Equal(got, want) {
			t.Fatalf("after the lag: %v want %v", got, want)
		}
	}
}

func TestLagPIMInstances(t *testing.T) {
	s, c, clk := newLagSim(t, Options{})
	c.token = fakeJWT(testAppID, testOID)
	g, u := seed.GroupAKSOps, seed.UserN01
	s.SetPIMPolicy(g, PIMPolicy{MaxDuration: time.Hour})
	has := func() bool { return len(instances(c, g, u)) == 1 }

	if a := c.must("POST", pimReqs, assignBody(g, u, "PT30M", "x")); a.status != 201 {
		t.Fatalf("assign: %d %v", a.status, a.body)
	}
	if a := c.must("POST", pimReqs, assignBody(g, u, "PT30M", "x")); a.status != 400 || a.errCode() != "RoleAssignmentExists" {
		t.Fatalf("second assign under lag: %d %v", a.status, a.body)
	}
	if len(s.PIMAssignments()) != 1 {
		t.Fatal("accessor does not see the assignment")
	}
	if got := simkit.Reads(10, has); simkit.Count(got, true) != 0 {
		t.Fatalf("instances at the assignment: %v", got)
	}
	clk.Add(testLag / 2)
	if got := simkit.Reads(40, has); simkit.Count(got, true) == 0 || simkit.Count(got, false) == 0 {
		t.Fatalf("instances halfway: %v", got)
	}
	clk.Add(testLag / 2)
	if got := simkit.Reads(20, has); simkit.Count(got, false) != 0 {
		t.Fatalf("instances after the lag: %v", got)
	}

	rm := jsonBody(map[string]any{"action": "adminRemove", "accessId": "member", "principalId": u, "groupId": g})
	if a := c.must("POST", pimReqs, rm); a.status != 201 {
		t.Fatalf("remove: %d %v", a.status, a.body)
	}
	if a := c.must("POST", pimReqs, rm); a.status != 400 || a.errCode() != "RoleAssignmentDoesNotExist" {
		t.Fatalf("second remove under lag: %d %v", a.status, a.body)
	}
	if got := simkit.Reads(10, has); simkit.Count(got, false) != 0 {
		t.Fatalf("instances at the removal: %v", got)
	}
	clk.Add(testLag / 2)
	if got := simkit.Reads(40, has); simkit.Count(got, true) == 0 || simkit.Count(got, false) == 0 {
		t.Fatalf("instances halfway: %v", got)
	}
	clk.Add(testLag / 2)
	if got := simkit.Reads(20, has); simkit.Count(got, true) != 0 {
		t.Fatalf("instances after the lag: %v", got)
	}

	// PIM's own end (ExpirePIM) lags the same way.
	if a := c.must("POST", pimReqs, assignBody(g, u, "PT10M", "x")); a.status != 201 {
		t.Fatal("assign again")
	}
	clk.Add(testLag)
	if !has() {
		t.Fatal("assignment not seen after the lag")
	}
	clk.Add(10*time.Minute - testLag)
	if s.ExpirePIM(clk.Now()) != 1 || s.IsDirectMember(g, u) {
		t.Fatal("expire")
	}
	if got := simkit.Reads(10, has); simkit.Count(got, false) != 0 {
		t.Fatalf("instances at the end: %v", got)
	}
	if got := simkit.Reads(10, func() bool { return memberOf(c, u, g) }); simkit.Count(got, false) != 0 {
		t.Fatalf("membership at the end: %v", got)
	}
	clk.Add(testLag)
	if has() || memberOf(c, u, g) {
		t.Fatal("end not seen after the lag")
	}
}

// The seed tenant and changes made before the lag was set are visible to
// every read; lag 0 is the truth again; the same seed draws the same
// moments; the log forgets what every read already sees.
func TestLagSetup(t *testing.T) {
	s, c, clk := newLagSim(t, Options{})
	if !memberOf(c, seed.UserN01, seed.GroupAKSDefault) || !memberOf(c, seed.UserN02, seed.GroupAKSDefault) {
		t.Fatal("seed tenant not visible under lag")
	}
	if s.ReplicaLag() != testLag {
		t.Fatalf("ReplicaLag %v", s.ReplicaLag())
	}

	s.SetReplicaLag(0, 0)
	s.AddMember(seed.GroupAKSOps, seed.UserX01)
	if !memberOf(c, seed.UserX01, seed.GroupAKSOps) {
		t.Fatal("lag 0 read misses the add")
	}
	s.SetReplicaLag(testLag, 7)
	if !memberOf(c, seed.UserX01, seed.GroupAKSOps) {
		t.Fatal("change made before the lag was set not visible")
	}

	// Same seed, same calls → same answers.
	run := func(seedValue int64) string {
		s2, c2, clk2 := newLagSim(t, Options{ReplicaSeed: seedValue})
		s2.AddMember(seed.GroupAKSOps, seed.UserX01)
		clk2.Add(testLag / 2)
		return fmt.Sprint(simkit.Reads(30, func() bool { return memberOf(c2, seed.UserX01, seed.GroupAKSOps) }))
	}
	if a, b := run(3), run(3); a != b {
		t.Fatalf("same seed differs:\n%s\n%s", a, b)
	}
	if a, b := run(3), run(4); a == b {
		t.Fatalf("different seeds alike: %s", a)
	}

	for range 100 {
		s.RemoveMember(seed.GroupAKSOps, seed.UserX01)
		s.AddMember(seed.GroupAKSOps, seed.UserX01)
		clk.Add(testLag / 10)
	}
	s.mu.Lock()
	n := s.rep.Len()
	s.mu.Unlock()
	if n > 2*10+2 {
		t.Fatalf("log holds %d entries, more than the lag's", n)
	}
}
