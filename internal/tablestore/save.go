package tablestore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// Limits of one save.
const (
	// MaxHistoryPerSave: a transaction holds at most 100 operations, one of
	// them the state row.
	MaxHistoryPerSave = 99
	// maxTransactionBytes stays under the 4 MiB payload of a transaction.
	maxTransactionBytes = 3 << 20
	// inlineBytes is how large the state row's JSON may grow with its
	// history inline before the oldest inline entries are moved to history
	// rows (4 properties; UTF-8 bytes bound UTF-16 units from above).
	inlineBytes = 4 * partUnits
)

// SaveRequest creates or compare-and-swaps a request and appends its new
// history in one transaction, keeping the indexes beside it. Everything is
// encoded and checked before anything is written; then:
//
//  1. the new index entries are written (an entry may be stale, never
//     missing);
//  2. the state row and the history rows that move out of it are written
//     together (the compare-and-swap);
//  3. the superseded index entries are deleted if nobody wrote them again
//     since (unless the request enters an in-flight state, whose next save
//     deletes them).
func (s *Store) SaveRequest(ctx context.Context, r *access.Request) error {
	old, err := checkSave(r)
	if err != nil {
		return err
	}
	w, err := s.encodeSave(ctx, r, old)
	if err != nil {
		return err
	}
	if err := s.ensure(ctx); err != nil {
		return err
	}
	if err := s.writeNewIndex(ctx, w); err != nil {
		return err
	}
	gone := w.supersededIndex()
	if err := s.writeRequest(ctx, w); err != nil {
		return err
	}
	s.deleteIndex(context.WithoutCancel(ctx), gone...)
	r.Version = w.next.version()
	r.StoredHistory = len(r.History)
	return nil
}

const saveOp = "save request"

// refused is a save refused for what the caller asked (fault.ErrPermanent).
func refused(format string, a ...any) error {
	return fault.Wrap(fault.ErrPermanent, saveOp, fmt.Errorf(format, a...))
}

// checkSave checks what r says about itself (its id, its version, the
// history it claims is stored, the entries it appends) and returns the
// metadata of the version read (zero for a create).
func checkSave(r *access.Request) (meta, error) {
	if r == nil || !validKey(r.ID) {
		return meta{}, refused("request without a usable id")
	}
	if r.StoredHistory < 0 || r.StoredHistory > len(r.History) {
		return meta{}, refused("request %q: StoredHistory %d outside its %d history entries", r.ID, r.StoredHistory, len(r.History))
	}
	newEntries := r.History[r.StoredHistory:]
	if len(newEntries) > MaxHistoryPerSave {
		return meta{}, refused("request %q: %d new history entries in one save, over the limit of %d", r.ID, len(newEntries), MaxHistoryPerSave)
	}
	var old meta
	if r.Version != "" {
		var ok bool
		if old, ok = parseVersion(r.Version); !ok {
			return meta{}, fault.Wrap(fault.ErrConflict, saveOp, fmt.Errorf("request %q: version not issued by this store", r.ID))
		}
		if old.HLen != r.StoredHistory {
			return meta{}, refused("request %q: StoredHistory %d but the version read holds %d entries", r.ID, r.StoredHistory, old.HLen)
		}
	} else if r.StoredHistory != 0 {
		return meta{}, refused("request %q: new request with StoredHistory %d", r.ID, r.StoredHistory)
	}
	return old, nil
}

// requestWrite is a save encoded: the entities to write and the version
// they make.
type requestWrite struct {
	r    *access.Request
	old  meta // the version read (zero for a create)
	next meta // the version this save writes (its ETags filled in as they come)
	// state holds the state row's properties (the index bookkeeping is
	// added once the index entries are written).
	state map[string]any
	// historyRows are the history rows to insert with the state row.
	historyRows []aztables.TransactionAction
}

// encodeSave encodes r as the version after old. The history from old.HRows
// on is inline in the state row; when the row would grow past inlineBytes,
// the oldest inline entries move to history rows, written in one
// transaction with the state row.
func (s *Store) encodeSave(ctx context.Context, r *access.Request, old meta) (*requestWrite, error) {
	if err := checkHistorySize(r); err != nil {
		return nil, err
	}
	c, err := s.inlinePart(ctx, r, old)
	if err != nil {
		return nil, err
	}
	body, spilled, err := spillOldest(c)
	if err != nil {
		return nil, err
	}
	w := &requestWrite{r: r, old: old, next: nextMeta(r, old, len(spilled))}
	if w.state, err = stateProps(r, &w.next, c.History, body); err != nil {
		return nil, err
	}
	size := len(body)
	if w.historyRows, size, err = historyRowActions(r.ID, old.HRows, spilled, size); err != nil {
		return nil, err
	}
	if size > maxTransactionBytes {
		return nil, refused("request %q: a save of %d bytes is over the limit of %d", r.ID, size, maxTransactionBytes)
	}
	return w, nil
}

