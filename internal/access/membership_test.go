package access

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	m0   = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	mine = Claim{Token: "tok-mine", Now: m0}
)

func ledgerWith(mod func(*Ledger)) *Ledger {
	l := &Ledger{GroupID: "g", UserID: "u"}
	if mod != nil {
		mod(l)
	}
	return l
}

func TestPlanAdd(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ledger func(*Ledger)
		want   Decision
		check  func(*testing.T, *Ledger)
	}{
		{"first grant claims and calls Graph", nil, Decision{Next: Call}, func(t *testing.T, l *Ledger) {
			if l.ClaimedBy != "r" || l.ClaimOp != OpAdd || l.ClaimToken != mine.Token || !l.ClaimedAt.Equal(m0) || !slices.Equal(l.Grants, []string{"r"}) {
				t.Fatalf("claim %+v", l)
			}
		}},
		{"a new cycle forgets an earlier cycle's pre-existing answer", func(l *Ledger) { l.PreExisting = true }, Decision{Next: Call},
			func(t *testing.T, l *Ledger) {
				if l.PreExisting {
					t.Fatal("pre-existing kept from an earlier cycle")
				}
			}},
		{"overlapping grant still calls Graph (active means the access exists)", func(l *Ledger) { l.Grants, l.Added, l.AddedBy = []string{"o"}, true, "o" },
			Decision{Next: Call}, func(t *testing.T, l *Ledger) {
				if !l.Added || !slices.Equal(l.Grants, []string{"o", "r"}) {
					t.Fatalf("%+v", l)
				}
			}},
		{"ended grant adds nothing", func(l *Ledger) { l.Ended = []string{"r"} }, Decision{Next: Stop}, nil},
		{"released grant adds nothing", func(l *Ledger) { l.Released = []string{"r"} }, Decision{Next: Stop}, nil},
		{"another request's change waits", func(l *Ledger) { l.ClaimedBy, l.ClaimOp, l.ClaimToken, l.ClaimedAt = "o", OpAdd, "x", m0 }, Decision{Next: Wait}, nil},
		{"own live claim waits", func(l *Ledger) { l.ClaimedBy, l.ClaimOp, l.ClaimToken, l.ClaimedAt = "r", OpAdd, "x", m0.Add(-time.Second) }, Decision{Next: Wait}, nil},
		{"own end in progress stops the add", func(l *Ledger) { l.ClaimedBy, l.ClaimOp = "r", OpRemove }, Decision{Next: Stop}, nil},
		{"a crashed add is taken over, ambiguous", func(l *Ledger) {
			l.Grants, l.ClaimedBy, l.ClaimOp, l.ClaimToken, l.ClaimedAt = []string{"r"}, "r", OpAdd, "x", m0.Add(-WorkGrace)
		}, Decision{Next: Call, Ambiguous: true}, func(t *testing.T, l *Ledger) {
			if l.ClaimToken != mine.Token || !l.ClaimedAt.Equal(m0) {
				t.Fatalf("not taken over: %+v", l)
			}
		}},
		{"a given-up add is taken over at once, ambiguous", func(l *Ledger) { l.Grants, l.ClaimedBy, l.ClaimOp = []string{"r"}, "r", OpAdd },
			Decision{Next: Call, Ambiguous: true}, nil},
		{"done before a crash: added by this grant", func(l *Ledger) { l.Grants, l.Added, l.AddedBy = []string{"r"}, true, "r" },
			Decision{Next: Done, Changed: true}, nil},
		{"done before a crash: the user had it", func(l *Ledger) { l.Grants, l.PreExisting = []string{"r"}, true },
			Decision{Next: Done}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ledgerWith(tc.ledger)
			got := PlanAdd(l, "r", mine)
			if got != tc.want {
				t.Fatalf("PlanAdd = %+v, want %+v", got, tc.want)
			}
			if tc.check != nil {
				tc.check(t, l)
			}
		})
	}
}

