package broker

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// Every update of a request or a ledger goes through retryOnConflict: load,
// decide, save with compare-and-swap (ETag); when another invocation saved
// first, back off briefly and start again from a fresh load, at most
// Options.MaxConflictRetries times (docs/design.md, rule 8 and
// Concurrency). The decisions themselves are pure functions of package
// access; the closures here only gather facts and call them.

// ErrTooManyConflicts is returned (as transient) when a request kept changing
// under us; the delivery is retried.
var ErrTooManyConflicts = fault.Wrap(fault.ErrTransient, "save", errors.New("too many concurrent updates"))

// retryOnConflict runs attempt until it does not lose a compare-and-swap
// (its error is returned as is), or until MaxConflictRetries attempts lost
// (ErrTooManyConflicts). Between attempts it waits a short jittered backoff
// that doubles (1 ms to 64 ms), so that two invocations racing on one
// entity do not collide again in lockstep.
func (b *Broker) retryOnConflict(ctx context.Context, attempt func() error) error {
	for i := range b.opts.MaxConflictRetries {
		err := attempt()
		if !fault.Conflict(err) {
			return err
		}
		if i == b.opts.MaxConflictRetries-1 {
			break
		}
		d := time.Millisecond << min(i, 6)
		t := time.NewTimer(d/2 + rand.N(d/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return fault.Wrap(fault.ErrTransient, "save", ctx.Err())
		case <-t.C:
		}
	}
	return ErrTooManyConflicts
}

// updateRequest loads request id, asks decide for the next version and
// saves it (persist, then flushOutcomes sends what it recorded). decide gets the
// stored request (nil when there is none) and returns the version to save,
// or nil to save nothing; its error ends the update as is. It returns the
// request as stored after the update (the saved version, or the loaded one
// when nothing was saved).
func (b *Broker) updateRequest(ctx context.Context, id string, decide func(cur *access.Request) (*access.Request, error)) (*access.Request, error) {
	return b.updateRequestFrom(ctx, id, nil, decide)
}

// updateRequestFrom is updateRequest whose first attempt starts from held,
// a version this invocation read or saved itself, to spare a read; only a
// lost compare-and-swap reads the request again.
func (b *Broker) updateRequestFrom(ctx context.Context, id string, held *access.Request, decide func(cur *access.Request) (*access.Request, error)) (*access.Request, error) {
	var out *access.Request
	saved := false
	first := true
	err := b.retryOnConflict(ctx, func() error {
		var cur *access.Request
		if first && held != nil {
			cur = held
		} else {
			var err error
			if cur, err = b.load(ctx, id); err != nil {
				return err
			}
		}
		first = false
		next, err := decide(cur)
		if err != nil || next == nil {
			out = cur
			return err
		}
		if err := b.persist(ctx, next); err != nil {
			return err
		}
		out, saved = next, true
		return nil
	})
	if saved {
		b.flushOutcomes(ctx, out)
	}
	return out, err
}

// updateLedger loads the ledger of (group, user) — the first attempt may
// start from held, a version this invocation saved itself, to spare a read
// — and lets decide change it; the ledger is saved when decide returns true.
// It returns the ledger as stored after the update.
func (b *Broker) updateLedger(ctx context.Context, g, u string, held *access.Ledger, decide func(l *access.Ledger) (save bool, err error)) (*access.Ledger, error) {
	var out *access.Ledger
	first := true
	err := b.retryOnConflict(ctx, func() error {
		var l *access.Ledger
		if first && held != nil {
			l = held.Clone()
		} else {
			var err error
			if l, err = b.store.GetLedger(ctx, g, u); err != nil {
				return err
			}
			l.Normalize()
		}
		first = false
		save, err := decide(l)
		if err != nil || !save {
			out = l
			return err
		}
		if err := b.store.SaveLedger(ctx, l); err != nil {
			return err
		}
		out = l
		return nil
	})
	return out, err
}
