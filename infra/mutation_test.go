package infra_test

import (
	"strings"
	"testing"
)

// The mutation tests break one thing in a copy of the infrastructure files
// and require the check to name it: a check that reports nothing for a
// broken file proves nothing.

// mutated is a copy of files with the first old in file replaced by new; a
// mutation whose old text is not there fails the test (it would test
// nothing).
func mutated(t *testing.T, files map[string]string, file, old, new string) map[string]string {
	t.Helper()
	out := make(map[string]string, len(files))
	for k, v := range files {
		out[k] = v
	}
	if !strings.Contains(out[file], old) {
		t.Fatalf("mutation: %s has no %q", file, old)
	}
	out[file] = strings.Replace(out[file], old, new, 1)
	return out
}

// expectReported fails the test unless one of problems contains want: the
// check caught the mutation called name.
func expectReported(t *testing.T, name string, problems []string, want string) {
	t.Helper()
	for _, p := range problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Errorf("%s: the check did not report %q (got %q)", name, want, problems)
}
