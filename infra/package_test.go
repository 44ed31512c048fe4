package infra_test

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// azure.yaml: what azd deploys is the zip the hooks make, on every shell, with a
// minimum azd that knows `language: custom`.
func TestPackageAzureYAML(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "azure.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	y := string(raw)
	for _, want := range []string{
		"requiredVersions:\n  azd: \">= 1.20.0\"",
		"    language: custom\n", "    host: function\n", "    dist: build/jitaccess.zip\n", "    remoteBuild: false\n",
		"      prepackage:\n        posix:\n          shell: sh\n",
		"          run: ./infra/scripts/azd-prepackage.sh\n",
		"        windows:\n          shell: pwsh\n",
		"          run: ./infra/scripts/azd-prepackage.ps1\n",
	} {
		if !strings.Contains(y, want) {
			t.Errorf("azure.yaml: missing %q", want)
		}
	}
	for _, hook := range []string{"azd-prepackage.sh", "azd-prepackage.ps1"} {
		b, err := os.ReadFile(filepath.Join("scripts", hook))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "go run ./infra/pkgzip") {
			t.Errorf("%s does not make the package with infra/pkgzip", hook)
		}
	}
	if b, _ := os.ReadFile(filepath.Join("scripts", "azd-prepackage.ps1")); !strings.Contains(string(b), "-build") {
		t.Error("azd-prepackage.ps1 must build dist/ itself (-build): Windows has no make")
	}
	if fi, err := os.Stat(filepath.Join("scripts", "azd-prepackage.sh")); err != nil || fi.Mode()&0o111 == 0 {
		t.Error("infra/scripts/azd-prepackage.sh is not executable")
	}
	// docs/deploy.md states the same minimum.
	if d, _ := os.ReadFile(filepath.Join(repoRoot, "docs", "deploy.md")); !strings.Contains(string(d), "azd 1.20.0") {
		t.Error("docs/deploy.md does not state the minimum azd version (1.20.0)")
	}
}

type zipEntry struct {
	mode os.FileMode
	data []byte
}

func readZip(t *testing.T, p string) map[string]zipEntry {
	t.Helper()
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string]zipEntry{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = zipEntry{f.Mode(), b}
	}
	return out
}

// The package as azd deploys it: the POSIX hook run for real (make build +
// infra/pkgzip), then the zip's layout and modes, then the Windows hook's
// path (-build, no make) giving the same package.
func TestPackageAsAzdDeploysIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the linux/amd64 binary twice")
	}
	for _, tool := range []string{"make", "go", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " not installed")
		}
	}
	root, _ := filepath.Abs(repoRoot)
	sample := filepath.Join(root, "profiles.sample.json")
	tmp := t.TempDir()
	hook := exec.Command(filepath.Join(root, "infra", "scripts", "azd-prepackage.sh"))
	hook.Env = append(os.Environ(), "PROFILES="+sample, "JIT_ALLOW_SAMPLE_PROFILES=1",
		"JIT_PACKAGE_DIR="+filepath.Join(tmp, "dist"), "JIT_PACKAGE_ZIP="+filepath.Join(tmp, "jitaccess.zip"))
	if out, err := hook.CombinedOutput(); err != nil {
		t.Fatalf("azd-prepackage.sh: %v\n%s", err, out)
	}
	got := readZip(t, filepath.Join(tmp, "jitaccess.zip"))

	fns, _ := filepath.Glob(filepath.Join(root, "functions", "*", "function.json"))
	want := []string{"host.json", "jitaccess", "profiles.json"}
	for _, f := range fns {
		want = append(want, filepath.Base(filepath.Dir(f))+"/function.json")
	}
	sort.Strings(want)
	var names []string
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("zip entries:\n got  %v\n want %v (host.json, the executable and the function folders at the root)", names, want)
	}
	for n, e := range got {
		wantMode := os.FileMode(0o644)
		if n == "jitaccess" {
			wantMode = 0o755
		}
		if e.mode != wantMode {
			t.Errorf("%s: mode %v, want %v", n, e.mode, wantMode)
		}
	}
	if !bytes.HasPrefix(got["jitaccess"].data, []byte("\x7fELF")) {
		t.Error("jitaccess is not an ELF executable")
	}
	host, _ := os.ReadFile(filepath.Join(root, "host.json"))
	if !bytes.Equal(got["host.json"].data, host) {
		t.Error("host.json in the zip differs from the repository's")
	}
	prof, _ := os.ReadFile(sample)
	if !bytes.Equal(got["profiles.json"].data, prof) {
		t.Error("profiles.json in the zip is not PROFILES")
	}

	// Extracted as the platform does (modes kept), the handler starts.
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		bin := filepath.Join(tmp, "extracted", "jitaccess")
		os.MkdirAll(filepath.Dir(bin), 0o755)
		if err := os.WriteFile(bin, got["jitaccess"].data, got["jitaccess"].mode); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil {
			t.Errorf("extracted jitaccess does not run: %v\n%s", err, out)
		}
	}

	// The Windows hook's way: pkgzip -build, without make. Same files, same
	// modes, the same executable bytes (same compiler flags as `make build`).
	build := exec.Command("go", "run", "./infra/pkgzip", "-build", "-profiles", sample,
		"-dist", filepath.Join(tmp, "dist2"), "-out", filepath.Join(tmp, "jitaccess2.zip"))
	build.Dir = root
	build.Env = append(os.Environ(), "JIT_ALLOW_SAMPLE_PROFILES=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("pkgzip -build: %v\n%s", err, out)
	}
	got2 := readZip(t, filepath.Join(tmp, "jitaccess2.zip"))
	if len(got2) != len(got) {
		t.Errorf("pkgzip -build: %d entries, make build: %d", len(got2), len(got))
	}
	for n, e := range got {
		e2, ok := got2[n]
		switch {
		case !ok:
			t.Errorf("pkgzip -build: no %s", n)
		case e2.mode != e.mode:
			t.Errorf("pkgzip -build: %s mode %v, make build %v", n, e2.mode, e.mode)
		case !bytes.Equal(e2.data, e.data):
			t.Errorf("pkgzip -build: %s differs from make build's (build flags drifted from the Makefile?)", n)
		}
	}

	// Without profiles the hook refuses to package.
	noProf := exec.Command(filepath.Join(root, "infra", "scripts", "azd-prepackage.sh"))
	noProf.Dir = tmp
	noProf.Env = append(os.Environ(), "PROFILES=", "JIT_PACKAGE_DIR="+filepath.Join(tmp, "dist3"), "JIT_PACKAGE_ZIP="+filepath.Join(tmp, "none.zip"))
	if _, err := os.Stat(filepath.Join(root, "profiles.json")); err == nil {
		t.Log("a ./profiles.json exists: the no-profiles refusal is not checked")
	} else if out, err := noProf.CombinedOutput(); err == nil || !regexp.MustCompile(`profiles\.json is missing`).Match(out) {
		t.Errorf("hook without profiles: want a refusal, got %v\n%s", err, out)
	}
}
