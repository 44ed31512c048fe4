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
// history in one transaction, keeping the indexes beside it.
func (s *Store) SaveRequest(ctx context.Context, r *access.Request) error {
	const op = "save request"
	perm := func(format string, a ...any) error {
		return fault.Wrap(fault.ErrPermanent, op, fmt.Errorf(format, a...))
	}
	if r == nil || !validKey(r.ID) {
		return perm("request without a usable id")
	}
	if r.StoredHistory < 0 || r.StoredHistory > len(r.History) {
		return perm("request %q: StoredHistory %d outside its %d history entries", r.ID, r.StoredHistory, len(r.History))
	}
	newEntries := r.History[r.StoredHistory:]
	if len(newEntries) > MaxHistoryPerSave {
		return perm("request %q: %d new history entries in one save, over the limit of %d", r.ID, len(newEntries), MaxHistoryPerSave)
	}
	var old meta
	if r.Version != "" {
		var ok bool
		if old, ok = parseVersion(r.Version); !ok {
			return fault.Wrap(fault.ErrConflict, op, fmt.Errorf("request %q: version not issued by this store", r.ID))
		}
		if old.HLen != r.StoredHistory {
			return perm("request %q: StoredHistory %d but the version read holds %d entries", r.ID, r.StoredHistory, old.HLen)
		}
	} else if r.StoredHistory != 0 {
		return perm("request %q: new request with StoredHistory %d", r.ID, r.StoredHistory)
	}

	// Encode everything before touching storage. The history from
	// old.HRows on is inline in the state row; when the row would grow past
	// inlineBytes, the oldest inline entries move to history rows, written
	// in one transaction with the state row.
	for _, h := range newEntries {
		hb, err := json.Marshal(h)
		if err != nil {
			return perm("encode history of %q: %v", r.ID, err)
		}
		if n := len(splitBody(string(hb))); n > maxHistoryParts {
			return perm("a history entry of %s needs %d properties of %d UTF-16 units, over the limit of %d", r.ID, n, partUnits, maxHistoryParts)
		}
	}
	c := *r
	c.Version, c.StoredHistory = "", 0
	c.History = make([]access.HistoryEntry, len(r.History)-old.HRows)
	for i, h := range r.History[old.HRows:] {
		h.At = h.At.UTC()
		c.History[i] = h
	}
	// Stored history is append-only: entries the caller changed since it
	// read them are written as they were stored (read again: a save whose
	// stored entries are unchanged, the usual case, reads nothing).
	if stored := old.HLen - old.HRows; stored > 0 && histSig(c.History[:stored]) != old.HSig {
		was, err := s.storedInline(ctx, r.ID, old)
		if err != nil {
			return err
		}
		copy(c.History, was)
	}
	body, err := json.Marshal(&c)
	if err != nil {
		return perm("encode request %q: %v", r.ID, err)
	}
	type spill struct {
		h    access.HistoryEntry
		body []byte
	}
	var spilled []spill
	if len(body) > inlineBytes {
		size := len(body)
		for len(c.History) > 0 && len(spilled) < MaxHistoryPerSave && size > inlineBytes {
			hb, err := json.Marshal(c.History[0])
			if err != nil {
				return perm("encode history of %q: %v", r.ID, err)
			}
			if len(splitBody(string(hb))) > maxHistoryParts {
				break // cannot happen (new entries are checked above); kept inline rather than refusing the save
			}
			spilled = append(spilled, spill{c.History[0], hb})
			size -= len(hb) + 1
			c.History = c.History[1:]
		}
		if body, err = json.Marshal(&c); err != nil {
			return perm("encode request %q: %v", r.ID, err)
		}
	}
	next := meta{HLen: len(r.History), HRows: old.HRows + len(spilled), Idx: statePrefix(r.State), IdxSig: indexSig(r.Profile, r.Requester)}
	if !r.DueAt.IsZero() {
		next.Due = dueRow(r.DueAt, r.ID)
	}
	if next.Idx == "" {
		next.IdxSig = ""
	}
	stateProps := map[string]any{
		"State": string(r.State), "Profile": r.Profile, "Requester": r.Requester, "Source": string(r.Source),
		"HistoryLen": int32(next.HLen), "HistoryRows": int32(next.HRows),
	}
	if next.HLen > next.HRows {
		next.HSig = histSig(c.History)
		stateProps["HistorySig"] = next.HSig
	}
	if !r.RequestedAt.IsZero() {
		stateProps["RequestedAt"] = aztables.EDMDateTime(r.RequestedAt.UTC())
	}
	if !r.DueAt.IsZero() {
		stateProps["DueAt"] = aztables.EDMDateTime(r.DueAt.UTC())
	}
	if err := putBody(stateProps, string(body), maxRequestParts, "request "+r.ID); err != nil {
		return perm("%v", err)
	}
	var rows []aztables.TransactionAction
	size := len(body)
	for i, sp := range spilled {
		props := map[string]any{"At": aztables.EDMDateTime(sp.h.At), "Type": sp.h.Type}
		if err := putBody(props, string(sp.body), maxHistoryParts, "a history entry of "+r.ID); err != nil {
			return perm("%v", err)
		}
		ent, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: r.ID, RowKey: historyRowKey(old.HRows + i + 1)}, Properties: props})
		if err != nil {
			return perm("encode history of %q: %v", r.ID, err)
		}
		size += len(ent)
		rows = append(rows, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: ent})
	}
	if size > maxTransactionBytes {
		return perm("request %q: a save of %d bytes is over the limit of %d", r.ID, size, maxTransactionBytes)
	}
	if err := s.ensure(ctx); err != nil {
		return err
	}

	// 1. New index entries first: an entry may be stale, never missing.
	// Nothing written here is taken back when the transaction fails: the
	// entry may be the one the current version needs (written again by us
	// with a new ETag), and a stale entry is harmless. Both entries are in
	// the index partition: one round trip for the two.
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
		return s.fail(op, err)
	}

	// Superseded entries: deleted after the write (step 3) — or, when the
	// request enters an in-flight state (intent recorded before a Graph
	// call, always followed by a save of the result), left for that next
	// save to delete with its own, one round trip less. Until then they are
	// stale entries, which readers tolerate: the state row no longer names
	// them, and an in-flight request's DueAt is in the future.
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
	if inFlight(r.State) && len(gone) <= maxDeferredIndex {
		for _, g := range gone {
			if g.etag != "" {
				next.Gone = append(next.Gone, [2]string{g.rk, g.etag})
			}
		}
		gone = nil
		if len(next.Gone) > 0 {
			b, _ := json.Marshal(next.Gone)
			stateProps["IdxGone"] = string(b)
		}
	}

	// 2. State and history together.
	for k, v := range map[string]string{"DueKey": next.Due, "DueETag": next.DueETag, "Idx": next.Idx, "IdxSig": next.IdxSig, "IdxETag": next.IdxETag} {
		if v != "" {
			stateProps[k] = v
		}
	}
	stateEnt, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: r.ID, RowKey: stateRowKey}, Properties: stateProps})
	if err != nil {
		return perm("encode request %q: %v", r.ID, err)
	}
	etag, err := s.writeState(ctx, r.ID, stateEnt, old.ETag, rows)
	if err != nil {
		return err
	}
	next.ETag = etag

	// 3. Old index entries last, only if nobody wrote them again since.
	s.deleteIndex(context.WithoutCancel(ctx), gone...)

	r.Version = next.version()
	r.StoredHistory = len(r.History)
	return nil
}

