package simkit

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"
)

func TestWriteJSON(t *testing.T) {
	tests := []struct {
		name   string
		v      any
		status int
		ctype  string
		body   string
	}{
		{"a value", map[string]any{"value": []int{1}}, 201, "application/json; charset=utf-8", `{"value":[1]}`},
		{"does not marshal", func() {}, 500, "text/plain; charset=utf-8", "internal error\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rr := httptest.NewRecorder()
			WriteJSON(rr, 201, "application/json; charset=utf-8", tc.v)
			if rr.Code != tc.status || rr.Header().Get("Content-Type") != tc.ctype || rr.Body.String() != tc.body {
				t.Fatalf("%d %q %q", rr.Code, rr.Header().Get("Content-Type"), rr.Body.String())
			}
		})
	}
}

func TestSetRetryAfter(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, ""},
		{-time.Second, ""},
		{time.Millisecond, "1"},
		{time.Second, "1"},
		{1500 * time.Millisecond, "2"},
		{2 * time.Minute, "120"},
	}
	for _, tc := range tests {
		h := http.Header{}
		SetRetryAfter(h, tc.d)
		if got := h.Get("Retry-After"); got != tc.want {
			t.Errorf("SetRetryAfter(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestNewID(t *testing.T) {
	v4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		id := NewID()
		if !v4.MatchString(id) || seen[id] {
			t.Fatalf("id %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
	}
}
