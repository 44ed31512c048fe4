package simkit

import (
	"net/http"
	"slices"
	"sync"
)

// Log is a simulator's call log: one record of type C (the simulator's
// Call) per request, oldest first. The zero Log is empty; it is safe for
// concurrent use.
type Log[C any] struct {
	mu    sync.Mutex
	calls []C
	// base is how many calls Reset has forgotten: a record's index minus
	// base is its place in calls (handlers still running across a Reset
	// find theirs gone and leave calls alone).
	base int
}

// Record appends c and returns its index, for Update (it counts the
// records Reset forgot).
func (l *Log[C]) Record(c C) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
	return l.base + len(l.calls) - 1
}

// Update calls f on record i, under the log's lock; it does nothing when
// Reset has forgotten the record since.
func (l *Log[C]) Update(i int, f func(c *C)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i -= l.base
	if i < 0 || i >= len(l.calls) {
		return
	}
	f(&l.calls[i])
}

// All returns a copy of every record, oldest first.
func (l *Log[C]) All() []C {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// Select returns the records keep accepts, oldest first (nil when none).
func (l *Log[C]) Select(keep func(c C) bool) []C {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []C
	for _, c := range l.calls {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// Reset forgets every record.
func (l *Log[C]) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.base += len(l.calls)
	l.calls = nil
}

// StatusWriter passes a handler's answer on and hands its status, with
// Fault, to Set before the answer leaves (once, at the first WriteHeader or
// Write), so that a client never sees an answer whose record is not
// complete.
type StatusWriter struct {
	http.ResponseWriter
	// Set records the status in the call's record (e.g. through
	// Log.Update).
	Set func(status int, fault string)
	// Fault is the injected fault the answer comes from ("": none), set by
	// the handler before it answers.
	Fault  string
	status int
}

// WriteHeader records code, then sends it.
func (w *StatusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.Set(code, w.Fault)
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write sends b, after a 200 status when none was sent.
func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}
