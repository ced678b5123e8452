package cli_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/callagent/resilience/internal/cli"
	"github.com/callagent/resilience/internal/config"
)

// help runs the command line args (ending in --help, or starting with help) and returns
// what it printed; help needs no server.
func help(t *testing.T, newCmd func(out, errOut *bytes.Buffer) *cobra.Command, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := cli.Execute(newCmd(&out, &errOut), args, &errOut); code != 0 {
		t.Fatalf("%v: exit %d\nstderr: %s", args, code, errOut.String())
	}
	if errOut.Len() > 0 {
		t.Errorf("%v wrote on stderr: %s", args, errOut.String())
	}
	return out.String()
}

func newPublisher(out, errOut *bytes.Buffer) *cobra.Command {
	return cli.NewPublisherCommand(env(map[string]string{"ENV_FILE": ""}), out, errOut)
}

func newWorker(out, _ *bytes.Buffer) *cobra.Command {
	cmd := cli.NewWorkerCommand(env(map[string]string{"ENV_FILE": ""}), out)
	cmd.SetOut(out)
	return cmd
}

// subcommands lists the path of every command under root (help and completion included).
func subcommands(root *cobra.Command) [][]string {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		for _, sub := range c.Commands() {
			p := append(append([]string(nil), path...), sub.Name())
			paths = append(paths, p)
			walk(sub, p)
		}
	}
	walk(root, nil)
	return paths
}

// settingFlagLines counts, for each setting of scope, the help lines that describe its flag.
func settingFlagLines(help string, scope config.Scope) map[string]int {
	counts := map[string]int{}
	for _, s := range config.Settings(scope) {
		if s.Flag == "" {
			continue
		}
		counts[s.Flag] = 0
		for _, line := range strings.Split(help, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "--"+s.Flag+" ") {
				counts[s.Flag]++
			}
		}
	}
	return counts
}

// A subcommand's help shows its own flags and examples, and points to the root's help for
// the settings instead of repeating them; booleans carry no "[=true|false]".
func TestSubcommandHelpShowsItsFlagsAndExamplesNotTheSettings(t *testing.T) {
	var out, errOut bytes.Buffer
	paths := subcommands(newPublisher(&out, &errOut))
	if len(paths) < 9 { // enqueue, status, wait, dlq (list, replay, purge), help, completion (+ shells)
		t.Fatalf("only %d commands: %v", len(paths), paths)
	}
	for _, path := range paths {
		name := strings.Join(path, " ")
		t.Run(name, func(t *testing.T) {
			h := help(t, newPublisher, append(append([]string(nil), path...), "--help")...)
			if !strings.Contains(h, "\nExamples:\n  ") {
				t.Errorf("no examples:\n%s", h)
			}
			if !strings.Contains(h, `Global flags (settings: NATS, streams, logging, ...): see "publisher --help".`) {
				t.Errorf("no pointer to the settings:\n%s", h)
			}
			for _, s := range config.Settings(config.ScopePublisher) {
				if s.Flag != "" && strings.Contains(h, "--"+s.Flag) {
					t.Errorf("names the global flag --%s:\n%s", s.Flag, h)
				}
			}
			if strings.Contains(h, "[=") || strings.Contains(h, "Global Flags:") {
				t.Errorf("noise in the flags:\n%s", h)
			}
			if !strings.Contains(h, "  -h, --help ") {
				t.Errorf("no --help flag line:\n%s", h)
			}
		})
	}

	// `publisher help X` is `publisher X --help`.
	if a, b := help(t, newPublisher, "help", "dlq", "replay"), help(t, newPublisher, "dlq", "replay", "--help"); a != b {
		t.Errorf("help dlq replay:\n%s\ndlq replay --help:\n%s", a, b)
	}
	h := help(t, newPublisher, "dlq", "list", "--help")
	for _, want := range []string{"      --json ", "      --limit int ", "      --reason string ", "quota_exceeded", "max_deliveries"} {
		if !strings.Contains(h, want) {
			t.Errorf("dlq list --help lacks %q:\n%s", want, h)
		}
	}
	if h := help(t, newPublisher, "enqueue", "--help"); !strings.Contains(h, "publisher enqueue -") {
		t.Errorf("enqueue --help shows no example reading standard input:\n%s", h)
	}
}

// The root's help lists every setting once, grouped, after the commands.
func TestRootHelpListsTheSettingsOnceGrouped(t *testing.T) {
	h := help(t, newPublisher, "--help")
	for flag, n := range settingFlagLines(h, config.ScopePublisher) {
		if n != 1 {
			t.Errorf("--%s is described %d times, want once", flag, n)
		}
	}
	for _, want := range []string{"Examples:\n  ", "Available Commands:\n", "  enqueue ", "  dlq ",
		"\nGlobal flags, the settings of every command (a flag wins over", "\n  NATS and the .env file:\n", "\n  Logging and metrics:\n",
		"(env NATS_URL)", `Use "publisher [command] --help"`} {
		if !strings.Contains(h, want) {
			t.Errorf("publisher --help lacks %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "[=") || strings.Contains(h, "\n  Other:\n") {
		t.Errorf("noise, or settings in no group:\n%s", h)
	}
	if strings.Index(h, "Available Commands:") > strings.Index(h, "Global flags") {
		t.Errorf("the settings come before the commands:\n%s", h)
	}
}

func TestWorkerHelpListsItsSettingsGrouped(t *testing.T) {
	h := help(t, newWorker, "--help")
	for flag, n := range settingFlagLines(h, config.ScopeWorker) {
		if n != 1 {
			t.Errorf("--%s is described %d times, want once", flag, n)
		}
	}
	for _, want := range []string{"Examples:\n  ", "worker --embedded-nats --simulate", "\nSettings (a flag wins over",
		"\n  Retries, circuit breakers and health checks:\n", "\n  Alerts:\n", "      --embedded-nats ", "      --retry-jitter "} {
		if !strings.Contains(h, want) {
			t.Errorf("worker --help lacks %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "[=") || strings.Contains(h, "\n  Other:\n") {
		t.Errorf("noise, or settings in no group:\n%s", h)
	}
}

// Usage mistakes exit 2, like bad settings: an unknown flag, a bad flag value, a wrong number
// of arguments, an unknown command.
func TestUsageMistakesExit2(t *testing.T) {
	for _, args := range [][]string{
		{"status", "--no-such-flag"},
		{"dlq", "list", "--limit", "many"},
		{"enqueue"},
		{"enqueue", "a.json", "b.json"},
		{"wait", "extra"},
		{"no-such-command"},
	} {
		var out, errOut bytes.Buffer
		code := cli.Execute(newPublisher(&out, &errOut), args, &errOut)
		if code != 2 || errOut.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := cli.Execute(cli.NewWorkerCommand(env(map[string]string{"ENV_FILE": ""}), &out), []string{"extra"}, &errOut); code != 2 {
		t.Errorf("worker extra: exit %d, stderr %q", code, errOut.String())
	}
}