func TestAddAnswered(t *testing.T) {
	claimed := func(mod func(*Ledger)) func(*Ledger) {
		return func(l *Ledger) {
			l.Grants = append(l.Grants, "r")
			l.ClaimedBy, l.ClaimOp, l.ClaimToken, l.ClaimedAt = "r", OpAdd, mine.Token, m0
			if mod != nil {
				mod(l)
			}
		}
	}
	for _, tc := range []struct {
		name      string
		ledger    func(*Ledger)
		created   bool
		ambiguous bool
		changed   bool
		detail    string // substring
		added     bool
		pre       bool
	}{
		{"204: jitaccess added it", claimed(nil), true, false, true, "", true, false},
		{"204 on a retry: jitaccess added it", claimed(nil), true, true, true, "", true, false},
		{"already exist on the first attempt: the user had it", claimed(nil), false, false, false, DetailPreExisting, false, true},
		{"already exist after a lost answer: taken as jitaccess's", claimed(nil), false, true, true, DetailAmbiguousAdd, true, false},
		{"already exist beside jitaccess's own member", claimed(func(l *Ledger) { l.Grants, l.Added, l.AddedBy = []string{"o", "r"}, true, "o" }),
			false, false, false, "jitaccess's grant o", true, false},
		{"already exist beside a PIM holder: joined, never pre-existing", claimed(func(l *Ledger) { l.Grants = []string{"pim-1", "r"} }),
			false, false, false, "held through grant pim-1", false, false},
		{"already exist, pre-existing from this cycle", claimed(func(l *Ledger) { l.Grants, l.PreExisting = []string{"o", "r"}, true }),
			false, false, false, DetailPreExisting, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ledgerWith(tc.ledger)
			changed, detail := AddAnswered(l, "r", mine, tc.created, tc.ambiguous)
			if changed != tc.changed || !strings.Contains(detail, tc.detail) || (tc.detail == "") != (detail == "") {
				t.Fatalf("AddAnswered = %v %q, want %v %q", changed, detail, tc.changed, tc.detail)
			}
			if l.Added != tc.added || l.PreExisting != tc.pre || l.ClaimedBy != "" {
				t.Fatalf("ledger %+v", l)
			}
			if tc.changed && (l.AddedBy != "r" || !l.LastWrite.Equal(m0)) {
				t.Fatalf("added by %q at %v", l.AddedBy, l.LastWrite)
			}
		})
	}
	t.Run("a claim taken over is left to its new holder", func(t *testing.T) {
		l := ledgerWith(claimed(func(l *Ledger) { l.ClaimToken = "other" }))
		if changed, _ := AddAnswered(l, "r", mine, true, false); !changed {
			t.Fatal("the add happened all the same")
		}
		if l.Added || l.ClaimedBy != "r" || l.ClaimToken != "other" {
			t.Fatalf("ledger changed under another holder: %+v", l)
		}
	})
}

