// Package memstore is an in-memory implementation of broker.Store and
// broker.Lister for the sandbox and for unit tests. It behaves like the
// Table Storage adapter (package tablestore) in everything callers can
// observe, and it passes the same conformance suite (package storetest):
//
//   - Version is an opaque token that changes on every save; SaveRequest with
//     Version "" creates (fault.ErrConflict when the request exists), else it
//     compare-and-swaps (fault.ErrConflict on a stale version or a vanished
//     request).
//   - Requests are deep-copied in and out (encoded as JSON, like the table
//     store does), so no caller ever shares memory with the store, and times
//     come back in UTC.
//   - History entries from StoredHistory on are appended on save; StoredHistory
//     must be what the loaded version had (else fault.ErrPermanent).
//   - The due index follows DueAt; listing orders by request id; list items
//     carry no history; RecentRejections looks at today's and yesterday's
//     rejections (UTC days), newest first.
//   - Ledgers compare-and-swap and are deleted when empty.
//   - The table store's limits hold here too: ids that cannot be storage
//     keys do not exist (GetRequest: fault.ErrNotFound; saves:
//     fault.ErrPermanent), a request too large for a table entity and a save
//     appending more than MaxHistoryPerSave entries are refused
//     (fault.ErrPermanent), and the same rejection recorded twice is kept once.
//   - A stored request that cannot be decoded never fails a listing: it is
//     left out of Items and named in ListPage.Skipped, left out of
//     DueRequests, logged (id only) and GetRequest of it fails with
//     fault.ErrUnreadable.
//
// CorruptRequest damages a stored request for the tests of that last rule;
// fault injection and operation counters are a decorator of package
// storetest (storetest.Faulty). It is safe for concurrent use.
package memstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// Operation names, in errors and logs.
const (
	opGetRequest       = "GetRequest"
	opSaveRequest      = "SaveRequest"
	opDueRequests      = "DueRequests"
	opRecordRejection  = "RecordRejection"
	opGetLedger        = "GetLedger"
	opSaveLedger       = "SaveLedger"
	opPing             = "Ping"
	opListRequests     = "ListRequests"
	opRecentRejections = "RecentRejections"
	opDeployedAt       = "DeployedAt"
)

// MaxHistoryPerSave is how many history entries one save may append (the
// table store's entity-group transaction limit, minus the state row).
const MaxHistoryPerSave = 99

// Size limits of the table store, applied here too so that nothing passes
// the sandbox and fails in Azure: the request without history is stored in
// at most 15 properties of 30,000 UTF-16 units, a history entry in at most
// 2, and one save writes at most 3 MiB.
const (
	partUnits           = 30000
	maxRequestParts     = 15
	maxHistoryParts     = 2
	maxTransactionBytes = 3 << 20
)

// parts is how many properties of partUnits UTF-16 units s needs (cut at
// rune boundaries, as the table store does).
func parts(s string) int {
	n, units := 1, 0
	for _, r := range s {
		u := 1
		if r >= 0x10000 {
			u = 2
		}
		if units+u > partUnits {
			n, units = n+1, 0
		}
		units += u
	}
	return n
}

