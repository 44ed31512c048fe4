package graph

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/graphsim"
	"github.com/jitaccess/jitaccess/internal/seed"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Now().UTC()} }
func apiCode(err error) (code string) {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

func TestPIMAssignExpireRemove(t *testing.T) {
	clk := newClock()
	e := newEnv(t, graphsim.Options{Now: clk.Now}, Options{})
	e.sim.SetPIMPolicy(seed.GroupAKSOps, graphsim.PIMPolicy{MaxDuration: 8 * time.Hour, RequireJustification: true})
	ctx := ctxT(t)

	id, already, err := e.c.AssignPIM(ctx, seed.GroupAKSOps, seed.UserN01, 3*time.Second, "INC-1")
	if err != nil || already || len(id) != 36 {
		t.Fatalf("assign: %q %v %v", id, already, err)
	}
	// The body: adminAssign, member, afterDuration PT3S (not kiota's "P").
	body := string(e.sim.CallsTo("POST", "/assignmentScheduleRequests")[0].Body)
	for _, want := range []string{`"action":"adminAssign"`, `"accessId":"member"`, `"type":"afterDuration"`, `"duration":"PT3S"`, `"principalId":"` + seed.UserN01, `"groupId":"` + seed.GroupAKSOps} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %s: %s", want, body)
		}
	}
	if !e.sim.IsDirectMember(seed.GroupAKSOps, seed.UserN01) {
		t.Fatal("not a member after assign")
	}
	end, ok, err := e.c.PIMEndTime(ctx, seed.GroupAKSOps, seed.UserN01)
	if err != nil || !ok || end.Sub(clk.Now()) > 3*time.Second || end.Sub(clk.Now()) < 2*time.Second {
		t.Fatalf("end %v ok %v err %v (now %v)", end, ok, err, clk.Now())
	}
	q := e.sim.CallsTo("GET", "/assignmentScheduleInstances")[0].Query
	if !strings.Contains(q, "$filter=") || !strings.Contains(q, "accessId") {
		t.Fatalf("query %s", q)
	}

	// Again: RoleAssignmentExists → already assigned.
	if id, already, err := e.c.AssignPIM(ctx, seed.GroupAKSOps, seed.UserN01, time.Hour, "INC-1"); err != nil || !already || id != "" {
		t.Fatalf("second assign: %q %v %v", id, already, err)
	}

	// PIM ends it.
	clk.Add(4 * time.Second)
	if _, ok, err := e.c.PIMEndTime(ctx, seed.GroupAKSOps, seed.UserN01); err != nil || ok {
		t.Fatalf("after end: ok %v err %v", ok, err)
	}
	if e.sim.IsDirectMember(seed.GroupAKSOps, seed.UserN01) {
		t.Fatal("still a member after the end")
	}
	// Removing what is gone is success.
	if err := e.c.RemovePIM(ctx, seed.GroupAKSOps, seed.UserN01); err != nil {
		t.Fatal(err)
	}

	// Early removal.
	if _, _, err := e.c.AssignPIM(ctx, seed.GroupAKSOps, seed.UserN01, time.Hour, "INC-2"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.RemovePIM(ctx, seed.GroupAKSOps, seed.UserN01); err != nil {
		t.Fatal(err)
	}
	if e.sim.IsDirectMember(seed.GroupAKSOps, seed.UserN01) || len(e.sim.PIMAssignments()) != 0 {
		t.Fatal("remove left the member")
	}
}

