package dashboard

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
)

// Gathering what the dashboard shows: bounded listings per state and the
// rejections, read concurrently, and the histories the rows need.

// listed is what the listing of one state returned.
type listed struct {
	items   []*access.Request
	more    bool
	skipped []string
	// limit is how many items the listing could return at most.
	limit int
}

var listedStates = []access.State{
	access.Active, access.Activating, access.Ending, access.Pending, access.Failed,
	access.Expired, access.Revoked, access.Cancelled, access.TimedOut, access.Denied, access.Rejected,
}

// rangedStates are the states whose sections follow the date range.
var rangedStates = []access.State{access.Expired, access.Revoked, access.Cancelled, access.TimedOut, access.Denied, access.Rejected}

// list reads up to pages pages of ListLimit of one listing.
func (h *handler) list(ctx context.Context, f broker.ListFilter, pages int) (listed, error) {
	l := listed{limit: pages * ListLimit}
	f.Limit = ListLimit
	for range pages {
		pg, err := h.o.Store.ListRequests(ctx, f)
		if err != nil {
			return listed{}, err
		}
		l.items = append(l.items, pg.Items...)
		l.skipped = append(l.skipped, pg.Skipped...)
		l.more = pg.Next != ""
		if !l.more {
			break
		}
		f.After = pg.Next
	}
	return l, nil
}

// listAll makes one bounded listing per state, concurrently; pages says how
// many pages a state's listing reads (default 1).
func (h *handler) listAll(ctx context.Context, profile string, pages func(access.State) int) (map[access.State]listed, error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
		res  = make(map[access.State]listed, len(listedStates))
	)
	for _, st := range listedStates {
		wg.Go(func() {
			n := 1
			if pages != nil {
				n = max(pages(st), 1)
			}
			l, err := h.list(ctx, broker.ListFilter{State: st, Profile: profile}, n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("list %s: %w", st, err))
				return
			}
			res[st] = l
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", errStore, errs[0])
	}
	return res, nil
}

// gathered is what the dashboard shows, as read from the store.
type gathered struct {
	lists map[access.State]listed // one listing per state
	rejs  []access.Rejection      // recent rejections (the unfiltered page only)
}

// gather reads everything the dashboard shows: one bounded listing per state
// (RangePages for the ended states with a date range) and one of the
// rejections, concurrently, then the histories the rows need (withHistory).
func (h *handler) gather(ctx context.Context, q query, now time.Time) (*gathered, error) {
	var (
		res     map[access.State]listed
		rejs    []access.Rejection
		listErr error
		rejErr  error
		wg      sync.WaitGroup
	)
	wg.Go(func() {
		res, listErr = h.listAll(ctx, q.profile, func(st access.State) int {
			if q.win.Custom() && slices.Contains(rangedStates, st) {
				return RangePages
			}
			return 1
		})
	})
	if q.profile == "" {
		// Rejections without request id have no profile; they are shown on
		// the unfiltered page only.
		wg.Go(func() { rejs, rejErr = h.o.Store.RecentRejections(ctx, RejectionLimit) })
	}
	wg.Wait()
	if listErr != nil {
		return nil, listErr
	}
	if rejErr != nil {
		return nil, fmt.Errorf("%w: rejections: %w", errStore, rejErr)
	}
	h.withHistory(ctx, res, q.win, now)
	return &gathered{lists: res, rejs: rejs}, nil
}

// skippedIDs are the ids the listings skipped as unreadable, once each, in
// order.
func skippedIDs(res map[access.State]listed) []string {
	var ids []string
	for _, l := range res {
		ids = append(ids, l.skipped...)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// withHistory replaces listed requests whose history the listing left out
// (stores may list without it) by the full request, for the rows whose
// "who" and "sessions" columns come from the history: recent endings and
// denials of the window and out-of-band findings. At most HistoryLookups requests, newest
// first, are read, HistoryParallel at a time, so the cost stays bounded. A
// failed read only leaves that row without the history details.
func (h *handler) withHistory(ctx context.Context, res map[access.State]listed, win window, now time.Time) {
	type slot struct {
		items []*access.Request
		i     int
		at    time.Time
	}
	var todo []slot
	for st, l := range res {
		for i, r := range l.items {
			if r == nil || r.State != st || len(r.History) > 0 {
				continue
			}
			at := endTime(r)
			switch {
			case r.Source == access.SourceOutOfBand && (!st.Ended() || now.Sub(at) <= AttentionWindow):
			case r.Source != access.SourceOutOfBand && win.Contains(at) &&
				(st == access.Expired || st == access.Revoked || st == access.Cancelled || st == access.Denied):
			default:
				continue
			}
			todo = append(todo, slot{l.items, i, at})
		}
	}
	slices.SortFunc(todo, func(a, b slot) int { return b.at.Compare(a.at) })
	todo = todo[:min(len(todo), HistoryLookups)]
	sem := make(chan struct{}, HistoryParallel)
	var wg sync.WaitGroup
	failed := 0
	var mu sync.Mutex
	for _, s := range todo {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			full, err := h.o.Store.GetRequest(ctx, s.items[s.i].ID)
			if err != nil || full == nil || full.ID != s.items[s.i].ID || full.State != s.items[s.i].State {
				mu.Lock()
				failed++
				mu.Unlock()
				return
			}
			s.items[s.i] = full // distinct slots: no two goroutines write one
		})
	}
	wg.Wait()
	if failed > 0 {
		h.log.WarnContext(ctx, "dashboard: some request histories could not be read", "count", failed)
	}
}
