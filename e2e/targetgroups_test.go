package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/graphsim"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// auditFixture reads a recorded audit event and retargets it at group.
func auditFixture(t *testing.T, name, group string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "handlers", "testdata", "audit", name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), seed.GroupAKSAdmin, group)
	s = strings.ReplaceAll(s, `\"aks-admin\"`, `\"finance-admins\"`)
	// A new record id, so that it is not taken for the aks-admin one.
	s = strings.ReplaceAll(s, `"id":"Directory_`, `"id":"Directory_fin_`)
	return fresh([]byte(s)) // acted on by date: only the group makes it noise
}

// TestOnlyProfileTargetsAreEverWritten tries every event type against
// finance-admins — a group no profile targets — in every way an event can
// name a group, a profile or a user, and every kind of audit record about
// finance-admins, while ordinary aks-admin grants run beside them. Graph
// must never see a write of any kind that concerns finance-admins (or any
// group that is no profile's target), and finance-admins' members must stay
// exactly as seeded.
func TestOnlyProfileTargetsAreEverWritten(t *testing.T) {
	e := newEnv(t)
	fin := seed.GroupFinanceAdmins
	before := e.graph.Members(fin)
	slices.Sort(before)

	// Request events naming finance-admins: as the profile, in group fields
	// the contract does not have, as request id, as requester, as approver.
	for _, typ := range []string{access.TypeRequested, access.TypeApproved, access.TypeDenied,
		access.TypeCancelled, access.TypeRevoked, access.TypeExpire} {
		for _, data := range []map[string]string{
			{"requestId": "fin-profile", "requester": seed.UPN("n01"), "profile": "finance-admins", "justification": "x",
				"approver": seed.UPN("p01"), "by": seed.UPN("p01"), "reason": "x"},
			{"requestId": "fin-fields", "requester": seed.UPN("n01"), "profile": "aks-admin", "justification": "x",
				"approver": seed.UPN("p01"), "by": seed.UPN("n01"), "reason": "x",
				"groupId": fin, "targetGroupId": fin, "group": fin, "targetGroup": "finance-admins"},
			{"requestId": fin, "requester": seed.UPN("n01"), "profile": "aks-admin", "justification": "x",
				"approver": seed.UPN("p01"), "by": seed.UPN("n01"), "reason": "x"},
			{"requestId": "fin-requester", "requester": fin, "profile": "aks-admin", "justification": "x",
				"approver": fin, "by": fin, "reason": "x"},
			{"requestId": "fin-upn", "requester": "finance-admins@" + seed.Domain, "profile": "aks-admin", "justification": "x",
				"approver": "finance-admins", "by": "finance-admins", "reason": "x"},
		} {
			e.send(typ, data)
		}
	}
	// An ordinary grant beside them, whose events also carry finance-admins
	// in fields the contract does not have.
	e.send(access.TypeRequested, map[string]string{"requestId": "fin-beside", "requester": seed.UPN("n02"), "profile": "aks-admin",
		"justification": "x", "duration": "PT2S", "targetGroupId": fin})
	e.send(access.TypeApproved, map[string]string{"requestId": "fin-beside", "approver": seed.UPN("p01"), "groupId": fin})

	// Audit records about finance-admins: an out-of-band add and a removal by
	// someone else, and PIM's own records of an activation, its end and a
	// deactivation.
	e.graph.SetPIMPolicy(fin, graphsim.PIMPolicy{})
	if e.graph.ActivatePIM(fin, seed.UserN01, time.Second, "INC-fin") == "" {
		t.Fatal("the simulator refused the finance-admins activation")
	}
	e.graph.ActivatePIM(fin, seed.UserX01, time.Hour, "INC-fin-2")
	e.graph.DeactivatePIM(fin, seed.UserX01)
	e.audit(auditFixture(t, "outofband_add_by_user.json", fin), auditFixture(t, "removal_by_other.json", fin), e.graph.AuditRecords())

	// Let everything end, with sweeps (expiry, repair, drift reconciliation).
	time.Sleep(2500 * time.Millisecond)
	e.graph.ExpirePIM(time.Now())
	e.audit(e.graph.AuditRecords())
	for range 3 {
		e.sweep()
	}
	if v := e.mustGet("fin-beside"); v.State != "expired" || v.has(access.HMembershipRemoved) != 1 {
		t.Fatalf("the ordinary grant beside: %s %v", v.State, v.types())
	}

	// Graph: every write concerns a profile's target group, never finance-admins.
	targets := map[string]bool{}
	raw, _ := os.ReadFile(e.profiles)
	for _, id := range []string{seed.GroupAKSAdmin, seed.GroupAKSOps} {
		if !strings.Contains(string(raw), id) {
			t.Fatalf("profiles do not target %s", id)
		}
		targets[id] = true
	}
	writes := 0
	for _, c := range e.graph.Calls() {
		// Reads change nothing. (A requester or approver given as the
		// group's id is looked up as a user — GET /users/<id> — and found
		// to be none.) Revocations concern users, not groups.
		if c.Method == "GET" || strings.HasSuffix(c.Path, "/checkMemberGroups") || strings.HasSuffix(c.Path, "/revokeSignInSessions") {
			continue
		}
		writes++
		if strings.Contains(c.Path, fin) || strings.Contains(string(c.Body), fin) {
			t.Errorf("a write concerning finance-admins: %s %s %s", c.Method, c.Path, c.Body)
		}
		named := false
		for id := range targets {
			if strings.Contains(c.Path, id) || strings.Contains(string(c.Body), id) {
				named = true
			}
		}
		if !named {
			t.Errorf("a write to no profile's target group: %s %s %s", c.Method, c.Path, c.Body)
		}
	}
	if writes == 0 {
		t.Fatal("no write at all: the ordinary grant did not run")
	}
	after := e.graph.Members(fin)
	slices.Sort(after)
	// The simulator's own PIM activation made n01 and x01 members and their
	// end removed them again; nothing else may have changed.
	if !slices.Equal(before, after) {
		t.Fatalf("finance-admins members %v, seeded %v", after, before)
	}
	// No request ever names finance-admins as its group; the unknown profile
	// and the group given as a user granted nothing.
	for _, id := range []string{"fin-profile", "fin-fields", fin, "fin-requester", "fin-upn", "fin-beside"} {
		v, code := e.get(id)
		if code == 200 && v.GroupID == fin {
			t.Errorf("%s: group %s", id, v.GroupID)
		}
		if code == 200 && (id == "fin-profile" || id == "fin-requester" || id == "fin-upn") && v.has(access.HMembershipAdded) > 0 {
			t.Errorf("%s granted something: %s %v", id, v.State, v.types())
		}
	}
	if e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN02) {
		t.Error("a grant outlived its end in aks-admin")
	}
}
