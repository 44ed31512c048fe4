package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/audit"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// Forged and replayed audit records through the built binary (docs/design.md, real directory rule 3;
// SECURITY.md "What an audit-hub sender can do"): anyone who can send to the
// audit hub can write any record. A record triggers a check with Graph,
// never a conclusion. Against a deployment with an active grant (n01), a
// standing member (s01) and a non-member (n02), on a directory whose reads
// lag, every record below must leave the tenant untouched: no membership
// written, no session revoked, the grant still active with its access.
func TestHostileAuditRecords(t *testing.T) {
	e := newLagEnv(t, 11)
	e.send(access.TypeRequested, request("hxa-1", seed.UPN("n01"), "PT40S"))
	e.send(access.TypeApproved, map[string]string{"requestId": "hxa-1", "approver": seed.UPN("p01")})
	if v := e.mustGet("hxa-1"); v.State != "active" {
		t.Fatalf("setup: %s %v", v.State, v.types())
	}
	time.Sleep(replicaLag) // every read shows the grant's member now
	e.graph.ResetCalls()
	now := time.Now()
	self := map[string]any{"app": map[string]any{"appId": testClientID, "displayName": "jitaccess"}}
	x01 := byPerson(seed.UserX01, seed.UPN("x01"))
	msPIM := map[string]any{"app": map[string]any{"displayName": "MS-PIM", "servicePrincipalId": "bdefcbb6-d8b2-497d-a944-b683d9a36b0c"}}
	pimAct := func(id, req, user string, at time.Time) map[string]any {
		return record(id, audit.ActivityPIMActivated, audit.ServicePIM, at, byPerson(user, ""), user, seed.GroupAKSAdmin,
			map[string]string{"RoleAssignmentRequestId": req, "StartTime": at.UTC().Format(time.RFC3339),
				"ExpirationTime": at.Add(2 * time.Second).UTC().Format(time.RFC3339)})
	}
	cases := []struct {
		name string
		recs []map[string]any
	}{
		{"removal of a member who is still in the group", []map[string]any{
			record("hx-rm-1", audit.ActivityRemoveMember, audit.ServiceCoreDirectory, now, x01, seed.UserN01, seed.GroupAKSAdmin, nil)}},
		{"removal of a standing member", []map[string]any{
			record("hx-rm-2", audit.ActivityRemoveMember, audit.ServiceCoreDirectory, now, x01, seed.UserS01, seed.GroupAKSAdmin, nil)}},
		{"PIM activation PIM does not know", []map[string]any{pimAct("hx-pim-1", "0badc0de-0000-4000-8000-000000000001", seed.UserN02, now)}},
		{"PIM activation for the grant's user", []map[string]any{pimAct("hx-pim-2", "0badc0de-0000-4000-8000-000000000002", seed.UserN01, now)}},
		{"PIM end for a grant PIM does not manage", []map[string]any{
			record("hx-pimend-1", audit.ActivityPIMExpired, audit.ServicePIM, now, msPIM, seed.UserN01, seed.GroupAKSAdmin, nil)}},
		{"MS-PIM removing the grant's member", []map[string]any{
			record("hx-pimrm-1", audit.ActivityRemoveMember, audit.ServiceCoreDirectory, now, msPIM, seed.UserN01, seed.GroupAKSAdmin, nil)}},
		{"out-of-band addition of a non-member", []map[string]any{
			record("hx-oob-1", audit.ActivityAddMember, audit.ServiceCoreDirectory, now, x01, seed.UserN02, seed.GroupAKSAdmin, nil)}},
		{"removal signed with jitaccess's own client id", []map[string]any{
			record("hx-self-1", audit.ActivityRemoveMember, audit.ServiceCoreDirectory, now, self, seed.UserN01, seed.GroupAKSAdmin, nil)}},
		{"last week's PIM activation and end", []map[string]any{
			pimAct("hx-old-1", "0badc0de-0000-4000-8000-000000000003", seed.UserN02, now.Add(-7*24*time.Hour)),
			record("hx-old-2", audit.ActivityPIMExpired, audit.ServicePIM, now.Add(-7*24*time.Hour), msPIM, seed.UserN02, seed.GroupAKSAdmin, nil)}},
		{"a PIM activation dated next year", []map[string]any{pimAct("hx-future-1", "0badc0de-0000-4000-8000-000000000004", seed.UserN02, now.Add(365*24*time.Hour))}},
	}
	// A flood: fifty distinct removal records for the grant's member.
	var flood []map[string]any
	for i := range 50 {
		flood = append(flood, record(fmt.Sprintf("hx-flood-%d", i), audit.ActivityRemoveMember, audit.ServiceCoreDirectory, now, x01, seed.UserN01, seed.GroupAKSAdmin, nil))
	}
	cases = append(cases, struct {
		name string
		recs []map[string]any
	}{"fifty removal records at once", flood})
	for _, c := range cases {
		e.audit(records(c.recs...))
		e.audit(records(c.recs...)) // replayed
	}
	before := len(e.mustGet("hxa-1").History)
	e.sweepsFor(realWindow + 2*time.Second)

	if w := hxWrites(e.graph.Calls()); len(w) != 0 {
		t.Errorf("Graph writes after forged records: %v", w)
	}
	for _, u := range []string{seed.UserN01, seed.UserN02, seed.UserS01, seed.UserX01} {
		if n := e.graph.RevokeCount(u); n != 0 {
			t.Errorf("sessions of %s revoked %d times", u, n)
		}
	}
	if !e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserS01) || e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN02) {
		t.Error("memberships changed")
	}
	v := e.mustGet("hxa-1")
	if v.State != "active" || !e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatalf("the grant: %s %v", v.State, v.types())
	}
	// The flood and the replays add at most a note and a finding per check.
	if grew := len(v.History) - before; grew > 4 {
		t.Errorf("history grew by %d entries: %v", grew, v.types()[before:])
	}
	for _, req := range []string{"0badc0de-0000-4000-8000-000000000001", "0badc0de-0000-4000-8000-000000000004"} {
		if pv, code := e.get("pim-" + req); code == http.StatusOK && pv.State != "rejected" {
			t.Errorf("forged activation %s: %s %v", req, pv.State, pv.types())
		}
	}
	if _, code := e.get("pim-0badc0de-0000-4000-8000-000000000003"); code != http.StatusNotFound {
		t.Errorf("last week's activation recorded (%d)", code)
	}
	if page := e.dashboard(); !strings.Contains(page, "contradicted by Graph") {
		t.Error("no finding on the dashboard")
	}
	// The grant still ends on time, with its member removed once.
	end, _ := time.Parse(time.RFC3339Nano, v.EndsAt)
	time.Sleep(time.Until(end) + 100*time.Millisecond)
	e.sweep()
	if v := e.mustGet("hxa-1"); v.State != "expired" || e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.graph.RevokeCount(seed.UserN01) != 1 {
		t.Fatalf("at the end: %s %v", v.State, v.types())
	}
	t.Logf("%d forged or replayed record sets (%d records with the flood), each delivered twice: nothing written, nothing revoked", len(cases), len(cases)-1+len(flood))
}
