// Package fault defines the error kinds that every adapter translates its
// errors into exactly once (not found, conflict, transient, permanent), so
// that the use cases and the one place that maps errors to the host's answer
// never look at SDK-specific errors.
package fault

import (
	"errors"
	"fmt"
	"time"
)

// Kinds. Adapters wrap their errors with one of these (fmt.Errorf("...: %w", ErrX)
// or Wrap), callers test with errors.Is.
var (
	// ErrNotFound: the thing does not exist (unknown user, unknown request).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a compare-and-swap lost (ETag mismatch) or a create found an existing entity.
	ErrConflict = errors.New("conflict")
	// ErrTransient: retrying later may succeed (throttling, 5xx, timeouts, storage down).
	ErrTransient = errors.New("transient failure")
	// ErrPermanent: retrying will not help (403, 400 that is not "already exists", policy refusal).
	ErrPermanent = errors.New("permanent failure")
)

// Error carries the kind, the operation and, for throttling, how long the
// dependency asked us to wait.
type Error struct {
	Kind       error
	Op         string
	Err        error
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v: %v", e.Op, e.Kind, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Op, e.Kind)
}

// Is makes errors.Is(err, ErrTransient) work for *Error values.
func (e *Error) Is(target error) bool { return target == e.Kind }

func (e *Error) Unwrap() error { return e.Err }

// Wrap returns an *Error of the given kind.
func Wrap(kind error, op string, err error) error {
	return &Error{Kind: kind, Op: op, Err: err}
}

// Transient reports whether err is worth retrying.
func Transient(err error) bool { return errors.Is(err, ErrTransient) }

// Permanent reports whether err is a permanent failure.
func Permanent(err error) bool { return errors.Is(err, ErrPermanent) }

// NotFound reports whether err is a not-found.
func NotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// Conflict reports whether err is a lost compare-and-swap or an existing entity.
func Conflict(err error) bool { return errors.Is(err, ErrConflict) }
