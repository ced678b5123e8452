// Package cli builds the two command lines: the worker daemon and the publisher (the
// operator's tool). The mains only execute them, so tests run the real commands in process.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/logging"
	"github.com/callagent/resilience/internal/redact"
)

// Version is the build's version, set with -ldflags "-X .../internal/cli.Version=v1.2.3".
var Version = "dev"

// Env looks up an environment variable; os.LookupEnv in the mains, a map in tests.
type Env func(string) (string, bool)

// Execute runs cmd with args and returns the process exit code, printing a failure on
// stderr: configuration problems in full, other errors as one line.
func Execute(cmd *cobra.Command, args []string, stderr io.Writer) int {
	cmd.SetArgs(args)
	cmd.SetErr(stderr)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err := cmd.Execute()
	if err == nil {
		return 0
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		if exit.Err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", cmd.Name(), exit.Err)
		}
		return exit.Code
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd.Name(), err)
	if strings.HasPrefix(err.Error(), "unknown command ") { // cobra's, for a mistyped command
		return 2
	}
	return 1
}

// loadConfig loads the configuration with l, prints its warnings (unknown names in .env or
// the environment) on stderr, and turns every problem into one report and exit 2.
func loadConfig(l *config.Loader, env Env, stderr io.Writer) (config.Config, error) {
	l.EnvNames = func() []string {
		var names []string
		for _, kv := range os.Environ() {
			if k, _, _ := strings.Cut(kv, "="); k != "" {
				if _, ok := env(k); ok { // env is os.LookupEnv in the mains, a map in tests
					names = append(names, k)
				}
			}
		}
		return names
	}
	cfg, err := l.Load(env)
	for _, w := range l.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if err != nil {
		return config.Config{}, &ExitError{Code: 2, Err: err}
	}
	return cfg, nil
}

// ExitError ends a command with a specific exit code; Err (if any) is printed.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// usageError is a bad flag value or argument: exit code 2, like a bad setting.
func usageError(format string, args ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf(format, args...)}
}

// flagError is a bad value of a command's flag: it names the flag and the value as given.
func flagError(cmd *cobra.Command, name, rule string) error {
	value := "?"
	if f := cmd.Flags().Lookup(name); f != nil {
		value = f.Value.String()
	}
	return usageError("--%s %s: %s", name, value, rule)
}

// usageArgs makes a wrong number of arguments a usage error (exit 2) naming the command's
// usage line.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError("%v; usage: %s", err, cmd.UseLine())
		}
		return nil
	}
}

func newLogger(cfg config.Config, console io.Writer, red *redact.Redactor) (*logrus.Logger, io.Closer, error) {
	return logging.New(logging.Options{
		Redactor:   red,
		Console:    console,
		File:       cfg.Log.File,
		Level:      cfg.Log.Level,
		Format:     cfg.Log.Format,
		MaxSizeMB:  cfg.Log.MaxSizeMB,
		MaxBackups: cfg.Log.MaxBackups,
		MaxAgeDays: cfg.Log.MaxAgeDays,
	})
}

func orStdout(w io.Writer) io.Writer {
	if w == nil {
		return os.Stdout
	}
	return w
}

// setUpHelp gives root and every command under it (now or added later) the help of this
// project: the command's own flags, its examples, and the settings (global flags) only in
// the help of the command that defines them, grouped and listed once. A subcommand's help
// points to the root's for them. Booleans show no "[=true|false]", and a bad flag value or
// an unknown flag is a usage error (exit 2).
func setUpHelp(root *cobra.Command) {
	root.SetHelpFunc(func(c *cobra.Command, _ []string) {
		w := c.OutOrStdout()
		text := c.Long
		if text == "" {
			text = c.Short
		}
		if text = strings.TrimRightFunc(text, unicode.IsSpace); text != "" {
			fmt.Fprintf(w, "%s\n\n", text)
		}
		if c.Runnable() || c.HasSubCommands() {
			writeUsage(w, c, terminalWidth(w))
		}
	})
	root.SetUsageFunc(func(c *cobra.Command) error {
		writeUsage(c.OutOrStderr(), c, 0)
		return nil
	})
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError("%w (see %s --help)", err, c.CommandPath())
	})
}

