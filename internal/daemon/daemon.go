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
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/avast/retry-go/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/fleet"
	"github.com/callagent/resilience/internal/health"
	"github.com/callagent/resilience/internal/metrics"
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/resilience"
	"github.com/callagent/resilience/internal/sheets"
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
	// Listeners, if set, learn every breaker transition too (alerts plug in here).
	Listeners []resilience.StateListener
	// Observers, if set, learn every contact's outcome too, after the worker's own (the
	// summary's counters, metrics, log lines and alerts); see OutcomeObserver.
	Observers []OutcomeObserver
}

// Run runs the worker until ctx is cancelled, then shuts down gracefully: it stops fetching,
// lets in-flight contacts finish within Config.Worker.ShutdownGrace, releases the rest to
// JetStream for redelivery, and stops the embedded server if it started one. It returns nil
// after a clean stop.
func Run(ctx context.Context, opts Options) error {
	cfg, log := opts.Config, opts.Logger
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

	// The Sheets error log outlives everything else, so shutdown problems reach it too.
	if stopSheets, err := startSheets(cfg, log, opts.Redactor); err != nil {
		return err
	} else if stopSheets != nil {
		defer stopSheets()
	}

	// Metrics and probes before NATS: a port that cannot be bound stops the worker now, and
	// /readyz answers "not ready" while the worker waits for NATS.
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg, metrics.WithVersion(opts.Version))
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	ready := &readiness{}
	if cfg.Metrics.Addr != "" {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", cfg.Metrics.Addr)
		if err != nil {
			return fmt.Errorf("metrics and probes (METRICS_ADDR=%s): %w", cfg.Metrics.Addr, err)
		}
		srv := health.NewServer(cfg.Metrics.Addr, reg, ready.check, health.WithLogger(log))
		stopProbes := startServices(ctx, log, service{name: "Metrics endpoint on " + cfg.Metrics.Addr, level: logrus.ErrorLevel,
			run: func(ctx context.Context) error { return srv.Serve(ctx, ln) }})
		defer stopProbes()
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
	nc, err := queue.Connect(ctx, url, queue.ConnectOptions{
		Name: "call-worker " + cfg.Worker.ID, CredsFile: cfg.NATS.CredsFile, Wait: cfg.NATS.ConnectTimeout, Log: log,
	})
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	t, err := ensureTopology(ctx, js, cfg, log)
	if err != nil {
		return err
	}
	ready.set(health.NATSReady(nc, js, cfg.Topology.ContactsStream))

	if cfg.Sim.Scenario != "" {
		log.Infof("Simulated providers: scenario %s, latency %s, ElevenLabs outage %s",
			cfg.Sim.Scenario, cfg.Sim.Latency, cfg.Sim.TTSOutage)
	}
	log.Infof("Timings: retry %d attempts from %s (x%g, max %s), breaker opens after %d failures for %s, closes after %d successes, health check every %s",
		cfg.Retry.MaxAttempts, cfg.Retry.InitialDelay, cfg.Retry.Multiplier, cfg.Retry.MaxDelay,
		cfg.Breaker.FailureThreshold, cfg.Breaker.OpenTimeout, cfg.Breaker.SuccessThreshold, cfg.Health.Interval)

	m.ObserveConsumer(t.consumer)
	m.ObserveStream(t.contacts)
	reporter := fleet.NewReporter(t.fleet, cfg.Worker.ID, fleet.ReporterOptions{Refresh: cfg.Fleet.TTL / 3, Logger: log})
	shared := fleet.NewSharedBreakers(t.breakers, cfg.Worker.ID, log)
	alerts, err := newAlerting(ctx, js, cfg, log, opts.Redactor, m, opts.Version)
	if err != nil {
		return err
	}
	closeAlerts := sync.OnceFunc(alerts.close)
	defer closeAlerts() // on an early return; normally closed before the connection drains

	w := &worker{
		cfg:     cfg,
		log:     log,
		cons:    t.consumer,
		stats:   &Stats{},
		watch:   newBreakerWatch(),
		dlq:     queue.NewDeadLetterer(js, cfg.Topology),
		metrics: m,
		policy:  Policy{MaxDeliver: cfg.Topology.MaxDeliver, OnBreakerOpen: BreakerOpenPolicy(cfg.Worker.OnBreakerOpen), Redelivery: retryPolicy(cfg)},
	}
	w.listeners = append(resilience.Listeners{w.watch, m, reporter, alerts.breakers, shared}, opts.Listeners...)
	llm := buildStep(w, providers.LLM, cfg.Bulkhead.LLM, cfg.Timeouts.LLM)
	tts := buildStep(w, providers.TTS, cfg.Bulkhead.TTS, cfg.Timeouts.TTS)
	crmStep := buildStep(w, providers.CRM, cfg.Bulkhead.CRM, cfg.Timeouts.CRM)
	w.pipeline = &call.Pipeline{
		LLM:         llm.backends,
		TTS:         tts.backends,
		CRM:         crmStep.backends,
		Retrier:     resilience.NewRetrier(retryPolicy(cfg), nil, log),
		Checkpoints: t.checkpoints,
		Lease:       cfg.Topology.AckWait,
		Worker:      cfg.Worker.ID,
		Log:         log,
		Fallbacks:   fallbackFanout{alerts.fallbacks, opts.Fallbacks},
		Observer:    m,
	}
	w.steps = [][]*resilience.Guard{llm.guards, tts.guards}
	if len(crmStep.guards) > 0 {
		w.steps = append(w.steps, crmStep.guards)
	}
	w.observers = append(outcomeObservers{w.stats, metricsObserver{m},
		logObserver{log: log, steps: w.steps, deadLetterStream: cfg.Topology.DeadLetterStream}, &alertObserver{alerts: alerts}},
		opts.Observers...)
	for step, guards := range map[string][]*resilience.Guard{call.StepLLM: llm.guards, call.StepTTS: tts.guards, call.StepCRM: crmStep.guards} {
		for _, g := range guards {
			m.AddStep(step, g.Provider())
		}
	}
	for _, g := range slices.Concat(w.steps...) {
		m.AddProvider(g.Provider(), g.Bulkhead())
		reporter.Watch(g)
		shared.Add(g)
	}

	// Background work lives until the worker has stopped processing, and stops before the
	// connection drains (the fleet reporter removes this worker's reports on its way out).
	var background []service
	for _, hc := range slices.Concat(llm.checks, tts.checks, crmStep.checks) {
		checker := resilience.NewHealthChecker(hc.guard, hc.probe, cfg.Health.Interval, cfg.Health.Timeout, nil, log)
		checker.SetOpenInterval(cfg.Health.OpenInterval)
		checker.SetProbeGate(shared.Gate)
		background = append(background, service{name: "Health check of " + hc.guard.Provider(), level: logrus.WarnLevel,
			run: func(ctx context.Context) error { checker.Run(ctx); return nil }})
	}
	sweeper := &exhaustedSweeper{w: w, advisories: t.advisories, contacts: t.contacts,
		checkpoints: t.checkpoints}
	background = append(background,
		service{name: "MAX_DELIVERIES sweeper", level: logrus.ErrorLevel, run: sweeper.run},
		service{name: "Alert dispatcher", level: logrus.ErrorLevel, run: alerts.dispatcher.Run},
		service{name: "Fleet breaker report", level: logrus.WarnLevel, run: reporter.Run},
		service{name: "Fleet breakers", level: logrus.WarnLevel, run: shared.Run})
	shared.Sync(ctx) // an operator's hold applies before the first call or probe
	stopBackground := startServices(ctx, log, background...)
	defer stopBackground() // on a panic in consume; normally stopped below

	log.Infof("Worker %s consuming %s from stream %s (consumer %s, concurrency %d)",
		cfg.Worker.ID, cfg.Topology.ContactsSubject, cfg.Topology.ContactsStream, cfg.Topology.Consumer, cfg.Worker.Concurrency)
	if opts.Ready != nil {
		opts.Ready(url)
	}
	runErr := w.consume(ctx)

	stopBackground()
	closeAlerts() // flush queued alert events while the connection is still up
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		log.Warnf("draining the NATS connection: %v", err)
	}
	s := w.stats.Snapshot()
	log.Infof("Summary: %d completed, %d already completed, %d failed and left for retry, %d dead-lettered, %d released at shutdown, in %s",
		s.Completed, s.AlreadyCompleted, s.Retried, s.DeadLettered, s.Released, time.Since(started).Round(100*time.Millisecond))
	log.Info("AI Call Agent stopped")
	return runErr
}

