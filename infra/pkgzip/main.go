// Command pkgzip writes the deployment package of jitaccess: the zip that azd (azure.yaml
// `dist`) deploys to the Flex Consumption app as it is, and checks it first.
//
//	go run ./infra/pkgzip [-build] [-dist dist] [-out build/jitaccess.zip] [-profiles FILE]
//
// The Functions custom handler starts `jitaccess` from the extracted package, so its zip entry
// must carry the Unix execute bit: a zip made on Windows, or by a zipper that does not record
// Unix modes, loses it and the host cannot start the handler. pkgzip therefore writes every
// entry's mode itself (jitaccess 0755, the rest 0644) whatever the file system says.
//
// Without -build it packages the folder `make build` made (the POSIX prepackage hook). With
// -build it first makes that folder the way `make build` does (go build for linux/amd64,
// host.json, functions/*/function.json, profiles.json), for machines without make (the Windows
// hook). Either way the folder must hold exactly:
//
//	host.json      whose customHandler starts "jitaccess"
//	jitaccess      a Linux x86-64 ELF executable
//	profiles.json  the profiles to deploy (not the sample's simulated group ids, unless
//	               JIT_ALLOW_SAMPLE_PROFILES=1)
//	<F>/function.json for each functions/<F>, byte for byte
//
// and nothing else; the zip holds these at its root (no dist/ prefix).
package main

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ExecutableName is the custom handler's executable (host.json defaultExecutablePath).
const ExecutableName = "jitaccess"

// sampleMarker is the prefix of profiles.sample.json's made-up group ids.
const sampleMarker = "1c1a0000-0000-4000-8000-"

// modTime is written on every entry, so that the same files give the same zip.
var modTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	root := flag.String("root", ".", "the repository (host.json, functions/, the Go module)")
	dist := flag.String("dist", "dist", "the package folder (relative to -root)")
	out := flag.String("out", filepath.Join("build", "jitaccess.zip"), "the zip to write (relative to -root)")
	build := flag.Bool("build", false, "make the package folder first, as `make build` does")
	profiles := flag.String("profiles", os.Getenv("PROFILES"), "profiles.json to package with -build (default $PROFILES, then ./profiles.json)")
	flag.Parse()
	at := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(*root, p)
	}
	if *build {
		if err := Stage(*root, at(*dist), *profiles); err != nil {
			fail(err)
		}
	}
	files, err := Check(*root, at(*dist), os.Getenv("JIT_ALLOW_SAMPLE_PROFILES") == "1")
	if err != nil {
		fail(err)
	}
	if err := Write(at(*dist), files, at(*out)); err != nil {
		fail(err)
	}
	fmt.Printf("package ready: %s (%d files, %s executable)\n", *out, len(files), ExecutableName)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pkgzip:", err)
	os.Exit(1)
}

// Stage makes dist as `make build` does.
func Stage(root, dist, profiles string) error {
	if profiles == "" {
		if _, err := os.Stat(filepath.Join(root, "profiles.json")); err == nil {
			profiles = filepath.Join(root, "profiles.json")
		}
	}
	if profiles != "" {
		if _, err := os.Stat(profiles); err != nil {
			return fmt.Errorf("PROFILES=%s: %w", profiles, err)
		}
	}
	if err := os.RemoveAll(dist); err != nil {
		return err
	}
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return err
	}
	bin, err := filepath.Abs(filepath.Join(dist, ExecutableName))
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-p", "2", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if os.Getenv("GOMEMLIMIT") == "" {
		cmd.Env = append(cmd.Env, "GOMEMLIMIT=6GiB")
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	if err := copyFile(filepath.Join(root, "host.json"), filepath.Join(dist, "host.json")); err != nil {
		return err
	}
	fns, err := functionDirs(root)
	if err != nil {
		return err
	}
	for _, f := range fns {
		if err := os.MkdirAll(filepath.Join(dist, f), 0o755); err != nil {
			return err
		}
		if err := copyFile(filepath.Join(root, "functions", f, "function.json"), filepath.Join(dist, f, "function.json")); err != nil {
			return err
		}
	}
	if profiles != "" {
		return copyFile(profiles, filepath.Join(dist, "profiles.json"))
	}
	return nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// functionDirs lists functions/<F> that hold a function.json.
