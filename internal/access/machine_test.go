package access

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func testProfile() *Profile {
	return &Profile{
		Name: "aks-admin", TargetGroupID: "g-admin",
		EligibleGroupIDs: []string{"g-default"}, ApproverGroupIDs: []string{"g-approvers"},
		ApprovalsRequired: 1, DefaultDuration: Duration(time.Hour), MaxDuration: Duration(8 * time.Hour),
		ApprovalTimeout: Duration(24 * time.Hour), RequireJustification: true,
		Activation: ActivationMembership, RevokeSessionsOnEnd: true, OutOfBand: OutOfBandRecord,
	}
}

func user(name string) Actor {
	return Actor{Asserted: name + "@contoso.com", ID: "id-" + name, UPN: name + "@contoso.com", Found: true, Enabled: true, InGroups: true}
}

var (
	n01 = user("n01") // requester
	p01 = user("p01") // approver
	p03 = user("p03") // second approver
)

// vocabulary is docs/design.md, Semantics's history type list.
var vocabulary = []string{HRequested, HRejected, HApproved, HRefused, HDenied, HActivated, HExpired, HRevoked,
	HCancelled, HTimedOut, HFailed, HMembershipAdded, HMembershipRemoved, HSessionsRevoked, HObserved, HOutOfBand}

func TestHistoryVocabulary(t *testing.T) {
	want := []string{"requested", "rejected", "approved", "refused", "denied", "activated", "expired", "revoked",
		"cancelled", "timedout", "failed", "membership-added", "membership-removed", "sessions-revoked", "observed", "outofband"}
	if !slices.Equal(vocabulary, want) {
		t.Fatalf("history vocabulary %v, docs/design.md, Semantics says %v", vocabulary, want)
	}
	for _, s := range []State{Expired, Revoked, Cancelled, Denied, TimedOut, Rejected, Failed} {
		if !slices.Contains(vocabulary, string(s)) {
			t.Fatalf("end state %s is not a history type", s)
		}
	}
}

// machine drives one request through the state machine.
type machine struct {
	t    *testing.T
	r    *Request
	p    *Profile
	seq  int
	last Outcome
}

func newMachine(t *testing.T, p *Profile) *machine { return &machine{t: t, p: p} }

