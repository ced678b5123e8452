package config

import (
	"fmt"
	"strings"
)

// MarkdownTable renders every setting as the README's configuration table, so the
// documentation is generated from the same table the loader reads.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| Setting (env / `.env`) | Flag | Default | Used by | Description |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, s := range Settings(ScopeAll) {
		def := s.Default
		switch {
		case s.Secret:
			def = "(secret)"
		case def == "":
			def = "(empty)"
		default:
			def = "`" + def + "`"
		}
		if s.Env == "WORKER_ID" {
			def = "`<hostname>-<pid>`"
		}
		flag := "`--" + s.Flag + "`"
		if s.Flag == "" {
			flag = "(none; `" + s.Env + "_FILE`)"
		}
		desc := strings.ReplaceAll(s.Description, "|", "\\|")
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", s.Env, flag, def, s.Scope, desc)
	}
	return b.String()
}
