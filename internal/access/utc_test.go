package access

import (
	"reflect"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/timetest"
)

// TestInUTCCoversEveryTime fills every time a Request and a Ledger can hold
// (found by reflection, so a field added later is included) in a zone
// other than UTC, and checks that InUTC leaves none outside UTC and moves
// no instant.
func TestInUTCCoversEveryTime(t *testing.T) {
	zone := time.FixedZone("UTC-7", -7*3600)
	n := 0
	next := func() time.Time {
		n++
		return time.Date(2025, 3, 14, 9, 26, 53, 589793238, zone).Add(time.Duration(n) * time.Minute)
	}
	for _, v := range []interface{ InUTC() }{&Request{}, &Ledger{}} {
		t.Run(reflect.TypeOf(v).Elem().Name(), func(t *testing.T) {
			timetest.Fill(v, next)
			before := map[string]time.Time{}
			timetest.Each(v, func(path string, tm *time.Time) { before[path] = *tm })
			if len(before) == 0 {
				t.Fatal("no times found")
			}
			v.InUTC()
			timetest.Each(v, func(path string, tm *time.Time) {
				if tm.Location() != time.UTC || !tm.Equal(before[path]) {
					t.Errorf("after InUTC, %s = %v (was %v): InUTC misses it", path, *tm, before[path])
				}
			})
		})
	}
}

func TestInUTCKeepsZeroTimes(t *testing.T) {
	zero := time.Time{}.In(time.FixedZone("X", 3600))
	r := &Request{RequestedAt: zero, History: []HistoryEntry{{At: zero}}}
	r.InUTC()
	if r.RequestedAt != (time.Time{}) || r.History[0].At != (time.Time{}) {
		t.Fatalf("zero times became %v, %v", r.RequestedAt, r.History[0].At)
	}
}