// settingGroups sorts the settings (by flag name prefix, the first match winning) into the
// groups their help lists them in; a setting no prefix matches goes to "Other".
var settingGroups = []struct {
	title    string
	prefixes []string
}{
	{"NATS and the .env file", []string{"env-file", "nats-", "embedded-nats", "data-dir"}},
	{"Streams, consumer and buckets", []string{"contacts-", "consumer-name", "checkpoint-", "audio-bucket", "dead-letter-",
		"dedupe-window", "stream-replicas", "fleet-", "alerts-stream", "alerts-subject-prefix", "alert-incidents-bucket",
		"alert-dispatcher-consumer", "alerts-max-age"}},
	{"Consuming", []string{"ack-wait", "max-deliver", "max-ack-pending", "worker-", "pull-batch", "shutdown-grace", "on-breaker-open"}},
	{"Publishing", []string{"publish-"}},
	{"Retries, circuit breakers and health checks", []string{"retry-", "breaker-", "health-check-"}},
	{"Providers", []string{"llm-", "elevenlabs-", "tts-", "openai-tts-", "crm-"}},
	{"Simulated providers", []string{"simulate", "sim-"}},
	{"Alerts", []string{"alert-", "service-down-", "email-", "smtp-", "telegram-", "webhook-", "slack-", "pagerduty-"}},
	{"Google Sheets log", []string{"sheets-"}},
	{"Logging and metrics", []string{"log-", "metrics-"}},
}

// settingFlags lists the flags of the settings, in the order of the settings table.
var settingFlags = func() []string {
	var names []string
	for _, s := range config.Settings(config.ScopeAll) {
		if s.Flag != "" {
			names = append(names, s.Flag)
		}
	}
	return names
}()

func isSetting(name string) bool { return slices.Contains(settingFlags, name) }

func settingGroup(name string) string {
	for _, g := range settingGroups {
		for _, p := range g.prefixes {
			if strings.HasPrefix(name, p) {
				return g.title
			}
		}
	}
	return "Other"
}

// writeUsage writes c's usage: how to call it, examples, subcommands, its own flags, then
// the settings it defines (the root's global flags, or the worker's), grouped; wrapped to
// width columns (0: not wrapped).
func writeUsage(w io.Writer, c *cobra.Command, width int) {
	var own, inheritedOther, settings []*pflag.Flag
	inheritsSettings := false
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		if isSetting(f.Name) {
			settings = append(settings, f)
		} else {
			own = append(own, f)
		}
	})
	c.InheritedFlags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		if isSetting(f.Name) {
			inheritsSettings = true
		} else {
			inheritedOther = append(inheritedOther, f)
		}
	})
	// Settings in the order of the table, which keeps related ones together.
	slices.SortStableFunc(settings, func(a, b *pflag.Flag) int {
		return slices.Index(settingFlags, a.Name) - slices.Index(settingFlags, b.Name)
	})
	rows := func(flags []*pflag.Flag) []flagRow {
		out := make([]flagRow, 0, len(flags))
		for _, f := range flags {
			out = append(out, newFlagRow(f))
		}
		return out
	}
	ownRows, inheritedRows, settingRows := rows(own), rows(inheritedOther), rows(settings)
	left := 0
	for _, rs := range [][]flagRow{ownRows, inheritedRows, settingRows} {
		for _, r := range rs {
			left = max(left, len(r.left))
		}
	}

	fmt.Fprint(w, "Usage:")
	if c.Runnable() {
		fmt.Fprintf(w, "\n  %s", c.UseLine())
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(w, "\n  %s [command]", c.CommandPath())
	}
	fmt.Fprintln(w)
	if c.HasExample() {
		fmt.Fprintf(w, "\nExamples:\n%s\n", strings.TrimRightFunc(c.Example, unicode.IsSpace))
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(w, "\nAvailable Commands:\n")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				fmt.Fprintf(w, "  %-*s %s\n", sub.NamePadding(), sub.Name(), sub.Short)
			}
		}
	}
	if len(ownRows) > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		writeFlagRows(w, ownRows, left, width)
	}
	if len(inheritedRows) > 0 {
		fmt.Fprintf(w, "\nGlobal Flags:\n")
		writeFlagRows(w, inheritedRows, left, width)
	}
	if len(settingRows) > 0 {
		if c.HasAvailableSubCommands() {
			fmt.Fprint(w, "\nGlobal flags, the settings of every command (a flag wins over the environment\n"+
				"variable named at the end of its description, which wins over the .env file):\n")
		} else {
			fmt.Fprint(w, "\nSettings (a flag wins over the environment variable named at the end of its\n"+
				"description, which wins over the .env file):\n")
		}
		for _, g := range settingGroups {
			writeSettingGroup(w, g.title, settings, settingRows, left, width)
		}
		writeSettingGroup(w, "Other", settings, settingRows, left, width)
	}
	if inheritsSettings {
		fmt.Fprintf(w, "\nGlobal flags (settings: NATS, streams, logging, ...): see \"%s --help\".\n", c.Root().CommandPath())
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(w, "\nUse \"%s [command] --help\" for more information about a command.\n", c.CommandPath())
	}
}

