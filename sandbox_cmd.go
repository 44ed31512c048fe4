//go:build sandbox

package main

import (
	"context"
	"os"

	"github.com/jitaccess/jitaccess/internal/sandbox"
)

// Builds with -tags sandbox ('make run') link the sandbox and its
// simulators; the deployed binary does not.
func init() {
	sandboxCommand = func(ctx context.Context, args []string) int {
		return sandbox.Run(ctx, args, os.Stdout, os.Stderr)
	}
}