func TestPlanEnd(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ledger  func(*Ledger)
		holders Holders
		unowned bool
		want    Decision
		check   func(*testing.T, *Ledger)
	}{
		{"jitaccess's member, no other grant: removed", func(l *Ledger) { l.Grants, l.Added = []string{"r"}, true }, Holders{}, false,
			Decision{Next: Call}, func(t *testing.T, l *Ledger) {
				if l.ClaimedBy != "r" || l.ClaimOp != OpRemove || len(l.Grants) != 0 || !slices.Contains(l.Ended, "r") {
					t.Fatalf("%+v", l)
				}
			}},
		{"the user had it before: kept", func(l *Ledger) { l.Grants, l.PreExisting = []string{"r"}, true }, Holders{}, false,
			Decision{Next: Save, Detail: DetailKeptHadBefore}, nil},
		{"still granted by a confirmed grant: kept", func(l *Ledger) { l.Grants, l.Added = []string{"o", "r"}, true }, Holders{Confirmed: []string{"o"}}, false,
			Decision{Next: Save, Detail: DetailKeptPrefix + "o"}, func(t *testing.T, l *Ledger) {
				if !l.Added || !slices.Equal(l.Grants, []string{"o"}) {
					t.Fatalf("%+v", l)
				}
			}},
		{"a PIM activation Graph does not confirm keeps nothing", func(l *Ledger) { l.Grants, l.Added = []string{"pim-x", "r"}, true }, Holders{}, false,
			Decision{Next: Call}, func(t *testing.T, l *Ledger) {
				if !slices.Equal(l.Grants, []string{"pim-x"}) {
					t.Fatalf("an unconfirmed grant is left to its own end: %+v", l)
				}
			}},
		{"ended holders are dropped", func(l *Ledger) { l.Grants, l.Added = []string{"old", "r"}, true }, Holders{Gone: []string{"old"}}, false,
			Decision{Next: Call}, func(t *testing.T, l *Ledger) {
				if len(l.Grants) != 0 || !slices.Contains(l.Ended, "old") {
					t.Fatalf("%+v", l)
				}
			}},
		{"a crashed add of this grant may have landed: removed", func(l *Ledger) { l.Grants, l.ClaimedBy, l.ClaimOp = []string{"r"}, "r", OpAdd }, Holders{}, false,
			Decision{Next: Call}, nil},
		{"not jitaccess's member, no grant: nothing", func(l *Ledger) { l.Grants = []string{"r"} }, Holders{}, false,
			Decision{Next: Save, Detail: DetailNothingAdded}, nil},
		{"an out-of-band member the profile removes", nil, Holders{}, true, Decision{Next: Call}, nil},
		{"an out-of-band member held by a grant stays", func(l *Ledger) { l.Grants = []string{"o"} }, Holders{Confirmed: []string{"o"}}, true,
			Decision{Next: Save, Detail: DetailKeptPrefix + "o"}, nil},
		{"never in the ledger: the end is remembered", nil, Holders{}, false, Decision{Next: Save, Detail: DetailNothingAdded},
			func(t *testing.T, l *Ledger) {
				if !slices.Contains(l.Ended, "r") {
					t.Fatalf("%+v", l)
				}
			}},
		{"already ended", func(l *Ledger) { l.Ended = []string{"r"} }, Holders{}, false, Decision{Next: Done, Detail: DetailNothingAdded}, nil},
		{"removed by another invocation", func(l *Ledger) { l.Released = []string{"r"} }, Holders{}, false, Decision{Next: Done, Changed: true}, nil},
		{"another request's change waits", func(l *Ledger) { l.ClaimedBy, l.ClaimToken, l.ClaimedAt = "o", "x", m0 }, Holders{}, false, Decision{Next: Wait}, nil},
		{"own live claim waits", func(l *Ledger) { l.ClaimedBy, l.ClaimOp, l.ClaimToken, l.ClaimedAt = "r", OpAdd, "x", m0 }, Holders{}, false, Decision{Next: Wait}, nil},
		{"a crashed removal is taken over", func(l *Ledger) { l.ClaimedBy, l.ClaimOp, l.ClaimToken, l.ClaimedAt = "r", OpRemove, "x", m0.Add(-WorkGrace) },
			Holders{}, false, Decision{Next: Call}, func(t *testing.T, l *Ledger) {
				if l.ClaimToken != mine.Token {
					t.Fatalf("%+v", l)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ledgerWith(tc.ledger)
			got := PlanEnd(l, "r", mine, tc.holders, tc.unowned)
			if got != tc.want {
				t.Fatalf("PlanEnd = %+v, want %+v", got, tc.want)
			}
			if tc.check != nil {
				tc.check(t, l)
			}
		})
	}
}

func TestRemoveAnswered(t *testing.T) {
	for _, removed := range []bool{true, false} {
		l := ledgerWith(func(l *Ledger) {
			l.Added, l.AddedBy, l.ClaimedBy, l.ClaimOp, l.ClaimToken = true, "r", "r", OpRemove, mine.Token
		})
		changed, detail := RemoveAnswered(l, "r", mine, removed)
		if !changed || (detail == DetailAlreadyGone) == removed {
			t.Fatalf("removed=%v: %v %q", removed, changed, detail)
		}
		if l.Added || l.AddedBy != "" || l.ClaimedBy != "" || !slices.Contains(l.Released, "r") || !l.LastWrite.Equal(m0) {
			t.Fatalf("removed=%v: ledger %+v", removed, l)
		}
	}
}