func TestPIMPolicyRefusals(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	e.sim.SetPIMPolicy(seed.GroupAKSOps, graphsim.PIMPolicy{MaxDuration: time.Hour, RequireJustification: true})
	ctx := ctxT(t)
	cases := []struct {
		name, group string
		d           time.Duration
		just, code  string
		kind        error
	}{
		{"over max", seed.GroupAKSOps, 2 * time.Hour, "x", CodePolicyValidationFailed, fault.ErrPermanent},
		{"no justification", seed.GroupAKSOps, time.Minute, "", CodePolicyValidationFailed, fault.ErrPermanent},
		{"not under PIM", seed.GroupAKSAdmin, time.Minute, "x", CodeInvalidRequest, fault.ErrPermanent},
		{"unknown group", "1c1a0000-0000-4000-8000-0000000000ff", time.Minute, "x", "Request_ResourceNotFound", fault.ErrNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := e.c.AssignPIM(ctx, c.group, seed.UserN01, c.d, c.just)
			if !errors.Is(err, c.kind) || apiCode(err) != c.code {
				t.Fatalf("err %v (code %q)", err, apiCode(err))
			}
		})
	}
	var ae *APIError
	_, _, err := e.c.AssignPIM(ctx, seed.GroupAKSOps, seed.UserN01, time.Minute, "")
	if !errors.As(err, &ae) || !strings.Contains(ae.Message, "JustificationRule") {
		t.Fatalf("message: %v", err)
	}
	if e.sim.IsDirectMember(seed.GroupAKSOps, seed.UserN01) {
		t.Fatal("refused request changed membership")
	}
}

// TestPIMThrottledThenAssigned: adminAssign is routine work (a 429 is not
// retried in place: transient, with Retry-After), adminRemove is ending
// work (it waits for the Retry-After and retries).
func TestPIMThrottledThenAssigned(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	e.sim.SetPIMPolicy(seed.GroupAKSOps, graphsim.PIMPolicy{})
	e.sim.FailNext("POST /assignmentScheduleRequests", 1, 429, time.Second)
	_, _, err := e.c.AssignPIM(ctxT(t), seed.GroupAKSOps, seed.UserN01, time.Minute, "")
	var fe *fault.Error
	if !fault.Transient(err) || !errors.As(err, &fe) || fe.RetryAfter != time.Second {
		t.Fatalf("throttled assign: %v", err)
	}
	if n := e.sim.CountCalls("POST", "/assignmentScheduleRequests"); n != 1 {
		t.Fatalf("%d calls", n)
	}
	// The redelivery, after the Retry-After, assigns.
	time.Sleep(fe.RetryAfter)
	id, already, err := e.c.AssignPIM(ctxT(t), seed.GroupAKSOps, seed.UserN01, time.Minute, "")
	if err != nil || already || id == "" {
		t.Fatalf("%q %v %v", id, already, err)
	}
	e.sim.ResetCalls()
	e.sim.FailNext("POST /assignmentScheduleRequests", 1, 429, 10*time.Millisecond)
	if err := e.c.RemovePIM(ctxT(t), seed.GroupAKSOps, seed.UserN01); err != nil {
		t.Fatalf("throttled remove: %v", err)
	}
	if n := e.sim.CountCalls("POST", "/assignmentScheduleRequests"); n != 2 || e.sim.IsDirectMember(seed.GroupAKSOps, seed.UserN01) {
		t.Fatalf("%d calls", n)
	}
	if _, _, err := e.c.AssignPIM(ctxT(t), seed.GroupAKSOps, seed.UserN01, time.Minute, ""); err != nil {
		t.Fatal(err)
	}
	// A 500 on a write is ambiguous: not retried, transient.
	e.sim.FailNext("POST /assignmentScheduleRequests", 1, 500, 0)
	if err := e.c.RemovePIM(ctxT(t), seed.GroupAKSOps, seed.UserN01); !fault.Transient(err) {
		t.Fatalf("500: %v", err)
	}
}

func TestPIMEndTimeRefusesNonGUIDs(t *testing.T) {
	e := newEnv(t, graphsim.Options{}, Options{})
	if _, _, err := e.c.PIMEndTime(ctxT(t), "x' or 1 eq 1", seed.UserN01); !fault.NotFound(err) {
		t.Fatalf("%v", err)
	}
	if n := e.sim.CountCalls("GET", "/assignmentScheduleInstances"); n != 0 {
		t.Fatalf("%d calls", n)
	}
}
