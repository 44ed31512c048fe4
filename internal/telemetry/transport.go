package telemetry

import (
	"net/http"
)

// Services whose calls are counted.
const (
	ServiceGraph = "graph"
	ServiceARM   = "arm"
)

const numServices = 2

var counterNames = [numServices][3]string{
	{FieldGraphRequests, FieldGraphFailed, FieldGraphThrottled},
	{FieldARMRequests, FieldARMFailed, FieldARMThrottled},
}

type callCounts struct{ calls, failed, throttled int64 }

// Transport counts the HTTP attempts made with an invocation's context: every
// attempt, the failed ones (no answer, 5xx, 401, 403: the service is down or
// jitaccess lacks a permission) and the throttled ones (429). Other 4xx
// answers are outcomes the adapters expect (404 on a removal, 400 "already
// exist" on an add) and are not failures here. Each retry is an attempt of
// its own, so a throttled step shows as many throttled attempts.
//
// service is ServiceGraph or ServiceARM; base nil means
// http.DefaultTransport.
func Transport(service string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	i := 0
	if service == ServiceARM {
		i = 1
	}
	return &countingTransport{base: base, svc: i}
}

type countingTransport struct {
	base http.RoundTripper
	svc  int
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if s := FromContext(req.Context()); s != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		s.count(t.svc, status, err)
	}
	return resp, err
}

func (s *Scope) count(svc, status int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.calls[svc]
	c.calls++
	switch {
	case err != nil, status >= 500, status == http.StatusUnauthorized, status == http.StatusForbidden:
		c.failed++
	case status == http.StatusTooManyRequests:
		c.throttled++
	}
}
