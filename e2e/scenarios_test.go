package e2e

import (
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/seed"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

const membersRef = "/groups/" + seed.GroupAKSAdmin + "/members/$ref"

func request(id, requester, duration string) map[string]string {
	d := map[string]string{"requestId": id, "requester": requester, "profile": "aks-admin", "justification": "e2e: rotate certificates"}
	if duration != "" {
		d["duration"] = duration
	}
	return d
}

// The seeds' walk-through: n01 requests aks-admin, p01 approves, the grant
// becomes active (n01 is a member), it expires, the membership is removed and
// n01's sessions are revoked exactly once.
func TestLifecycleRequestApproveExpire(t *testing.T) {
	e := newEnv(t)
	e.send(access.TypeRequested, request("life-1", seed.UPN("n01"), "PT2S"))
	v := e.mustGet("life-1")
	if v.State != "pending" || v.Requester != seed.UserN01 || v.RequesterUPN != seed.UPN("n01") || v.GroupID != seed.GroupAKSAdmin || v.Duration != "PT2S" {
		t.Fatalf("after request: %+v", v)
	}
	if e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatal("member before approval")
	}
	e.send(access.TypeApproved, map[string]string{"requestId": "life-1", "approver": seed.UPN("p01"), "comment": "ok"})
	v = e.mustGet("life-1")
	if v.State != "active" || !e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatalf("after approval: %+v member=%v", v, e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01))
	}
	if len(v.Approvals) != 1 || v.Approvals[0].Approver != seed.UserP01 {
		t.Fatalf("approvals: %+v", v.Approvals)
	}
	act, _ := time.Parse(time.RFC3339Nano, v.ActivatedAt)
	end, _ := time.Parse(time.RFC3339Nano, v.EndsAt)
	req, _ := time.Parse(time.RFC3339Nano, v.RequestedAt)
	if end.Sub(act) != 2*time.Second || !act.After(req) {
		t.Fatalf("clock must start at activation: requested %v activated %v ends %v", req, act, end)
	}
	// A sweep before the end changes nothing.
	e.sweep()
	if v = e.mustGet("life-1"); v.State != "active" {
		t.Fatalf("early sweep: %s", v.State)
	}
	time.Sleep(time.Until(end) + 50*time.Millisecond)
	e.sweep()
	v = e.mustGet("life-1")
	if v.State != "expired" || v.EndedAt == "" {
		t.Fatalf("after end: %+v", v)
	}
	if e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatal("membership outlived the grant")
	}
	if n := e.graph.RevokeCount(seed.UserN01); n != 1 {
		t.Fatalf("revokeSignInSessions calls: %d", n)
	}
	want := []string{"requested", "approved", "activated", "membership-added", "expired", "membership-removed", "sessions-revoked"}
	if got := v.types(); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	// A second sweep and a redelivered expire change nothing.
	e.sweep()
	e.send(access.TypeExpire, map[string]string{"requestId": "life-1"})
	if v2 := e.mustGet("life-1"); len(v2.History) != len(v.History) || e.graph.RevokeCount(seed.UserN01) != 1 {
		t.Fatalf("repeat changed something: %v", v2.types())
	}
}

// A crash (SIGKILL) while a grant is active loses nothing: after a restart
// the sweep ends it on time with the membership removed and sessions revoked.
func TestRestartMidGrant(t *testing.T) {
	e := newEnv(t)
	e.send(access.TypeRequested, request("restart-1", seed.UserN01, "PT3S"))
	e.send(access.TypeApproved, map[string]string{"requestId": "restart-1", "approver": seed.UserP01})
	v := e.mustGet("restart-1")
	if v.State != "active" {
		t.Fatalf("state %s", v.State)
	}
	e.restart()
	if v2 := e.mustGet("restart-1"); v2.State != "active" {
		t.Fatalf("after restart: %s", v2.State)
	}
	end, _ := time.Parse(time.RFC3339Nano, v.EndsAt)
	time.Sleep(time.Until(end) + 50*time.Millisecond)
	e.sweep()
	if v = e.mustGet("restart-1"); v.State != "expired" || e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.graph.RevokeCount(seed.UserN01) != 1 {
		t.Fatalf("after restart and sweep: %s member=%v revokes=%d", v.State, e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01), e.graph.RevokeCount(seed.UserN01))
	}
}