func (m *machine) ev(typ string) Event {
	m.seq++
	return Event{ID: "ev-" + strings.TrimPrefix(typ, "jit.access.") + "-" + itoa(m.seq), Type: typ, Source: "/t", RequestID: "r-1"}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func requested(id string) Event {
	return Event{ID: id, Type: TypeRequested, Source: "/t", RequestID: "r-1", Requester: "n01@contoso.com",
		Profile: "aks-admin", Justification: "incident"}
}

// apply applies ev as a, checks that the input request was not modified and
// that history only uses the vocabulary of docs/design.md, Semantics, and keeps the result.
func (m *machine) apply(ev Event, a Actor, now time.Time) Outcome {
	m.t.Helper()
	var before []byte
	if m.r != nil {
		before, _ = json.Marshal(m.r)
	}
	next, out := Apply(m.r, Input{Event: ev, Actor: a, Profile: m.p, Now: now})
	if m.r != nil {
		after, _ := json.Marshal(m.r)
		if string(before) != string(after) {
			m.t.Fatalf("Apply modified its input request")
		}
	}
	if out.Duplicate && out.Changed {
		m.t.Fatalf("outcome both duplicate and changed: %+v", out)
	}
	if !out.Changed && m.r != nil && !reflect.DeepEqual(next, m.r) {
		m.t.Fatalf("unchanged outcome but a different request")
	}
	m.r, m.last = next, out
	checkVocabulary(m.t, m.r)
	return out
}

func (m *machine) request(now time.Time) {
	m.t.Helper()
	m.apply(requested("ev-req"), n01, now)
}

func (m *machine) approve(a Actor, now time.Time) Outcome {
	m.t.Helper()
	ev := m.ev(TypeApproved)
	ev.Approver, ev.Comment = a.Asserted, "ok"
	return m.apply(ev, a, now)
}

func (m *machine) deny(a Actor, now time.Time) Outcome {
	m.t.Helper()
	ev := m.ev(TypeDenied)
	ev.Approver, ev.Reason = a.Asserted, "not now"
	return m.apply(ev, a, now)
}

func (m *machine) cancel(a Actor, now time.Time) Outcome {
	m.t.Helper()
	ev := m.ev(TypeCancelled)
	ev.By = a.Asserted
	return m.apply(ev, a, now)
}

func (m *machine) revoke(a Actor, now time.Time) Outcome {
	m.t.Helper()
	ev := m.ev(TypeRevoked)
	ev.By, ev.Reason = a.Asserted, "incident over"
	return m.apply(ev, a, now)
}

func (m *machine) expire(now time.Time) Outcome {
	m.t.Helper()
	return m.apply(m.ev(TypeExpire), Actor{}, now)
}

func (m *machine) tick(now time.Time) Outcome {
	m.t.Helper()
	before, _ := json.Marshal(m.r)
	next, out := Tick(m.r, now)
	after, _ := json.Marshal(m.r)
	if string(before) != string(after) {
		m.t.Fatalf("Tick modified its input request")
	}
	m.r = next
	checkVocabulary(m.t, m.r)
	return out
}

// finish carries out the recorded work as a Graph that really changes
// membership (changed) would.
func (m *machine) finish(now time.Time, changed bool) {
	m.t.Helper()
	if m.r.Work == nil {
		m.t.Fatalf("no work to finish in state %s", m.r.State)
	}
	m.r.MembershipDone(now, changed, "")
	if m.r.Work != nil && m.r.Work.NeedsRevoke() {
		m.r.SessionsRevoked(now)
	}
	if m.r.Work != nil {
		m.t.Fatalf("work left after finishing: %+v", m.r.Work)
	}
	checkVocabulary(m.t, m.r)
}

func (m *machine) activate(now time.Time) {
	m.t.Helper()
	m.request(now)
	m.approve(p01, now)
	m.finish(now, true)
	m.wantState(Active)
}

func (m *machine) wantState(s State) {
	m.t.Helper()
	if m.r == nil {
		m.t.Fatalf("no request, want state %s", s)
	}
	if m.r.State != s {
		m.t.Fatalf("state %s, want %s (reason %q, history %v)", m.r.State, s, m.r.Reason, types(m.r))
	}
}

func (m *machine) wantHistory(want ...string) {
	m.t.Helper()
	if got := types(m.r); !slices.Equal(got, want) {
		m.t.Fatalf("history %v, want %v", got, want)
	}
}

func (m *machine) lastEntry() HistoryEntry { return m.r.History[len(m.r.History)-1] }

func types(r *Request) []string {
	var out []string
	for _, h := range r.History {
		out = append(out, h.Type)
	}
	return out
}

func checkVocabulary(t *testing.T, r *Request) {
	t.Helper()
	if r == nil {
		return
	}
	for _, h := range r.History {
		if !slices.Contains(vocabulary, h.Type) {
			t.Fatalf("history type %q is not in the history vocabulary", h.Type)
		}
	}
}

func TestLifecycleApproveActivateExpire(t *testing.T) {
	m := newMachine(t, testProfile())
	m.request(t0)
	m.wantState(Pending)
	m.wantHistory(HRequested)
	r := m.r
	if r.Requester != n01.ID || r.RequesterUPN != n01.UPN || r.GroupID != "g-admin" || r.Profile != "aks-admin" ||
		r.Source != SourceEvents || !r.RequestedAt.Equal(t0) || time.Duration(r.Duration) != time.Hour ||
		r.ApprovalsRequired != 1 || !r.RevokeSessionsOnEnd || !r.DueAt.Equal(t0.Add(24*time.Hour)) || r.Work != nil {
		t.Fatalf("pending request: %+v", r)
	}
	if r.History[0].EventID != "ev-req" || r.History[0].Actor != n01.UPN {
		t.Fatalf("requested entry: %+v", r.History[0])
	}

	approvedAt := t0.Add(20 * time.Minute)
	m.approve(p01, approvedAt)
	m.wantState(Activating)
	m.wantHistory(HRequested, HApproved, HActivated)
	r = m.r
	if !r.ActivatedAt.Equal(approvedAt) || !r.EndsAt.Equal(approvedAt.Add(time.Hour)) {
		t.Fatalf("clock must start at activation: activatedAt %v endsAt %v", r.ActivatedAt, r.EndsAt)
	}
	if r.Work == nil || r.Work.Goal != Active || r.Work.Membership != OpAdd || r.Work.MembershipDone || !r.Work.Since.Equal(approvedAt) {
		t.Fatalf("activation work: %+v", r.Work)
	}
	if len(r.Approvals) != 1 || r.Approvals[0].Approver != p01.ID || r.Approvals[0].Comment != "ok" {
		t.Fatalf("approvals: %+v", r.Approvals)
	}
	if !r.DueAt.Equal(approvedAt.Add(WorkGrace)) {
		t.Fatalf("DueAt %v: the sweep must look at unfinished work after WorkGrace", r.DueAt)
	}
	// Tick leaves work to the broker.
	if out := m.tick(approvedAt.Add(time.Hour)); out.Changed {
		t.Fatalf("Tick changed a request with work")
	}
	m.r.MembershipDone(approvedAt.Add(time.Second), true, "")
	m.wantState(Active)
	m.wantHistory(HRequested, HApproved, HActivated, HMembershipAdded)
	if m.r.Work != nil || !m.r.DueAt.Equal(m.r.EndsAt) {
		t.Fatalf("active: work %+v dueAt %v endsAt %v", m.r.Work, m.r.DueAt, m.r.EndsAt)
	}

	// Before the end: expire and tick do nothing.
	if out := m.expire(m.r.EndsAt.Add(-time.Second)); out.Changed {
		t.Fatalf("early expire changed the request: %+v", out)
	}
	if out := m.tick(m.r.EndsAt.Add(-time.Second)); out.Changed {
		t.Fatalf("early tick changed the request")
	}
	m.wantState(Active)

	end := m.r.EndsAt.Add(5 * time.Second)
	m.tick(end)
	m.wantState(Ending)
	m.wantHistory(HRequested, HApproved, HActivated, HMembershipAdded, HExpired)
	w := m.r.Work
	if w == nil || w.Goal != Expired || w.Membership != OpRemove || !w.RevokeSessions || !m.r.EndedAt.Equal(end) {
		t.Fatalf("ending: %+v work %+v", m.r, w)
	}
	if m.lastEntry().Actor != System {
		t.Fatalf("expiry actor %q", m.lastEntry().Actor)
	}
	m.r.MembershipDone(end, true, "")
	m.wantState(Ending)
	if !m.r.Work.NeedsRevoke() {
		t.Fatalf("removed membership with revokeSessionsOnEnd must need a revoke: %+v", m.r.Work)
	}
	m.r.SessionsRevoked(end)
	m.wantState(Expired)
	m.wantHistory(HRequested, HApproved, HActivated, HMembershipAdded, HExpired, HMembershipRemoved, HSessionsRevoked)
	if m.r.Work != nil || !m.r.DueAt.IsZero() || m.r.Reason != "" {
		t.Fatalf("expired: work %+v dueAt %v reason %q", m.r.Work, m.r.DueAt, m.r.Reason)
	}
}

func TestExpireEvent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		at    time.Duration // relative to endsAt
		state State
	}{
		{"before endsAt is a no-op", -time.Nanosecond, Active},
		{"at endsAt", 0, Ending},
		{"after endsAt", time.Hour, Ending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, testProfile())
			m.activate(t0)
			out := m.expire(m.r.EndsAt.Add(tc.at))
			m.wantState(tc.state)
			if tc.state == Active {
				if out.Changed || !out.Duplicate {
					t.Fatalf("early expire: %+v", out)
				}
				return
			}
			if m.r.Work.Goal != Expired {
				t.Fatalf("goal %s", m.r.Work.Goal)
			}
			m.finish(m.r.EndsAt.Add(tc.at), true)
			m.wantState(Expired)
		})
	}
	t.Run("pending is a no-op", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.request(t0)
		if out := m.expire(t0.Add(48 * time.Hour)); out.Changed {
			t.Fatalf("expire on pending: %+v", out)
		}
		m.wantState(Pending)
	})
	t.Run("unknown request", func(t *testing.T) {
		r, out := Apply(nil, Input{Event: Event{ID: "e", Type: TypeExpire, RequestID: "r-x"}, Now: t0})
		if r != nil || out.Changed {
			t.Fatalf("expire for nothing created %+v %+v", r, out)
		}
	})
	t.Run("activating past end", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.request(t0)
		m.approve(p01, t0)
		m.wantState(Activating)
		m.expire(t0.Add(2 * time.Hour))
		m.wantState(Ending)
		if m.r.Work.Membership != OpRemove || m.r.Work.Goal != Expired {
			t.Fatalf("work %+v", m.r.Work)
		}
	})
}

