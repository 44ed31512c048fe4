package simkit

import (
	"math"
	"time"
)

// TokenBucket is one token bucket of a simulated throttle: it holds up to
// Size tokens and refills at PerSecond. What a request costs, whether it
// is throttled and whether a throttled request is charged (Level may then
// go below zero) is the simulator's to say.
type TokenBucket struct {
	Size, PerSecond, Level float64
	at                     time.Time // of the last refill; zero: not yet used
}

// NewTokenBucket returns a full bucket of size tokens refilled at
// perSecond.
func NewTokenBucket(size, perSecond float64) *TokenBucket {
	return &TokenBucket{Size: size, PerSecond: perSecond, Level: size}
}

// Refill adds the tokens that came back since the last refill: the first
// refill only starts the clock, and a clock set back adds nothing.
func (b *TokenBucket) Refill(now time.Time) {
	switch {
	case b.at.IsZero():
		b.at = now
	case now.After(b.at):
		b.Level = math.Min(b.Size, b.Level+now.Sub(b.at).Seconds()*b.PerSecond)
		b.at = now
	}
}

// Wait is how long until the bucket holds cost again (0: it does).
func (b *TokenBucket) Wait(cost float64) time.Duration {
	if b.Level >= cost {
		return 0
	}
	return time.Duration((cost - b.Level) / b.PerSecond * float64(time.Second))
}