// checkHistorySize refuses a new history entry too large for a history row.
func checkHistorySize(r *access.Request) error {
	for _, h := range r.History[r.StoredHistory:] {
		hb, err := json.Marshal(h)
		if err != nil {
			return refused("encode history of %q: %v", r.ID, err)
		}
		if n := len(splitBody(string(hb))); n > maxHistoryParts {
			return refused("a history entry of %s needs %d properties of %d UTF-16 units, over the limit of %d", r.ID, n, partUnits, maxHistoryParts)
		}
	}
	return nil
}

// inlinePart is what the state row holds of r: a copy whose History is the
// entries from old.HRows on (times in UTC), without Version and
// StoredHistory. Stored history is append-only: entries the caller changed
// since it read them are written as they were stored (read again: a save
// whose stored entries are unchanged, the usual case, reads nothing).
func (s *Store) inlinePart(ctx context.Context, r *access.Request, old meta) (*access.Request, error) {
	c := *r
	c.Version, c.StoredHistory = "", 0
	c.History = make([]access.HistoryEntry, len(r.History)-old.HRows)
	for i, h := range r.History[old.HRows:] {
		h.At = h.At.UTC()
		c.History[i] = h
	}
	if stored := old.HLen - old.HRows; stored > 0 && histSig(c.History[:stored]) != old.HSig {
		was, err := s.storedInline(ctx, r.ID, old)
		if err != nil {
			return nil, err
		}
		copy(c.History, was)
	}
	return &c, nil
}

// spilledEntry is a history entry that moves from the state row to a
// history row, with its JSON.
type spilledEntry struct {
	h    access.HistoryEntry
	body []byte
}

// spillOldest encodes c for the state row. When its JSON is over
// inlineBytes, the oldest inline entries (up to MaxHistoryPerSave) leave
// c.History until it fits; they are returned for history rows.
func spillOldest(c *access.Request) ([]byte, []spilledEntry, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return nil, nil, refused("encode request %q: %v", c.ID, err)
	}
	if len(body) <= inlineBytes {
		return body, nil, nil
	}
	var spilled []spilledEntry
	size := len(body)
	for len(c.History) > 0 && len(spilled) < MaxHistoryPerSave && size > inlineBytes {
		hb, err := json.Marshal(c.History[0])
		if err != nil {
			return nil, nil, refused("encode history of %q: %v", c.ID, err)
		}
		if len(splitBody(string(hb))) > maxHistoryParts {
			break // cannot happen (new entries are checked before); kept inline rather than refusing the save
		}
		spilled = append(spilled, spilledEntry{c.History[0], hb})
		size -= len(hb) + 1
		c.History = c.History[1:]
	}
	if body, err = json.Marshal(c); err != nil {
		return nil, nil, refused("encode request %q: %v", c.ID, err)
	}
	return body, spilled, nil
}

// nextMeta is the version r makes after old, without its ETags: history
// length and rows, and the index entries it needs.
func nextMeta(r *access.Request, old meta, spilled int) meta {
	next := meta{HLen: len(r.History), HRows: old.HRows + spilled, Idx: statePrefix(r.State), IdxSig: indexSig(r.Profile, r.Requester)}
	if !r.DueAt.IsZero() {
		next.Due = dueRow(r.DueAt, r.ID)
	}
	if next.Idx == "" {
		next.IdxSig = ""
	}
	return next
}

// stateProps are the state row's properties: the queryable columns, the
// history bookkeeping and body (the request with its inline history). It
// sets next.HSig.
func stateProps(r *access.Request, next *meta, inline []access.HistoryEntry, body []byte) (map[string]any, error) {
	props := map[string]any{
		"State": string(r.State), "Profile": r.Profile, "Requester": r.Requester, "Source": string(r.Source),
		"HistoryLen": int32(next.HLen), "HistoryRows": int32(next.HRows),
	}
	if next.HLen > next.HRows {
		next.HSig = histSig(inline)
		props["HistorySig"] = next.HSig
	}
	if !r.RequestedAt.IsZero() {
		props["RequestedAt"] = aztables.EDMDateTime(r.RequestedAt.UTC())
	}
	if !r.DueAt.IsZero() {
		props["DueAt"] = aztables.EDMDateTime(r.DueAt.UTC())
	}
	if err := putBody(props, string(body), maxRequestParts, "request "+r.ID); err != nil {
		return nil, refused("%v", err)
	}
	return props, nil
}

