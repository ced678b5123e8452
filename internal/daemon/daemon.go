// Package daemon is the worker: it connects to NATS (or starts the embedded server), ensures
// the streams and the shared consumer, and runs contacts through the call pipeline with a
// bounded pool, mapping each result to one JetStream action (see Policy.Decide).
//
// Run is embeddable: the worker's main turns flags and signals into a Config and a context,
// and tests run the same code in process.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/resilience"
)

// Options are the worker's inputs beyond configuration.
type Options struct {
	Config config.Config
	Logger *logrus.Logger
	// Providers overrides the providers chosen from Config (tests inject their own).
	Providers *Providers
	// Ready, if set, is called once the worker consumes (tests and the demo wait on it).
	Ready func(natsURL string)
	// Redactor receives the provider keys so that no log line shows one; the logger should
	// use the same. Nil makes a private one.
	Redactor *redact.Redactor
	// Version names the build in the providers' User-Agent.
	Version string
	// Fallbacks, if set, learns when a step changes provider.
	Fallbacks call.FallbackListener
}

// Run runs the worker until ctx is cancelled, then shuts down gracefully: it stops fetching,
// lets in-flight contacts finish within Config.Worker.ShutdownGrace, releases the rest to
// JetStream for redelivery, and stops the embedded server if it started one. It returns nil
// after a clean stop.
func Run(ctx context.Context, opts Options) error {
	cfg := opts.Config
	log := opts.Logger
	if opts.Redactor == nil {
		opts.Redactor = redact.New()
	}
	started := time.Now()
	log.Info("Starting AI Call Agent worker")

	// Providers first: a worker that cannot call anyone must not start taking contacts.
	providers := opts.Providers
	if providers == nil {
		var err error
		if providers, err = NewProviders(cfg, log, opts.Redactor, opts.Version); err != nil {
			return fmt.Errorf("cannot start with these provider settings:\n%w", err)
		}
	}
	if providers.Close != nil {
		defer providers.Close()
	}

	url := cfg.NATS.URL
	if cfg.NATS.Embedded {
		srv, err := natsembed.Start(natsembed.Options{
			URL: cfg.NATS.URL, StoreDir: cfg.NATS.DataDir, SyncAlways: true, Logger: log,
		})
		if err != nil {
			return err
		}
		defer func() {
			srv.Shutdown()
			log.Info("Embedded NATS server stopped")
		}()
		url = srv.ClientURL()
		log.Infof("Embedded NATS server with JetStream listening on %s (data in %s)", url, cfg.NATS.DataDir)
	}

	nc, err := queue.Connect(url, "call-worker "+cfg.Worker.ID, cfg.NATS.CredsFile, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := queue.EnsureContactsStream(setupCtx, js, cfg.Topology); err != nil {
		return err
	}
	kv, err := queue.EnsureCompletedBucket(setupCtx, js, cfg.Topology)
	if err != nil {
		return err
	}
	cons, err := queue.EnsureConsumer(setupCtx, js, cfg.Topology)
	if err != nil {
		return err
	}
	if _, err := queue.EnsureDeadLetterStream(setupCtx, js, cfg.Topology); err != nil {
		return err
	}
	checkpoints, err := queue.EnsureCheckpoints(setupCtx, js, cfg.Topology)
	if err != nil {
		return err
	}
	advisories, err := queue.EnsureAdvisoryConsumer(setupCtx, js, cfg.Topology)
	if err != nil {
		return err
	}
	contacts, err := js.Stream(setupCtx, cfg.Topology.ContactsStream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", cfg.Topology.ContactsStream, err)
	}

	if cfg.Sim.Scenario != "" {
		log.Infof("Simulated providers: scenario %s, latency %s, ElevenLabs outage %s",
			cfg.Sim.Scenario, cfg.Sim.Latency, cfg.Sim.TTSOutage)
	}
	log.Infof("Timings: retry %d attempts from %s (x%g, max %s), breaker opens after %d failures for %s, closes after %d successes, health check every %s",
		cfg.Retry.MaxAttempts, cfg.Retry.InitialDelay, cfg.Retry.Multiplier, cfg.Retry.MaxDelay,
		cfg.Breaker.FailureThreshold, cfg.Breaker.OpenTimeout, cfg.Breaker.SuccessThreshold, cfg.Health.Interval)

	w := &worker{
		cfg:   cfg,
		log:   log,
		cons:  cons,
		stats: &Stats{},
		watch: newBreakerWatch(nil),
		dlq:   queue.NewDeadLetterer(js, cfg.Topology),
	}
	w.policy = Policy{MaxDeliver: cfg.Topology.MaxDeliver, OnBreakerOpen: cfg.Worker.OnBreakerOpen, Redelivery: retryPolicy(cfg)}
	llm := buildStep(w, providers.LLM, cfg.Bulkhead.LLM, cfg.Timeouts.LLM)
	tts := buildStep(w, providers.TTS, cfg.Bulkhead.TTS, cfg.Timeouts.TTS)
	crmStep := buildStep(w, providers.CRM, cfg.Bulkhead.CRM, cfg.Timeouts.CRM)
	w.pipeline = &call.Pipeline{
		LLM:         llm.backends,
		TTS:         tts.backends,
		CRM:         crmStep.backends,
		Retrier:     resilience.NewRetrier(retryPolicy(cfg), nil, log),
		Store:       queue.NewCompletions(kv),
		Checkpoints: checkpoints,
		Lease:       cfg.Topology.AckWait,
		Worker:      cfg.Worker.ID,
		Log:         log,
		Fallbacks:   opts.Fallbacks,
	}
	w.steps = [][]*resilience.Guard{llm.guards, tts.guards}
	if len(crmStep.guards) > 0 {
		w.steps = append(w.steps, crmStep.guards)
	}

	// Health checkers and the exhausted-contact sweeper live until the worker has stopped
	// processing.
	healthCtx, stopHealth := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	for _, hc := range slices.Concat(llm.checks, tts.checks, crmStep.checks) {
		checker := resilience.NewHealthChecker(hc.guard, hc.probe, cfg.Health.Interval, cfg.Health.Timeout, nil, log)
		background.Add(1)
		go func() {
			defer background.Done()
			checker.Run(healthCtx)
		}()
	}

	sweeper := &exhaustedSweeper{w: w, advisories: advisories, contacts: contacts,
		completions: queue.NewCompletions(kv), checkpoints: checkpoints}
	background.Add(1)
	go func() {
		defer background.Done()
		sweeper.run(healthCtx)
	}()

	log.Infof("Worker %s consuming %s from stream %s (consumer %s, concurrency %d)",
		cfg.Worker.ID, cfg.Topology.ContactsSubject, cfg.Topology.ContactsStream, cfg.Topology.Consumer, cfg.Worker.Concurrency)
	if opts.Ready != nil {
		opts.Ready(url)
	}
	runErr := w.consume(ctx)

	stopHealth()
	background.Wait()
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		log.Warnf("draining the NATS connection: %v", err)
	}
	s := w.stats.Snapshot()
	log.Infof("Summary: %d completed, %d already completed, %d failed and left for retry, %d dead-lettered, %d released at shutdown, in %s",
		s.Completed, s.AlreadyCompleted, s.Retried, s.DeadLettered, s.Released, time.Since(started).Round(100*time.Millisecond))
	log.Info("AI Call Agent stopped")
	return runErr
}

