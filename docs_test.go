package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// trackedFiles lists the files git tracks with one of the given endings.
func trackedFiles(t *testing.T, endings ...string) []string {
	t.Helper()
	out, err := exec.Command("git", "ls-files").Output()
	if err != nil {
		t.Skipf("git ls-files: %v (not a git checkout)", err)
	}
	var files []string
	for _, f := range strings.Fields(string(out)) {
		for _, e := range endings {
			if strings.HasSuffix(f, e) {
				files = append(files, f)
			}
		}
	}
	return files
}

// headings returns the GitHub anchors and the texts of the Markdown
// headings of file (outside code blocks).
func headings(t *testing.T, file string) (anchors map[string]bool, texts []string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	anchors = map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(line, "#"))
		texts = append(texts, text)
		slug := slugify(text)
		if n := seen[slug]; n > 0 {
			anchors[slug+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors, texts
}

// slugify is GitHub's heading anchor: lower case, letters, digits, spaces
// (as hyphens), hyphens and underscores kept, the rest dropped.
func slugify(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

var mdLink = regexp.MustCompile(`\]\(([^()\s]*)\)`)

// TestMarkdownLinksResolve: every relative link in the project's Markdown
// points to a file that exists and, with an anchor, to a heading of it —
// the README's "one hop" to the design notes stays one hop.
func TestMarkdownLinksResolve(t *testing.T) {
	for _, file := range trackedFiles(t, ".md") {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		fenced := false
		for n, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				fenced = !fenced
				continue
			}
			if fenced {
				continue
			}
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				path, anchor, _ := strings.Cut(target, "#")
				dest := file
				if path != "" {
					dest = filepath.Join(filepath.Dir(file), path)
				}
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s:%d: link %q: %s does not exist", file, n+1, target, dest)
					continue
				}
				if anchor == "" || !strings.HasSuffix(dest, ".md") {
					continue
				}
				if anchors, _ := headings(t, dest); !anchors[anchor] {
					t.Errorf("%s:%d: link %q: no heading #%s in %s", file, n+1, target, anchor, dest)
				}
			}
		}
	}
}

// designRef is a reference into docs/design.md with a section after it
// ("docs/design.md, rule 5", `docs/design.md "The membership protocol"`);
// comment markers between lines are folded first.
var (
	designRef   = regexp.MustCompile(`docs/design\.md(?:, |: | ")"?([^)\n]*)`)
	commentFold = regexp.MustCompile(`\n[ \t]*(?://|#)[ \t]*`)
	ruleRef     = regexp.MustCompile(`^(?:real directory rules? [1-4]|rules? [1-9])\b`)
)

// TestDesignReferencesPointToSections: every reference from code, scripts
// and documents into docs/design.md names one of its rules or a heading
// it has, so that a renamed section or a rule that moved cannot leave
// comments pointing nowhere.
func TestDesignReferencesPointToSections(t *testing.T) {
	_, texts := headings(t, "docs/design.md")
	for _, file := range trackedFiles(t, ".go", ".md", ".bicep", ".sh") {
		if file == "docs/design.md" {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		folded := commentFold.ReplaceAllString(string(b), " ")
		for _, m := range designRef.FindAllStringSubmatch(folded, -1) {
			ref := m[1]
			ok := ruleRef.MatchString(ref)
			for _, h := range texts {
				ok = ok || strings.HasPrefix(ref, h)
			}
			if !ok {
				t.Errorf("%s: %q names no rule or heading of docs/design.md", file, m[0])
			}
		}
	}
}
