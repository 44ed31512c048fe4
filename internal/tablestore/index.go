package tablestore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// List limits, as in memstore.
const (
	MaxListLimit     = 1000
	DefaultListLimit = 100
	// maxPages bounds the queries one ListRequests or DueRequests call makes.
	maxPages = 20
	// readConcurrency bounds parallel point reads.
	readConcurrency = 8
)

// DueRequests returns the ids of requests due at or before now, earliest
// first: one range query on the due index. Entries whose due time is more
// than StaleAfter in the past are checked against their request (a point
// read each) and, when stale, deleted; younger entries are returned as
// they are (the caller re-reads). A checked request whose state row cannot
// be decoded is left out and logged: nobody can act on it, and handing it
// to every sweep would take a slot of each.
func (s *Store) DueRequests(ctx context.Context, now time.Time, limit int) ([]string, error) {
	const op = "due requests"
	if limit <= 0 {
		return nil, nil
	}
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	filter := "PartitionKey eq " + lit(indexPK) + " and RowKey ge " + lit(duePrefix) + " and RowKey lt " + lit(duePrefix+dueTimeKey(now.Add(time.Nanosecond)))
	checkBefore := dueTimeKey(now.Add(-s.staleAfter))
	var out []string
	var npk, nrk *string
	for range maxPages {
		top := int32(limit - len(out))
		page, err := s.index.NewListEntitiesPager(&aztables.ListEntitiesOptions{
			Filter: &filter, Top: &top, NextPartitionKey: npk, NextRowKey: nrk,
			Select: to.Ptr("PartitionKey,RowKey,Timestamp"),
		}).NextPage(ctx)
		if err != nil {
			return nil, s.fail(op, err)
		}
		type entry struct {
			key, id, etag string
			written       time.Time
		}
		var entries []entry
		var check []string
		for _, raw := range page.Entities {
			e, err := decodeEntity(raw)
			if err != nil {
				s.unreadable(ctx, op, fault.WrapUnreadable(op, rawKey(raw), err))
				continue
			}
			tk, id, ok := strings.Cut(strings.TrimPrefix(e.RowKey, duePrefix), "_")
			if !ok || !strings.HasPrefix(e.RowKey, duePrefix) {
				continue
			}
			entries = append(entries, entry{e.RowKey, id, e.ETag, time.Time(e.Timestamp)})
			if tk < checkBefore {
				check = append(check, id)
			}
		}
		states, bad, err := s.stateRows(ctx, check)
		if err != nil {
			return nil, err
		}
		stale := s.now().Add(-s.staleAfter)
		for _, en := range entries {
			if err := bad[en.id]; err != nil {
				s.unreadable(ctx, op, fault.WrapUnreadable(op, en.id, err))
				continue
			}
			st, checked := states[en.id]
			if !checked {
				out = append(out, en.id)
				continue
			}
			if st != nil && str(st, "DueKey") == en.key {
				if _, err := decodeState(st, st.ETag); err != nil {
					s.unreadable(ctx, op, fault.WrapUnreadable(op, en.id, err))
					continue
				}
				out = append(out, en.id)
				continue
			}
			if en.written.Before(stale) {
				s.deleteIndex(ctx, indexRow{en.key, en.etag})
			}
		}
		if len(out) >= limit || more(page) == nil {
			break
		}
		npk, nrk = page.NextPartitionKey, page.NextRowKey
	}
	return out, nil
}

func more(p aztables.ListEntitiesResponse) *string {
	if (p.NextPartitionKey == nil || *p.NextPartitionKey == "") && (p.NextRowKey == nil || *p.NextRowKey == "") {
		return nil
	}
	if p.NextPartitionKey != nil {
		return p.NextPartitionKey
	}
	return p.NextRowKey
}

