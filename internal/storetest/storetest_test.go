package storetest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/memstore"
	"github.com/jitaccess/jitaccess/internal/storetest"
)

func TestMemstorePasses(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return memstore.New() })
}

// Broken stores: the suite must catch each of them.

// noCAS saves whatever version the caller holds.
type noCAS struct{ *memstore.Store }

func (s noCAS) SaveRequest(ctx context.Context, r *access.Request) error {
	if cur, err := s.Store.GetRequest(ctx, r.ID); err == nil && r.Version != "" {
		r.Version, r.StoredHistory = cur.Version, cur.StoredHistory
	}
	return s.Store.SaveRequest(ctx, r)
}

// shared hands out the pointer it was given.
type shared struct {
	*memstore.Store
	mu   sync.Mutex
	last map[string]*access.Request
}

func (s *shared) SaveRequest(ctx context.Context, r *access.Request) error {
	if err := s.Store.SaveRequest(ctx, r); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last[r.ID] = r
	return nil
}

func (s *shared) GetRequest(ctx context.Context, id string) (*access.Request, error) {
	s.mu.Lock()
	r := s.last[id]
	s.mu.Unlock()
	if r != nil {
		return r, nil
	}
	return s.Store.GetRequest(ctx, id)
}

// lossy forgets all but the first history entry.
type lossy struct{ *memstore.Store }

func (s lossy) GetRequest(ctx context.Context, id string) (*access.Request, error) {
	r, err := s.Store.GetRequest(ctx, id)
	if err == nil && len(r.History) > 1 {
		r.History = r.History[:1]
	}
	return r, err
}

// zoned gives a grant's AccessGoneBy back in the zone of the caller's
// clock (a store that forgot to normalise one field).
type zoned struct{ *memstore.Store }

func (s zoned) GetRequest(ctx context.Context, id string) (*access.Request, error) {
	r, err := s.Store.GetRequest(ctx, id)
	if err == nil && !r.AccessGoneBy.IsZero() {
		r.AccessGoneBy = r.AccessGoneBy.In(time.FixedZone("CET", 3600))
	}
	return r, err
}

func TestBrokenStoreHelper(t *testing.T) {
	kind := os.Getenv("STORETEST_BROKEN")
	if kind == "" {
		t.Skip("run by TestSuiteCatchesBrokenStores")
	}
	storetest.Run(t, func(t *testing.T) storetest.Store {
		switch kind {
		case "nocas":
			return noCAS{memstore.New()}
		case "shared":
			return &shared{Store: memstore.New(), last: map[string]*access.Request{}}
		case "lossy":
			return lossy{memstore.New()}
		case "zoned":
			return zoned{memstore.New()}
		}
		t.Fatalf("unknown kind %q", kind)
		return nil
	})
}

func TestSuiteCatchesBrokenStores(t *testing.T) {
	for kind, mustFail := range map[string][]string{
		"nocas":  {"CompareAndSwap", "ConcurrentCAS"},
		"shared": {"DeepCopy"},
		"lossy":  {"HistoryAppended"},
		"zoned":  {"EveryTimeInUTC"},
	} {
		t.Run(kind, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStoreHelper$", "-test.v")
			cmd.Env = append(os.Environ(), "STORETEST_BROKEN="+kind)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a %s store:\n%s", kind, out)
			}
			for _, name := range mustFail {
				if !strings.Contains(string(out), "--- FAIL: TestBrokenStoreHelper/"+name) {
					t.Errorf("subtest %s did not catch the %s store:\n%s", name, kind, out)
				}
			}
		})
	}
}
