package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

// Reason recorded for a grant whose member vanished (docs/design.md, Semantics "Drift
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
	if b.opts.ReconcileMaxGraphCalls < 0 {
		return nil
	}
	targets := b.reconcileTargets()
	if len(targets) == 0 {
		return nil
	}
	budget := b.opts.ReconcileMaxGraphCalls
	b.reconcileMu.Lock()
	next := b.reconcileNext % len(targets)
	b.reconcileMu.Unlock()
	var errs []error
	done := 0
	for done < len(targets) && budget > 0 && ctx.Err() == nil {
		t := targets[(next+done)%len(targets)]
		used, err := b.reconcileTarget(ctx, t, budget)
		budget -= used
		done++
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", t.label, err))
		}
	}
	b.reconcileMu.Lock()
	b.reconcileNext = (next + done) % len(targets)
	b.reconcileMu.Unlock()
	return errors.Join(errs...)
}

// target is one thing the profiles grant, as drift reconciliation sees it:
// a group (its direct members, Graph) or a role at a scope (its assignees,
// ARM).
type target struct {
	label    string
	key      string // the membership ledger's key
	profiles []access.Profile
	// list reads who has it now (a read: a hint).
	list func(ctx context.Context) ([]string, error)
	// remove takes a leftover away from u (addedBy: the request whose add
	// made it, the ledger's AddedBy).
	remove func(ctx context.Context, u, addedBy string) (bool, error)
}

// reconcileTargets lists the target groups (with Options.Members) and the
// azure-role targets (with Options.ARM) of the profiles.
func (b *Broker) reconcileTargets() []target {
	var out []target
	if b.opts.Members != nil {
		for _, g := range b.profiles.TargetGroups() {
			out = append(out, target{label: "group " + g, key: g, profiles: b.profiles.ForGroup(g),
				list:   func(ctx context.Context) ([]string, error) { return b.opts.Members.DirectMembers(ctx, g) },
				remove: func(ctx context.Context, u, _ string) (bool, error) { return b.dir.RemoveMember(ctx, g, u) },
			})
		}
	}
	if b.opts.ARM != nil {
		byKey := map[string]int{}
		for _, p := range b.profiles.All() {
			if p.Activation != access.ActivationAzureRole {
				continue
			}
			k := p.TargetKey()
			if i, ok := byKey[k]; ok {
				out[i].profiles = append(out[i].profiles, p)
				continue
			}
			byKey[k] = len(out)
			scope, role := p.Scope, p.RoleDefinitionID
			out = append(out, target{label: "role " + role + " at " + scope, key: k, profiles: []access.Profile{p},
				list: func(ctx context.Context) ([]string, error) { return b.opts.ARM.Principals(ctx, scope, role) },
				remove: func(ctx context.Context, _, addedBy string) (bool, error) {
					if addedBy == "" {
						return false, nil // nothing jitaccess can name
					}
					return b.opts.ARM.Delete(ctx, scope, b.assignmentName(addedBy))
				},
			})
		}
	}
	return out
}

