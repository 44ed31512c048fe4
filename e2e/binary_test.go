package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"sort"
	"testing"
)

// TestBinaryLinksOnlyTheGraphItUses guards the binary's weight: only the
// request builders of the Graph operations (docs/design.md, Operations: users, groups,
// identityGovernance) may be linked. A *msgraphsdk.GraphServiceClient held
// where reflection can reach it (html/template calls methods by name) once
// linked every builder of the SDK (drives, sites, teams, …): 115 MiB instead
// of 38 MiB, and twice the idle memory (BENCHMARKS.md).
func TestBinaryLinksOnlyTheGraphItUses(t *testing.T) {
	out, err := exec.Command("go", "tool", "nm", binary).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	allowed := map[string]bool{"models": true, "users": true, "groups": true, "identitygovernance": true}
	seen := map[string]int{}
	for _, m := range regexp.MustCompile(`msgraph-sdk-go/([a-z]+)\.`).FindAllSubmatch(out, -1) {
		seen[string(m[1])]++
	}
	var extra []string
	for pkg := range seen {
		if !allowed[pkg] {
			extra = append(extra, pkg)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Fatalf("the binary links msgraph-sdk-go request builders it never calls: %v (symbols per package: %v)", extra, seen)
	}
	if seen["users"] == 0 || seen["groups"] == 0 {
		t.Fatalf("expected the users and groups builders to be linked; got %v", seen)
	}
	if fi, err := os.Stat(binary); err == nil {
		t.Logf("binary %d MiB (with symbols); msgraph-sdk-go symbols per package: %v", fi.Size()>>20, seen)
	}
}
