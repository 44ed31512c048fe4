// Package tablestoretest counts what a tablestore.Store sends, for tests and
// benchmarks: the round trips each operation costs.
package tablestoretest

import (
	"net/http"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// RoundTrips is an HTTP transport that counts every request sent through
// it. Given as tablestore.Options.Transport, it counts every HTTP request
// the store sends (an SDK retry too). It is safe for concurrent use.
type RoundTrips struct {
	inner policy.Transporter
	n     atomic.Int64
}

// Count returns a counting transport that sends through inner (nil: a plain
// net/http client, the store's own default).
func Count(inner policy.Transporter) *RoundTrips {
	if inner == nil {
		inner = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return &RoundTrips{inner: inner}
}

// Do counts req and sends it.
func (c *RoundTrips) Do(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.inner.Do(req)
}

// N returns how many requests were sent so far.
func (c *RoundTrips) N() int64 { return c.n.Load() }