func TestGiveUpWithdrawJoin(t *testing.T) {
	claimed := func(op MembershipOp) *Ledger {
		return ledgerWith(func(l *Ledger) {
			l.Grants, l.ClaimedBy, l.ClaimOp, l.ClaimToken, l.ClaimedAt = []string{"r"}, "r", op, mine.Token, m0
		})
	}
	l := claimed(OpAdd)
	if !GiveUp(l, "r", mine, false) || l.ClaimedBy != "" || len(l.Grants) != 0 {
		t.Fatalf("an add that never left is withdrawn: %+v", l)
	}
	l = claimed(OpAdd)
	if !GiveUp(l, "r", mine, true) || l.ClaimedBy != "r" || l.ClaimToken != "" || !slices.Equal(l.Grants, []string{"r"}) {
		t.Fatalf("an add that may have landed keeps its claim, given up: %+v", l)
	}
	if PlanAdd(l, "r", mine) != (Decision{Next: Call, Ambiguous: true}) {
		t.Fatal("the next attempt after a given-up add is not ambiguous")
	}
	l = claimed(OpRemove)
	if GiveUp(l, "r", Claim{Token: "other"}, true) || l.ClaimToken != mine.Token {
		t.Fatal("gave up someone else's claim")
	}
	l = claimed(OpRemove)
	l.Added = true
	if !Withdraw(l, "r") || l.ClaimedBy != "" || len(l.Grants) != 0 || !l.Added || !slices.Contains(l.Ended, "r") {
		t.Fatalf("withdraw: %+v", l)
	}
	if Withdraw(l, "r") {
		t.Fatal("a second withdraw changed the ledger")
	}
	if !Join(l, "p") || Join(l, "p") || !slices.Equal(l.Grants, []string{"p"}) {
		t.Fatalf("join: %+v", l)
	}
}

func TestPlanLeftover(t *testing.T) {
	window := time.Minute
	read := m0
	for _, tc := range []struct {
		name    string
		ledger  func(*Ledger)
		holders Holders
		want    bool
	}{
		{"jitaccess's member, grants all over", func(l *Ledger) { l.Added, l.Grants, l.LastWrite = true, []string{"old"}, m0.Add(-time.Hour) },
			Holders{Gone: []string{"old"}}, true},
		{"jitaccess's member, no grant at all", func(l *Ledger) { l.Added = true }, Holders{}, true},
		{"not jitaccess's member", func(l *Ledger) { l.Grants = []string{"old"} }, Holders{Gone: []string{"old"}}, false},
		{"still held", func(l *Ledger) { l.Added, l.Grants = true, []string{"live"} }, Holders{Confirmed: []string{"live"}}, false},
		{"a grant not known to be over", func(l *Ledger) { l.Added, l.Grants = true, []string{"pim-x"} }, Holders{}, false},
		{"a read within the window of jitaccess's last write", func(l *Ledger) { l.Added, l.LastWrite = true, m0.Add(-time.Second) }, Holders{}, false},
		{"a change in progress", func(l *Ledger) { l.Added, l.ClaimedBy = true, "r" }, Holders{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ledgerWith(tc.ledger)
			if got := PlanLeftover(l, "drift", mine, tc.holders, read, window); got != tc.want {
				t.Fatalf("PlanLeftover = %v, want %v (%+v)", got, tc.want, l)
			}
			if tc.want && (l.ClaimedBy != "drift" || l.ClaimOp != OpRemove || len(l.Grants) != 0) {
				t.Fatalf("claim %+v", l)
			}
		})
	}
}

func TestLedgerNormalizeAndSettled(t *testing.T) {
	old := &Ledger{Grants: []string{"r"}, Probed: true}
	old.Normalize()
	if !old.Added || old.Probed {
		t.Fatalf("a probed, not pre-existing ledger of an earlier version is jitaccess's member: %+v", old)
	}
	pre := &Ledger{Grants: []string{"r"}, Probed: true, PreExisting: true}
	pre.Normalize()
	if pre.Added {
		t.Fatal("pre-existing read as added")
	}
	l := &Ledger{LastWrite: m0}
	if l.Settled(m0.Add(59*time.Second), time.Minute) || !l.Settled(m0.Add(time.Minute), time.Minute) {
		t.Fatal("Settled does not follow the window")
	}
	if (&Ledger{ClaimedBy: "r"}).Settled(m0.Add(time.Hour), time.Minute) {
		t.Fatal("a ledger with a change in progress is settled")
	}
	if !(&Ledger{}).Settled(m0, time.Minute) {
		t.Fatal("a ledger never written is not settled")
	}
}

