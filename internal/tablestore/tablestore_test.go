package tablestore_test

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/azuritetest"
	"github.com/jitaccess/jitaccess/internal/storetest"
	"github.com/jitaccess/jitaccess/internal/tablestore"
	"github.com/jitaccess/jitaccess/internal/tablestore/tablestoretest"
)

func TestMain(m *testing.M) { os.Exit(azuritetest.Main(m)) }

// open returns a store on the shared Azurite with tables of its own, its
// round trips counted (roundTrips).
func open(t testing.TB, opts tablestore.Options) *tablestore.Store {
	t.Helper()
	cs := azuritetest.Start(t)
	if opts.Prefix == "" {
		opts.Prefix = azuritetest.Prefix(t)
	}
	s := counted(t, cs, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.EnsureTables(ctx); err != nil {
		t.Fatalf("EnsureTables: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.DeleteTables(ctx)
	})
	return s
}

// counters holds the round-trip counter of each store counted made.
var counters sync.Map // *tablestore.Store → *tablestoretest.RoundTrips

// counted opens a store whose HTTP requests are counted (roundTrips).
func counted(t testing.TB, cs string, opts tablestore.Options) *tablestore.Store {
	t.Helper()
	c := tablestoretest.Count(opts.Transport)
	opts.Transport = c
	s, err := tablestore.NewFromConnectionString(cs, opts)
	if err != nil {
		t.Fatal(err)
	}
	counters.Store(s, c)
	t.Cleanup(func() { counters.Delete(s) })
	return s
}

// roundTrips returns how many HTTP requests s has sent (s from open,
// openTables or counted).
func roundTrips(t testing.TB, s *tablestore.Store) int64 {
	t.Helper()
	c, ok := counters.Load(s)
	if !ok {
		t.Fatal("the store's round trips are not counted: open it with counted")
	}
	return c.(*tablestoretest.RoundTrips).N()
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s, table := openTables(t)
		return corruptible{s, table("requests")}
	})
}

// corruptible is a store with a raw client of its requests table, so that
// the suite can damage a stored row (storetest.Corrupter).
type corruptible struct {
	*tablestore.Store
	raw *aztables.Client
}

// CorruptRequest replaces the body of the state row, keeping its columns
// (State, Profile, Requester, DueKey, …) and the index entries.
func (c corruptible) CorruptRequest(ctx context.Context, id, body string) error {
	ent, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: id, RowKey: "state"},
		Properties: map[string]any{"BodyParts": int32(1), "Body": body}})
	if err != nil {
		return err
	}
	_, err = c.raw.UpdateEntity(ctx, ent, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeMerge})
	return err
}