func retryPolicy(cfg config.Config) resilience.RetryPolicy {
	return resilience.RetryPolicy{
		MaxAttempts:   cfg.Retry.MaxAttempts,
		InitialDelay:  cfg.Retry.InitialDelay,
		Multiplier:    cfg.Retry.Multiplier,
		MaxDelay:      cfg.Retry.MaxDelay,
		Jitter:        cfg.Retry.Jitter,
		RetryAfterCap: cfg.Retry.RetryAfterCap,
	}
}

// builtStep is one step's backends with their guards and health checks.
type builtStep[P any] struct {
	backends call.Step[P]
	guards   []*resilience.Guard
	checks   []healthCheck
}

type healthCheck struct {
	guard *resilience.Guard
	probe resilience.Prober
}

func buildStep[P any](w *worker, providers []Provider[P], limit int, timeout time.Duration) builtStep[P] {
	var s builtStep[P]
	for _, p := range providers {
		g := w.newGuard(p.Name, limit)
		if p.Bind != nil {
			p.Bind(g)
		}
		s.backends = append(s.backends, call.Backend[P]{Provider: p.Impl, Guard: g, Timeout: timeout})
		s.guards = append(s.guards, g)
		if p.Probe != nil {
			s.checks = append(s.checks, healthCheck{guard: g, probe: p.Probe})
		}
	}
	return s
}

func (w *worker) newGuard(name string, limit int) *resilience.Guard {
	return resilience.NewGuard(name, resilience.GuardOptions{
		Breaker: resilience.BreakerSettings{
			FailureThreshold: w.cfg.Breaker.FailureThreshold,
			SuccessThreshold: w.cfg.Breaker.SuccessThreshold,
			OpenTimeout:      w.cfg.Breaker.OpenTimeout,
		},
		MaxConcurrency: limit,
		Listener:       w.watch,
		Logger:         w.log,
	})
}
