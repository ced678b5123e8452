package cli

import (
	"context"
	"io"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/daemon"
	"github.com/callagent/resilience/internal/redact"
)

// NewWorkerCommand is the `worker` daemon. SIGINT and SIGTERM stop it gracefully.
func NewWorkerCommand(env Env, stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Process queued contacts: LLM script, ElevenLabs speech, completion record",
		Long: `worker consumes contacts from the JetStream contacts stream with a bounded pool and runs
each through the call pipeline with retries, per-provider circuit breakers, bulkheads and
health checks. Several workers share one durable consumer. Every setting comes from a flag,
the environment or a .env file (in that order of precedence); secrets are never flags: set
them in the environment or .env, or name a file holding one with <SETTING>_FILE. Every bad
setting is reported at once (exit 2); see the README.`,
		Example: `  # Run with the settings of ./.env and the environment
  worker

  # One of several workers on a host: a stable id, a bigger pool, another metrics port
  worker --worker-id host-a-2 --worker-concurrency 32 --metrics-addr :8398

  # Rehearse without a NATS server or provider keys: an embedded JetStream server and
  # simulated providers whose TTS answers 503 for 20s
  worker --embedded-nats --simulate tts-503 --sim-tts-outage 20s

  # Secrets never go on the command line: the environment, .env, or a file
  ELEVENLABS_API_KEY_FILE=/run/secrets/elevenlabs worker --env-file /etc/callagent/worker.env`,
		Version: Version,
		Args:    usageArgs(cobra.NoArgs),
	}
	cmd.SetOut(orStdout(stdout))
	setUpHelp(cmd)
	loader := config.Register(cmd.Flags(), config.ScopeWorker)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := loadConfig(loader, env, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		// One redactor for the log and the providers: every key a provider is given is
		// masked in every log line.
		red := redact.New()
		log, closer, err := newLogger(cfg, orStdout(stdout), red)
		if err != nil {
			return err
		}
		defer closer.Close()
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		if err := daemon.Run(ctx, daemon.Options{Config: cfg, Logger: log, Redactor: red, Version: Version}); err != nil {
			log.Errorf("Worker failed: %v", err)
			return &ExitError{Code: 1}
		}
		return nil
	}
	cmd.SetContext(context.Background())
	return cmd
}