// topology is what the worker uses in JetStream.
type topology struct {
	consumer    jetstream.Consumer
	contacts    jetstream.Stream
	advisories  jetstream.Consumer
	checkpoints *queue.Checkpoints
	fleet       jetstream.KeyValue
	breakers    jetstream.KeyValue // the fleet-wide breakers
}

// ensureTopology creates every stream, bucket and consumer the worker needs that is missing,
// reports drift between cfg and the server (changing nothing that exists) and refuses to run
// against what it cannot work with.
func ensureTopology(ctx context.Context, js jetstream.JetStream, cfg config.Config, log logrus.FieldLogger) (topology, error) {
	// A cluster without a JetStream meta leader yet (nodes starting, an election) answers
	// nothing: wait for it as for NATS itself, up to NATS_CONNECT_TIMEOUT (30s at least).
	ctx, cancel := context.WithTimeout(ctx, max(30*time.Second, cfg.NATS.ConnectTimeout))
	defer cancel()
	var t topology
	plan, err := retry.DoWithData(func() (queue.Plan, error) {
		attempt, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return queue.Setup(attempt, js, cfg.Topology)
	},
		retry.Context(ctx), retry.Attempts(0), retry.Delay(500*time.Millisecond), retry.MaxDelay(5*time.Second),
		retry.DelayType(retry.BackOffDelay), retry.LastErrorOnly(true),
		retry.OnRetry(func(n uint, err error) {
			log.Warnf("JetStream is not answering yet (attempt %d): %v", n+1, err)
		}))
	if err != nil {
		return t, fmt.Errorf("set up the JetStream topology: %w", err)
	}
	for _, name := range plan.Created {
		log.Infof("Created %s", name)
	}
	for _, d := range plan.Drift {
		log.Warnf("Topology drift, running with the server's value: %s", d)
	}
	if bad := plan.Incompatible(); len(bad) > 0 {
		lines := make([]string, len(bad))
		for i, d := range bad {
			lines[i] = "  " + d.String()
		}
		return t, fmt.Errorf("cannot run against this JetStream topology:\n%s", strings.Join(lines, "\n"))
	}
	if t.contacts, err = queue.EnsureContactsStream(ctx, js, cfg.Topology); err != nil {
		return t, err
	}
	if t.consumer, err = queue.EnsureConsumer(ctx, js, cfg.Topology); err != nil {
		return t, err
	}
	if _, err = queue.EnsureDeadLetterStream(ctx, js, cfg.Topology); err != nil {
		return t, err
	}
	if t.checkpoints, err = queue.EnsureCheckpoints(ctx, js, cfg.Topology); err != nil {
		return t, err
	}
	if t.advisories, err = queue.EnsureAdvisoryConsumer(ctx, js, cfg.Topology); err != nil {
		return t, err
	}
	t.fleet, err = fleet.EnsureBucket(ctx, js, fleet.BucketConfig{Name: cfg.Fleet.Bucket, TTL: cfg.Fleet.TTL, Replicas: cfg.Topology.Replicas})
	if err != nil {
		return t, fmt.Errorf("ensure KV bucket %s: %w", cfg.Fleet.Bucket, err)
	}
	if t.breakers, err = fleet.EnsureBreakerBucket(ctx, js, fleet.BreakerBucketConfig(fleet.DefaultBreakerBucket, cfg.Topology.Replicas)); err != nil {
		return t, err
	}
	return t, nil
}

