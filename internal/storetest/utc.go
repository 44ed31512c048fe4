package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
)

// testEveryTimeInUTC: every time a request or a ledger holds comes back in
// UTC, whichever way it is read. The times are found by reflection, not
// listed by hand: each store once kept its own list of the request's times
// to normalise (and this suite a third), and the lists fell behind the
// types (ApprovalDeadline, AccessGoneBy, the check, the outbox's notices
// and the ledger's LastWrite came back in the zone they were saved in); a
// field added later is covered without anyone remembering this test.
func testEveryTimeInUTC(t *testing.T, s Store) {
	zone := time.FixedZone("UTC-7", -7*3600)
	n := 0
	next := func() time.Time {
		n++
		return base.In(zone).Add(time.Duration(n) * time.Minute)
	}

	r := &access.Request{ID: "utc-1", Source: access.SourceEvents, State: access.Active, Requester: "user-1", Profile: "p1"}
	fillTimes(reflect.ValueOf(r).Elem(), next)
	want := timesOf(r)
	mustSave(t, s, r)
	got := mustGet(t, s, r.ID)
	allInUTC(t, "GetRequest", got, want, true)
	got, err := broker.Lister(s).GetRequest(ctx(t), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	allInUTC(t, "Lister.GetRequest", got, want, true)
	// Listed through the state index and through the requests table (items
	// carry no history).
	for _, f := range []broker.ListFilter{{State: access.Active, Limit: 10}, {Limit: 10}} {
		items := list(t, s, f)
		if len(items) != 1 {
			t.Fatalf("ListRequests(%+v) = %d items, want 1", f, len(items))
		}
		allInUTC(t, fmt.Sprintf("ListRequests(state %q)", f.State), items[0], want, false)
	}

	l := &access.Ledger{GroupID: "g-utc", UserID: "u-utc", Grants: []string{r.ID}, ClaimedBy: r.ID, ClaimOp: access.OpAdd}
	fillTimes(reflect.ValueOf(l).Elem(), next)
	wantL := timesOf(l)
	if err := s.SaveLedger(ctx(t), l); err != nil {
		t.Fatal(err)
	}
	gotL, err := s.GetLedger(ctx(t), l.GroupID, l.UserID)
	if err != nil {
		t.Fatal(err)
	}
	allInUTC(t, "GetLedger", gotL, wantL, true)
}

// allInUTC checks that every time got holds is in UTC and is the instant
// saved at the same place; complete: got holds every time saved.
func allInUTC(t *testing.T, what string, got any, want map[string]time.Time, complete bool) {
	t.Helper()
	seen := 0
	eachTime(reflect.ValueOf(got).Elem(), "", func(path string, tm *time.Time) {
		if tm.IsZero() {
			return
		}
		seen++
		if tm.Location() != time.UTC {
			t.Errorf("%s: %s = %v, not in UTC", what, path, *tm)
		}
		if w, ok := want[path]; !ok || !tm.Equal(w) {
			t.Errorf("%s: %s = %v, saved %v", what, path, *tm, w)
		}
	})
	if complete && seen != len(want) {
		t.Errorf("%s: %d times came back, %d were saved", what, seen, len(want))
	}
}

// timesOf returns the non-zero times v (a pointer) holds by path.
func timesOf(v any) map[string]time.Time {
	m := map[string]time.Time{}
	eachTime(reflect.ValueOf(v).Elem(), "", func(path string, tm *time.Time) {
		if !tm.IsZero() {
			m[path] = *tm
		}
	})
	return m
}

var timeType = reflect.TypeFor[time.Time]()

// eachTime calls fn for every time.Time in v, through exported struct
// fields, pointers and slices, with its path (".History[0].At").
func eachTime(v reflect.Value, path string, fn func(path string, tm *time.Time)) {
	switch {
	case v.Type() == timeType:
		fn(path, v.Addr().Interface().(*time.Time))
	case v.Kind() == reflect.Pointer:
		if !v.IsNil() {
			eachTime(v.Elem(), path, fn)
		}
	case v.Kind() == reflect.Slice:
		for i := range v.Len() {
			eachTime(v.Index(i), fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				eachTime(v.Field(i), path+"."+f.Name, fn)
			}
		}
	}
}

// fillTimes sets every time.Time v can hold to next(): nil pointers to
// structs holding times are allocated, and slices of them get an element.
func fillTimes(v reflect.Value, next func() time.Time) {
	switch {
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(next()))
	case !holdsTime(v.Type()):
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fillTimes(v.Elem(), next)
	case v.Kind() == reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
		}
		for i := range v.Len() {
			fillTimes(v.Index(i), next)
		}
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillTimes(v.Field(i), next)
			}
		}
	}
}

// holdsTime reports whether a value of type t can hold a time.Time.
func holdsTime(t reflect.Type) bool {
	switch {
	case t == timeType:
		return true
	case t.Kind() == reflect.Pointer, t.Kind() == reflect.Slice:
		return holdsTime(t.Elem())
	case t.Kind() == reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && holdsTime(f.Type) {
				return true
			}
		}
	}
	return false
}