// Graph failing transiently while the membership is added: the invocation
// fails (Service Bus redelivers), and the redelivery finishes the work once.
func TestTransientGraphFailureIsRedelivered(t *testing.T) {
	e := newEnv(t)
	e.send(access.TypeRequested, request("flaky-1", seed.UPN("n01"), "PT1H"))
	e.graph.FailNext("POST "+membersRef, 6, http.StatusServiceUnavailable, 0)
	e.send(access.TypeApproved, map[string]string{"requestId": "flaky-1", "approver": seed.UPN("p01")})
	v := e.mustGet("flaky-1")
	if v.State != "active" || !e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatalf("state %s, member %v; dead letters %d", v.State, e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01), len(e.host.DeadLetters()))
	}
	if v.has("membership-added") != 1 || v.has("approved") != 1 {
		t.Fatalf("history %v", v.types())
	}
	if len(e.host.DeadLetters()) != 0 {
		t.Fatal("dead-lettered")
	}
}

// Bad input is acknowledged, recorded as rejected, never retried.
func TestBadInputIsRecordedNotRetried(t *testing.T) {
	e := newEnv(t)
	e.sendRaw([]byte("this is not JSON"))
	e.sendRaw([]byte(`{"specversion":"1.0","id":"x1","source":"/e2e","type":"jit.access.exploded","data":{"requestId":"bad-1"}}`))
	e.send(access.TypeRequested, map[string]string{"requestId": "bad-2", "requester": seed.UPN("n01"), "profile": "no-such-profile"})
	e.send(access.TypeRequested, request("bad-3", seed.UPN("x01"), ""))
	e.send(access.TypeRequested, request("bad-4", seed.UPN("n01"), "PT9H"))
	e.send(access.TypeRequested, request("bad-5", seed.UPN("d01"), ""))
	if n := len(e.host.DeadLetters()); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
	for id, reason := range map[string]string{"bad-2": "unknown profile", "bad-3": "not a member", "bad-4": "longer than", "bad-5": "disabled"} {
		v := e.mustGet(id)
		if v.State != "rejected" || !strings.Contains(v.Reason, reason) {
			t.Errorf("%s: %s %q", id, v.State, v.Reason)
		}
	}
	if _, code := e.get("bad-1"); code != http.StatusNotFound {
		t.Errorf("unknown type for an unknown request must not create it: %d", code)
	}
	if n := e.graph.CountCalls("POST", "/members/$ref"); n != 0 {
		t.Fatalf("%d membership writes", n)
	}
}

// Self-approval is refused, the request stays pending and another approver can approve.
func TestSelfApprovalRefused(t *testing.T) {
	e := newEnv(t)
	e.send(access.TypeRequested, request("self-1", seed.UPN("a01"), "PT1H"))
	e.send(access.TypeApproved, map[string]string{"requestId": "self-1", "approver": strings.ToUpper(seed.UPN("a01"))})
	e.send(access.TypeApproved, map[string]string{"requestId": "self-1", "approver": seed.UserA01})
	v := e.mustGet("self-1")
	if v.State != "pending" || v.has("refused") != 2 || len(v.Approvals) != 0 {
		t.Fatalf("%s %v", v.State, v.types())
	}
	e.send(access.TypeApproved, map[string]string{"requestId": "self-1", "approver": seed.UPN("p02")}) // nested approver
	if v = e.mustGet("self-1"); v.State != "active" {
		t.Fatalf("%s %v", v.State, v.types())
	}
}

