package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/jitaccess/jitaccess/internal/config"
	"github.com/jitaccess/jitaccess/internal/tablestore"
)

// tableSettings are the table store's settings: a connection string or an
// endpoint (managed identity), and the table prefix.
type tableSettings struct {
	ConnString, Endpoint, Prefix string
}

func openTableStore(s tableSettings, cred azcore.TokenCredential, log *slog.Logger) (*tablestore.Store, error) {
	opts := tablestore.Options{Prefix: s.Prefix, Logger: log}
	if s.ConnString != "" {
		st, err := tablestore.NewFromConnectionString(s.ConnString, opts)
		if err != nil {
			return nil, fmt.Errorf("setting %s: %w", config.EnvTablesConn, err)
		}
		return st, nil
	}
	st, err := tablestore.New(s.Endpoint, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("setting %s: %w", config.EnvTablesEndpoint, err)
	}
	return st, nil
}

// prepareTables creates the tables and records when this deployment first
// ran. Neither stops the start: /api/health says 503 and invocations fail as
// transient (so messages come back) until storage answers.
func prepareTables(ctx context.Context, store *tablestore.Store, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := store.EnsureTables(ctx); err != nil {
		log.Warn("tables not ready", "error", err.Error())
	} else if at, err := store.DeployedAt(ctx, time.Now().UTC()); err != nil {
		// Recorded by the first audit batch instead.
		log.Warn("deployment start not recorded", "error", err.Error())
	} else {
		// Audit records older than this are history, not news (docs/design.md, real directory rule 3).
		log.Info("deployment", "firstStarted", at.Format(time.RFC3339))
	}
}
