package access

import (
	"fmt"
	"reflect"
	"testing"
	"time"
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
			fillTimes(reflect.ValueOf(v).Elem(), next)
			before := map[string]time.Time{}
			eachTime(reflect.ValueOf(v).Elem(), "", func(path string, tm *time.Time) { before[path] = *tm })
			if len(before) == 0 {
				t.Fatal("no times found")
			}
			v.InUTC()
			eachTime(reflect.ValueOf(v).Elem(), "", func(path string, tm *time.Time) {
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

var timeType = reflect.TypeFor[time.Time]()

// eachTime calls fn for every time.Time in v, through exported struct
// fields, pointers and slices, with its path.
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