// storedInline reads the inline history entries of the version read (a
// save whose caller changed them writes them back as stored).
func (s *Store) storedInline(ctx context.Context, id string, old meta) ([]access.HistoryEntry, error) {
	const op = "save request"
	resp, err := s.requests.GetEntity(ctx, id, stateRowKey, nil)
	if err != nil {
		if entityMissing(err) {
			return nil, fault.Wrap(fault.ErrConflict, op, fmt.Errorf("request %q vanished", id))
		}
		return nil, s.fail(op, err)
	}
	if string(resp.ETag) != old.ETag {
		return nil, fault.Wrap(fault.ErrConflict, op, fmt.Errorf("request %q changed since it was read", id))
	}
	r, _, err := pointRead(op, id, resp)
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
	const op = "save request"
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
			return "", fault.Wrap(fault.ErrConflict, op, fmt.Errorf("request %q: %w", id, err))
		}
		return "", s.fail(op, fmt.Errorf("request %q: %w", id, err))
	}
	if newETag != "" {
		return string(newETag), nil
	}
	resp, err := s.requests.GetEntity(ctx, id, stateRowKey, nil)
	if err != nil {
		return "", s.fail(op, err)
	}
	return string(resp.ETag), nil
}

// submit runs the transaction and returns the state row's new ETag.
func (s *Store) submit(ctx context.Context, id string, actions []aztables.TransactionAction) (string, error) {
	const op = "save request"
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
		return "", fault.Wrap(kind, op, fmt.Errorf("request %q: %w", id, &StatusError{Status: bad.status, Code: bad.code}))
	}
	if err != nil {
		if res.parsed {
			// 202 without a readable failure: do not guess.
			return "", fault.Wrap(fault.ErrTransient, op, fmt.Errorf("request %q: unreadable transaction answer", id))
		}
		return "", s.fail(op, err)
	}
	if len(res.ops) > 0 && res.ops[0].etag != "" {
		return res.ops[0].etag, nil
	}
	// The service did not report the ETag: read it.
	resp, err := s.requests.GetEntity(ctx, id, stateRowKey, nil)
	if err != nil {
		return "", s.fail(op, err)
	}
	return string(resp.ETag), nil
}
