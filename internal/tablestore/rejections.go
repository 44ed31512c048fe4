package tablestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

func rejectionPartition(day time.Time) string { return "rej-" + day.UTC().Format("20060102") }

func rejectionRowKey(rej access.Rejection) string {
	h := sha256.Sum256([]byte(rej.EventID + "\x00" + rej.Type + "\x00" + rej.RequestID + "\x00" + rej.Reason + "\x00" + rej.At.Format(time.RFC3339Nano)))
	return fmt.Sprintf("%019d_%s", math.MaxInt64-unixNano(rej.At), hex.EncodeToString(h[:8]))
}

// RecordRejection stores a rejected event. The same rejection recorded twice
// (same content and time) is stored once.
func (s *Store) RecordRejection(ctx context.Context, rej access.Rejection) error {
	const op = "record rejection"
	rej.At = rej.At.UTC()
	body, err := json.Marshal(rej)
	if err != nil {
		return fault.Wrap(fault.ErrPermanent, op, err)
	}
	props := map[string]any{"At": aztables.EDMDateTime(rej.At), "Type": rej.Type, "EventID": rej.EventID, "RequestID": rej.RequestID}
	if err := putBody(props, string(body), maxHistoryParts, "rejection"); err != nil {
		return fault.Wrap(fault.ErrPermanent, op, err)
	}
	ent, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: rejectionPartition(rej.At), RowKey: rejectionRowKey(rej)}, Properties: props})
	if err != nil {
		return fault.Wrap(fault.ErrPermanent, op, err)
	}
	if err := s.ensure(ctx); err != nil {
		return err
	}
	if _, err := s.rejections.AddEntity(ctx, ent, nil); err != nil && !isStatus(err, http.StatusConflict) {
		return s.fail(op, err)
	}
	return nil
}

// RecentRejections returns today's and yesterday's rejections (UTC days of
// the store's clock), newest first, at most limit. A row that cannot be
// decoded is left out and logged (its keys only).
func (s *Store) RecentRejections(ctx context.Context, limit int) ([]access.Rejection, error) {
	const op = "recent rejections"
	if limit <= 0 {
		return nil, nil
	}
	if limit > MaxListLimit {
		limit = MaxListLimit
	}
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	today := s.now().UTC()
	var out []access.Rejection
	for _, day := range []time.Time{today, today.AddDate(0, 0, -1)} {
		filter := "PartitionKey eq " + lit(rejectionPartition(day))
		var npk, nrk *string
		for range maxPages {
			top := int32(limit - len(out))
			page, err := s.rejections.NewListEntitiesPager(&aztables.ListEntitiesOptions{
				Filter: &filter, Top: &top, NextPartitionKey: npk, NextRowKey: nrk,
				Select: to.Ptr("PartitionKey,RowKey,BodyParts,Body,Body1"),
			}).NextPage(ctx)
			if err != nil {
				return nil, s.fail(op, err)
			}
			for _, raw := range page.Entities {
				var rej access.Rejection
				e, err := decodeEntity(raw)
				if err == nil {
					var body string
					if body, err = getBody(e); err == nil {
						err = json.Unmarshal([]byte(body), &rej)
					}
				}
				if err != nil {
					// One bad row never fails the listing: it is left out.
					s.unreadable(ctx, op, fault.WrapUnreadable(op, rawKey(raw), err))
					continue
				}
				rej.At = utc(rej.At)
				out = append(out, rej)
			}
			if len(out) >= limit || more(page) == nil {
				break
			}
			npk, nrk = page.NextPartitionKey, page.NextRowKey
		}
		if len(out) >= limit {
			break
		}
	}
	return out, nil
}

// utc is t in UTC, and the zero time for the zero time.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
