package main

import (
	"context"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/jitaccess/jitaccess/"

// deps lists the packages the root package links with the given build tags.
func deps(t *testing.T, tags string) []string {
	t.Helper()
	args := []string{"list", "-deps"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Env = append(os.Environ(), "GOFLAGS=") // no -tags from the environment
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}

// The deployed binary carries no simulator and no test hook: the default
// build links none of the simulators, the sandbox, the in-memory store, the
// seed tenant or the test suites, and no test package (…test). With
// -tags sandbox the sandbox is linked (what 'make run' builds).
func TestDefaultBuildLinksNoSimulator(t *testing.T) {
	forbidden := []string{"internal/graphsim", "internal/idsim", "internal/armsim", "internal/devhost",
		"internal/simkit", "internal/memstore", "internal/seed", "internal/proof", "internal/storetest", "internal/sandbox",
		"internal/azuritetest"}
	var bad []string
	for _, p := range deps(t, "") {
		rel, ours := strings.CutPrefix(p, module)
		switch {
		case p == "testing" || p == "net/http/httptest":
			bad = append(bad, p)
		case !ours:
		case slices.Contains(forbidden, rel) || strings.HasSuffix(path.Base(rel), "test"):
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		t.Fatalf("the default build links %v", bad)
	}
	if !slices.Contains(deps(t, "sandbox"), module+"internal/sandbox") {
		t.Fatal("-tags sandbox does not link internal/sandbox")
	}
}

// Without the tag, 'jitaccess sandbox' says how to get one (exit 2).
func TestSandboxNeedsTheTag(t *testing.T) {
	if sandboxCommand != nil {
		t.Skip("built with -tags sandbox")
	}
	if code := run(context.Background(), []string{"sandbox"}); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}