// historyRowActions are the inserts of the spilled entries, as history rows
// after the hRows already stored; size grows by their encoded size.
func historyRowActions(id string, hRows int, spilled []spilledEntry, size int) ([]aztables.TransactionAction, int, error) {
	var rows []aztables.TransactionAction
	for i, sp := range spilled {
		props := map[string]any{"At": aztables.EDMDateTime(sp.h.At), "Type": sp.h.Type}
		if err := putBody(props, string(sp.body), maxHistoryParts, "a history entry of "+id); err != nil {
			return nil, 0, refused("%v", err)
		}
		ent, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: id, RowKey: historyRowKey(hRows + i + 1)}, Properties: props})
		if err != nil {
			return nil, 0, refused("encode history of %q: %v", id, err)
		}
		size += len(ent)
		rows = append(rows, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: ent})
	}
	return rows, size, nil
}

// writeNewIndex is step 1: the index entries the new version needs that
// the version read did not have. Nothing written here is taken back when
// the save fails: the entry may be the one the current version needs
// (written again by us with a new ETag), and a stale entry is harmless.
// Both entries are in the index partition: one round trip for the two.
func (s *Store) writeNewIndex(ctx context.Context, w *requestWrite) error {
	r, old, next := w.r, w.old, &w.next
	var ups []indexUpsert
	if next.Due != "" {
		if next.Due == old.Due {
			next.DueETag = old.DueETag
		} else {
			ups = append(ups, indexUpsert{next.Due, map[string]any{"RequestID": r.ID, "DueAt": aztables.EDMDateTime(r.DueAt.UTC())}, &next.DueETag})
		}
	}
	if next.Idx != "" {
		if next.Idx == old.Idx && next.IdxSig == old.IdxSig {
			next.IdxETag = old.IdxETag
		} else {
			ups = append(ups, indexUpsert{next.Idx + r.ID, map[string]any{"Profile": r.Profile, "Requester": r.Requester}, &next.IdxETag})
		}
	}
	if err := s.upsertIndex(ctx, ups); err != nil {
		return s.fail(saveOp, err)
	}
	return nil
}

// supersededIndex returns the index entries the new version no longer
// needs, to be deleted after the write (step 3) — or, when the request
// enters an in-flight state (intent recorded before a Graph call, always
// followed by a save of the result), none: they are left for that next
// save to delete with its own, one round trip less (recorded in the state
// row's IdxGone and in next.Gone). Until then they are stale entries, which
// readers tolerate: the state row no longer names them, and an in-flight
// request's DueAt is in the future.
func (w *requestWrite) supersededIndex() []indexRow {
	r, old, next := w.r, w.old, &w.next
	var gone []indexRow
	for _, g := range old.Gone {
		if g[0] != next.Due && g[0] != next.Idx+r.ID {
			gone = append(gone, indexRow{g[0], g[1]})
		}
	}
	if old.Due != "" && old.Due != next.Due {
		gone = append(gone, indexRow{old.Due, old.DueETag})
	}
	if old.Idx != "" && old.Idx != next.Idx {
		gone = append(gone, indexRow{old.Idx + r.ID, old.IdxETag})
	}
	if !inFlight(r.State) || len(gone) > maxDeferredIndex {
		return gone
	}
	for _, g := range gone {
		if g.etag != "" {
			next.Gone = append(next.Gone, [2]string{g.rk, g.etag})
		}
	}
	if len(next.Gone) > 0 {
		b, _ := json.Marshal(next.Gone)
		w.state["IdxGone"] = string(b)
	}
	return nil
}

// writeRequest is step 2: the state row, with the index bookkeeping of the
// new version, and the history rows together. It sets next.ETag.
func (s *Store) writeRequest(ctx context.Context, w *requestWrite) error {
	next := &w.next
	for k, v := range map[string]string{"DueKey": next.Due, "DueETag": next.DueETag, "Idx": next.Idx, "IdxSig": next.IdxSig, "IdxETag": next.IdxETag} {
		if v != "" {
			w.state[k] = v
		}
	}
	stateEnt, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: w.r.ID, RowKey: stateRowKey}, Properties: w.state})
	if err != nil {
		return refused("encode request %q: %v", w.r.ID, err)
	}
	etag, err := s.writeState(ctx, w.r.ID, stateEnt, w.old.ETag, w.historyRows)
	if err != nil {
		return err
	}
	next.ETag = etag
	return nil
}