// stateRows point-reads the state rows of ids in parallel. The first map has
// an entry for every id whose row could be read as an entity: nil when the
// request does not exist; bad holds why the others could not.
func (s *Store) stateRows(ctx context.Context, ids []string) (rows map[string]*aztables.EDMEntity, bad map[string]error, err error) {
	out := make(map[string]*aztables.EDMEntity, len(ids))
	bad = map[string]error{}
	if len(ids) == 0 {
		return out, bad, nil
	}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		first error
		sem   = make(chan struct{}, readConcurrency)
	)
	for _, id := range ids {
		if !validKey(id) {
			out[id] = nil
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			resp, err := s.requests.GetEntity(ctx, id, stateRowKey, nil)
			var e *aztables.EDMEntity
			if err == nil {
				var derr error
				if e, derr = decodeEntity(resp.Value); derr != nil {
					mu.Lock()
					bad[id] = derr
					mu.Unlock()
					return
				}
				e.ETag = string(resp.ETag)
			} else if entityMissing(err) {
				err = nil
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = s.fail("read request", err)
				}
				return
			}
			out[id] = e
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, nil, first
	}
	return out, bad, nil
}

// rawKey is the PartitionKey (else RowKey) of an entity that cannot be
// decoded as a whole, for the log and ListPage.Skipped ("" if none can be
// read).
func rawKey(raw []byte) string {
	var k struct{ PartitionKey, RowKey string }
	_ = json.Unmarshal(raw, &k)
	if k.RowKey == stateRowKey || k.RowKey == "" {
		return k.PartitionKey
	}
	return k.PartitionKey + "/" + k.RowKey
}

// Continuation tokens: kind, then the service's continuation.
const (
	tokIndex = "i"
	tokTable = "r"
)

func encodeToken(kind string, p aztables.ListEntitiesResponse) string {
	if more(p) == nil {
		return ""
	}
	e := base64.RawURLEncoding.EncodeToString
	return kind + "." + e([]byte(deref(p.NextPartitionKey))) + "." + e([]byte(deref(p.NextRowKey)))
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func decodeToken(kind, tok string) (npk, nrk *string, err error) {
	if tok == "" {
		return nil, nil, nil
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] != kind {
		return nil, nil, fault.Wrap(fault.ErrPermanent, "list requests", fmt.Errorf("continuation does not belong to this listing"))
	}
	pk, err1 := base64.RawURLEncoding.DecodeString(parts[1])
	rk, err2 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || (len(pk) == 0 && len(rk) == 0) {
		return nil, nil, fault.Wrap(fault.ErrPermanent, "list requests", fmt.Errorf("malformed continuation"))
	}
	if len(pk) > 0 {
		npk = to.Ptr(string(pk))
	}
	if len(rk) > 0 {
		nrk = to.Ptr(string(rk))
	}
	return npk, nrk, nil
}

// ListRequests lists requests in id order, without history. A non-final
// state is listed from the state index, anything else from the state rows
// of the requests table.
func (s *Store) ListRequests(ctx context.Context, f broker.ListFilter) (broker.ListPage, error) {
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = DefaultListLimit
	case limit > MaxListLimit:
		limit = MaxListLimit
	}
	if err := s.ensure(ctx); err != nil {
		return broker.ListPage{}, err
	}
	if p := statePrefix(f.State); p != "" {
		return s.listIndex(ctx, p, f, limit)
	}
	return s.listTable(ctx, f, limit)
}

func (s *Store) listTable(ctx context.Context, f broker.ListFilter, limit int) (broker.ListPage, error) {
	const op = "list requests"
	npk, nrk, err := decodeToken(tokTable, f.After)
	if err != nil {
		return broker.ListPage{}, err
	}
	filter := "RowKey eq " + lit(stateRowKey)
	if f.State != "" {
		filter += " and State eq " + lit(string(f.State))
	}
	if f.Profile != "" {
		filter += " and Profile eq " + lit(f.Profile)
	}
	if f.Requester != "" {
		filter += " and Requester eq " + lit(f.Requester)
	}
	var page broker.ListPage
	for range maxPages {
		top := int32(limit - len(page.Items))
		resp, err := s.requests.NewListEntitiesPager(&aztables.ListEntitiesOptions{
			Filter: &filter, Top: &top, NextPartitionKey: npk, NextRowKey: nrk,
		}).NextPage(ctx)
		if err != nil {
			return broker.ListPage{}, s.fail(op, err)
		}
		for _, raw := range resp.Entities {
			id := rawKey(raw)
			e, err := decodeEntity(raw)
			if err == nil {
				id = e.PartitionKey
				var r *access.Request
				if r, err = decodeState(e, ""); err == nil {
					page.Items = append(page.Items, r)
					continue
				}
			}
			// One bad row never fails the listing: it is named instead.
			s.unreadable(ctx, op, fault.WrapUnreadable(op, id, err))
			if id != "" {
				page.Skipped = append(page.Skipped, id)
			}
		}
		page.Next = encodeToken(tokTable, resp)
		if page.Next == "" || len(page.Items) >= limit {
			break
		}
		npk, nrk = resp.NextPartitionKey, resp.NextRowKey
	}
	return page, nil
}