func functionDirs(root string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(root, "functions", "*", "function.json"))
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%s: no functions/*/function.json", root)
	}
	var out []string
	for _, p := range m {
		out = append(out, filepath.Base(filepath.Dir(p)))
	}
	sort.Strings(out)
	return out, nil
}

// Check verifies the package folder and returns its files (slash-separated, sorted).
func Check(root, dist string, allowSample bool) ([]string, error) {
	fns, err := functionDirs(root)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{"host.json": true, ExecutableName: true, "profiles.json": true}
	for _, f := range fns {
		want[f+"/function.json"] = true
	}
	var files, problems []string
	err = filepath.WalkDir(dist, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dist, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			problems = append(problems, rel+": a symbolic link (not packaged)")
		case d.IsDir():
		case !want[rel]:
			problems = append(problems, rel+": not part of the package (host.json, jitaccess, profiles.json, <function>/function.json)")
		default:
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w (run `make build` first, or -build)", dist, err)
	}
	have := map[string]bool{}
	for _, f := range files {
		have[f] = true
	}
	for f := range want {
		if !have[f] {
			hint := ""
			if f == "profiles.json" {
				hint = ": put your profiles in ./profiles.json or `azd env set PROFILES /path/to/profiles.json` (docs/deploy.md)"
			}
			problems = append(problems, f+" is missing"+hint)
		}
	}
	if have["host.json"] {
		problems = append(problems, checkHost(filepath.Join(dist, "host.json"))...)
	}
	if have[ExecutableName] {
		problems = append(problems, checkELF(filepath.Join(dist, ExecutableName))...)
	}
	if have["profiles.json"] {
		problems = append(problems, checkProfiles(filepath.Join(dist, "profiles.json"), allowSample)...)
	}
	for _, f := range fns {
		if !have[f+"/function.json"] {
			continue
		}
		a, err1 := os.ReadFile(filepath.Join(root, "functions", f, "function.json"))
		b, err2 := os.ReadFile(filepath.Join(dist, f, "function.json"))
		if err := errors.Join(err1, err2); err != nil {
			problems = append(problems, err.Error())
		} else if !bytes.Equal(a, b) {
			problems = append(problems, f+"/function.json differs from functions/"+f+"/function.json (stale package: rebuild it)")
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("%s is not deployable:\n  %s", dist, strings.Join(problems, "\n  "))
	}
	sort.Strings(files)
	return files, nil
}

func checkHost(p string) []string {
	raw, err := os.ReadFile(p)
	if err != nil {
		return []string{err.Error()}
	}
	var h struct {
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string `json:"defaultExecutablePath"`
			} `json:"description"`
		} `json:"customHandler"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return []string{"host.json: " + err.Error()}
	}
	if got := h.CustomHandler.Description.DefaultExecutablePath; got != ExecutableName {
		return []string{fmt.Sprintf("host.json: customHandler.description.defaultExecutablePath is %q, want %q", got, ExecutableName)}
	}
	return nil
}

// checkELF: the handler runs on Linux x86-64 (Flex Consumption).
func checkELF(p string) []string {
	f, err := elf.Open(p)
	if err != nil {
		return []string{ExecutableName + ": not a Linux executable (" + err.Error() + "): build it with GOOS=linux GOARCH=amd64"}
	}
	defer f.Close()
	var out []string
	if f.Machine != elf.EM_X86_64 {
		out = append(out, fmt.Sprintf("%s: built for %s, Flex Consumption runs x86-64 (GOARCH=amd64)", ExecutableName, f.Machine))
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		out = append(out, fmt.Sprintf("%s: ELF type %s is not an executable", ExecutableName, f.Type))
	}
	if f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		out = append(out, fmt.Sprintf("%s: built for %s, not Linux", ExecutableName, f.OSABI))
	}
	return out
}

func checkProfiles(p string, allowSample bool) []string {
	raw, err := os.ReadFile(p)
	if err != nil {
		return []string{err.Error()}
	}
	var doc struct {
		Profiles []json.RawMessage `json:"profiles"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc.Profiles) == 0 {
		return []string{`profiles.json: not {"profiles":[...]} with at least one profile`}
	}
	if bytes.Contains(raw, []byte(sampleMarker)) && !allowSample {
		return []string{"profiles.json holds the sample (simulated tenant) group ids: wire your aks-default/aks-admin/aks-approvers group ids (docs/deploy.md), or set JIT_ALLOW_SAMPLE_PROFILES=1 for a test deployment"}
	}
	return nil
}

// Mode is the Unix mode every entry gets: the executable 0755, the rest 0644.
func Mode(name string) fs.FileMode {
	if name == ExecutableName {
		return 0o755
	}
	return 0o644
}

// Write zips files (relative to dist) into out, with explicit Unix modes.
func Write(dist string, files []string, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".pkgzip-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	zw := zip.NewWriter(tmp)
	for _, name := range files {
		h := &zip.FileHeader{Name: path.Clean(name), Method: zip.Deflate, Modified: modTime}
		h.SetMode(Mode(name))
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		f, err := os.Open(filepath.Join(dist, filepath.FromSlash(name)))
		if err != nil {
			return err
		}
		_, err = io.Copy(w, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
