package tablestore

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/fault"
)

// The deployment entity: <prefix>index, PartitionKey "meta" (apart from the
// index entries' partition "idx", which every index query names), RowKey
// "deployment", property At (Edm.DateTime).
const (
	metaPK        = "meta"
	deploymentRow = "deployment"
)

// DeployedAt returns when this deployment (this table prefix) first ran:
// the first call ever creates the entity with its now (UTC, truncated to
// the microsecond; Table Storage keeps 100 ns), every later call returns
// what it holds. It reads first (one point read once the entity exists,
// the usual case) and inserts when it is missing; two first calls racing —
// two instances starting together — both insert, the service keeps one,
// and the loser (EntityAlreadyExists) reads it, so both return the same
// time. The answer is remembered by this Store: later calls cost nothing.
func (s *Store) DeployedAt(ctx context.Context, now time.Time) (time.Time, error) {
	const op = "deployed at"
	now = now.UTC().Truncate(time.Microsecond)
	if now.IsZero() {
		return time.Time{}, fault.Wrap(fault.ErrPermanent, op, errors.New("no time given"))
	}
	if at := s.deployed.Load(); at != nil {
		return *at, nil
	}
	if err := s.ensure(ctx); err != nil {
		return time.Time{}, err
	}
	ent, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: metaPK, RowKey: deploymentRow},
		Properties: map[string]any{"At": aztables.EDMDateTime(now)}})
	if err != nil {
		return time.Time{}, fault.Wrap(fault.ErrPermanent, op, err)
	}
	// The entity is never deleted (but with the tables), so a read after a
	// conflict finds it; the loop only covers tables recreated in between.
	for range 3 {
		resp, err := s.index.GetEntity(ctx, metaPK, deploymentRow, nil)
		switch {
		case err == nil:
			at, err := deployedAt(resp.Value)
			if err != nil {
				return time.Time{}, fault.WrapUnreadable(op, metaPK+"/"+deploymentRow, err)
			}
			s.deployed.Store(&at)
			return at, nil
		case !entityMissing(err):
			return time.Time{}, s.fail(op, err)
		}
		_, err = s.index.AddEntity(ctx, ent, nil)
		switch {
		case err == nil:
			s.deployed.Store(&now)
			return now, nil
		case !isStatus(err, http.StatusConflict):
			return time.Time{}, s.fail(op, err)
		}
		// Another instance created it first: read what it wrote.
	}
	return time.Time{}, fault.Wrap(fault.ErrTransient, op, errors.New("the deployment entity vanished between writes and reads"))
}

// deployedAt reads the At property of the deployment entity.
func deployedAt(raw []byte) (time.Time, error) {
	e, err := decodeEntity(raw)
	if err != nil {
		return time.Time{}, err
	}
	v, ok := e.Properties["At"].(aztables.EDMDateTime)
	if !ok || time.Time(v).IsZero() {
		return time.Time{}, fault.Problem("no valid At")
	}
	return time.Time(v).UTC(), nil
}
