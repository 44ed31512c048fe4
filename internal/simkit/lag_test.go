package simkit

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func sec(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Second))) }

// after lists the changes After(t) yields.
func after(r *Replicas[string], t time.Time) []string {
	return slices.Collect(r.After(t))
}

func TestReplicasRecordAndAfter(t *testing.T) {
	type rec struct {
		at, now float64 // seconds after t0
		change  string
	}
	tests := []struct {
		name    string
		lag     time.Duration
		records []rec
		t       float64 // After(t0+t)
		want    []string
		len     int
	}{
		{"no lag: nothing logged", 0,
			[]rec{{1, 1, "a"}}, 0, nil, 0},
		{"newest first, only after t", 5 * time.Second,
			[]rec{{1, 1, "a"}, {2, 2, "b"}, {3, 3, "c"}}, 1, []string{"c", "b"}, 3},
		{"a change at t is seen at t", 5 * time.Second,
			[]rec{{1, 1, "a"}, {2, 2, "b"}}, 2, nil, 2},
		{"older than the lag: dropped", 5 * time.Second,
			[]rec{{1, 1, "a"}, {2, 2, "b"}, {6.5, 6.5, "c"}}, 0, []string{"c", "b"}, 2},
		{"dated ahead of the clock: made now", 5 * time.Second,
			[]rec{{10, 2, "a"}}, 2, nil, 1},
		{"dated before the last: made with it", 5 * time.Second,
			[]rec{{3, 3, "a"}, {1, 3, "b"}}, 2.5, []string{"b", "a"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Replicas[string]
			r.Set(tc.lag, 1, t0)
			for _, c := range tc.records {
				r.Record(sec(c.at), sec(c.now), c.change)
			}
			if got := after(&r, sec(tc.t)); !slices.Equal(got, tc.want) {
				t.Errorf("After = %q, want %q", got, tc.want)
			}
			if r.Len() != tc.len {
				t.Errorf("Len = %d, want %d", r.Len(), tc.len)
			}
		})
	}
}

func TestReplicasAfterStops(t *testing.T) {
	var r Replicas[string]
	r.Set(time.Minute, 1, t0)
	for _, c := range []string{"a", "b", "c"} {
		r.Record(t0, t0, c)
	}
	var got []string
	for c := range r.After(t0.Add(-time.Second)) {
		got = append(got, c)
		if c == "b" {
			break
		}
	}
	if !slices.Equal(got, []string{"c", "b"}) {
		t.Fatalf("%q", got)
	}
}

func TestReplicasMoment(t *testing.T) {
	var r Replicas[string]
	if m, ok := r.Moment(t0); ok || !m.Equal(t0) {
		t.Fatalf("no lag: %v %v", m, ok)
	}
	const lag = 5 * time.Second
	draw := func(seed int64) []time.Time {
		var r Replicas[string]
		r.Set(lag, seed, t0)
		var out []time.Time
		for range 200 {
			m, ok := r.Moment(t0)
			if !ok || !m.After(t0.Add(-lag)) || m.After(t0) {
				t.Fatalf("moment %v (ok %v) outside (now-lag, now]", m, ok)
			}
			out = append(out, m)
		}
		return out
	}
	a, b, c := draw(7), draw(7), draw(8)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed drew other moments")
	}
	if slices.Equal(a, c) {
		t.Fatal("another seed drew the same moments")
	}
	first, last := slices.MinFunc(a, time.Time.Compare), slices.MaxFunc(a, time.Time.Compare)
	if first.After(t0.Add(-lag*3/4)) || last.Before(t0.Add(-lag/4)) {
		t.Fatalf("200 moments in [%v, %v]: not spread over the lag", first.Sub(t0), last.Sub(t0))
	}
}

func TestReplicasSet(t *testing.T) {
	var r Replicas[string]
	r.Set(5*time.Second, 1, t0)
	r.Record(sec(1), sec(1), "a")
	r.Record(sec(4), sec(4), "b")
	if r.Lag() != 5*time.Second || r.Len() != 2 {
		t.Fatalf("lag %v, %d logged", r.Lag(), r.Len())
	}
	// A shorter lag keeps what is still within it.
	r.Set(2*time.Second, 1, sec(4))
	if got := after(&r, t0); r.Lag() != 2*time.Second || !slices.Equal(got, []string{"b"}) {
		t.Fatalf("lag %v, log %q", r.Lag(), got)
	}
	// Off: the log is forgotten and nothing more is logged.
	r.Set(0, 1, sec(4))
	r.Record(sec(5), sec(5), "c")
	if r.Lag() != 0 || r.Len() != 0 {
		t.Fatalf("off: lag %v, %d logged", r.Lag(), r.Len())
	}
	if _, ok := r.Moment(sec(5)); ok {
		t.Fatal("a moment drawn without a lag")
	}
}

func TestOverlay(t *testing.T) {
	one, two, old := "one", "two", "old"
	cur := map[string]*string{"a": &one, "b": &two}
	tests := []struct {
		name string
		undo map[string]*string
		want map[string]string
	}{
		{"nothing to undo", nil, map[string]string{"a": "one", "b": "two"}},
		{"made since: gone", map[string]*string{"b": nil}, map[string]string{"a": "one"}},
		{"changed since: as it was", map[string]*string{"a": &old}, map[string]string{"a": "old", "b": "two"}},
		{"removed since: back", map[string]*string{"c": &old, "a": nil}, map[string]string{"b": "two", "c": "old"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := Overlay(cur, tc.undo)
			got := map[string]string{}
			for k, v := range out {
				got[k] = *v
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("%v, want %v", got, tc.want)
			}
			if len(cur) != 2 || *cur["a"] != "one" || *cur["b"] != "two" {
				t.Fatalf("cur changed: %v", cur)
			}
		})
	}
}
