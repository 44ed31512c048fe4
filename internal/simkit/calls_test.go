package simkit

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

type rec struct {
	name   string
	status int
}

func names(rs []rec) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.name)
	}
	return out
}

func TestLog(t *testing.T) {
	var l Log[rec]
	if l.All() != nil || l.Select(func(rec) bool { return true }) != nil {
		t.Fatal("an empty log holds records")
	}
	a := l.Record(rec{name: "a"})
	b := l.Record(rec{name: "b"})
	if a != 0 || b != 1 {
		t.Fatalf("indexes %d, %d", a, b)
	}
	l.Update(b, func(r *rec) { r.status = 204 })
	all := l.All()
	if fmt.Sprint(all) != "[{a 0} {b 204}]" {
		t.Fatalf("All = %v", all)
	}
	all[0].name = "changed" // a copy
	if got := names(l.All()); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("All after changing the copy: %v", got)
	}
	if got := l.Select(func(r rec) bool { return r.status == 204 }); fmt.Sprint(got) != "[{b 204}]" {
		t.Fatalf("Select = %v", got)
	}
	if got := l.Select(func(r rec) bool { return r.status == 500 }); got != nil {
		t.Fatalf("Select of none = %v", got)
	}

	// A call still running across Reset finds its record gone; the next
	// record's index goes on counting.
	l.Reset()
	if l.All() != nil {
		t.Fatal("records after Reset")
	}
	c := l.Record(rec{name: "c"})
	if c != 2 {
		t.Fatalf("index after Reset %d", c)
	}
	for _, old := range []int{a, b, -1, 7} {
		l.Update(old, func(r *rec) { t.Fatalf("Update(%d) reached %v", old, *r) })
	}
	l.Update(c, func(r *rec) { r.status = 429 })
	if got := l.All(); fmt.Sprint(got) != "[{c 429}]" {
		t.Fatalf("after Reset: %v", got)
	}
}

// sent notes every status that reaches the client, after the events
// before it.
type sent struct {
	http.ResponseWriter
	events *[]string
}

func (w sent) WriteHeader(code int) {
	*w.events = append(*w.events, fmt.Sprint("sent ", code))
	w.ResponseWriter.WriteHeader(code)
}

func TestStatusWriter(t *testing.T) {
	tests := []struct {
		name   string
		fault  string
		answer func(w http.ResponseWriter)
		want   []string
	}{
		{"WriteHeader", "", func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) },
			[]string{"recorded 204 ", "sent 204"}},
		{"Write alone is 200", "", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) },
			[]string{"recorded 200 ", "sent 200"}},
		{"the first status is recorded once", FaultFail, func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("x"))
		}, []string{"recorded 503 fail", "sent 503"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var events []string
			sw := &StatusWriter{ResponseWriter: sent{httptest.NewRecorder(), &events}, Fault: tc.fault,
				Set: func(status int, fault string) { events = append(events, fmt.Sprint("recorded ", status, " ", fault)) }}
			tc.answer(sw)
			if !slices.Equal(events, tc.want) {
				t.Fatalf("%q, want %q", events, tc.want)
			}
		})
	}
}
