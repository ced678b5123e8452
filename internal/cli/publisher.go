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
		Version: Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
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
	root.AddCommand(app.enqueueCommand(), app.statusCommand(), app.waitCommand(), app.dlqCommand())
	root.SetContext(context.Background())
	return root
}

type publisherApp struct {
	cfg            config.Config
	stdout, stderr io.Writer
}

// connect opens NATS and JetStream for one command; close releases both.
func (a *publisherApp) connect(opts ...jetstream.JetStreamOpt) (js jetstream.JetStream, close func(), err error) {
	quiet := logrus.New()
	quiet.Out = a.stderr
	quiet.Level = logrus.WarnLevel
	nc, err := queue.Connect(a.cfg.NATS.URL, "publisher", a.cfg.NATS.CredsFile, quiet)
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
