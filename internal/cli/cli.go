// Package cli builds the two command lines: the worker daemon and the publisher (the
// operator's tool). The mains only execute them, so tests run the real commands in process.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

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

func newLogger(cfg config.Config, console io.Writer, red *redact.Redactor) (*logrus.Logger, io.Closer, error) {
	return logging.New(logging.Options{
		Redactor:   red,
		Console:    console,
		File:       cfg.Log.File,
		Level:      cfg.Log.Level,
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
