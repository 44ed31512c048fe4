package tablestore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/azuritetest"
	"github.com/jitaccess/jitaccess/internal/tablestore"
)

// TestDeployedAtAcrossInstances: instances of one deployment (one table
// prefix) starting together agree on one time; an instance started later
// reads it in one round trip and then answers from memory; another prefix
// is another deployment.
func TestDeployedAtAcrossInstances(t *testing.T) {
	cs := azuritetest.Start(t)
	prefix := azuritetest.Prefix(t)
	openN := func(prefix string) *tablestore.Store {
		s := counted(t, cs, tablestore.Options{Prefix: prefix})
		if err := s.EnsureTables(bg(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.DeleteTables(bg(t)) })
		return s
	}
	const instances = 6
	stores := make([]*tablestore.Store, instances)
	for i := range stores {
		stores[i] = openN(prefix)
	}
	base := time.Now().UTC().Truncate(time.Microsecond)
	got := make([]time.Time, instances)
	errs := make([]error, instances)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { got[i], errs[i] = s.DeployedAt(bg(t), base.Add(time.Duration(i)*time.Second)) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != got[0] {
			t.Fatalf("instances disagree: %v %v", got, errs)
		}
	}
	late := openN(prefix)
	if n := rt(t, late, func() error {
		at, err := late.DeployedAt(bg(t), base.Add(time.Hour))
		if err == nil && at != got[0] {
			t.Errorf("late instance: %v, want %v", at, got[0])
		}
		return err
	}); n != 1 {
		t.Errorf("late instance's first call: %d round trips, want 1 (a point read)", n)
	}
	if n := rt(t, late, func() error { _, err := late.DeployedAt(bg(t), base.Add(2*time.Hour)); return err }); n != 0 {
		t.Errorf("a known answer cost %d round trips", n)
	}
	other := openN(azuritetest.Prefix(t))
	if at, err := other.DeployedAt(bg(t), base.Add(time.Hour)); err != nil || at != base.Add(time.Hour) {
		t.Fatalf("another prefix: %v %v", at, err)
	}
}
