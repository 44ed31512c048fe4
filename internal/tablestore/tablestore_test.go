package tablestore_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/azurite"
	"github.com/jitaccess/jitaccess/internal/storetest"
	"github.com/jitaccess/jitaccess/internal/tablestore"
)

func TestMain(m *testing.M) { os.Exit(azurite.Main(m)) }

// open returns a store on the shared Azurite with tables of its own.
func open(t testing.TB, opts tablestore.Options) *tablestore.Store {
	t.Helper()
	cs := azurite.Start(t)
	if opts.Prefix == "" {
		opts.Prefix = azurite.Prefix(t)
	}
	s, err := tablestore.NewFromConnectionString(cs, opts)
	if err != nil {
		t.Fatal(err)
	}
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

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return open(t, tablestore.Options{}) })
}
