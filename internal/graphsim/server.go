package graphsim

import (
	"net"
	"net/http"
	"net/http/httptest"
	"time"
)

// Start serves the Sim on a new loopback httptest server and returns s.
func (s *Sim) Start() *Sim {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		s.srv = httptest.NewServer(s.Handler())
	}
	return s
}

// URL is the root URL of the server started by Start (no base path).
func (s *Sim) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return ""
	}
	return s.srv.URL
}

// BaseURL is URL()+BasePath, the SDK's base URL.
func (s *Sim) BaseURL() string { return s.URL() + BasePath }

// Serve listens on addr (e.g. "127.0.0.1:7071") and serves until Close; it
// returns http.ErrServerClosed after Close.
func (s *Sim) Serve(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.ServeListener(l)
}

// ServeListener serves on l until Close; it returns http.ErrServerClosed
// after Close (at once, closing l, when Close came first).
func (s *Sim) ServeListener(l net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = l.Close()
		return http.ErrServerClosed
	}
	s.server = srv
	s.mu.Unlock()
	return srv.Serve(l)
}

// closeWait bounds how long Close waits for handlers still running.
const closeWait = 10 * time.Second

// Close stops the servers started by Start or Serve. Delayed answers are
// abandoned and client connections closed first, so Close does not wait on
// a client that never finishes; it returns within closeWait even if a
// handler is stuck.
func (s *Sim) Close() {
	s.mu.Lock()
	srv, server := s.srv, s.server
	s.srv, s.server = nil, nil
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.Close()
		}()
		t := time.NewTimer(closeWait)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			// A handler did not return: close what is left and give up
			// waiting rather than hang the caller.
			srv.CloseClientConnections()
		}
	}
	if server != nil {
		_ = server.Close() // closes every connection; does not wait for handlers
	}
}

// Handler is the Sim as an http.Handler (paths start with BasePath).
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }
