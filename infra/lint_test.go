package infra_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// make lint-infra: with a Bicep CLI it compiles and lints every Bicep file
// and fails on an error; without one it says plainly that nothing was checked
// (exit 0, or 1 with LINT_INFRA_REQUIRED=1).
func TestLintInfraTarget(t *testing.T) {
	for _, tool := range []string{"make", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " not installed")
		}
	}
	root, _ := filepath.Abs(repoRoot)
	bin := t.TempDir()
	// PATH: the fake bicep (when written) and the basic tools, nothing that could be a real bicep.
	for _, tool := range []string{"make", "sh", "head", "dirname", "cat", "echo"} {
		if p, err := exec.LookPath(tool); err == nil {
			os.Symlink(p, filepath.Join(bin, tool))
		}
	}
	run := func(env ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, "make"), "-s", "lint-infra")
		cmd.Dir = root
		cmd.Env = append([]string{"PATH=" + bin, "HOME=" + t.TempDir()}, env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := run()
	if err != nil || !strings.Contains(out, "NO BICEP CLI FOUND") || !strings.Contains(out, "NOT compiled and NOT linted") {
		t.Errorf("without bicep: want a plain notice and exit 0, got %v\n%s", err, out)
	}
	if out, err := run("LINT_INFRA_REQUIRED=1"); err == nil {
		t.Errorf("without bicep and LINT_INFRA_REQUIRED=1: want a failure\n%s", out)
	}

	log := filepath.Join(t.TempDir(), "bicep.log")
	fake := "#!/bin/sh\necho \"$*\" >> " + log + "\n[ \"$1\" = --version ] && { echo 'Bicep CLI version 0.0.0'; exit 0; }\n" +
		"case \"$*\" in *\"$FAIL_ON\"*) [ -n \"$FAIL_ON\" ] && [ \"$1\" = lint ] && exit 1 ;; esac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(bin, "bicep"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err = run("FAIL_ON=")
	if err != nil || !strings.Contains(out, "passes the linter") {
		t.Errorf("with bicep: %v\n%s", err, out)
	}
	calls, _ := os.ReadFile(log)
	mods, _ := filepath.Glob(filepath.Join(root, "infra", "modules", "*.bicep"))
	for _, f := range append([]string{filepath.Join(root, "infra", "main.bicep")}, mods...) {
		rel, _ := filepath.Rel(root, f)
		for _, verb := range []string{"build " + rel + " --stdout", "lint " + rel} {
			if !strings.Contains(string(calls), verb) {
				t.Errorf("lint-infra did not run `bicep %s`", verb)
			}
		}
	}
	if out, err := run("FAIL_ON=network.bicep"); err == nil || !strings.Contains(out, "network.bicep: linter errors") {
		t.Errorf("a linter error must fail lint-infra: %v\n%s", err, out)
	}
}