func TestApprovals(t *testing.T) {
	t.Run("N distinct approvers", func(t *testing.T) {
		p := testProfile()
		p.ApprovalsRequired = 2
		m := newMachine(t, p)
		m.request(t0)
		m.approve(p01, t0.Add(time.Minute))
		m.wantState(Pending)
		if out := m.approve(p01, t0.Add(2*time.Minute)); !out.Refused {
			t.Fatalf("same approver twice: %+v", out)
		}
		m.wantState(Pending)
		if len(m.r.Approvals) != 1 || !strings.Contains(m.lastEntry().Detail, "already approved") {
			t.Fatalf("approvals %+v last %+v", m.r.Approvals, m.lastEntry())
		}
		// The same person under another UPN spelling resolves to the same id.
		alias := p01
		alias.Asserted, alias.UPN = "P01@CONTOSO.COM", "P01@contoso.com"
		if out := m.approve(alias, t0.Add(3*time.Minute)); !out.Refused {
			t.Fatalf("same approver by another spelling: %+v", out)
		}
		m.approve(p03, t0.Add(4*time.Minute))
		m.wantState(Activating)
		m.wantHistory(HRequested, HApproved, HRefused, HRefused, HApproved, HActivated)
		if !m.r.ActivatedAt.Equal(t0.Add(4*time.Minute)) || len(m.r.Approvals) != 2 {
			t.Fatalf("activatedAt %v approvals %d", m.r.ActivatedAt, len(m.r.Approvals))
		}
	})

	disabled, unknown, guest, outsider := user("d02"), Actor{Asserted: "ghost@contoso.com"}, user("g01"), user("x01")
	disabled.Enabled = false
	guest.Guest = true
	outsider.InGroups = false
	self := n01
	self.InGroups = true // the requester may well be an approver too
	for _, tc := range []struct {
		name   string
		a      Actor
		reason string
	}{
		{"requester", self, "own request"},
		{"non-approver", outsider, "not a member of an approver group"},
		{"disabled", disabled, "disabled"},
		{"unknown", unknown, "not a user"},
		{"guest", guest, "guest"},
	} {
		t.Run("refused "+tc.name, func(t *testing.T) {
			m := newMachine(t, testProfile())
			m.request(t0)
			out := m.approve(tc.a, t0.Add(time.Minute))
			if !out.Refused || !out.Changed || !strings.Contains(out.Reason, tc.reason) {
				t.Fatalf("approve: %+v", out)
			}
			m.wantState(Pending)
			m.wantHistory(HRequested, HRefused)
			if e := m.lastEntry(); !strings.HasPrefix(e.Detail, "approved: ") || !strings.Contains(e.Detail, tc.reason) || e.EventID == "" {
				t.Fatalf("refused entry %+v", e)
			}
			if len(m.r.Approvals) != 0 || !m.r.ActivatedAt.IsZero() {
				t.Fatalf("refused approval counted: %+v", m.r.Approvals)
			}
			// A refused deny does not end the request either.
			if out := m.deny(tc.a, t0.Add(2*time.Minute)); !out.Refused {
				t.Fatalf("deny: %+v", out)
			}
			m.wantState(Pending)
			// ... and it can still be approved.
			m.approve(p01, t0.Add(3*time.Minute))
			m.wantState(Activating)
		})
	}
}

func TestDeny(t *testing.T) {
	m := newMachine(t, testProfile())
	m.request(t0)
	m.deny(p01, t0.Add(time.Minute))
	m.wantState(Denied)
	m.wantHistory(HRequested, HDenied)
	if m.r.Reason != "not now" || !m.r.EndedAt.Equal(t0.Add(time.Minute)) || !m.r.DueAt.IsZero() || m.r.Work != nil {
		t.Fatalf("denied: %+v", m.r)
	}
	// Deny without a reason still says why.
	m2 := newMachine(t, testProfile())
	m2.request(t0)
	ev := m2.ev(TypeDenied)
	ev.Approver = p01.Asserted
	m2.apply(ev, p01, t0)
	m2.wantState(Denied)
	if !strings.Contains(m2.r.Reason, p01.UPN) {
		t.Fatalf("reason %q", m2.r.Reason)
	}
}

func TestCancel(t *testing.T) {
	t.Run("pending by requester", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.request(t0)
		m.cancel(n01, t0.Add(time.Minute))
		m.wantState(Cancelled)
		m.wantHistory(HRequested, HCancelled)
		if m.r.Work != nil || !m.r.DueAt.IsZero() || !m.r.EndedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("%+v", m.r)
		}
	})
	t.Run("active by requester", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.activate(t0)
		m.cancel(n01, t0.Add(10*time.Minute))
		m.wantState(Ending)
		if w := m.r.Work; w == nil || w.Goal != Cancelled || w.Membership != OpRemove || !w.RevokeSessions {
			t.Fatalf("work %+v", w)
		}
		if e := m.lastEntry(); e.Type != HCancelled || e.EventID == "" || e.Actor != n01.UPN {
			t.Fatalf("entry %+v", e)
		}
		m.finish(t0.Add(10*time.Minute), true)
		m.wantState(Cancelled)
		m.wantHistory(HRequested, HApproved, HActivated, HMembershipAdded, HCancelled, HMembershipRemoved, HSessionsRevoked)
	})
	notRequester := []Actor{p01, {Asserted: "ghost@contoso.com"}, user("x01")}
	for _, a := range notRequester {
		t.Run("refused for "+a.Asserted, func(t *testing.T) {
			m := newMachine(t, testProfile())
			m.request(t0)
			if out := m.cancel(a, t0); !out.Refused {
				t.Fatalf("cancel by %s on pending: %+v", a.Asserted, out)
			}
			m.wantState(Pending)
			m.approve(p01, t0)
			m.finish(t0, true)
			if out := m.cancel(a, t0); !out.Refused {
				t.Fatalf("cancel by %s on active: %+v", a.Asserted, out)
			}
			m.wantState(Active)
			m.wantHistory(HRequested, HRefused, HApproved, HActivated, HMembershipAdded, HRefused)
		})
	}
}

func TestRevoke(t *testing.T) {
	t.Run("pending", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.request(t0)
		m.revoke(p01, t0.Add(time.Minute))
		m.wantState(Revoked)
		m.wantHistory(HRequested, HRevoked)
		if m.r.Reason != "incident over" || m.r.Work != nil || !m.r.DueAt.IsZero() {
			t.Fatalf("%+v", m.r)
		}
	})
	t.Run("active", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.activate(t0)
		m.revoke(p01, t0.Add(time.Minute))
		m.wantState(Ending)
		if w := m.r.Work; w.Goal != Revoked || w.Membership != OpRemove || m.r.Reason != "incident over" {
			t.Fatalf("work %+v reason %q", w, m.r.Reason)
		}
		m.finish(t0.Add(time.Minute), true)
		m.wantState(Revoked)
		m.wantHistory(HRequested, HApproved, HActivated, HMembershipAdded, HRevoked, HMembershipRemoved, HSessionsRevoked)
	})
	t.Run("activating", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.request(t0)
		m.approve(p01, t0)
		m.revoke(p01, t0.Add(time.Second))
		m.wantState(Ending)
		if m.r.Work.Membership != OpRemove {
			t.Fatalf("work %+v", m.r.Work)
		}
	})
	outsider, disabled := user("x01"), user("d02")
	outsider.InGroups = false
	disabled.Enabled = false
	for _, a := range []Actor{outsider, disabled, {Asserted: "ghost@contoso.com"}} {
		t.Run("refused for "+a.Asserted, func(t *testing.T) {
			m := newMachine(t, testProfile())
			m.request(t0)
			if out := m.revoke(a, t0); !out.Refused {
				t.Fatalf("revoke on pending: %+v", out)
			}
			m.wantState(Pending)
			m.approve(p01, t0)
			m.finish(t0, true)
			if out := m.revoke(a, t0); !out.Refused {
				t.Fatalf("revoke on active: %+v", out)
			}
			m.wantState(Active)
		})
	}
}

