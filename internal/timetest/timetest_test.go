package timetest

import (
	"slices"
	"testing"
	"time"
)

type inner struct{ At time.Time }

type outer struct {
	Start   time.Time
	Ptr     *inner
	List    []inner
	private time.Time
	Name    string
}

func TestFillThenEach(t *testing.T) {
	var o outer
	n := 0
	base := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	Fill(&o, func() time.Time { n++; return base.Add(time.Duration(n) * time.Hour) })
	var paths []string
	Each(&o, func(path string, tm *time.Time) {
		if tm.IsZero() {
			t.Errorf("%s not filled", path)
		}
		paths = append(paths, path)
	})
	want := []string{".Start", ".Ptr.At", ".List[0].At"}
	if !slices.Equal(paths, want) {
		t.Fatalf("paths %v, want %v", paths, want)
	}
	if !o.private.IsZero() {
		t.Fatal("an unexported field was filled")
	}
}
