// Package timetest finds the time.Time values a value holds, by reflection,
// so that tests about times (every time in UTC, every time kept by a store)
// cover a field added later without anyone remembering to list it. Used by
// internal/access's tests and the store suite (internal/storetest); it
// imports nothing of the project.
package timetest

import (
	"fmt"
	"reflect"
	"time"
)

var timeType = reflect.TypeFor[time.Time]()

// Each calls fn for every time.Time that *p holds, through exported struct
// fields, pointers and slices, with its path (".History[0].At"). p must be a
// pointer.
func Each(p any, fn func(path string, tm *time.Time)) {
	each(reflect.ValueOf(p).Elem(), "", fn)
}

func each(v reflect.Value, path string, fn func(path string, tm *time.Time)) {
	switch {
	case v.Type() == timeType:
		fn(path, v.Addr().Interface().(*time.Time))
	case v.Kind() == reflect.Pointer:
		if !v.IsNil() {
			each(v.Elem(), path, fn)
		}
	case v.Kind() == reflect.Slice:
		for i := range v.Len() {
			each(v.Index(i), fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				each(v.Field(i), path+"."+f.Name, fn)
			}
		}
	}
}

// Fill sets every time.Time *p can hold to next(): nil pointers to structs
// holding times are allocated, and empty slices of them get an element. p
// must be a pointer.
func Fill(p any, next func() time.Time) {
	fill(reflect.ValueOf(p).Elem(), next)
}

func fill(v reflect.Value, next func() time.Time) {
	switch {
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(next()))
	case !holdsTime(v.Type()):
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), next)
	case v.Kind() == reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
		}
		for i := range v.Len() {
			fill(v.Index(i), next)
		}
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), next)
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