func TestTick(t *testing.T) {
	t.Run("approval timeout", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.request(t0)
		if out := m.tick(t0.Add(24*time.Hour - time.Second)); out.Changed {
			t.Fatalf("timed out early")
		}
		m.tick(t0.Add(24 * time.Hour))
		m.wantState(TimedOut)
		m.wantHistory(HRequested, HTimedOut)
		if m.r.Reason == "" || !m.r.DueAt.IsZero() || !m.r.EndedAt.Equal(t0.Add(24*time.Hour)) {
			t.Fatalf("%+v", m.r)
		}
		// A late approval is refused.
		if out := m.approve(p01, t0.Add(25*time.Hour)); !out.Refused {
			t.Fatalf("approval after timeout: %+v", out)
		}
		m.wantState(TimedOut)
	})
	t.Run("custom approval timeout", func(t *testing.T) {
		p := testProfile()
		p.ApprovalTimeout = Duration(5 * time.Second)
		m := newMachine(t, p)
		m.request(t0)
		m.tick(t0.Add(5 * time.Second))
		m.wantState(TimedOut)
	})
	t.Run("active past end", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.activate(t0)
		m.tick(t0.Add(3 * time.Hour))
		m.wantState(Ending)
		if m.r.Work.Goal != Expired {
			t.Fatalf("goal %s", m.r.Work.Goal)
		}
		m.finish(t0.Add(3*time.Hour), true)
		m.wantState(Expired)
	})
	t.Run("awaiting past TTL", func(t *testing.T) {
		m := newMachine(t, testProfile())
		ev := m.ev(TypeApproved)
		ev.Approver = p01.Asserted
		m.apply(ev, p01, t0)
		m.wantState(Awaiting)
		if !m.r.DueAt.Equal(t0.Add(AwaitTTL)) {
			t.Fatalf("awaiting due %v", m.r.DueAt)
		}
		if out := m.tick(t0.Add(AwaitTTL - time.Second)); out.Changed {
			t.Fatalf("rejected early")
		}
		m.tick(t0.Add(AwaitTTL))
		m.wantState(Rejected)
		m.wantHistory(HRejected)
		if !m.r.DueAt.IsZero() {
			t.Fatalf("due %v", m.r.DueAt)
		}
	})
	t.Run("ended with a stale due time", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.request(t0)
		m.deny(p01, t0)
		m.r.DueAt = t0
		if out := m.tick(t0.Add(time.Second)); !out.Changed || !m.r.DueAt.IsZero() {
			t.Fatalf("stale due not cleared: %+v", m.r)
		}
		m.wantState(Denied)
		m.wantHistory(HRequested, HDenied)
	})
	t.Run("nothing due", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.request(t0)
		m.r.DueAt = time.Time{}
		if out := m.tick(t0.Add(100 * time.Hour)); out.Changed {
			t.Fatalf("tick with zero DueAt changed the request")
		}
	})
}

// endedIn brings a request to each final state.
func endedIn(t *testing.T, s State) *machine {
	m := newMachine(t, testProfile())
	switch s {
	case Expired:
		m.activate(t0)
		m.expire(t0.Add(2 * time.Hour))
		m.finish(t0.Add(2*time.Hour), true)
	case Revoked:
		m.activate(t0)
		m.revoke(p01, t0)
		m.finish(t0, true)
	case Cancelled:
		m.request(t0)
		m.cancel(n01, t0)
	case Denied:
		m.request(t0)
		m.deny(p01, t0)
	case TimedOut:
		m.request(t0)
		m.tick(t0.Add(48 * time.Hour))
	case Rejected:
		m.p = nil
		m.request(t0)
		m.p = testProfile()
	case Failed:
		m.request(t0)
		m.approve(p01, t0)
		m.r.Fail(t0, "adding the membership failed permanently: 403")
	}
	m.wantState(s)
	return m
}

func TestEndedRequestsRefuseEverything(t *testing.T) {
	for _, s := range []State{Expired, Revoked, Cancelled, Denied, TimedOut, Rejected, Failed} {
		t.Run(string(s), func(t *testing.T) {
			m := endedIn(t, s)
			endedAt, reason := m.r.EndedAt, m.r.Reason
			n := len(m.r.History)
			for _, act := range []func() Outcome{
				func() Outcome { return m.approve(p01, t0.Add(time.Hour)) },
				func() Outcome { return m.approve(p03, t0.Add(time.Hour)) },
				func() Outcome { return m.deny(p01, t0.Add(time.Hour)) },
				func() Outcome { return m.cancel(n01, t0.Add(time.Hour)) },
				func() Outcome { return m.revoke(p01, t0.Add(time.Hour)) },
			} {
				out := act()
				if !out.Refused || !out.Changed {
					t.Fatalf("action on %s: %+v", s, out)
				}
				m.wantState(s)
				n++
				if len(m.r.History) != n || m.lastEntry().Type != HRefused || !strings.Contains(m.lastEntry().Detail, string(s)) {
					t.Fatalf("history %v last %+v", types(m.r), m.lastEntry())
				}
			}
			if out := m.expire(t0.Add(10 * time.Hour)); out.Changed {
				t.Fatalf("expire on %s changed it", s)
			}
			if m.r.Work != nil || !m.r.EndedAt.Equal(endedAt) || m.r.Reason != reason || !m.r.State.Ended() {
				t.Fatalf("ended request changed: %+v", m.r)
			}
		})
	}
}

