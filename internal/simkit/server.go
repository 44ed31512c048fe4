package simkit

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// CloseWait bounds how long Close waits for handlers still running.
const CloseWait = 10 * time.Second

// Server serves a simulator's handler on a loopback httptest server
// (Start) or on a listener of its own (Serve, ServeListener) until Close.
// The zero Server is ready to use; it is safe for concurrent use.
type Server struct {
	mu     sync.Mutex
	test   *httptest.Server
	server *http.Server
	// done is closed by Close: delayed answers stop waiting (Wait).
	done   chan struct{}
	closed bool
}

// doneLocked is the channel Close closes; v.mu must be held.
func (v *Server) doneLocked() chan struct{} {
	if v.done == nil {
		v.done = make(chan struct{})
	}
	return v.done
}

// Start serves h on a new loopback httptest server, unless one started by
// Start is still running.
func (v *Server) Start(h http.Handler) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.test == nil {
		v.test = httptest.NewServer(h)
	}
}

// URL is the root URL of the server started by Start ("" when none is).
func (v *Server) URL() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.test == nil {
		return ""
	}
	return v.test.URL
}

// Serve listens on addr and serves h until Close; it returns
// http.ErrServerClosed after Close.
func (v *Server) Serve(addr string, h http.Handler) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return v.ServeListener(l, h)
}

// ServeListener serves h on l until Close; it returns http.ErrServerClosed
// after Close (at once, closing l, when Close came first).
func (v *Server) ServeListener(l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		_ = l.Close()
		return http.ErrServerClosed
	}
	v.server = srv
	v.mu.Unlock()
	return srv.Serve(l) // after Close: http.ErrServerClosed at once
}

// Close stops the servers started by Start or Serve and ends every Wait.
// Client connections are closed first, so Close does not wait on a client
// that never finishes; it returns within CloseWait even if a handler is
// stuck.
func (v *Server) Close() {
	v.mu.Lock()
	test, server := v.test, v.server
	v.test, v.server = nil, nil
	if !v.closed {
		v.closed = true
		close(v.doneLocked())
	}
	v.mu.Unlock()
	if test != nil {
		test.CloseClientConnections()
		done := make(chan struct{})
		go func() {
			defer close(done)
			test.Close()
		}()
		t := time.NewTimer(CloseWait)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			// A handler did not return: close what is left and give up
			// waiting rather than hang the caller.
			test.CloseClientConnections()
		}
	}
	if server != nil {
		_ = server.Close() // closes every connection; does not wait for handlers
	}
}

// Wait waits d, the delay injected into a call (Faults.Delay). It reports
// false, at once, when ctx ends (the client gave up) or Close is called
// first: the call is then abandoned.
func (v *Server) Wait(ctx context.Context, d time.Duration) bool {
	v.mu.Lock()
	done := v.doneLocked()
	v.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-done:
		return false
	}
}
