package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// settingNames collects the values of the string constants named Env… in
// internal/config and Setting… in handlers (the settings jitaccess reads),
// parsed from the source so that a setting added later is included.
func settingNames(t *testing.T) []string {
	t.Helper()
	var names []string
	for file, prefix := range map[string]string{"internal/config/config.go": "Env", "handlers/auth.go": "Setting"} {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, id := range vs.Names {
				if !strings.HasPrefix(id.Name, prefix) || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					names = append(names, v)
				}
			}
			return true
		})
	}
	if len(names) < 20 {
		t.Fatalf("found only %d settings: %v", len(names), names)
	}
	return names
}

// TestEverySettingIsDocumented: every setting jitaccess reads is in
// local.settings.sample.json and in the README's Settings table, except
// the platform's own WEBSITE_AUTH_ENABLED, which operators never set.
func TestEverySettingIsDocumented(t *testing.T) {
	raw, err := os.ReadFile("local.settings.sample.json")
	if err != nil {
		t.Fatal(err)
	}
	var sample struct{ Values map[string]string }
	if err := json.Unmarshal(raw, &sample); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(readme), "\n## Settings\n")
	table, _, _ = strings.Cut(table, "\n## ")
	for _, name := range settingNames(t) {
		if name == "WEBSITE_AUTH_ENABLED" {
			continue
		}
		if _, ok := sample.Values[name]; !ok {
			t.Errorf("%s is not in local.settings.sample.json", name)
		}
		if !strings.Contains(table, "`"+name+"`") {
			t.Errorf("%s is not in the README's Settings table", name)
		}
	}
}