// reconcileTarget reconciles one target; used is the Graph (ARM) calls it
// made.
func (b *Broker) reconcileTarget(ctx context.Context, t target, budget int) (used int, err error) {
	g := t.key
	// Active grants first, members second: a grant active before the
	// listing had its member added before it, so a missing member really
	// vanished (an end racing the listing is re-checked in endVanished).
	var actives []*access.Request
	for _, p := range t.profiles {
		after := ""
		for {
			page, err := b.store.ListRequests(ctx, ListFilter{State: access.Active, Profile: p.Name, Limit: 1000, After: after})
			if err != nil {
				return used, err
			}
			for _, r := range page.Items {
				if r.MembershipKey() == g && r.State == access.Active && r.Work == nil && r.Requester != "" {
					actives = append(actives, r)
				}
			}
			if page.Next == "" {
				break
			}
			after = page.Next
		}
	}
	readAt := b.now()
	members, err := t.list(ctx)
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
	vanished, unsettled := 0, 0
	for _, r := range actives {
		if present[r.Requester] {
			held[r.Requester] = true
			continue
		}
		if !r.EndsAt.IsZero() && !now.Before(r.EndsAt) {
			continue // due: the sweep ends it
		}
		if r.Check != nil {
			continue // already being checked
		}
		l, err := b.store.GetLedger(ctx, g, r.Requester)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !l.Settled(readAt, b.opts.ReplicationWindow) {
			// The listing may predate jitaccess's own write: it decides
			// nothing (docs/design.md, real directory rule 1).
			unsettled++
			continue
		}
		vanished++
		if budget-used < 2 {
			continue
		}
		used += 2 // the confirming read, and the session revocation that may follow
		if err := b.suspectVanished(ctx, r.ID, r.Version, now); err != nil {
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
		l.Normalize()
		if !l.Added {
			if len(l.Grants) == 0 || l.PreExisting {
				unexplained++
			}
			continue
		}
		if l.ClaimedBy != "" || !l.Settled(readAt, b.opts.ReplicationWindow) {
			continue
		}
		h, err := b.holderFacts(ctx, l, "")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(h.Gone) != len(l.Grants) {
			continue // still held, or a grant not known to be over: its own end decides
		}
		if budget-used < 2 {
			continue
		}
		used += 2
		if err := b.removeLeftover(ctx, t, m, readAt, h); err != nil {
			errs = append(errs, err)
			continue
		}
		repaired++
	}
	b.log.InfoContext(ctx, "reconcile", "target", t.label, "members", len(members), "vanished", vanished, "unsettled", unsettled,
		"leftoversRemoved", repaired, "unexplained", unexplained, "graphCalls", used)
	return used, errors.Join(errs...)
}

// suspectVanished records on an active grant whose member the listing did
// not show a check (access.CheckVanished): the grant ends as revoked only
// when a second read, after the replication window, confirms it.
func (b *Broker) suspectVanished(ctx context.Context, id, version string, now time.Time) error {
	_, err := b.updateRequest(ctx, id, func(r *access.Request) (*access.Request, error) {
		if r == nil || r.State != access.Active || r.Work != nil || r.Check != nil || version != "" && r.Version != version {
			return nil, nil // changed since the listing: judged again next run
		}
		goal, actor, reason := access.Revoked, "unknown", reasonVanished
		if r.PIMManaged() && !r.EndsAt.IsZero() && !now.Before(r.EndsAt.Add(-pimEndSlack)) {
			goal, actor, reason = access.Expired, "PIM", ""
		}
		next := r.Clone()
		next.Suspect(now, access.Check{Kind: access.CheckVanished, Since: now, Due: now.Add(b.opts.ReplicationWindow),
			Goal: goal, Actor: actor, Reason: reason}, "")
		return next, nil
	})
	if err == nil {
		b.log.InfoContext(ctx, "drift: member not seen; checking again after the replication window", "requestId", id)
	}
	return err
}

// leftoverClaim is the ledger claim id drift reconciliation removes a
// leftover member under.
const leftoverClaim = "drift-reconciliation"

// removeLeftover removes a member jitaccess added whose grants have all
// ended (a removal that failed, a crash's leftover; access.PlanLeftover),
// revokes its sessions when the latest grant's profile said so, and records
// the finding on that grant.
func (b *Broker) removeLeftover(ctx context.Context, t target, u string, readAt time.Time, h access.Holders) error {
	g := t.key
	c := access.Claim{Token: newToken()}
	claimed := false
	var addedBy string
	held, err := b.updateLedger(ctx, g, u, nil, func(l *access.Ledger) (bool, error) {
		c.Now = b.now()
		addedBy = l.AddedBy
		claimed = access.PlanLeftover(l, leftoverClaim, c, h, readAt, b.opts.ReplicationWindow)
		return claimed, nil
	})
	if err != nil || !claimed {
		return err
	}
	removed, err := t.remove(ctx, u, addedBy)
	if err != nil {
		b.giveUp(ctx, g, u, leftoverClaim, c, true)
		return err
	}
	if _, err := b.updateLedger(ctx, g, u, held, func(l *access.Ledger) (bool, error) {
		ours := l.ClaimedBy == leftoverClaim && l.ClaimToken == c.Token
		access.RemoveAnswered(l, leftoverClaim, c, removed)
		return ours, nil
	}); err != nil {
		return err
	}
	// The finding goes on the grant whose add created the membership.
	var last *access.Request
	if addedBy != "" {
		if last, err = b.load(ctx, addedBy); err != nil {
			return err
		}
	}
	revoke := last == nil || last.RevokeSessionsOnEnd
	if removed && revoke {
		if err := b.dir.RevokeSessions(ctx, u); err != nil {
			return err
		}
	}
	b.log.InfoContext(ctx, "drift: leftover membership removed", "groupId", g, "userId", u, "removed", removed)
	if last == nil || !removed {
		return nil
	}
	_, err = b.updateRequest(ctx, last.ID, func(r *access.Request) (*access.Request, error) {
		if r == nil {
			return nil, nil
		}
		next := r.Clone()
		now := b.now()
		next.AddHistory(now, access.HMembershipRemoved, access.System, "drift reconciliation: the member jitaccess added was still there after the grant ended", "")
		if revoke {
			next.AddHistory(now, access.HSessionsRevoked, access.System, "refresh tokens revoked", "")
		}
		return next, nil
	})
	return err
}
