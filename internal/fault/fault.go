// Package fault defines the error kinds that every adapter translates its
// errors into exactly once (not found, conflict, transient, permanent), so
// that the use cases and the one place that maps errors to the host's answer
// never look at SDK-specific errors.
package fault

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

// ErrUnreadable marks stored data that cannot be decoded: damaged, holding a
// value out of range, or written by a newer version. An adapter returns it
// inside an ErrPermanent (retrying does not help), so Permanent(err) is true
// too; Unreadable tells it from other permanent failures, so that a reader
// can skip such a record and say so instead of failing as a whole.
var ErrUnreadable = errors.New("stored data cannot be read")

// Unreadable reports whether err is stored data that cannot be decoded.
func Unreadable(err error) bool { return errors.Is(err, ErrUnreadable) }

// UnreadableError says which stored record cannot be decoded and why, in
// words that never quote the stored data (it may hold free text senders
// wrote): the message is safe to log.
type UnreadableError struct {
	// ID names the record (a request id, a table row key).
	ID string
	// Problem says what is wrong, e.g. "invalid JSON at byte 17" or
	// "field approvals holds a string, not a []access.Approval".
	Problem string
}

func (e *UnreadableError) Error() string {
	return fmt.Sprintf("%s: %v: %s", e.ID, ErrUnreadable, e.Problem)
}

// Is makes errors.Is(err, ErrUnreadable) work.
func (e *UnreadableError) Is(target error) bool { return target == ErrUnreadable }

// WrapUnreadable returns an ErrPermanent for op holding an *UnreadableError
// for the record id. cause (a decoding error) is described, not kept: its
// text may quote the stored data.
func WrapUnreadable(op, id string, cause error) error {
	return Wrap(ErrPermanent, op, &UnreadableError{ID: id, Problem: describe(cause)})
}

// describe says what a decoding error is about without quoting data.
func describe(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var prob problem
	switch {
	case err == nil:
		return "unknown problem"
	case errors.As(err, &prob):
		return string(prob)
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		kind, _, _ := strings.Cut(typ.Value, " ") // "number 5": the kind, not the value
		if typ.Field != "" {
			return fmt.Sprintf("field %s holds a JSON %s, not a %s", typ.Field, kind, typ.Type)
		}
		return fmt.Sprintf("a JSON %s where a %s belongs", kind, typ.Type)
	}
	// A value's own decoder refused it (a time or a duration out of range
	// or malformed); its message may quote the value.
	return "a value is malformed or out of range"
}

// problem is a description that quotes no data (an adapter's own words about
// the layout of a record, e.g. "no BodyParts").
type problem string

func (p problem) Error() string { return string(p) }

// Problem returns an error whose text WrapUnreadable keeps as it is: for an
// adapter's own description of what is wrong with a record's layout, which
// must not quote the record's data.
func Problem(format string, a ...any) error { return problem(fmt.Sprintf(format, a...)) }
