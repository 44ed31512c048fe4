package proof

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
)

// World is what one run left behind.
type World struct {
	Store broker.Store
	Dir   *brokertest.Dir
	// Requests are the ids of every request the run made.
	Requests []string
	// Targets are the profiles' target groups; Users the requesters.
	Targets []string
	Users   []string
	// PreExisting are (group, user) memberships that existed before the run.
	PreExisting map[[2]string]bool
	// RevokeOnEnd is the profiles' revokeSessionsOnEnd (all profiles alike).
	RevokeOnEnd bool
	// Settled: no Graph work may be in flight any more (after final sweeps).
	Settled bool
}

// Report is what the checker found.
type Report struct {
	Violations []string
	// Counts, for the figures in RELIABILITY.md.
	Requests, Adds, Removes, Revocations int
	States                               map[access.State]int
}

func (r *Report) fail(format string, a ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, a...))
}

// OK reports whether no rule was broken.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

func (r *Report) String() string {
	if r.OK() {
		return fmt.Sprintf("ok: %d requests %v, %d adds, %d removes, %d revocations", r.Requests, r.States, r.Adds, r.Removes, r.Revocations)
	}
	return fmt.Sprintf("%d violations:\n  %s", len(r.Violations), strings.Join(r.Violations, "\n  "))
}

