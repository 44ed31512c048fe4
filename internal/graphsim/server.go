package graphsim

import (
	"net"
	"net/http"
)

// Serving the Sim: simkit.Server does the work.

// Start serves the Sim on a new loopback httptest server and returns s.
func (s *Sim) Start() *Sim {
	s.srv.Start(s.Handler())
	return s
}

// URL is the root URL of the server started by Start (no base path).
func (s *Sim) URL() string { return s.srv.URL() }

// BaseURL is URL()+BasePath, the SDK's base URL.
func (s *Sim) BaseURL() string { return s.URL() + BasePath }

// Serve listens on addr (e.g. "127.0.0.1:7071") and serves until Close; it
// returns http.ErrServerClosed after Close.
func (s *Sim) Serve(addr string) error { return s.srv.Serve(addr, s.Handler()) }

// ServeListener serves on l until Close; it returns http.ErrServerClosed
// after Close (at once, closing l, when Close came first).
func (s *Sim) ServeListener(l net.Listener) error { return s.srv.ServeListener(l, s.Handler()) }

// Close stops the servers started by Start or Serve. Delayed answers are
// abandoned and client connections closed first, so Close does not wait on
// a client that never finishes; it returns within simkit.CloseWait even if
// a handler is stuck.
func (s *Sim) Close() { s.srv.Close() }

// Handler is the Sim as an http.Handler (paths start with BasePath).
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }
