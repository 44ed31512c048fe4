package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// Reason recorded for a grant whose member vanished (DESIGN §6a "Drift
// reconciliation").
const reasonVanished = "member vanished: no longer a direct member of the group (drift reconciliation)"

// Reconcile compares the target groups' real direct members with what the
// store says should be there, within Options.ReconcileMaxGraphCalls Graph
// calls (groups are taken round robin across runs when the budget is short):
//   - a grant that holds the membership but whose member vanished ends as
//     revoked (actor unknown); sessions are revoked when its profile says so;
//   - a member whose recorded grants (ledger) have all ended is removed, with
//     its sessions revoked when the profile says so, and the finding is
//     recorded on the ended grant;
//   - members it cannot explain (standing members, additions whose audit
//     record never came) are never touched; they are counted in the log.
//
// The sweep calls it after the due requests.
func (b *Broker) Reconcile(ctx context.Context) error {
	gp, ok := b.profiles.(GroupProfiles)
	lister, ok2 := b.store.(RequestLister)
	if b.opts.Members == nil || b.opts.ReconcileMaxGraphCalls < 0 || !ok || !ok2 {
		return nil
	}
	groups := gp.TargetGroups()
	if len(groups) == 0 {
		return nil
	}
	budget := b.opts.ReconcileMaxGraphCalls
	b.reconcileMu.Lock()
	next := b.reconcileNext % len(groups)
	b.reconcileMu.Unlock()
	var errs []error
	done := 0
	for done < len(groups) && budget > 0 && ctx.Err() == nil {
		g := groups[(next+done)%len(groups)]
		used, err := b.reconcileGroup(ctx, g, gp.ForGroup(g), lister, budget)
		budget -= used
		done++
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile group %s: %w", g, err))
		}
	}
	b.reconcileMu.Lock()
	b.reconcileNext = (next + done) % len(groups)
	b.reconcileMu.Unlock()
	return errors.Join(errs...)
}

// reconcileGroup reconciles one group; used is the Graph calls it made.
func (b *Broker) reconcileGroup(ctx context.Context, g string, profiles []access.Profile, lister RequestLister, budget int) (used int, err error) {
	// Active grants first, members second: a grant active before the
	// listing had its member added before it, so a missing member really
	// vanished (an end racing the listing is re-checked in endVanished).
	var actives []*access.Request
	for _, p := range profiles {
		after := ""
		for {
			page, err := lister.ListRequests(ctx, ListFilter{State: access.Active, Profile: p.Name, Limit: 1000, After: after})
			if err != nil {
				return used, err
			}
			for _, r := range page.Items {
				if r.GroupID == g && r.State == access.Active && r.Work == nil && r.Requester != "" {
					actives = append(actives, r)
				}
			}
			if page.Next == "" {
				break
			}
			after = page.Next
		}
	}
	members, err := b.opts.Members.DirectMembers(ctx, g)
	used++
	if err != nil {
		return used, err
	}
	present := map[string]bool{}
	for _, m := range members {
		present[m] = true
	}
	now := b.now()
	held := map[string]bool{}
	var errs []error
	vanished := 0
	for _, r := range actives {
		if present[r.Requester] {
			held[r.Requester] = true
			continue
		}
		if !r.EndsAt.IsZero() && !now.Before(r.EndsAt) {
			continue // due: the sweep ends it
		}
		vanished++
		if budget-used < 1 {
			continue
		}
		used++ // the session revocation that may follow
		if err := b.endVanished(ctx, r.ID, r.Version); err != nil {
			errs = append(errs, err)
		}
	}
	unexplained, repaired := 0, 0
	for _, m := range members {
		if held[m] {
			continue
		}
		l, err := b.store.GetLedger(ctx, g, m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(l.Grants) == 0 || l.PreExisting || l.Busy != "" {
			unexplained++
			continue
		}
		var last *access.Request
		allEnded := true
		for _, id := range l.Grants {
			r, err := b.load(ctx, id)
			if err != nil {
				return used, err
			}
			if r == nil {
				continue
			}
			if !r.State.Ended() {
				allEnded = false
				break
			}
			if last == nil || r.EndedAt.After(last.EndedAt) {
				last = r
			}
		}
		if !allEnded || last == nil {
			continue
		}
		if budget-used < 2 {
			continue
		}
		used += 2
		if err := b.removeLeftover(ctx, g, m, l, last); err != nil {
			errs = append(errs, err)
			continue
		}
		repaired++
	}
	b.log.InfoContext(ctx, "reconcile group", "groupId", g, "members", len(members), "vanished", vanished,
		"leftoversRemoved", repaired, "unexplained", unexplained, "graphCalls", used)
	return used, errors.Join(errs...)
}

// endVanished ends an active grant whose member is no longer there.
func (b *Broker) endVanished(ctx context.Context, id, version string) error {
	for range b.opts.MaxConflictRetries {
		r, err := b.load(ctx, id)
		if err != nil || r == nil || r.State != access.Active || r.Work != nil || version != "" && r.Version != version {
			return err // changed since the listing: judged again next run
		}
		next := r.Clone()
		goal, actor, reason := access.Revoked, "unknown", reasonVanished
		if r.PIMManaged() && !r.EndsAt.IsZero() && !b.now().Before(r.EndsAt.Add(-pimEndSlack)) {
			goal, actor, reason = access.Expired, "PIM", ""
		}
		next.EndWithoutRemoval(b.now(), goal, actor, reason, "")
		if err := b.save(ctx, next); err != nil {
			if fault.Conflict(err) {
				continue
			}
			return err
		}
		b.log.InfoContext(ctx, "drift: grant whose member vanished ended", "requestId", id, "state", string(goal))
		if err := b.withdrawClaim(ctx, next); err != nil {
			return err
		}
		if next.Work != nil {
			return b.runWork(ctx, next)
		}
		return nil
	}
	return ErrTooManyConflicts
}

// removeLeftover removes a member whose recorded grants have all ended
// (a removal that failed, a crash's leftover), revokes its sessions when the
// latest grant's profile said so, clears the ledger and records the finding
// on that grant.
func (b *Broker) removeLeftover(ctx context.Context, g, u string, l *access.Ledger, last *access.Request) error {
	removed, err := b.dir.RemoveMember(ctx, g, u)
	if err != nil {
		return err
	}
	revoked := false
	if removed && last.RevokeSessionsOnEnd {
		if err := b.dir.RevokeSessions(ctx, u); err != nil {
			return err
		}
		revoked = true
	}
	for range b.opts.MaxConflictRetries {
		cur, err := b.store.GetLedger(ctx, g, u)
		if err != nil {
			return err
		}
		for _, id := range l.Grants {
			cur.EndGrant(id)
		}
		if err := b.store.SaveLedger(ctx, cur); err != nil {
			if fault.Conflict(err) {
				continue
			}
			return err
		}
		break
	}
	for range b.opts.MaxConflictRetries {
		r, err := b.load(ctx, last.ID)
		if err != nil || r == nil {
			return err
		}
		next := r.Clone()
		now := b.now()
		if removed {
			next.AddHistory(now, access.HMembershipRemoved, access.System, "drift reconciliation: the member was still there after the grant ended", "")
		}
		if revoked {
			next.AddHistory(now, access.HSessionsRevoked, access.System, "refresh tokens revoked", "")
		}
		if !removed {
			return nil
		}
		if err := b.save(ctx, next); err != nil {
			if fault.Conflict(err) {
				continue
			}
			return err
		}
		b.log.InfoContext(ctx, "drift: leftover membership removed", "requestId", last.ID, "groupId", g, "userId", u)
		return nil
	}
	return ErrTooManyConflicts
}