func TestRequestedRejections(t *testing.T) {
	disabled, guest, outsider := n01, n01, n01
	disabled.Enabled = false
	guest.Guest = true
	outsider.InGroups = false
	ticketProfile := testProfile()
	ticketProfile.RequireTicket = true
	for _, tc := range []struct {
		name   string
		p      *Profile
		a      Actor
		edit   func(*Event)
		reason string
	}{
		{"unknown profile", nil, n01, nil, "unknown profile"},
		{"requester not found", testProfile(), Actor{Asserted: "n01@contoso.com"}, nil, "not a user"},
		{"requester disabled", testProfile(), disabled, nil, "disabled"},
		{"requester guest", testProfile(), guest, nil, "guest"},
		{"requester not eligible", testProfile(), outsider, nil, "not a member of any group eligible"},
		{"duration over max", testProfile(), n01, func(e *Event) { e.Duration = "PT8H1S" }, "longer than the profile's maximum"},
		{"missing justification", testProfile(), n01, func(e *Event) { e.Justification = "" }, "justification is required"},
		{"blank justification", testProfile(), n01, func(e *Event) { e.Justification = "  \n" }, "justification is required"},
		{"missing ticket", ticketProfile, n01, nil, "ticket is required"},
		{"unparsable duration", testProfile(), n01, func(e *Event) { e.Duration = "P1M" }, "duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, tc.p)
			ev := requested("ev-req")
			if tc.edit != nil {
				tc.edit(&ev)
			}
			out := m.apply(ev, tc.a, t0)
			if !out.Rejected || !out.Changed || !strings.Contains(out.Reason, tc.reason) {
				t.Fatalf("outcome %+v, want rejection containing %q", out, tc.reason)
			}
			m.wantState(Rejected)
			m.wantHistory(HRejected)
			r := m.r
			if r.ID != "r-1" || r.Reason != out.Reason || !r.EndedAt.Equal(t0) || !r.DueAt.IsZero() || r.Work != nil || !r.RequestedAt.Equal(t0) {
				t.Fatalf("rejected request: %+v", r)
			}
			if r.History[0].EventID != "ev-req" || r.History[0].Detail != out.Reason {
				t.Fatalf("rejected entry %+v", r.History[0])
			}
			// The event is remembered: a redelivery is a duplicate.
			if out := m.apply(ev, tc.a, t0.Add(time.Minute)); !out.Duplicate {
				t.Fatalf("redelivery: %+v", out)
			}
		})
	}
	t.Run("duration at max accepted", func(t *testing.T) {
		m := newMachine(t, testProfile())
		ev := requested("ev-req")
		ev.Duration = "PT8H"
		m.apply(ev, n01, t0)
		m.wantState(Pending)
		if time.Duration(m.r.Duration) != 8*time.Hour {
			t.Fatalf("duration %v", m.r.Duration)
		}
	})
	t.Run("default duration", func(t *testing.T) {
		p := testProfile()
		p.DefaultDuration = Duration(90 * time.Minute)
		m := newMachine(t, p)
		m.request(t0)
		if time.Duration(m.r.Duration) != 90*time.Minute {
			t.Fatalf("duration %v, want the profile default", m.r.Duration)
		}
		m.approve(p01, t0.Add(time.Hour))
		if !m.r.EndsAt.Equal(t0.Add(time.Hour + 90*time.Minute)) {
			t.Fatalf("endsAt %v", m.r.EndsAt)
		}
	})
	t.Run("justification optional", func(t *testing.T) {
		p := testProfile()
		p.RequireJustification = false
		m := newMachine(t, p)
		ev := requested("ev-req")
		ev.Justification = ""
		m.apply(ev, n01, t0)
		m.wantState(Pending)
	})
}

func TestAutoApproval(t *testing.T) {
	p := testProfile()
	p.ApprovalsRequired = 0
	m := newMachine(t, p)
	m.request(t0)
	m.wantState(Activating)
	m.wantHistory(HRequested, HActivated)
	if len(m.r.Approvals) != 0 || !m.r.ActivatedAt.Equal(t0) || !m.r.EndsAt.Equal(t0.Add(time.Hour)) || m.r.Work == nil || m.r.Work.Membership != OpAdd {
		t.Fatalf("auto-approved: %+v", m.r)
	}
	if !strings.Contains(m.r.History[1].Detail, "auto-approved") || m.r.History[1].Actor != System {
		t.Fatalf("activated entry %+v", m.r.History[1])
	}
	m.finish(t0, true)
	m.wantState(Active)
	m.wantHistory(HRequested, HActivated, HMembershipAdded)
	if out := m.approve(p01, t0); !out.Refused {
		t.Fatalf("approval of an auto-approved grant: %+v", out)
	}
}

func TestClockStartsAtActivation(t *testing.T) {
	m := newMachine(t, testProfile())
	m.request(t0)
	act := t0.Add(7 * time.Hour) // long after the request
	m.approve(p01, act)
	if !m.r.RequestedAt.Equal(t0) || !m.r.ActivatedAt.Equal(act) || !m.r.EndsAt.Equal(act.Add(time.Hour)) {
		t.Fatalf("requestedAt %v activatedAt %v endsAt %v", m.r.RequestedAt, m.r.ActivatedAt, m.r.EndsAt)
	}
	// The CloudEvent time is never used for timing.
	m2 := newMachine(t, testProfile())
	ev := requested("ev-req")
	ev.Time = t0.Add(-100 * time.Hour)
	m2.apply(ev, n01, t0)
	m2.tick(t0.Add(23 * time.Hour))
	m2.wantState(Pending)
}

