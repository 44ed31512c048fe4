package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/cli"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// build makes a CloudEvent body as a sender would.
func (e *env) build(typ string, data map[string]string) []byte {
	e.t.Helper()
	body, err := cli.BuildEvent(eventID(), typ, "/e2e", time.Now(), data)
	if err != nil {
		e.t.Fatal(err)
	}
	return body
}

// TestSIGKILLDuringGraphCalls kills the binary with SIGKILL while it waits
// for Graph in the middle of a grant — resolving the approver, adding the
// membership, removing it, revoking the sessions — then starts it again. As
// Service Bus does after a crash, the message that was in flight comes back
// (its lock expired); the timer keeps firing the sweep. Every grant must end
// exactly as an undisturbed one: the right state and history, the member
// added once and removed, the sessions revoked, nobody left in aks-admin.
func TestSIGKILLDuringGraphCalls(t *testing.T) {
	points := []struct {
		name   string
		match  string // the Graph call the binary is killed in
		phase  string // "approve" or "end"
		method string
		suffix string
	}{
		{"resolving the approver", "POST /checkMemberGroups", "approve", "POST", "/checkMemberGroups"},
		{"adding the member", "POST /members/$ref", "approve", "POST", "/members/$ref"},
		{"removing the member", "DELETE /members/", "end", "DELETE", ""},
		{"revoking the sessions", "POST /revokeSignInSessions", "end", "POST", "/revokeSignInSessions"},
	}
	for i, p := range points {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			id := "kill-" + string(rune('a'+i))
			e.send(access.TypeRequested, request(id, seed.UserN01, "PT1H"))
			approve := e.build(access.TypeApproved, map[string]string{"requestId": id, "approver": seed.UPN("p01")})
			revoke := e.build(access.TypeRevoked, map[string]string{"requestId": id, "by": seed.UPN("p01"), "reason": "done"})

			inFlight := approve
			if p.phase == "end" {
				e.sendRaw(approve)
				if v := e.mustGet(id); v.State != "active" {
					t.Fatalf("before the kill: %s %v", v.State, v.types())
				}
				inFlight = revoke
			}
			// Hold the Graph call, deliver, and kill the binary while it waits.
			before := len(e.graph.CallsTo(p.method, p.suffix))
			e.graph.Delay(p.match, time.Minute)
			e.host.Enqueue(inFlight)
			waitUntil(t, "the binary to call "+p.match, 30*time.Second, func() bool {
				return len(e.graph.CallsTo(p.method, p.suffix)) > before
			})
			e.kill()
			e.graph.Delay(p.match, 0)

			// Restart; the message comes back. The dead process's claim on
			// the ledger is taken over after access.WorkGrace: the
			// redelivery waits for it within the invocation (patience).
			e.vars["JIT_REDELIVERY_PATIENCE"] = "PT90S"
			e.start()
			e.sendRaw(inFlight)
			if p.phase == "approve" {
				e.settle(id, "active")
				e.sendRaw(revoke)
			}
			v := e.settle(id, "revoked")
			var got []string
			for _, typ := range v.types() {
				if typ != access.HNote {
					got = append(got, typ)
				}
			}
			want := []string{access.HRequested, access.HApproved, access.HActivated, access.HMembershipAdded,
				access.HRevoked, access.HMembershipRemoved, access.HSessionsRevoked}
			if !slices.Equal(got, want) {
				t.Fatalf("history %v, want %v", got, want)
			}
			if e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
				t.Fatal("n01 left in aks-admin")
			}
			if n := e.graph.RevokeCount(seed.UserN01); n < 1 {
				t.Fatal("sessions never revoked")
			}
		})
	}
}

// settle waits until request id is in state want, firing the sweep every
// half second (work cut short by a crash is the sweep's after access.WorkGrace).
func (e *env) settle(id, want string) view {
	e.t.Helper()
	deadline := time.Now().Add(access.WorkGrace + 30*time.Second)
	for {
		v := e.mustGet(id)
		if v.State == want {
			return v
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("request %s: state %s, want %s; history %v\n%s", id, v.State, want, v.types(), lastLines(e.proc.output(), 20))
		}
		e.sweep()
		time.Sleep(500 * time.Millisecond)
	}
}
