package main

import (
	"fmt"
	"log/slog"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/jitaccess/jitaccess/internal/config"
	"github.com/jitaccess/jitaccess/internal/tablestore"
)

func openTableStore(s config.Settings, cred azcore.TokenCredential, log *slog.Logger) (*tablestore.Store, error) {
	opts := tablestore.Options{Prefix: s.TablePrefix, Logger: log}
	if s.TablesConnString != "" {
		st, err := tablestore.NewFromConnectionString(s.TablesConnString, opts)
		if err != nil {
			return nil, fmt.Errorf("setting %s: %w", config.EnvTablesConn, err)
		}
		return st, nil
	}
	st, err := tablestore.New(s.TablesEndpoint, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("setting %s: %w", config.EnvTablesEndpoint, err)
	}
	return st, nil
}