func TestDuplicates(t *testing.T) {
	t.Run("same CloudEvent id", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.request(t0)
		ev := m.ev(TypeApproved)
		ev.Approver = p01.Asserted
		m.apply(ev, p01, t0)
		snap := m.r.Clone()
		// Even a different actor or time changes nothing: the id decides.
		if out := m.apply(ev, p03, t0.Add(time.Hour)); !out.Duplicate || out.Changed {
			t.Fatalf("redelivery: %+v", out)
		}
		if !reflect.DeepEqual(snap, m.r) {
			t.Fatalf("duplicate changed the request")
		}
		// A refused event is remembered too.
		bad := m.ev(TypeCancelled)
		bad.By = p01.Asserted
		m.apply(bad, p01, t0)
		n := len(m.r.History)
		if out := m.apply(bad, p01, t0); !out.Duplicate || len(m.r.History) != n {
			t.Fatalf("refused redelivery: %+v", out)
		}
	})
	t.Run("same requestId same content", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.request(t0)
		snap := m.r.Clone()
		out := m.apply(requested("ev-req-again"), n01, t0.Add(time.Minute))
		if !out.Duplicate || out.Changed || !reflect.DeepEqual(snap, m.r) {
			t.Fatalf("same content: %+v", out)
		}
		// The requester named by object id instead of UPN is the same content.
		ev := requested("ev-req-oid")
		ev.Requester = n01.ID
		if out := m.apply(ev, n01, t0); !out.Duplicate {
			t.Fatalf("same requester by object id: %+v", out)
		}
	})
	t.Run("same requestId different content", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.request(t0)
		m.approve(p01, t0)
		m.finish(t0, true)
		before := m.r.Clone()
		ev := requested("ev-req-other")
		ev.Justification = "something else"
		out := m.apply(ev, n01, t0.Add(time.Minute))
		if !out.Rejected || !out.Changed {
			t.Fatalf("different content: %+v", out)
		}
		m.wantState(Active)
		if e := m.lastEntry(); e.Type != HRejected || e.EventID != "ev-req-other" {
			t.Fatalf("entry %+v", e)
		}
		if m.r.Justification != before.Justification || !m.r.EndsAt.Equal(before.EndsAt) || m.r.Fingerprint != before.Fingerprint ||
			len(m.r.History) != len(before.History)+1 {
			t.Fatalf("state changed by a conflicting request")
		}
		other := n01
		other.ID, other.UPN = "id-n02", "n02@contoso.com"
		if out := m.apply(requested("ev-req-n02"), other, t0); !out.Rejected {
			t.Fatalf("other requester: %+v", out)
		}
	})
}

func TestOutOfOrder(t *testing.T) {
	type step struct {
		typ string
		a   Actor
	}
	run := func(t *testing.T, p *Profile, early []step, inOrder bool) *machine {
		m := newMachine(t, p)
		mk := func(s step) Event {
			ev := m.ev(s.typ)
			switch s.typ {
			case TypeApproved, TypeDenied:
				ev.Approver = s.a.Asserted
			default:
				ev.By = s.a.Asserted
			}
			return ev
		}
		now := t0
		if inOrder {
			m.request(now)
			for _, s := range early {
				now = now.Add(time.Second)
				m.apply(mk(s), s.a, now)
			}
			return m
		}
		for _, s := range early {
			now = now.Add(time.Second)
			out := m.apply(mk(s), s.a, now)
			if !out.Changed {
				t.Fatalf("early event not parked: %+v", out)
			}
			m.wantState(Awaiting)
		}
		if len(m.r.Parked) != len(early) || m.r.Parked[0].Actor.ID != early[0].a.ID {
			t.Fatalf("parked %+v", m.r.Parked)
		}
		m.request(now.Add(time.Second))
		if len(m.r.Parked) != 0 {
			t.Fatalf("parked events left: %+v", m.r.Parked)
		}
		return m
	}
	two := testProfile()
	two.ApprovalsRequired = 2
	for _, tc := range []struct {
		name  string
		p     *Profile
		early []step
		want  State
	}{
		{"approval", testProfile(), []step{{TypeApproved, p01}}, Activating},
		{"two approvals", two, []step{{TypeApproved, p01}, {TypeApproved, p03}}, Activating},
		{"cancel", testProfile(), []step{{TypeCancelled, n01}}, Cancelled},
		{"deny", testProfile(), []step{{TypeDenied, p01}}, Denied},
		{"revoke", testProfile(), []step{{TypeRevoked, p01}}, Revoked},
		{"self approval stays refused", testProfile(), []step{{TypeApproved, n01}}, Pending},
		{"approve then cancel", testProfile(), []step{{TypeApproved, p01}, {TypeCancelled, n01}}, Ending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := run(t, tc.p, tc.early, true)
			b := run(t, tc.p, tc.early, false)
			a.wantState(tc.want)
			b.wantState(tc.want)
			if !slices.Equal(types(a.r), types(b.r)) {
				t.Fatalf("history in order %v, out of order %v", types(a.r), types(b.r))
			}
			if len(a.r.Approvals) != len(b.r.Approvals) || a.r.Requester != b.r.Requester || a.r.Reason != b.r.Reason ||
				(a.r.Work == nil) != (b.r.Work == nil) {
				t.Fatalf("in order %+v\nout of order %+v", a.r, b.r)
			}
			if b.r.State == Activating && !b.r.EndsAt.Equal(b.r.ActivatedAt.Add(time.Hour)) {
				t.Fatalf("endsAt %v activatedAt %v", b.r.EndsAt, b.r.ActivatedAt)
			}
			// The parked events' ids are remembered: their redelivery is a duplicate.
			for _, id := range a.r.EventIDs {
				if !slices.Contains(b.r.EventIDs, id) {
					t.Fatalf("event id %s forgotten", id)
				}
			}
		})
	}
	t.Run("parked redelivery is a duplicate", func(t *testing.T) {
		m := newMachine(t, testProfile())
		ev := m.ev(TypeApproved)
		ev.Approver = p01.Asserted
		m.apply(ev, p01, t0)
		if out := m.apply(ev, p01, t0); !out.Duplicate || len(m.r.Parked) != 1 {
			t.Fatalf("%+v parked %d", out, len(m.r.Parked))
		}
		m.request(t0)
		if out := m.apply(ev, p01, t0); !out.Duplicate {
			t.Fatalf("after replay: %+v", out)
		}
		m.wantState(Activating)
		if len(m.r.Approvals) != 1 {
			t.Fatalf("approvals %d", len(m.r.Approvals))
		}
	})
	t.Run("parked events die with a rejected request", func(t *testing.T) {
		m := newMachine(t, testProfile())
		ev := m.ev(TypeApproved)
		ev.Approver = p01.Asserted
		m.apply(ev, p01, t0)
		outsider := n01
		outsider.InGroups = false
		m.apply(requested("ev-req"), outsider, t0)
		m.wantState(Rejected)
		m.wantHistory(HRejected, HRefused)
	})
	t.Run("expire before request is a no-op", func(t *testing.T) {
		m := newMachine(t, testProfile())
		ev := m.ev(TypeApproved)
		ev.Approver = p01.Asserted
		m.apply(ev, p01, t0)
		if out := m.expire(t0); out.Changed {
			t.Fatalf("expire on awaiting: %+v", out)
		}
		m.wantState(Awaiting)
	})
}