// Check compares the store, the tenant and the histories.
func Check(ctx context.Context, w World) *Report {
	rep := &Report{States: map[access.State]int{}}
	isTarget := map[string]bool{}
	for _, g := range w.Targets {
		isTarget[strings.ToLower(g)] = true
	}
	type key = [2]string
	active := map[key][]string{} // requests holding (group, user)
	added := map[key]int{}       // membership-added entries
	removed := map[key]int{}     // membership-removed entries
	revokedEntries := map[string]int{}
	for _, id := range w.Requests {
		r, err := w.Store.GetRequest(ctx, id)
		if err != nil {
			rep.fail("request %s: %v", id, err)
			continue
		}
		rep.Requests++
		rep.States[r.State]++
		k := key{strings.ToLower(r.GroupID), strings.ToLower(r.Requester)}
		if r.GroupID != "" && !isTarget[k[0]] {
			rep.fail("request %s names group %s, which is no profile's target", id, r.GroupID)
		}
		if w.Settled && (r.State == access.Activating || r.State == access.Ending || r.Work != nil) {
			rep.fail("request %s still in flight (%s, work %+v) after the final sweeps", id, r.State, r.Work)
		}
		if r.State == access.Awaiting {
			rep.fail("request %s awaiting: a request event was lost", id)
		}
		if r.State.Holds() {
			active[k] = append(active[k], id)
		}
		seen := map[string]bool{}
		var types []string
		for i, h := range r.History {
			types = append(types, h.Type)
			if i > 0 && h.At.Before(r.History[i-1].At) {
				rep.fail("request %s: history out of time order at %d (%v)", id, i, types)
			}
			if h.EventID != "" && h.Type != access.HRefused && h.Type != access.HNote {
				if seen[h.EventID+"/"+h.Type] {
					rep.fail("request %s: event %s applied twice (%s)", id, h.EventID, h.Type)
				}
				seen[h.EventID+"/"+h.Type] = true
			}
		}
		a, rm, rv := count(types, access.HMembershipAdded), count(types, access.HMembershipRemoved), count(types, access.HSessionsRevoked)
		added[k] += a
		removed[k] += rm
		revokedEntries[k[1]] += rv
		if a > 1 || rm > 1 || rv > 1 {
			rep.fail("request %s: history %v records a membership change or revocation twice", id, types)
		}
		if r.State.Ended() && a == 1 && rm == 0 && !hasNote(r) {
			rep.fail("request %s ended (%s) with its membership added and neither removed nor explained: %v", id, r.State, types)
		}
		if rm == 1 && w.RevokeOnEnd && rv != 1 {
			rep.fail("request %s: membership removed but sessions not revoked: %v", id, types)
		}
	}
	// The tenant against the store.
	adds, removes := map[key]int{}, map[key]int{}
	// jitaccessMember: jitaccess's last effective write of (group, user)
	// added the member (docs/design.md, real directory rule 2: it stays jitaccess's until jitaccess
	// removes it).
	jitaccessMember := map[key]bool{}
	for _, wr := range w.Dir.Writes() {
		k := key{strings.ToLower(wr.GroupID), strings.ToLower(wr.UserID)}
		switch wr.Op {
		case brokertest.MAddMember, brokertest.MRemoveMember:
			if !isTarget[k[0]] {
				rep.fail("Graph write %s to group %s, which is no profile's target", wr.Op, wr.GroupID)
			}
			if wr.Op == brokertest.MRemoveMember {
				jitaccessMember[k] = false // whoever had removed it, it is gone now
			}
			if !wr.Changed {
				continue
			}
			if wr.Op == brokertest.MAddMember {
				adds[k]++
				rep.Adds++
				jitaccessMember[k] = true
			} else {
				removes[k]++
				rep.Removes++
			}
		case brokertest.MRevokeSessions:
			rep.Revocations++
		}
	}
	for _, g := range w.Targets {
		for _, u := range w.Users {
			k := key{strings.ToLower(g), strings.ToLower(u)}
			member := w.Dir.IsDirectMember(g, u)
			want := len(active[k]) > 0 || w.PreExisting[k]
			if w.Settled && member != want {
				rep.fail("user %s in group %s: member %v, but active grants %v, pre-existing %v", u, g, member, active[k], w.PreExisting[k])
			}
			// No member jitaccess added survives the end of every grant
			// (docs/design.md, real directory rule 2), whatever reads said on the way.
			if w.Settled && member && jitaccessMember[k] && len(active[k]) == 0 {
				rep.fail("user %s in group %s: jitaccess added the member and every grant ended, but it is still there", u, g)
			}
			// Active means the access exists once the replication window has
			// passed (the checker runs after the final sweeps, past it).
			if w.Settled && len(active[k]) > 0 && !member && !w.Dir.IsTransitiveMember(g, u) {
				rep.fail("user %s in group %s: grants %v are active without the access", u, g, active[k])
			}
			// Per (group, user), not per request: with overlapping grants the
			// first adds and the last removes (docs/design.md, Semantics).
			if adds[k] != added[k] {
				rep.fail("user %s in group %s: %d adds in Graph, %d membership-added entries", u, g, adds[k], added[k])
			}
			if removes[k] != removed[k] {
				rep.fail("user %s in group %s: %d removals in Graph, %d membership-removed entries", u, g, removes[k], removed[k])
			}
			if w.PreExisting[k] && (adds[k] > 0 || removes[k] > 0) {
				rep.fail("user %s in group %s: pre-existing membership changed (%d adds, %d removes)", u, g, adds[k], removes[k])
			}
			if w.Settled {
				l, err := w.Store.GetLedger(ctx, g, u)
				if err != nil {
					rep.fail("ledger %s/%s: %v", g, u, err)
					continue
				}
				grants := slices.Clone(l.Grants)
				sort.Strings(grants)
				want := slices.Clone(active[k])
				sort.Strings(want)
				if l.ClaimedBy != "" || !slices.Equal(grants, want) {
					rep.fail("ledger %s/%s: grants %v busy %q, active grants %v", g, u, l.Grants, l.ClaimedBy, active[k])
				}
				l.Normalize()
				if l.Added != (jitaccessMember[k] && member) {
					rep.fail("ledger %s/%s: added %v, but jitaccess's member in Graph %v", g, u, l.Added, jitaccessMember[k] && member)
				}
			}
		}
	}
	for _, u := range w.Users {
		if got := w.Dir.RevokedFor(u); got < revokedEntries[strings.ToLower(u)] {
			rep.fail("user %s: %d sessions-revoked entries but Graph revoked %d times", u, revokedEntries[strings.ToLower(u)], got)
		}
	}
	return rep
}

func count(types []string, t string) int {
	n := 0
	for _, x := range types {
		if x == t {
			n++
		}
	}
	return n
}

func hasNote(r *access.Request) bool {
	for _, h := range r.History {
		if h.Type == access.HNote {
			return true
		}
	}
	return false
}
