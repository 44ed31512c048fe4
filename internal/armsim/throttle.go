package armsim

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/simkit"
)

// ARM's request throttling (docs/design.md, real directory rule 4), as Microsoft documents it in
// "Understand how Azure Resource Manager throttles requests"
// (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling;
// source: MicrosoftDocs/azure-docs,
// articles/azure-resource-manager/management/request-limits-and-throttling.md):
//
//   - Since 2024 ("Regional throttling and token bucket algorithm") the
//     limits are token buckets applied per region, per subscription, per
//     security principal and per operation type: reads 250 tokens refilled
//     at 25 per second, deletes 200 at 10 per second, writes 200 at 10 per
//     second (a global per-subscription limit of 15 times that across all
//     principals is not modelled: jitaccess is one principal). Each request
//     takes one token.
//   - Before that, the documented limits were per hour, per principal and
//     subscription (and per ARM instance): 12,000 reads, 15,000 deletes,
//     1,200 writes (HourlyThrottle).
//   - A throttled request gets 429 with Retry-After in seconds; "if you send
//     a request before the retry value has elapsed, your request isn't
//     processed and a new retry value is returned": a throttled request
//     takes no token here. The error code is SubscriptionRequestsThrottled.
//   - Answers carry x-ms-ratelimit-remaining-subscription-reads, -writes or
//     -deletes.
//
// The resource provider (Microsoft.Authorization) may throttle on its own;
// that is not documented and not modelled (inject it with FailNext(...,
// 429, retryAfter)).

// Bucket is one token bucket: Size tokens, refilled at RefillPerSecond.
// Size 0 leaves that operation type unthrottled.
type Bucket struct {
	Size            int
	RefillPerSecond float64
}

// Throttle is the throttling the Sim applies per subscription and caller
// (the token's oid). Throttle{} turns it off.
type Throttle struct {
	Reads, Writes, Deletes Bucket
}

// DocumentedThrottle is ARM's documented token-bucket limit per
// subscription and principal (2024 onwards).
func DocumentedThrottle() Throttle {
	return Throttle{
		Reads:   Bucket{Size: 250, RefillPerSecond: 25},
		Writes:  Bucket{Size: 200, RefillPerSecond: 10},
		Deletes: Bucket{Size: 200, RefillPerSecond: 10},
	}
}

// HourlyThrottle is ARM's earlier documented limit per subscription and
// principal per hour: 12,000 reads, 1,200 writes, 15,000 deletes, as
// buckets of that size refilled over an hour.
func HourlyThrottle() Throttle {
	return Throttle{
		Reads:   Bucket{Size: 12000, RefillPerSecond: 12000.0 / 3600},
		Writes:  Bucket{Size: 1200, RefillPerSecond: 1200.0 / 3600},
		Deletes: Bucket{Size: 15000, RefillPerSecond: 15000.0 / 3600},
	}
}

const faultThrottle = "throttle"

// SetThrottle throttles requests beyond t (buckets start full).
func (s *Sim) SetThrottle(t Throttle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.thr = throttle{t: t, buckets: map[bucketKey]*simkit.TokenBucket{}}
}

// CountThrottled is how many recorded calls SetThrottle's limits answered
// with 429.
func (s *Sim) CountThrottled() int {
	return len(s.log.Select(func(c Call) bool { return c.Fault == faultThrottle }))
}

type bucketKey struct{ sub, caller, op string }

type throttle struct {
	t       Throttle
	buckets map[bucketKey]*simkit.TokenBucket
}

// throttleAnswer is the verdict on one request.
type throttleAnswer struct {
	header     string // x-ms-ratelimit-remaining-subscription-*; "" when not metered
	remaining  int
	retryAfter time.Duration // > 0: throttled
	message    string
}

// admit charges the request to its bucket and says whether it
// is throttled.
func (s *Sim) admit(method, path, caller string) throttleAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var spec Bucket
	var op, header string
	switch method {
	case http.MethodGet:
		spec, op, header = s.thr.t.Reads, "read", "x-ms-ratelimit-remaining-subscription-reads"
	case http.MethodDelete:
		spec, op, header = s.thr.t.Deletes, "delete", "x-ms-ratelimit-remaining-subscription-deletes"
	default:
		spec, op, header = s.thr.t.Writes, "write", "x-ms-ratelimit-remaining-subscription-writes"
	}
	sub := subscriptionOf(scopeOf(path))
	if spec.Size <= 0 || sub == "" {
		return throttleAnswer{}
	}
	k := bucketKey{strings.ToLower(sub), caller, op}
	b := s.thr.buckets[k]
	if b == nil {
		per := spec.RefillPerSecond
		if per <= 0 {
			per = float64(spec.Size)
		}
		b = simkit.NewTokenBucket(float64(spec.Size), per)
		s.thr.buckets[k] = b
	}
	b.Refill(s.opts.Now())
	if b.Level < 1 {
		wait := b.Wait(1)
		secs := int(math.Ceil(wait.Seconds()))
		who := caller
		if who == "" {
			who = "00000000-0000-0000-0000-000000000000"
		}
		return throttleAnswer{
			header: header, retryAfter: time.Duration(secs) * time.Second,
			message: fmt.Sprintf("Number of '%s' requests for subscription '%s' actor '%s' exceeded. Please try again after '%d' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling", op, sub, who, secs),
		}
	}
	b.Level--
	return throttleAnswer{header: header, remaining: int(math.Floor(b.Level))}
}