func TestMembershipDone(t *testing.T) {
	t.Run("pre-existing on add", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.request(t0)
		m.approve(p01, t0)
		m.r.MembershipDone(t0, false, "already a member")
		m.wantState(Active)
		// Stored history is append-only: the explanation is an entry of its own.
		m.wantHistory(HRequested, HApproved, HActivated, HNote)
		if !strings.Contains(m.r.History[3].Detail, "already a member") {
			t.Fatalf("detail %q", m.r.History[3].Detail)
		}
	})
	t.Run("nothing removed: no sessions revoked", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.activate(t0)
		m.expire(t0.Add(time.Hour))
		m.r.MembershipDone(t0.Add(time.Hour), false, "membership kept: still granted by r-2")
		if m.r.Work != nil {
			t.Fatalf("work left: %+v", m.r.Work)
		}
		m.wantState(Expired)
		m.wantHistory(HRequested, HApproved, HActivated, HMembershipAdded, HExpired, HNote)
		if !strings.Contains(m.lastEntry().Detail, "still granted") {
			t.Fatalf("detail %q", m.lastEntry().Detail)
		}
	})
	t.Run("removed without revokeSessionsOnEnd", func(t *testing.T) {
		p := testProfile()
		p.RevokeSessionsOnEnd = false
		m := newMachine(t, p)
		m.activate(t0)
		m.revoke(p01, t0)
		m.r.MembershipDone(t0, true, "")
		m.wantState(Revoked)
		m.wantHistory(HRequested, HApproved, HActivated, HMembershipAdded, HRevoked, HMembershipRemoved)
	})
	t.Run("profile change does not alter a running request", func(t *testing.T) {
		m := newMachine(t, testProfile())
		m.activate(t0)
		m.p = testProfile()
		m.p.RevokeSessionsOnEnd = false
		m.p.MaxDuration = Duration(time.Minute)
		m.expire(t0.Add(time.Hour))
		if !m.r.Work.RevokeSessions {
			t.Fatalf("revokeSessions taken from the changed profile")
		}
	})
}

func TestFailAndRetry(t *testing.T) {
	m := newMachine(t, testProfile())
	m.request(t0)
	m.approve(p01, t0)
	due := m.r.DueAt
	prev := time.Duration(0)
	for i := 1; i <= 10; i++ {
		m.r.Retry(t0)
		d := m.r.DueAt.Sub(t0)
		if m.r.Work.Attempts != i || d < prev || d > 15*time.Minute || !m.r.DueAt.After(due) {
			t.Fatalf("attempt %d: backoff %v (previous %v)", i, d, prev)
		}
		prev = d
	}
	if prev != 15*time.Minute {
		t.Fatalf("backoff cap %v", prev)
	}
	m.r.Fail(t0.Add(time.Minute), "adding the membership failed permanently: forbidden")
	m.wantState(Failed)
	m.wantHistory(HRequested, HApproved, HActivated, HFailed)
	if m.r.Work != nil || !m.r.DueAt.IsZero() || m.r.Reason == "" || !m.r.EndedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("failed: %+v", m.r)
	}
	// Failing during the end keeps the decided end time.
	m2 := newMachine(t, testProfile())
	m2.activate(t0)
	m2.revoke(p01, t0.Add(time.Minute))
	m2.r.Fail(t0.Add(time.Hour), "removing the membership failed permanently")
	if !m2.r.EndedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("endedAt %v", m2.r.EndedAt)
	}
}

// A request survives a JSON round trip (what the stores do) unchanged.
func TestRequestJSONRoundTrip(t *testing.T) {
	m := newMachine(t, testProfile())
	ev := m.ev(TypeApproved)
	ev.Approver = p01.Asserted
	m.apply(ev, p01, t0)
	m.request(t0)
	m.r.Duration = Duration(31 * 24 * time.Hour)
	b, err := json.Marshal(m.r)
	if err != nil {
		t.Fatal(err)
	}
	var back Request
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if back.Duration != m.r.Duration || back.State != m.r.State || len(back.History) != len(m.r.History) || *back.Work != *m.r.Work {
		t.Fatalf("round trip: %+v", back)
	}
}
