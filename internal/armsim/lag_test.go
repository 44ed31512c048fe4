package armsim

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/simkit"
)

const testLag = 5 * time.Second

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

// sees reports whether a principal-filtered listing shows name.
func (c *client) sees(scope, principal, name string) bool {
	c.t.Helper()
	return slices.Contains(c.listNames(scope, "principalId eq '"+principal+"'"), name)
}

func TestLagCreateSeenLate(t *testing.T) {
	s, c, clk := newLagSim(t, Options{})
	if a := c.put(cluster, nameA, fullRole, userA); a.status != 201 {
		t.Fatal(a.status)
	}
	// The truth, for writes and accessors, at once: the same PUT is a
	// repeat (200), another name a conflict (409).
	if !s.HasAssignment(cluster, roleAdmin, userA) {
		t.Fatal("accessor does not see the create")
	}
	if a := c.put(cluster, nameA, fullRole, userA); a.status != 200 {
		t.Fatalf("repeat: %d", a.status)
	}
	if a := c.put(cluster, nameB, fullRole, userA); a.status != 409 {
		t.Fatalf("duplicate: %d", a.status)
	}
	// Reads within the lag: some see it, some do not, and they go back.
	clk.Add(testLag / 2)
	got := simkit.Reads(40, func() bool { return c.sees(cluster, userA, nameA) })
	if simkit.Count(got, true) == 0 || simkit.Count(got, false) == 0 || !simkit.WentBack(got, true) {
		t.Fatalf("reads within the lag: %v", got)
	}
	// The single GET lags too.
	gets := simkit.Reads(40, func() bool { return c.must("GET", raPath(cluster, nameA), nil).status == 200 })
	if simkit.Count(gets, true) == 0 || simkit.Count(gets, false) == 0 {
		t.Fatalf("GETs within the lag: %v", gets)
	}
	// After the lag every read sees it.
	clk.Add(testLag / 2)
	if got := simkit.Reads(20, func() bool { return c.sees(cluster, userA, nameA) }); simkit.Count(got, true) != 20 {
		t.Fatalf("reads after the lag: %v", got)
	}
}

func TestLagDeleteSeenLate(t *testing.T) {
	s, c, clk := newLagSim(t, Options{})
	c.put(cluster, nameA, fullRole, userA)
	clk.Add(testLag)
	if a := c.must("DELETE", raPath(cluster, nameA), nil); a.status != 200 {
		t.Fatal(a.status)
	}
	if s.HasAssignment(cluster, roleAdmin, userA) {
		t.Fatal("accessor still sees it")
	}
	// The second DELETE answers on the truth: 204.
	if a := c.must("DELETE", raPath(cluster, nameA), nil); a.status != 204 {
		t.Fatalf("delete again: %d", a.status)
	}
	clk.Add(time.Second)
	got := simkit.Reads(40, func() bool { return c.sees(cluster, userA, nameA) })
	if simkit.Count(got, true) == 0 || simkit.Count(got, false) == 0 {
		t.Fatalf("reads within the lag: %v", got)
	}
	clk.Add(testLag)
	if got := simkit.Reads(20, func() bool { return c.sees(cluster, userA, nameA) }); simkit.Count(got, false) != 20 {
		t.Fatalf("reads after the lag: %v", got)
	}
}

func TestLagOutOfBandChanges(t *testing.T) {
	s, c, clk := newLagSim(t, Options{})
	// Someone else's assignment, then its removal: both lag for reads.
	n := s.AddAssignment(Assignment{Scope: cluster, RoleDefinitionID: roleAdmin, PrincipalID: userB})
	clk.Add(testLag / 2)
	got := simkit.Reads(40, func() bool { return c.sees(cluster, userB, n) })
	if simkit.Count(got, true) == 0 || simkit.Count(got, false) == 0 {
		t.Fatalf("add: %v", got)
	}
	clk.Add(testLag)
	s.RemoveAssignment(n)
	clk.Add(testLag / 2)
	got = simkit.Reads(40, func() bool { return c.sees(cluster, userB, n) })
	if simkit.Count(got, true) == 0 || simkit.Count(got, false) == 0 {
		t.Fatalf("remove: %v", got)
	}
}

func TestLagPagesReadOnTheirOwn(t *testing.T) {
	s, c, clk := newLagSim(t, Options{PageSize: 1})
	for i := range 4 {
		c.put(cluster, fmt.Sprintf("9d9d0000-0000-5000-8000-%012d", i), fullRole, fmt.Sprintf("0e0e0000-0000-4000-8000-%012d", i))
	}
	clk.Add(testLag / 2)
	// Each page is drawn on its own: listings within the lag vary in
	// length, and with no write since, never list a name twice.
	lengths := map[int]bool{}
	for range 30 {
		names := c.listNames(cluster, "atScope()")
		lengths[len(names)] = true
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				t.Fatalf("listed twice: %v", names)
			}
			seen[n] = true
		}
	}
	if len(lengths) < 2 {
		t.Fatalf("listing lengths %v", lengths)
	}
	clk.Add(testLag)
	if got := c.listNames(cluster, "atScope()"); len(got) != 4 {
		t.Fatalf("after the lag: %v", got)
	}
	_ = s
}

func TestLagSetup(t *testing.T) {
	clk := simkit.NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	s, c := newSim(t, Options{Now: clk.Now})
	// Changes made without a lag are seen by every read, also after the
	// lag is turned on.
	c.put(cluster, nameA, fullRole, userA)
	s.SetReplicaLag(testLag, 7)
	if s.ReplicaLag() != testLag {
		t.Fatal("ReplicaLag")
	}
	if got := simkit.Reads(20, func() bool { return c.sees(cluster, userA, nameA) }); simkit.Count(got, true) != 20 {
		t.Fatalf("old change: %v", got)
	}
	c.put(cluster, nameB, fullRole, userB)
	s.SetReplicaLag(0, 0)
	if got := simkit.Reads(20, func() bool { return c.sees(cluster, userB, nameB) }); simkit.Count(got, true) != 20 {
		t.Fatalf("lag off: %v", got)
	}
	// The same seed gives the same reads.
	run := func() []bool {
		s, c, clk := newLagSim(t, Options{ReplicaSeed: 9})
		c.put(cluster, nameA, fullRole, userA)
		clk.Add(testLag / 2)
		_ = s
		return simkit.Reads(20, func() bool { return c.sees(cluster, userA, nameA) })
	}
	if a, b := run(), run(); !slices.Equal(a, b) {
		t.Fatalf("seeded runs differ: %v %v", a, b)
	}
}