func writeSettingGroup(w io.Writer, title string, settings []*pflag.Flag, rows []flagRow, left, width int) {
	var in []flagRow
	for i, f := range settings {
		if settingGroup(f.Name) == title {
			in = append(in, rows[i])
		}
	}
	if len(in) == 0 {
		return
	}
	fmt.Fprintf(w, "\n  %s:\n", title)
	writeFlagRows(w, in, left, width)
}

// flagRow is a flag's line of help: "  -h, --help" or "      --name type", and what it
// does with its default.
type flagRow struct{ left, right string }

// newFlagRow formats f as pflag does, without the "[=true|false]" it adds to booleans.
func newFlagRow(f *pflag.Flag) flagRow {
	var r flagRow
	if f.Shorthand != "" && f.ShorthandDeprecated == "" {
		r.left = fmt.Sprintf("  -%s, --%s", f.Shorthand, f.Name)
	} else {
		r.left = fmt.Sprintf("      --%s", f.Name)
	}
	varname, usage := pflag.UnquoteUsage(f)
	typ := f.Value.Type()
	if varname != "" && typ != "bool" {
		r.left += " " + varname
	}
	if f.NoOptDefVal != "" && typ != "bool" {
		r.left += fmt.Sprintf("[=%s]", f.NoOptDefVal)
	}
	r.right = usage
	if !zeroDefault(typ, f.DefValue) {
		if typ == "string" {
			r.right += fmt.Sprintf(" (default %q)", f.DefValue)
		} else {
			r.right += fmt.Sprintf(" (default %s)", f.DefValue)
		}
	}
	if f.Deprecated != "" {
		r.right += fmt.Sprintf(" (DEPRECATED: %s)", f.Deprecated)
	}
	return r
}

// zeroDefault reports whether a default is its type's zero value, which help leaves out.
func zeroDefault(typ, def string) bool {
	switch typ {
	case "string":
		return def == ""
	case "bool":
		return def == "" || def == "false"
	case "duration":
		return def == "0" || def == "0s"
	}
	return def == "" || def == "0" || def == "[]" || def == "<nil>"
}

// writeFlagRows writes rows with their descriptions starting at one column, wrapped to width
// columns when that leaves room for them (width 0: not wrapped).
func writeFlagRows(w io.Writer, rows []flagRow, left, width int) {
	indent := left + 3
	room := width - indent - 1
	for _, r := range rows {
		lines := []string{r.right}
		if width > 0 && room >= 30 {
			lines = wrapWords(r.right, room)
		}
		fmt.Fprintf(w, "%-*s%s\n", indent, r.left, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "%s%s\n", strings.Repeat(" ", indent), l)
		}
	}
}

// wrapWords cuts s into lines of at most n bytes at spaces (a longer word gets a line).
func wrapWords(s string, n int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) <= n:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	return append(lines, line)
}

// terminalWidth is w's width when it is a terminal, else 0.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return width
}