func (s *Store) listIndex(ctx context.Context, prefix string, f broker.ListFilter, limit int) (broker.ListPage, error) {
	const op = "list requests"
	npk, nrk, err := decodeToken(tokIndex, f.After)
	if err != nil {
		return broker.ListPage{}, err
	}
	// The state's entries: RowKeys from prefix ("s-active_") up to, not
	// including, the same prefix with its last character ('_') raised by one.
	upper := prefix[:len(prefix)-1] + string(rune(prefix[len(prefix)-1]+1))
	filter := "PartitionKey eq " + lit(indexPK) + " and RowKey ge " + lit(prefix) + " and RowKey lt " + lit(upper)
	if f.Profile != "" {
		filter += " and Profile eq " + lit(f.Profile)
	}
	if f.Requester != "" {
		filter += " and Requester eq " + lit(f.Requester)
	}
	stale := s.now().Add(-s.staleAfter)
	var page broker.ListPage
	for range maxPages {
		top := int32(limit - len(page.Items))
		resp, err := s.index.NewListEntitiesPager(&aztables.ListEntitiesOptions{
			Filter: &filter, Top: &top, NextPartitionKey: npk, NextRowKey: nrk,
			Select: to.Ptr("PartitionKey,RowKey,Timestamp"),
		}).NextPage(ctx)
		if err != nil {
			return broker.ListPage{}, s.fail(op, err)
		}
		var rows []*aztables.EDMEntity
		ids := make([]string, 0, len(resp.Entities))
		for _, raw := range resp.Entities {
			e, err := decodeEntity(raw)
			if err != nil {
				s.unreadable(ctx, op, fault.WrapUnreadable(op, rawKey(raw), err))
				continue
			}
			rows = append(rows, e)
			ids = append(ids, strings.TrimPrefix(e.RowKey, prefix))
		}
		states, bad, err := s.stateRows(ctx, ids)
		if err != nil {
			return broker.ListPage{}, err
		}
		for _, row := range rows {
			id := strings.TrimPrefix(row.RowKey, prefix)
			if err := bad[id]; err != nil {
				s.unreadable(ctx, op, fault.WrapUnreadable(op, id, err))
				page.Skipped = append(page.Skipped, id)
				continue
			}
			st := states[id]
			if st == nil || str(st, "State") != string(f.State) ||
				(f.Profile != "" && str(st, "Profile") != f.Profile) || (f.Requester != "" && str(st, "Requester") != f.Requester) {
				// Stale: the request moved on (or a save is in progress).
				if time.Time(row.Timestamp).Before(stale) && (st == nil || str(st, "Idx") != prefix) {
					s.deleteIndex(ctx, indexRow{row.RowKey, row.ETag})
				}
				continue
			}
			r, err := decodeState(st, st.ETag)
			if err != nil {
				// One bad row never fails the listing: it is named instead.
				s.unreadable(ctx, op, fault.WrapUnreadable(op, id, err))
				page.Skipped = append(page.Skipped, id)
				continue
			}
			page.Items = append(page.Items, r)
		}
		page.Next = encodeToken(tokIndex, resp)
		if page.Next == "" || len(page.Items) >= limit {
			break
		}
		npk, nrk = resp.NextPartitionKey, resp.NextRowKey
	}
	return page, nil
}
