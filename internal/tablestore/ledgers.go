package tablestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

const ledgerPartition = "ledger"

func ledgerRowKey(groupID, userID string) string { return groupID + "_" + userID }

// GetLedger loads the ledger of (group, user): one point read. A missing
// ledger is returned empty with Version "".
func (s *Store) GetLedger(ctx context.Context, groupID, userID string) (*access.Ledger, error) {
	const op = "get ledger"
	empty := &access.Ledger{GroupID: groupID, UserID: userID}
	rk := ledgerRowKey(groupID, userID)
	if !validKey(rk) {
		return empty, nil
	}
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	resp, err := s.ledgers.GetEntity(ctx, ledgerPartition, rk, nil)
	if err != nil {
		if entityMissing(err) {
			return empty, nil
		}
		return nil, s.fail(op, err)
	}
	var l access.Ledger
	e, err := decodeEntity(resp.Value)
	if err == nil {
		var body string
		if body, err = getBody(e); err == nil {
			err = json.Unmarshal([]byte(body), &l)
		}
	}
	if err != nil {
		return nil, fault.WrapUnreadable(op, "ledger "+rk, err)
	}
	l.InUTC()
	l.GroupID, l.UserID, l.Version = groupID, userID, string(resp.ETag)
	return &l, nil
}

// SaveLedger creates (Version "") or compare-and-swaps the ledger; an empty
// ledger is deleted (with If-Match).
func (s *Store) SaveLedger(ctx context.Context, l *access.Ledger) error {
	const op = "save ledger"
	if l == nil || l.GroupID == "" || l.UserID == "" {
		return fault.Wrap(fault.ErrPermanent, op, errors.New("ledger without group or user"))
	}
	rk := ledgerRowKey(l.GroupID, l.UserID)
	if !validKey(rk) {
		return fault.Wrap(fault.ErrPermanent, op, fmt.Errorf("%q cannot be a ledger key", rk))
	}
	if err := s.ensure(ctx); err != nil {
		return err
	}
	conflict := func(err error) error {
		if st, code, ok := statusOf(err); ok && (st == http.StatusNotFound && code != string(aztables.TableNotFound)) {
			// Gone since it was read: the version is stale.
			return fault.Wrap(fault.ErrConflict, op, &StatusError{Status: st, Code: code})
		}
		return s.fail(op, err)
	}
	if l.Empty() { // nothing worth keeping: access.Ledger.Empty
		if l.Version == "" {
			// Creating an empty ledger stores nothing, but must still fail
			// when one exists (the caller's view is stale).
			_, err := s.ledgers.GetEntity(ctx, ledgerPartition, rk, nil)
			switch {
			case err == nil:
				return fault.Wrap(fault.ErrConflict, op, errors.New("ledger exists"))
			case entityMissing(err):
				return nil
			default:
				return s.fail(op, err)
			}
		}
		if _, err := s.ledgers.DeleteEntity(ctx, ledgerPartition, rk, &aztables.DeleteEntityOptions{IfMatch: to.Ptr(azcore.ETag(l.Version))}); err != nil {
			return conflict(err)
		}
		l.Version = ""
		return nil
	}
	c := *l
	c.Version = ""
	body, err := json.Marshal(&c)
	if err != nil {
		return fault.Wrap(fault.ErrPermanent, op, err)
	}
	props := map[string]any{"GroupID": l.GroupID, "UserID": l.UserID, "Busy": l.ClaimedBy} // column named before the field was renamed
	if err := putBody(props, string(body), maxRequestParts, "ledger "+rk); err != nil {
		return fault.Wrap(fault.ErrPermanent, op, err)
	}
	ent, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: ledgerPartition, RowKey: rk}, Properties: props})
	if err != nil {
		return fault.Wrap(fault.ErrPermanent, op, err)
	}
	var etag azcore.ETag
	if l.Version == "" {
		resp, err := s.ledgers.AddEntity(ctx, ent, nil)
		if err != nil {
			return s.fail(op, err)
		}
		etag = resp.ETag
	} else {
		resp, err := s.ledgers.UpdateEntity(ctx, ent, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeReplace, IfMatch: to.Ptr(azcore.ETag(l.Version))})
		if err != nil {
			return conflict(err)
		}
		etag = resp.ETag
	}
	if etag == "" {
		return fault.Wrap(fault.ErrTransient, op, errors.New("storage answered without ETag"))
	}
	l.Version = string(etag)
	return nil
}
