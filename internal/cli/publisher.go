package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/queue"
)

// NewPublisherCommand is the operator's tool: enqueue contacts, show status, wait for a
// campaign to finish.
func NewPublisherCommand(env Env, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "publisher",
		Short: "Enqueue contacts and inspect the call queue",
		Long: `publisher pushes contacts onto the JetStream contacts subject and shows the state of the
whole worker fleet. Every setting comes from a flag, the environment or a .env file.`,
		Example: `  # Enqueue a campaign, follow it, and wait for it to finish
  publisher enqueue contacts.ndjson
  publisher status --watch
  publisher wait --timeout 2h

  # The same against a NATS cluster with credentials (a flag, or its environment variable)
  publisher --nats-url nats://nats-1:4222,nats://nats-2:4222 --nats-creds ops.creds status
  NATS_URL=nats://nats-1:4222 publisher dlq list --since 24h`,
		Version: Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	setUpHelp(root)
	loader := config.Register(root.PersistentFlags(), config.ScopePublisher)
	app := &publisherApp{stdout: stdout, stderr: stderr}
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := loadConfig(loader, env, stderr)
		if err != nil {
			return err
		}
		app.cfg = cfg
		return nil
	}
	root.AddCommand(app.enqueueCommand(), app.statusCommand(), app.waitCommand(), app.dlqCommand(),
		app.setupCommand(), app.pauseCommand(), app.resumeCommand(), app.inspectCommand(), app.cancelCommand(), app.purgeCommand(), app.breakerCommand())
	addBuiltinExamples(root)
	root.SetContext(context.Background())
	return root
}

type publisherApp struct {
	cfg            config.Config
	stdout, stderr io.Writer
}

// connect opens NATS and JetStream for one command, waiting up to NATS_CONNECT_TIMEOUT for a
// server that is not up yet (or until ctx ends); close releases both.
func (a *publisherApp) connect(ctx context.Context, opts ...jetstream.JetStreamOpt) (js jetstream.JetStream, close func(), err error) {
	quiet := logrus.New()
	quiet.Out = a.stderr
	quiet.Level = logrus.WarnLevel
	nc, err := queue.Connect(ctx, a.cfg.NATS.URL, queue.ConnectOptions{
		Name: "publisher", CredsFile: a.cfg.NATS.CredsFile, Wait: a.cfg.NATS.ConnectTimeout, Log: quiet,
	})
	if err != nil {
		return nil, nil, err
	}
	js, err = jetstream.New(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, func() { _ = drain(nc) }, nil
}

// withJetStream connects for one command, runs fn and closes the connection.
func (a *publisherApp) withJetStream(ctx context.Context, fn func(js jetstream.JetStream) error) error {
	js, closeConn, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	return fn(js)
}

func drain(nc *nats.Conn) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return err
	}
	// Drain is asynchronous: wait for it, bounded, so pending acks are not cut off.
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		nc.Close()
	}
	return nil
}

// addBuiltinExamples adds cobra's help and completion commands now, rather than when the
// command runs, to give them examples too.
func addBuiltinExamples(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	name := root.Name()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Example = fmt.Sprintf("  %[1]s help\n  %[1]s help enqueue\n  %[1]s help dlq replay", name)
		case "completion":
			c.Example = fmt.Sprintf("  # Load completions in the current bash session\n  source <(%[1]s completion bash)\n\n"+
				"  # Install them for zsh\n  %[1]s completion zsh > \"${fpath[1]}/_%[1]s\"", name)
			for _, sh := range c.Commands() {
				sh.Example = fmt.Sprintf("  %s completion %s > %s-completion.%s", name, sh.Name(), name, sh.Name())
			}
		}
	}
}