// readiness answers /readyz: not ready until the worker is connected and its topology is set
// up, then what the NATS check says.
type readiness struct {
	checker atomic.Pointer[func(context.Context) error]
}

func (r *readiness) set(check func(context.Context) error) { r.checker.Store(&check) }

func (r *readiness) check(ctx context.Context) error {
	c := r.checker.Load()
	if c == nil {
		return errors.New("connecting to NATS")
	}
	return (*c)(ctx)
}

// startSheets adds the Google Sheets error log to log when enabled and returns the func that
// flushes and stops it.
func startSheets(cfg config.Config, log *logrus.Logger, red *redact.Redactor) (stop func(), err error) {
	if !cfg.Sheets.Enabled {
		return nil, nil
	}
	level, err := logrus.ParseLevel(cfg.Sheets.Level)
	if err != nil {
		return nil, fmt.Errorf("SHEETS_LEVEL: %w", err)
	}
	hook, err := sheets.New(sheets.Options{
		CredentialsFile: cfg.Sheets.CredentialsFile, SpreadsheetID: cfg.Sheets.SpreadsheetID, Range: cfg.Sheets.Range,
		BatchSize: cfg.Sheets.BatchSize, FlushInterval: cfg.Sheets.FlushInterval, Buffer: cfg.Sheets.Buffer,
		MinLevel: level, Worker: cfg.Worker.ID, Redactor: red, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("google sheets error log: %w", err)
	}
	log.AddHook(hook)
	stop = startServices(context.Background(), log, service{name: "Google Sheets error log", level: logrus.WarnLevel, run: hook.Run})
	log.Infof("Google Sheets error log: appending %s and worse to spreadsheet %s", cfg.Sheets.Level, cfg.Sheets.SpreadsheetID)
	return stop, nil
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
		Listener:       w.listeners,
		Logger:         w.log,
	})
}
