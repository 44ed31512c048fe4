package tablestore

import (
	"context"
	"encoding/json"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/access"
)

// maxDeferredIndex bounds the superseded index entries a request carries
// to its next save (in-flight saves that retry move the due entry each
// time); past it they are deleted at once.
const maxDeferredIndex = 8

// inFlight: states whose save records intent before a Graph call; the save
// of the result follows.
func inFlight(st access.State) bool { return st == access.Activating || st == access.Ending }

// indexRow is an index entry (RowKey in the index partition) with the ETag
// it had when it was written.
type indexRow struct{ rk, etag string }

// indexUpsert is an index entry to write; its new ETag goes to *etag.
type indexUpsert struct {
	rk    string
	props map[string]any
	etag  *string
}

// upsertIndex writes index entries: one upsert, or an entity-group
// transaction of upserts (one round trip either way).
func (s *Store) upsertIndex(ctx context.Context, ups []indexUpsert) error {
	if len(ups) == 0 {
		return nil
	}
	ents := make([][]byte, len(ups))
	for i, u := range ups {
		ent, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: indexPK, RowKey: u.rk}, Properties: u.props})
		if err != nil {
			return err
		}
		ents[i] = ent
	}
	if len(ups) == 1 {
		resp, err := s.index.UpsertEntity(ctx, ents[0], &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
		if err != nil {
			return err
		}
		*ups[0].etag = string(resp.ETag)
		return nil
	}
	actions := make([]aztables.TransactionAction, len(ups))
	for i := range ups {
		actions[i] = aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: ents[i]}
	}
	res := &batchResult{}
	_, err := s.index.SubmitTransaction(withBatchResult(ctx, res), actions, nil)
	if bad, ok := res.failed(); ok {
		return &StatusError{Status: bad.status, Code: bad.code}
	}
	if err != nil {
		return err
	}
	for i, u := range ups {
		if i < len(res.ops) {
			*u.etag = res.ops[i].etag // "" if not reported: the entry is then never deleted by a save (stale at worst)
		}
	}
	return nil
}

// deleteIndex deletes index entries if they still have the ETag given (one
// round trip for several, in a transaction); any failure leaves a stale
// entry, which readers tolerate and clean up.
func (s *Store) deleteIndex(ctx context.Context, rows ...indexRow) {
	var keep []indexRow
	for _, row := range rows {
		if row.etag != "" {
			keep = append(keep, row)
		}
	}
	if len(keep) > 1 {
		actions := make([]aztables.TransactionAction, len(keep))
		for i, row := range keep {
			ent, _ := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: indexPK, RowKey: row.rk}})
			actions[i] = aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: ent, IfMatch: to.Ptr(azcore.ETag(row.etag))}
		}
		res := &batchResult{}
		_, err := s.index.SubmitTransaction(withBatchResult(ctx, res), actions, nil)
		if _, failed := res.failed(); !failed && err == nil {
			return
		}
		// One of them changed (or vanished) meanwhile: the rest one by one.
	}
	for _, row := range keep {
		_, _ = s.index.DeleteEntity(ctx, indexPK, row.rk, &aztables.DeleteEntityOptions{IfMatch: to.Ptr(azcore.ETag(row.etag))})
	}
}