// Early revoke by an approver and cancel by the requester end grants the same way.
func TestRevokeAndCancelEndGrants(t *testing.T) {
	e := newEnv(t)
	e.send(access.TypeRequested, request("rv-1", seed.UPN("n01"), "PT1H"))
	e.send(access.TypeApproved, map[string]string{"requestId": "rv-1", "approver": seed.UPN("p01")})
	e.send(access.TypeRevoked, map[string]string{"requestId": "rv-1", "by": seed.UPN("p03"), "reason": "incident closed"})
	v := e.mustGet("rv-1")
	if v.State != "revoked" || e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || e.graph.RevokeCount(seed.UserN01) != 1 {
		t.Fatalf("revoke: %s %v", v.State, v.types())
	}
	e.send(access.TypeRequested, request("cx-1", seed.UPN("n02"), "PT1H"))
	e.send(access.TypeApproved, map[string]string{"requestId": "cx-1", "approver": seed.UPN("p01")})
	e.send(access.TypeCancelled, map[string]string{"requestId": "cx-1", "by": seed.UPN("p01")}) // not the requester
	if v = e.mustGet("cx-1"); v.State != "active" {
		t.Fatalf("cancel by other: %s", v.State)
	}
	e.send(access.TypeCancelled, map[string]string{"requestId": "cx-1", "by": seed.UserN02})
	if v = e.mustGet("cx-1"); v.State != "cancelled" || e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN02) || e.graph.RevokeCount(seed.UserN02) != 1 {
		t.Fatalf("cancel: %s %v", v.State, v.types())
	}
}

// A standing member keeps the access jitaccess did not give: nothing removed,
// no sessions revoked.
func TestPreExistingMembershipIsKept(t *testing.T) {
	e := newEnv(t)
	e.send(access.TypeRequested, map[string]string{"requestId": "pre-1", "requester": seed.UPN("s01"), "profile": "aks-admin-oncall", "duration": "PT1S"})
	v := e.mustGet("pre-1")
	if v.State != "active" || v.has("approved") != 0 || v.has("activated") != 1 {
		t.Fatalf("auto-approval: %s %v", v.State, v.types())
	}
	time.Sleep(1100 * time.Millisecond)
	e.sweep()
	v = e.mustGet("pre-1")
	if v.State != "expired" || !e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserS01) || e.graph.RevokeCount(seed.UserS01) != 0 {
		t.Fatalf("pre-existing: %s member=%v revokes=%d %v", v.State, e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserS01), e.graph.RevokeCount(seed.UserS01), v.types())
	}
}

// Approval timeout: a request nobody decides on times out at the sweep.
func TestApprovalTimesOut(t *testing.T) {
	e := newEnv(t)
	e.send(access.TypeRequested, request("to-1", seed.UPN("n01"), ""))
	time.Sleep(3100 * time.Millisecond)
	e.sweep()
	if v := e.mustGet("to-1"); v.State != "timedout" {
		t.Fatalf("%s", v.State)
	}
}

func TestHealthAndUnknownRequest(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.host.URL() + "/api/health")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"ok"`) {
		t.Fatalf("health %d %s", resp.StatusCode, b)
	}
	if _, code := e.get("never-heard-of"); code != http.StatusNotFound {
		t.Fatalf("unknown: %d", code)
	}
}

// Invalid settings stop the start with a message naming the setting.
func TestInvalidSettingsStopTheStart(t *testing.T) {
	cases := map[string][]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT": {"JIT_TABLES_CONNECTION_STRING=UseDevelopmentStorage=true", "JIT_PROFILES_FILE=testdata/profiles.json"},
		"JIT_TABLES_ENDPOINT":          {"FUNCTIONS_CUSTOMHANDLER_PORT=7999", "JIT_PROFILES_FILE=testdata/profiles.json"},
		"testdata/missing.json":        {"FUNCTIONS_CUSTOMHANDLER_PORT=7999", "JIT_TABLES_CONNECTION_STRING=UseDevelopmentStorage=true", "JIT_PROFILES_FILE=testdata/missing.json"},
		"JIT_GRAPH_BASE_URL":           {"FUNCTIONS_CUSTOMHANDLER_PORT=7999", "JIT_TABLES_CONNECTION_STRING=UseDevelopmentStorage=true", "JIT_PROFILES_FILE=testdata/profiles.json", "JIT_GRAPH_BASE_URL=ftp://x"},
		"JIT_READ_ROLE":                {"FUNCTIONS_CUSTOMHANDLER_PORT=7999", "JIT_TABLES_CONNECTION_STRING=UseDevelopmentStorage=true", "JIT_PROFILES_FILE=testdata/profiles.json", "JIT_READ_ROLE=Jit Access Read"},
	}
	for name, vars := range cases {
		cmd := exec.Command(binary)
		cmd.Env = vars
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%s: started", name)
			continue
		}
		if !strings.Contains(string(out), name) {
			t.Errorf("%s: message does not name it:\n%s", name, out)
		}
	}
}