func TestChecks(t *testing.T) {
	active := func() *Request {
		return &Request{ID: "r", State: Active, ActivatedAt: m0, EndsAt: m0.Add(time.Hour), DueAt: m0.Add(time.Hour), RevokeSessionsOnEnd: true}
	}
	c := Check{Kind: CheckRemoved, Since: m0, Due: m0.Add(time.Minute), Goal: Revoked, Actor: "x01", Reason: "removed by x01", Record: "audit:1"}

	r := active()
	if !r.Suspect(m0, c, "audit record: removed by x01") || r.Check == nil || !r.DueAt.Equal(c.Due) || !slices.Contains(r.EventIDs, "audit:1") {
		t.Fatalf("suspect: %+v", r)
	}
	c2 := c
	c2.Record = "audit:2"
	if !r.Suspect(m0, c2, "again") || len(r.History) != 1 || r.Check.Record != "audit:1" {
		t.Fatalf("a second record while a check is pending is only remembered: %+v", r.History)
	}
	if r.Suspect(m0, c2, "again") {
		t.Fatal("a record seen before changed the request")
	}
	if NaturalDue := r.NaturalDue(0); !NaturalDue.Equal(c.Due) {
		t.Fatalf("natural due %v ignores the check", NaturalDue)
	}
	contra := r.Clone()
	contra.CheckContradicted(m0.Add(time.Minute), "audit record contradicted by Graph")
	if contra.State != Active || contra.Check != nil || !contra.DueAt.Equal(contra.EndsAt) || contra.History[len(contra.History)-1].Type != HNote {
		t.Fatalf("contradicted: %+v", contra)
	}
	r.CheckConfirmed(m0.Add(time.Minute), "confirmed by Graph")
	if r.State != Ending || r.Work == nil || !r.Work.External || !r.Work.Removed || r.Work.MembershipDone || r.Reason != "removed by x01; confirmed by Graph" {
		t.Fatalf("confirmed: %+v %+v", r, r.Work)
	}
	r.MembershipDone(m0.Add(time.Minute), false, "")
	if r.State != Ending || !r.Work.NeedsRevoke() {
		t.Fatalf("an external end revokes the sessions: %+v", r.Work)
	}
	r.SessionsRevoked(m0.Add(time.Minute))
	if r.State != Revoked {
		t.Fatalf("state %s", r.State)
	}

	// Only an active grant without work takes a check.
	ending := active()
	ending.State = Ending
	if ending.Suspect(m0, c, "") {
		t.Fatal("a check on an ending grant")
	}
	// An end clears a pending check.
	r = active()
	r.Suspect(m0, c, "")
	r.end(m0.Add(time.Second), Cancelled, "n01", "")
	if r.Check != nil {
		t.Fatal("the end kept the check")
	}

	// Observations wait for Graph.
	o := Observe("pim-1", SourcePIM, Profile{Name: "p", TargetGroupID: "g"}, "u", "", m0, m0.Add(time.Hour), HObserved, "u", "seen", "audit:9")
	o.AwaitConfirmation(m0, m0.Add(time.Minute), "audit:9")
	if o.State != Confirming || o.State.Holds() || o.State.Ended() || !o.DueAt.Equal(m0.Add(time.Minute)) {
		t.Fatalf("confirming: %+v", o)
	}
	yes := o.Clone()
	yes.ObservationConfirmed(m0.Add(time.Minute), m0.Add(2*time.Hour), "confirmed by Graph")
	if yes.State != Active || !yes.EndsAt.Equal(m0.Add(2*time.Hour)) || !yes.DueAt.Equal(yes.EndsAt) || yes.Check != nil {
		t.Fatalf("confirmed: %+v", yes)
	}
	o.ObservationContradicted(m0.Add(time.Minute), "audit record contradicted by Graph")
	if o.State != Rejected || o.Reason == "" || o.Work != nil || !o.DueAt.IsZero() {
		t.Fatalf("contradicted: %+v", o)
	}
}
