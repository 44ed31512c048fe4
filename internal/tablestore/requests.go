package tablestore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// GetRequest loads a request with one point read of its state row, which
// holds the history inline; only a request whose history outgrew the row
// (or one written before history went inline) also queries its history
// rows.
func (s *Store) GetRequest(ctx context.Context, id string) (*access.Request, error) {
	const op = "get request"
	if !validKey(id) {
		return nil, fault.Wrap(fault.ErrNotFound, op, fmt.Errorf("%q cannot be a request id", id))
	}
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	resp, err := s.requests.GetEntity(ctx, id, stateRowKey, nil)
	if err != nil {
		if entityMissing(err) {
			return nil, fault.Wrap(fault.ErrNotFound, op, fmt.Errorf("request %q", id))
		}
		return nil, s.fail(op, err)
	}
	r, m, err := pointRead(op, id, resp)
	if err != nil {
		return nil, err
	}
	if m.HRows > 0 {
		hist, err := s.historyRows(ctx, id, m.HRows)
		if err != nil {
			return nil, err
		}
		r.History = append(hist, r.History...)
		r.InUTC() // the history rows' times too
	}
	return r, nil
}

// historyRows reads the first n history rows of a request (one partition
// range query for up to 1,000 of them).
func (s *Store) historyRows(ctx context.Context, id string, n int) ([]access.HistoryEntry, error) {
	const op = "get request"
	filter := "PartitionKey eq " + lit(id) + " and RowKey ge " + lit(historyPrefix) + " and RowKey lt " + lit(historyRowKey(n+1))
	pager := s.requests.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: to.Ptr(filter)})
	var rows []*aztables.EDMEntity
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, s.fail(op, err)
		}
		for _, raw := range page.Entities {
			e, err := decodeEntity(raw)
			if err != nil {
				return nil, fault.WrapUnreadable(op, id, err)
			}
			if strings.HasPrefix(e.RowKey, historyPrefix) {
				rows = append(rows, e)
			}
		}
	}
	slices.SortFunc(rows, func(a, b *aztables.EDMEntity) int { return strings.Compare(a.RowKey, b.RowKey) })
	if len(rows) < n {
		return nil, fault.WrapUnreadable(op, id, fault.Problem("%d history rows, the state row says %d", len(rows), n))
	}
	hist := make([]access.HistoryEntry, n)
	for i, h := range rows[:n] {
		if h.RowKey != historyRowKey(i+1) {
			return nil, fault.WrapUnreadable(op, id, fault.Problem("history row %s where %s belongs", h.RowKey, historyRowKey(i+1)))
		}
		body, err := getBody(h)
		if err == nil {
			err = json.Unmarshal([]byte(body), &hist[i])
		}
		if err != nil {
			return nil, fault.WrapUnreadable(op, id, err)
		}
	}
	return hist, nil
}