// storedInline reads the inline history entries of the version read (a
// save whose caller changed them writes them back as stored).
func (s *Store) storedInline(ctx context.Context, id string, old meta) ([]access.HistoryEntry, error) {
	resp, err := s.requests.GetEntity(ctx, id, stateRowKey, nil)
	if err != nil {
		if entityMissing(err) {
			return nil, fault.Wrap(fault.ErrConflict, saveOp, fmt.Errorf("request %q vanished", id))
		}
		return nil, s.fail(saveOp, err)
	}
	if string(resp.ETag) != old.ETag {
		return nil, fault.Wrap(fault.ErrConflict, saveOp, fmt.Errorf("request %q changed since it was read", id))
	}
	r, _, err := pointRead(saveOp, id, resp)
	if err != nil {
		return nil, err
	}
	return r.History, nil
}

// writeState creates (etag "") or compare-and-swaps the state row and
// inserts the history rows given: one single-entity write when there are
// none (the usual case), else one entity-group transaction. It returns the
// state row's new ETag.
func (s *Store) writeState(ctx context.Context, id string, stateEnt []byte, etag string, rows []aztables.TransactionAction) (string, error) {
	if len(rows) > 0 {
		actions := make([]aztables.TransactionAction, 0, 1+len(rows))
		if etag == "" {
			actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: stateEnt})
		} else {
			actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeUpdateReplace, Entity: stateEnt, IfMatch: to.Ptr(azcore.ETag(etag))})
		}
		return s.submit(ctx, id, append(actions, rows...))
	}
	var newETag azcore.ETag
	var err error
	if etag == "" {
		var resp aztables.AddEntityResponse
		if resp, err = s.requests.AddEntity(ctx, stateEnt, nil); err == nil {
			newETag = resp.ETag
		}
	} else {
		var resp aztables.UpdateEntityResponse
		if resp, err = s.requests.UpdateEntity(ctx, stateEnt, &aztables.UpdateEntityOptions{IfMatch: to.Ptr(azcore.ETag(etag)), UpdateMode: aztables.UpdateModeReplace}); err == nil {
			newETag = resp.ETag
		}
	}
	if err != nil {
		if entityMissing(err) {
			// The request vanished under a compare-and-swap: the version is stale.
			return "", fault.Wrap(fault.ErrConflict, saveOp, fmt.Errorf("request %q: %w", id, err))
		}
		return "", s.fail(saveOp, fmt.Errorf("request %q: %w", id, err))
	}
	if newETag != "" {
		return string(newETag), nil
	}
	resp, err := s.requests.GetEntity(ctx, id, stateRowKey, nil)
	if err != nil {
		return "", s.fail(saveOp, err)
	}
	return string(resp.ETag), nil
}

// submit runs the transaction and returns the state row's new ETag.
func (s *Store) submit(ctx context.Context, id string, actions []aztables.TransactionAction) (string, error) {
	res := &batchResult{}
	_, err := s.requests.SubmitTransaction(withBatchResult(ctx, res), actions, nil)
	if bad, ok := res.failed(); ok {
		if bad.code == string(aztables.TableNotFound) {
			s.ready.Store(false)
		}
		kind := kindOfStatus(bad.status, bad.code)
		if bad.status == http.StatusNotFound && kind == fault.ErrNotFound {
			// The request vanished under a compare-and-swap: the version is stale.
			kind = fault.ErrConflict
		}
		return "", fault.Wrap(kind, saveOp, fmt.Errorf("request %q: %w", id, &StatusError{Status: bad.status, Code: bad.code}))
	}
	if err != nil {
		if res.parsed {
			// 202 without a readable failure: do not guess.
			return "", fault.Wrap(fault.ErrTransient, saveOp, fmt.Errorf("request %q: unreadable transaction answer", id))
		}
		return "", s.fail(saveOp, err)
	}
	if len(res.ops) > 0 && res.ops[0].etag != "" {
		return res.ops[0].etag, nil
	}
	// The service did not report the ETag: read it.
	resp, err := s.requests.GetEntity(ctx, id, stateRowKey, nil)
	if err != nil {
		return "", s.fail(saveOp, err)
	}
	return string(resp.ETag), nil
}
