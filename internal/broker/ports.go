// Package broker holds the use cases of jitaccess: accept a request event,
// approve, deny, cancel, revoke, expire, and sweep. It drives the pure domain
// (package access) and talks to the outside world only through the small
// interfaces below, which the adapters (tablestore, memstore, graph) satisfy.
//
// Errors from ports are classified with package fault; the broker never looks
// at SDK errors.
package broker

import (
	"context"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

// User is a directory user as the broker needs it.
type User struct {
	ID      string // object id (lower-case GUID)
	UPN     string
	Enabled bool
	Guest   bool // userType == "Guest"
}

// Directory is the part of Microsoft Graph the broker uses (docs/design.md, Operations).
// Every method is idempotent. Errors wrap fault.ErrNotFound (unknown user),
// fault.ErrTransient (429/5xx/timeouts, after the adapter's own bounded
// retries) or fault.ErrPermanent.
type Directory interface {
	// LookupUser resolves an object id or a UPN.
	LookupUser(ctx context.Context, idOrUPN string) (User, error)
	// MemberOfAny reports which of groupIDs the user is a transitive member of
	// (POST /users/{id}/checkMemberGroups).
	MemberOfAny(ctx context.Context, userID string, groupIDs []string) ([]string, error)
	// AddMember adds a direct member. added is false when the user already was
	// a direct member ("already exist" is success).
	AddMember(ctx context.Context, groupID, userID string) (added bool, err error)
	// RemoveMember removes a direct member. removed is false when the user was
	// not a member (404 is success).
	RemoveMember(ctx context.Context, groupID, userID string) (removed bool, err error)
	// RevokeSessions invalidates the user's refresh tokens (revokeSignInSessions).
	RevokeSessions(ctx context.Context, userID string) error
}

// Store keeps requests, their history, the due index and the membership
// ledgers. Errors wrap fault.ErrNotFound, fault.ErrConflict (lost
// compare-and-swap, or create of an existing entity) or fault.ErrTransient.
type Store interface {
	// GetRequest loads a request with its whole history; Version and
	// StoredHistory are set.
	GetRequest(ctx context.Context, id string) (*access.Request, error)
	// SaveRequest creates the request when Version is empty (fault.ErrConflict
	// if it exists) or replaces it if Version still matches (else
	// fault.ErrConflict). History entries from StoredHistory on are appended
	// in the same atomic write. The due index follows DueAt. On success
	// Version and StoredHistory are updated.
	SaveRequest(ctx context.Context, r *access.Request) error
	// DueRequests returns ids of requests whose DueAt is at or before now,
	// earliest first, at most limit. Cost is proportional to what is due, not
	// to the number of stored requests. Entries may be stale: the caller
	// re-reads each request.
	DueRequests(ctx context.Context, now time.Time, limit int) ([]string, error)
	// RecordRejection stores a rejected event that has no usable request id.
	RecordRejection(ctx context.Context, rej access.Rejection) error
	// GetLedger loads the ledger of (group, user); a missing one is returned
	// empty with Version "" (no error).
	GetLedger(ctx context.Context, groupID, userID string) (*access.Ledger, error)
	// SaveLedger creates (Version "") or compare-and-swaps the ledger; an
	// empty ledger (access.Ledger.Empty) is deleted.
	SaveLedger(ctx context.Context, l *access.Ledger) error
	// ListRequests lists requests (drift reconciliation reads the active
	// grants with it); see Lister.
	ListRequests(ctx context.Context, f ListFilter) (ListPage, error)
	// Ping checks that the store answers (for /api/health).
	Ping(ctx context.Context) error
}

// Deployment remembers when this deployment (its store: for Table Storage,
// its table prefix) first ran: the first call ever made records its now,
// and every later call — in any instance, whatever its now — returns that
// same time (two instances starting together agree on one of their nows).
// The time is UTC, truncated to the microsecond. Errors wrap
// fault.ErrTransient (storage unreachable) or fault.ErrPermanent.
type Deployment interface {
	DeployedAt(ctx context.Context, now time.Time) (time.Time, error)
}

// Clock is injected so that tests control time.
type Clock interface{ Now() time.Time }

// SystemClock is the real clock, in UTC.
type SystemClock struct{}

// Now returns the current UTC time.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// ListFilter selects requests for the read API. Empty fields do not filter.
type ListFilter struct {
	State     access.State
	Profile   string
	Requester string // object id
	Limit     int    // 1..1000
	// After is the store's own position token from a previous page ("" = start).
	After string
}

// ListPage is one page of requests; Next is "" when nothing remains.
type ListPage struct {
	Items []*access.Request
	Next  string
	// Skipped are the ids of stored requests in this page's range that
	// match the filter as far as the store can tell but cannot be decoded
	// (damaged, a value out of range, written by a newer version): they are
	// left out of Items, so that one bad row never fails a listing, and
	// GetRequest of such an id fails with fault.ErrUnreadable. A page with
	// Skipped may hold fewer than Limit items while Next is not "".
	Skipped []string
}

// Lister is what the read API and the dashboard need from the store. Listing
// by a non-final state (pending, active and the in-flight ones) reads an index
// whose size is what is open now, not all history. A stored row that cannot
// be decoded never fails a listing: it is reported in ListPage.Skipped (and
// left out of RecentRejections); GetRequest of it fails with
// fault.ErrUnreadable inside fault.ErrPermanent.
type Lister interface {
	GetRequest(ctx context.Context, id string) (*access.Request, error)
	ListRequests(ctx context.Context, f ListFilter) (ListPage, error)
	// RecentRejections returns the newest rejections without request id.
	RecentRejections(ctx context.Context, limit int) ([]access.Rejection, error)
	Ping(ctx context.Context) error
}