// validKey reports whether s can be a key in the table store; an id that
// cannot be one is treated the same way here.
func validKey(s string) bool {
	if s == "" || len(s) > 512 {
		return false
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || strings.ContainsRune(`/\#?'`, r) {
			return false
		}
	}
	return true
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock that decides what "today" is for
// RecentRejections (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithLogger sets where stored requests that cannot be decoded are reported
// (ids and the kind of problem only; default: nowhere).
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

type stored struct {
	body    []byte // JSON of the request without history
	history []access.HistoryEntry
	version string
	state   access.State
	profile string
	reqr    string
	dueAt   time.Time
}

type ledger struct {
	body    []byte
	version string
}

// Store is the in-memory store. The zero value is not usable; call New.
type Store struct {
	now func() time.Time
	log *slog.Logger

	mu         sync.Mutex
	seq        uint64
	reqs       map[string]*stored
	ledgers    map[string]*ledger
	rejections []access.Rejection
	deployedAt time.Time
}

var (
	_ broker.Store      = (*Store)(nil)
	_ broker.Lister     = (*Store)(nil)
	_ broker.Deployment = (*Store)(nil)
)

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{
		now:     time.Now,
		reqs:    map[string]*stored{},
		ledgers: map[string]*ledger{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return s
}

// Len returns the number of stored requests.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// enter fails when ctx is done; else it returns with s.mu held.
func (s *Store) enter(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fault.Wrap(fault.ErrTransient, op, err)
	}
	s.mu.Lock()
	return nil
}

func (s *Store) nextVersion() string {
	s.seq++
	return `W/"mem-` + strconv.FormatUint(s.seq, 10) + `"`
}

// GetRequest loads a request with its whole history.
func (s *Store) GetRequest(ctx context.Context, id string) (*access.Request, error) {
	if err := s.enter(ctx, opGetRequest); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	st, ok := s.reqs[id]
	if !ok || !validKey(id) {
		return nil, fault.Wrap(fault.ErrNotFound, "get request", fmt.Errorf("request %q", id))
	}
	r, err := st.decode(id)
	if err != nil {
		return nil, err
	}
	r.History = slices.Clone(st.history)
	r.InUTC() // the history's times too
	return r, nil
}

func (st *stored) decode(id string) (*access.Request, error) {
	var r access.Request
	if err := json.Unmarshal(st.body, &r); err != nil {
		return nil, fault.WrapUnreadable("decode request", id, err)
	}
	r.InUTC()
	r.History = nil
	r.Version = st.version
	r.StoredHistory = len(st.history)
	return &r, nil
}

// SaveRequest creates or compare-and-swaps a request and appends its new
// history entries.
func (s *Store) SaveRequest(ctx context.Context, r *access.Request) error {
	if r == nil || !validKey(r.ID) {
		return fault.Wrap(fault.ErrPermanent, "save request", errors.New("request without a usable id"))
	}
	if err := s.enter(ctx, opSaveRequest); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if r.StoredHistory < 0 || r.StoredHistory > len(r.History) {
		return fault.Wrap(fault.ErrPermanent, "save request",
			fmt.Errorf("request %q: StoredHistory %d outside its %d history entries", r.ID, r.StoredHistory, len(r.History)))
	}
	if n := len(r.History) - r.StoredHistory; n > MaxHistoryPerSave {
		return fault.Wrap(fault.ErrPermanent, "save request",
			fmt.Errorf("request %q: %d new history entries in one save, over the limit of %d", r.ID, n, MaxHistoryPerSave))
	}
	cur, exists := s.reqs[r.ID]
	switch {
	case r.Version == "" && exists:
		return fault.Wrap(fault.ErrConflict, "save request", fmt.Errorf("request %q already exists", r.ID))
	case r.Version == "" && r.StoredHistory != 0:
		return fault.Wrap(fault.ErrPermanent, "save request", fmt.Errorf("request %q: new request with StoredHistory %d", r.ID, r.StoredHistory))
	case r.Version != "" && !exists:
		return fault.Wrap(fault.ErrConflict, "save request", fmt.Errorf("request %q no longer exists", r.ID))
	case r.Version != "" && cur.version != r.Version:
		return fault.Wrap(fault.ErrConflict, "save request", fmt.Errorf("request %q changed since it was read", r.ID))
	case r.Version != "" && r.StoredHistory != len(cur.history):
		return fault.Wrap(fault.ErrPermanent, "save request",
			fmt.Errorf("request %q: StoredHistory %d but the version read holds %d entries", r.ID, r.StoredHistory, len(cur.history)))
	}
	c := *r
	c.History = nil
	body, err := json.Marshal(&c)
	if err != nil {
		return fault.Wrap(fault.ErrPermanent, "encode request", err)
	}
	if n := parts(string(body)); n > maxRequestParts {
		return fault.Wrap(fault.ErrPermanent, "save request", fmt.Errorf("request %q needs %d properties, over the limit of %d", r.ID, n, maxRequestParts))
	}
	size := len(body)
	for _, h := range r.History[r.StoredHistory:] {
		hb, err := json.Marshal(h)
		if err != nil {
			return fault.Wrap(fault.ErrPermanent, "encode history", err)
		}
		if parts(string(hb)) > maxHistoryParts {
			return fault.Wrap(fault.ErrPermanent, "save request", fmt.Errorf("a history entry of %q is too large", r.ID))
		}
		size += len(hb)
	}
	if size > maxTransactionBytes {
		return fault.Wrap(fault.ErrPermanent, "save request", fmt.Errorf("request %q: a save of %d bytes is over the limit of %d", r.ID, size, maxTransactionBytes))
	}
	var hist []access.HistoryEntry
	if exists {
		hist = slices.Clip(cur.history)
	}
	hist = append(hist, r.History[r.StoredHistory:]...)
	next := &stored{
		body:    body,
		history: hist,
		version: s.nextVersion(),
		state:   r.State,
		profile: r.Profile,
		reqr:    r.Requester,
		dueAt:   r.DueAt,
	}
	s.reqs[r.ID] = next
	r.Version = next.version
	r.StoredHistory = len(r.History)
	return nil
}

// DueRequests returns ids of requests due at or before now, earliest first.
func (s *Store) DueRequests(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if err := s.enter(ctx, opDueRequests); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if limit <= 0 {
		return nil, nil
	}
	type due struct {
		at time.Time
		id string
	}
	var all []due
	for id, st := range s.reqs {
		if !st.dueAt.IsZero() && !st.dueAt.After(now) {
			if _, err := st.decode(id); err != nil {
				s.unreadable(ctx, opDueRequests, err)
				continue
			}
			all = append(all, due{st.dueAt, id})
		}
	}
	slices.SortFunc(all, func(a, b due) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	if len(all) > limit {
		all = all[:limit]
	}
	ids := make([]string, len(all))
	for i, d := range all {
		ids[i] = d.id
	}
	return ids, nil
}

// RecordRejection stores a rejected event without usable request id.
func (s *Store) RecordRejection(ctx context.Context, rej access.Rejection) error {
	if err := s.enter(ctx, opRecordRejection); err != nil {
		return err
	}
	defer s.mu.Unlock()
	rej.At = utc(rej.At)
	if slices.Contains(s.rejections, rej) {
		return nil // the same rejection at the same time is stored once
	}
	s.rejections = append(s.rejections, rej)
	return nil
}

// RecentRejections returns today's and yesterday's rejections (UTC days of
// the store's clock), newest first, at most limit.
func (s *Store) RecentRejections(ctx context.Context, limit int) ([]access.Rejection, error) {
	if err := s.enter(ctx, opRecentRejections); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if limit <= 0 {
		return nil, nil
	}
	limit = min(limit, MaxListLimit)
	today := s.now().UTC().Truncate(24 * time.Hour)
	from, to := today.AddDate(0, 0, -1), today.AddDate(0, 0, 1)
	var out []access.Rejection
	for _, r := range s.rejections {
		if !r.At.Before(from) && r.At.Before(to) {
			out = append(out, r)
		}
	}
	// Newest first; among equal times the later recorded first (stable).
	slices.Reverse(out)
	slices.SortStableFunc(out, func(a, b access.Rejection) int { return b.At.Compare(a.At) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func ledgerKey(groupID, userID string) string { return groupID + "_" + userID }

// GetLedger loads the ledger of (group, user); a missing one is returned empty
// with Version "".
func (s *Store) GetLedger(ctx context.Context, groupID, userID string) (*access.Ledger, error) {
	if err := s.enter(ctx, opGetLedger); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	st, ok := s.ledgers[ledgerKey(groupID, userID)]
	if !ok || !validKey(ledgerKey(groupID, userID)) {
		return &access.Ledger{GroupID: groupID, UserID: userID}, nil
	}
	var l access.Ledger
	if err := json.Unmarshal(st.body, &l); err != nil {
		return nil, fault.WrapUnreadable("decode ledger", "ledger "+ledgerKey(groupID, userID), err)
	}
	l.InUTC()
	l.GroupID, l.UserID, l.Version = groupID, userID, st.version
	return &l, nil
}

// SaveLedger creates or compare-and-swaps a ledger; an empty ledger is deleted.
func (s *Store) SaveLedger(ctx context.Context, l *access.Ledger) error {
	if l == nil || l.GroupID == "" || l.UserID == "" {
		return fault.Wrap(fault.ErrPermanent, "save ledger", errors.New("ledger without group or user"))
	}
	if err := s.enter(ctx, opSaveLedger); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k := ledgerKey(l.GroupID, l.UserID)
	if !validKey(k) {
		return fault.Wrap(fault.ErrPermanent, "save ledger", fmt.Errorf("%q cannot be a ledger key", k))
	}
	cur, exists := s.ledgers[k]
	switch {
	case l.Version == "" && exists:
		return fault.Wrap(fault.ErrConflict, "save ledger", fmt.Errorf("ledger %s already exists", k))
	case l.Version != "" && (!exists || cur.version != l.Version):
		return fault.Wrap(fault.ErrConflict, "save ledger", fmt.Errorf("ledger %s changed since it was read", k))
	}
	if l.Empty() { // nothing worth keeping: access.Ledger.Empty
		delete(s.ledgers, k)
		l.Version = ""
		return nil
	}
	body, err := json.Marshal(l)
	if err != nil {
		return fault.Wrap(fault.ErrPermanent, "encode ledger", err)
	}
	v := s.nextVersion()
	s.ledgers[k] = &ledger{body: body, version: v}
	l.Version = v
	return nil
}

// DeployedAt returns the now of the first call ever made on this store
// (UTC, truncated to the microsecond, as the table store keeps it); later
// calls return that same time.
func (s *Store) DeployedAt(ctx context.Context, now time.Time) (time.Time, error) {
	now = now.UTC().Truncate(time.Microsecond)
	if now.IsZero() {
		return time.Time{}, fault.Wrap(fault.ErrPermanent, "deployed at", errors.New("no time given"))
	}
	if err := s.enter(ctx, opDeployedAt); err != nil {
		return time.Time{}, err
	}
	defer s.mu.Unlock()
	if s.deployedAt.IsZero() {
		s.deployedAt = now
	}
	return s.deployedAt, nil
}

// Ping always answers (unless ctx is done).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.enter(ctx, opPing); err != nil {
		return err
	}
	s.mu.Unlock()
	return nil
}

// MaxListLimit bounds ListFilter.Limit; DefaultListLimit is used for 0.
const (
	MaxListLimit     = 1000
	DefaultListLimit = 100
)

// ListRequests lists requests in request id order. Items carry no history.
// Next is the id of the last item when more remain.
func (s *Store) ListRequests(ctx context.Context, f broker.ListFilter) (broker.ListPage, error) {
	if err := s.enter(ctx, opListRequests); err != nil {
		return broker.ListPage{}, err
	}
	defer s.mu.Unlock()
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = DefaultListLimit
	case limit > MaxListLimit:
		limit = MaxListLimit
	}
	ids := make([]string, 0, len(s.reqs))
	for id, st := range s.reqs {
		if id <= f.After && f.After != "" {
			continue
		}
		if (f.State != "" && st.state != f.State) || (f.Profile != "" && st.profile != f.Profile) ||
			(f.Requester != "" && st.reqr != f.Requester) {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var page broker.ListPage
	for i, id := range ids {
		if len(page.Items) == limit {
			page.Next = ids[i-1]
			break
		}
		r, err := s.reqs[id].decode(id)
		if err != nil {
			s.unreadable(ctx, opListRequests, err)
			page.Skipped = append(page.Skipped, id)
			continue
		}
		page.Items = append(page.Items, r)
	}
	return page, nil
}

// unreadable logs a stored request that cannot be decoded and is left out
// (the error names the id and the kind of problem, never the data).
func (s *Store) unreadable(ctx context.Context, op string, err error) {
	var u *fault.UnreadableError
	if errors.As(err, &u) {
		s.log.WarnContext(ctx, "stored request cannot be read; left out", "op", op, "requestId", u.ID, "problem", u.Problem)
	}
}

// CorruptRequest damages a request for tests (storetest.Corrupter): it
// replaces the stored body of request id by body (bytes the store may be
// unable to decode, as damage or a newer version would leave them), keeping
// what it lists and schedules the request by (state, profile, requester,
// due time) and its history.
func (s *Store) CorruptRequest(_ context.Context, id, body string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.reqs[id]
	if !ok {
		return fault.Wrap(fault.ErrNotFound, "corrupt request", fmt.Errorf("request %q", id))
	}
	c := *st
	c.body = []byte(body)
	s.reqs[id] = &c
	return nil
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
