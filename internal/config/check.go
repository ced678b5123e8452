package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/callagent/resilience/internal/sheets"
)

// componentProblems runs the validation of every component the worker builds from c (the
// provider clients when SIMULATE is unset, the enabled alert channels) and returns each
// problem under its setting, with the setting's value and source from loaded. A setting
// that already has a problem, or that did not load, is not blamed again, and a problem
// shared by a primary and the fallback that inherits the setting is reported once.
func (l *Loader) componentProblems(c *Config, pending []pendingProblem, loaded func(env string) (raw, source string, ok bool)) []pendingProblem {
	checks := []componentCheck{c.alertTopologyCheck()}
	if l.scope&ScopeWorker != 0 {
		if _, _, simOK := loaded("SIMULATE"); simOK && c.Sim.Scenario == "" {
			_, providers := c.providers()
			checks = append(checks, providers...)
		}
		checks = append(checks, c.alertChannelChecks()...)
		if c.Sheets.Enabled {
			checks = append(checks, c.sheetsCheck())
		}
	}

	seen := map[[2]string]bool{}
	for _, p := range pending {
		seen[[2]string{p.s.Env, ""}] = true // the setting already has a problem
	}
	var out []pendingProblem
	for _, k := range checks {
		for _, pr := range k.problems() {
			if seen[[2]string{pr[0], ""}] || seen[pr] {
				continue
			}
			raw, source, ok := loaded(pr[0])
			s, inTable := l.row(pr[0])
			if !ok || !inTable {
				continue
			}
			seen[pr] = true
			out = append(out, pendingProblem{s, source, raw, pr[1]})
		}
	}
	return out
}

// warnPrefixes are the prefixes of this project's settings that other software is unlikely
// to use: an environment variable with one of them that names no setting is probably a typo.
var warnPrefixes = []string{
	"WORKER_", "LLM_", "ELEVENLABS_", "OPENAI_TTS_", "TTS_", "CRM_", "SIM_", "RETRY_", "BREAKER_",
	"HEALTH_CHECK_", "SHEETS_", "ALERT_", "ALERTS_", "EMAIL_", "SMTP_", "TELEGRAM_", "WEBHOOK_",
	"SLACK_", "PAGERDUTY_", "CONTACTS_", "DEAD_LETTER_", "CHECKPOINT_", "FLEET_", "PUBLISH_",
}

// warnUnknown records a warning for every key of the .env file, and every environment
// variable with one of warnPrefixes, that names no setting of either binary (a shared .env
// holds both), with the closest setting when one is near.
func (l *Loader) warnUnknown(dotenv map[string]string, dotenvPath string) {
	known := map[string]bool{}
	var names []string
	for _, s := range table {
		known[s.Env] = true
		names = append(names, s.Env)
		if s.Secret {
			known[s.Env+fileSuffix] = true
		}
	}
	warn := func(name, where string) {
		msg := fmt.Sprintf("%s in %s is not a setting", name, where)
		if near := closest(name, names); near != "" {
			msg += "; did you mean " + near + "?"
		}
		l.warnings = append(l.warnings, msg)
	}
	keys := make([]string, 0, len(dotenv))
	for k := range dotenv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !known[k] {
			warn(k, dotenvPath)
		}
	}
	if l.EnvNames == nil {
		return
	}
	env := slices.Clone(l.EnvNames())
	slices.Sort(env)
	for _, k := range slices.Compact(env) {
		if !known[k] && slices.ContainsFunc(warnPrefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			warn(k, "the environment")
		}
	}
}

// closest returns the name nearest to s by edit distance, or "" when none is within a third
// of s's length (at least 2 edits).
func closest(s string, names []string) string {
	best, bestD := "", max(2, len(s)/3)+1
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sheetsCheck validates the Google Sheets error log's options, its credentials file
// included (readable, a service-account key with a usable private key).
func (c Config) sheetsCheck() componentCheck {
	o := sheets.Options{CredentialsFile: c.Sheets.CredentialsFile, SpreadsheetID: c.Sheets.SpreadsheetID,
		Range: c.Sheets.Range, BatchSize: c.Sheets.BatchSize, FlushInterval: c.Sheets.FlushInterval, Buffer: c.Sheets.Buffer}
	return componentCheck{map[string]string{
		"CredentialsFile": "SHEETS_CREDENTIALS_FILE", "SpreadsheetID": "SHEETS_SPREADSHEET_ID", "Range": "SHEETS_RANGE",
		"BatchSize": "SHEETS_BATCH_SIZE", "FlushInterval": "SHEETS_FLUSH_INTERVAL", "Buffer": "SHEETS_BUFFER",
		// Not settings: their defaults are always valid; blamed on the switch if ever not.
		"Endpoint": "SHEETS_ENABLED", "Retry": "SHEETS_ENABLED", "Breaker": "SHEETS_ENABLED", "": "SHEETS_ENABLED",
	}, o.WithDefaults().Validate()}
}
