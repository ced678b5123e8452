package config_test

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/callagent/resilience/internal/config"
)

var update = flag.Bool("update", false, "rewrite the README's configuration table")

const (
	tableStart = "<!-- settings:start -->\n"
	tableEnd   = "<!-- settings:end -->"
)

// TestREADMEConfigurationTable keeps the README's table equal to the settings the loader
// reads. `make docs` rewrites it.
func TestREADMEConfigurationTable(t *testing.T) {
	const path = "../../README.md"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	i, j := strings.Index(readme, tableStart), strings.Index(readme, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", strings.TrimSpace(tableStart), tableEnd)
	}
	want := config.MarkdownTable()
	got := readme[i+len(tableStart) : j]
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(readme[:i+len(tableStart)]+want+readme[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("README.md's configuration table is out of date: run `make docs`")
}

// TestDescriptionsHaveNoBackquotes: pflag reads a `word` in a usage string as the flag's value
// name, which garbles --help.
func TestDescriptionsHaveNoBackquotes(t *testing.T) {
	for _, s := range config.Settings(config.ScopeAll) {
		if strings.Contains(s.Description, "`") {
			t.Errorf("%s: description has a backquote: %s", s.Env, s.Description)
		}
	}
}
