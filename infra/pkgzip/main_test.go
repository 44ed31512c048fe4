package main

import (
	"archive/zip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeELF returns a minimal ELF64 header for machine (62 = x86-64, 183 = arm64).
func fakeELF(machine uint16) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = 2, 1, 1                     // 64-bit, little endian, version 1
	binary.LittleEndian.PutUint16(h[16:], 2)       // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], machine) // e_machine
	binary.LittleEndian.PutUint32(h[20:], 1)       // e_version
	binary.LittleEndian.PutUint16(h[52:], 64)      // e_ehsize
	binary.LittleEndian.PutUint16(h[54:], 56)      // e_phentsize
	binary.LittleEndian.PutUint16(h[58:], 64)      // e_shentsize
	return h
}

const hostJSON = `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"jitaccess"}}}`

// fixture makes a repository with two functions and a complete package folder.
// The executable is written 0644, as a Windows file system would give it.
func fixture(t *testing.T) (root, dist string) {
	t.Helper()
	root = t.TempDir()
	dist = filepath.Join(root, "dist")
	write := func(p, s string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"Health", "AccessRequests"} {
		fn := `{"bindings":[{"name":"` + f + `"}]}`
		write(filepath.Join(root, "functions", f, "function.json"), fn, 0o644)
		write(filepath.Join(dist, f, "function.json"), fn, 0o644)
	}
	write(filepath.Join(root, "host.json"), hostJSON, 0o644)
	write(filepath.Join(dist, "host.json"), hostJSON, 0o644)
	write(filepath.Join(dist, "profiles.json"), `{"profiles":[{"name":"p","targetGroupId":"0c000000-0000-4000-8000-000000000001"}]}`, 0o644)
	write(filepath.Join(dist, "jitaccess"), string(fakeELF(62)), 0o644)
	return root, dist
}

func TestPackageModesAndLayout(t *testing.T) {
	root, dist := fixture(t)
	files, err := Check(root, dist, false)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "build", "jitaccess.zip")
	if err := Write(dist, files, out); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	got := map[string]os.FileMode{}
	for _, f := range zr.File {
		got[f.Name] = f.Mode()
	}
	want := map[string]os.FileMode{
		"jitaccess": 0o755, "host.json": 0o644, "profiles.json": 0o644,
		"AccessRequests/function.json": 0o644, "Health/function.json": 0o644,
	}
	if len(got) != len(want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	for name, mode := range want {
		if got[name] != mode {
			t.Errorf("%s: mode %v, want %v (the host cannot start a handler without its execute bit)", name, got[name], mode)
		}
	}
	// The same files give the same zip.
	again := filepath.Join(root, "again.zip")
	if err := Write(dist, files, again); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(again)
	if string(a) != string(b) {
		t.Error("two packages of the same files differ")
	}
}

func TestPackageRefusals(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(root, dist string)
		want    string
	}{
		{"no profiles", func(_, d string) { os.Remove(filepath.Join(d, "profiles.json")) }, "profiles.json is missing"},
		{"sample profiles", func(_, d string) {
			os.WriteFile(filepath.Join(d, "profiles.json"), []byte(`{"profiles":[{"targetGroupId":"1c1a0000-0000-4000-8000-000000000002"}]}`), 0o644)
		}, "sample (simulated tenant) group ids"},
		{"no executable", func(_, d string) { os.Remove(filepath.Join(d, "jitaccess")) }, "jitaccess is missing"},
		{"arm64 executable", func(_, d string) { os.WriteFile(filepath.Join(d, "jitaccess"), fakeELF(183), 0o755) }, "Flex Consumption runs x86-64"},
		{"Windows executable", func(_, d string) { os.WriteFile(filepath.Join(d, "jitaccess"), []byte("MZ\x90\x00 not an ELF"), 0o755) }, "not a Linux executable"},
		{"missing function", func(_, d string) { os.RemoveAll(filepath.Join(d, "Health")) }, "Health/function.json is missing"},
		{"stale function", func(_, d string) { os.WriteFile(filepath.Join(d, "Health", "function.json"), []byte("{}"), 0o644) }, "Health/function.json differs"},
		{"extra file", func(_, d string) { os.WriteFile(filepath.Join(d, "local.settings.json"), []byte("{}"), 0o644) }, "local.settings.json: not part of the package"},
		{"nested dist", func(_, d string) {
			os.MkdirAll(filepath.Join(d, "dist"), 0o755)
			os.WriteFile(filepath.Join(d, "dist", "host.json"), []byte(hostJSON), 0o644)
		}, "dist/host.json: not part of the package"},
		{"wrong handler", func(_, d string) {
			os.WriteFile(filepath.Join(d, "host.json"), []byte(`{"customHandler":{"description":{"defaultExecutablePath":"handler"}}}`), 0o644)
		}, `defaultExecutablePath is "handler"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, dist := fixture(t)
			c.breakIt(root, dist)
			_, err := Check(root, dist, false)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("want an error with %q, got %v", c.want, err)
			}
		})
	}
	root, dist := fixture(t)
	os.WriteFile(filepath.Join(dist, "profiles.json"), []byte(`{"profiles":[{"targetGroupId":"1c1a0000-0000-4000-8000-000000000002"}]}`), 0o644)
	if _, err := Check(root, dist, true); err != nil {
		t.Errorf("JIT_ALLOW_SAMPLE_PROFILES: %v", err)
	}
}
