package simkit

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") })

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestServerStartURLClose(t *testing.T) {
	var v Server
	if v.URL() != "" {
		t.Fatal("URL before Start")
	}
	v.Start(hello)
	u := v.URL()
	v.Start(http.NotFoundHandler()) // already started: kept
	if v.URL() != u {
		t.Fatal("a second Start replaced the server")
	}
	if got := get(t, u+"/x"); got != "hello" {
		t.Fatalf("answer %q", got)
	}
	v.Close()
	if v.URL() != "" {
		t.Fatal("URL after Close")
	}
	v.Close() // twice is fine
}

func TestServerServeListenerAndClose(t *testing.T) {
	for _, first := range []string{"serve", "close"} {
		t.Run(first, func(t *testing.T) {
			var v Server
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if first == "close" {
				v.Close()
			}
			errc := make(chan error, 1)
			go func() { errc <- v.ServeListener(l, hello) }()
			if first == "serve" {
				if got := get(t, "http://"+l.Addr().String()); got != "hello" {
					t.Fatalf("answer %q", got)
				}
				v.Close()
			}
			select {
			case err := <-errc:
				if !errors.Is(err, http.ErrServerClosed) {
					t.Fatalf("ServeListener: %v", err)
				}
			case <-time.After(5 * time.Second):
				_ = l.Close()
				t.Fatal("ServeListener did not return after Close")
			}
			if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
				c.Close()
				t.Fatal("the listener is still open")
			}
		})
	}
}

func TestServerServeBadAddress(t *testing.T) {
	var v Server
	if err := v.Serve("no such address", hello); err == nil {
		t.Fatal("Serve on a bad address")
	}
}

func TestServerWait(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		d     time.Duration
		close bool
		want  bool
	}{
		{"waited", context.Background(), time.Millisecond, false, true},
		{"client gave up", cancelled, time.Hour, false, false},
		{"closed", context.Background(), time.Hour, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v Server
			if tc.close {
				v.Close()
			}
			if got := v.Wait(tc.ctx, tc.d); got != tc.want {
				t.Fatalf("Wait = %v, want %v", got, tc.want)
			}
		})
	}
}

// A Wait already under way ends when Close is called.
func TestServerCloseEndsWait(t *testing.T) {
	var v Server
	got := make(chan bool, 1)
	go func() { got <- v.Wait(context.Background(), time.Hour) }()
	v.Close()
	select {
	case ok := <-got:
		if ok {
			t.Fatal("Wait reported the delay served")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait still waiting after Close")
	}
}
