package proof

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// TestCheckerCatches plants each kind of damage after a clean run and wants
// the invariant checker to report it: a checker that cannot fail proves
// nothing.
func TestCheckerCatches(t *testing.T) {
	plant := []struct {
		name string
		do   func(ru *run)
		want string
	}{
		{"a member without a grant", func(ru *run) { ru.dir.SetMember(seed.GroupAKSAdmin, ru.users[3]) }, "member true"},
		{"a grant whose member vanished", func(ru *run) {
			for _, id := range ru.ids {
				if r, _ := ru.store.GetRequest(ru.ctx, id); r.State == access.Active {
					ru.dir.UnsetMember(seed.GroupAKSAdmin, r.Requester)
					return
				}
			}
			ru.t.Skip("no active grant in this run")
		}, "member false"},
		{"a write to another group", func(ru *run) {
			_, _ = ru.dir.AddMember(context.Background(), seed.GroupFinanceAdmins, ru.users[1])
		}, "no profile's target"},
		{"an add with no history", func(ru *run) {
			_, _ = ru.dir.AddMember(context.Background(), seed.GroupAKSAdmin, ru.users[2])
		}, "adds in Graph"},
		{"jitaccess's member outlives its grant", func(ru *run) {
			// The grant ends as if a stale read had said the member was
			// gone: nothing removed.
			r, _ := ru.store.GetRequest(ru.ctx, "r-0")
			r.State, r.Work, r.DueAt = access.Revoked, nil, time.Time{}
			if err := ru.store.SaveRequest(ru.ctx, r); err != nil {
				ru.t.Fatal(err)
			}
		}, "every grant ended, but it is still there"},
		{"an active grant without the access", func(ru *run) {
			ru.dir.UnsetMember(seed.GroupAKSAdmin, ru.users[1])
		}, "active without the access"},
		{"a ledger that forgot jitaccess's member", func(ru *run) {
			l, _ := ru.store.GetLedger(ru.ctx, seed.GroupAKSAdmin, ru.users[1])
			l.Added = false
			if err := ru.store.SaveLedger(ru.ctx, l); err != nil {
				ru.t.Fatal(err)
			}
		}, "added false, but jitaccess's member in Graph true"},
	}
	for _, p := range plant {
		t.Run(p.name, func(t *testing.T) {
			clock := brokertest.NewClock(t0)
			dir, users := newTenant(4)
			ru := newRun(t, memStore(t, clock), dir, users, 6, clock)
			ru.deliver(body("a1", access.TypeRequested, map[string]any{"requestId": "r-0", "requester": users[1], "profile": "aks-admin", "justification": "x"}))
			ru.deliver(body("a2", access.TypeApproved, map[string]any{"requestId": "r-0", "approver": seed.UPN("p01")}))
			ru.ids = ru.ids[:1]
			p.do(ru)
			rep := Check(ru.ctx, World{Store: ru.store, Dir: ru.dir, Requests: ru.ids, Targets: []string{seed.GroupAKSAdmin},
				Users: ru.users, PreExisting: map[[2]string]bool{{seed.GroupAKSAdmin, seed.UserS01}: true}, RevokeOnEnd: true, Settled: true})
			if rep.OK() || !strings.Contains(rep.String(), p.want) {
				t.Fatalf("planted %q, checker said: %s", p.name, rep)
			}
		})
	}
}
