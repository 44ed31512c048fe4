package access

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Nothing a sender controls grows a request without bound (docs/design.md, real directory rule 4).
func TestRequestGrowthIsBounded(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	r := &Request{ID: "r", State: Active}
	recorded := 0
	for i := range 3 * MaxRecordedRefusals {
		if r.RecordRefusal(now, HRefused, "x", "no", fmt.Sprintf("ev-%d", i)) {
			recorded++
		}
	}
	if recorded != MaxRecordedRefusals || len(r.History) != MaxRecordedRefusals || r.Refusals != MaxRecordedRefusals {
		t.Fatalf("recorded %d, history %d, counter %d; want %d", recorded, len(r.History), r.Refusals, MaxRecordedRefusals)
	}
	// Ids: at most maxEventIDs, long ones hashed, still recognised.
	long := strings.Repeat("y", 256)
	for i := range 2 * maxEventIDs {
		r.rememberEvent(fmt.Sprintf("%s-%d", long, i))
	}
	if len(r.EventIDs) != maxEventIDs {
		t.Fatalf("%d ids remembered", len(r.EventIDs))
	}
	for _, id := range r.EventIDs {
		if len(id) > maxEventKey {
			t.Fatalf("a remembered id of %d characters", len(id))
		}
	}
	last := fmt.Sprintf("%s-%d", long, 2*maxEventIDs-1)
	if !r.Seen(last) || r.Seen(long) {
		t.Fatal("a hashed id is not recognised, or a different one is")
	}
	// Parked events: at most MaxParked; the next is left to the rejections log.
	p := &Request{ID: "p", State: Awaiting}
	for i := range MaxParked + 3 {
		next, out := Apply(p, Input{Event: Event{ID: fmt.Sprintf("e%d", i), Type: TypeApproved, RequestID: "p"}, Now: now})
		if i < MaxParked {
			if !out.Changed || out.Unrecorded {
				t.Fatalf("event %d not parked: %+v", i, out)
			}
			p = next
			continue
		}
		if out.Changed || !out.Unrecorded || !out.Rejected || out.Reason == "" {
			t.Fatalf("event %d past the bound: %+v", i, out)
		}
	}
	if len(p.Parked) != MaxParked {
		t.Fatalf("%d parked", len(p.Parked))
	}
	// A refusal past the bound leaves the request as it is.
	a := &Request{ID: "a", State: Active, Refusals: MaxRecordedRefusals, Requester: "u"}
	next, out := Apply(a, Input{Event: Event{ID: "late", Type: TypeCancelled, RequestID: "a"}, Actor: Actor{Found: true, ID: "other"}, Now: now})
	if out.Changed || !out.Unrecorded || !out.Refused || len(next.History) != 0 || next.Seen("late") {
		t.Fatalf("refusal past the bound: %+v, history %d", out, len(next.History))
	}
}
