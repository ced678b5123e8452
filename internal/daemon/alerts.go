package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/channels"
	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/metrics"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
)

// alerting is the worker's part of the alert system: it emits events (breakers, fallbacks,
// failed contacts) to the alerts stream, and runs a dispatcher on the consumer every replica
// shares, so each alert reaches each channel once for the whole fleet.
type alerting struct {
	emitter    *alert.Emitter
	breakers   *alert.BreakerAlerts
	fallbacks  *alert.FallbackAlerts
	dispatcher *alert.Dispatcher
	http       *httpx.Client // the HTTP channels' outbound client
	// stopEmitter stops the emitter's service, which publishes the events still queued.
	stopEmitter func()
}

// AlertTopology is the alert stream, consumer and bucket that cfg names.
func AlertTopology(cfg config.Config) alert.Topology { return cfg.AlertTopology() }

// newAlerting builds the channels cfg enables (every misconfigured one reported at once), the
// emitter and the dispatcher, and starts the emitter. Channel secrets are added to red. The
// HTTP channels share one outbound client of their own (no redirects, capped bodies, the
// providers' transport timeouts), so a slow channel cannot take the providers' connections.
//
// The emitter is a service of its own rather than one of the worker's background services:
// every other service, and the breaker timers, emit through it, so it must stop after them
// (see close), publishing what they emitted on their way out.
func newAlerting(ctx context.Context, js jetstream.JetStream, cfg config.Config, log *logrus.Logger,
	red *redact.Redactor, m *metrics.Metrics, version string) (_ *alerting, err error) {
	hc, err := httpx.New(httpx.Options{Version: version, MaxIdleConnsPerHost: 2}) // one delivery at a time per channel
	if err != nil {
		return nil, fmt.Errorf("alert channels' HTTP client: %w", err)
	}
	defer func() {
		if err != nil {
			hc.CloseIdleConnections()
		}
	}()
	settings := cfg.AlertChannels()
	settings.Client = hc
	chans, err := channels.Build(settings, red)
	if err != nil {
		return nil, fmt.Errorf("cannot start with these alert settings:\n%w", err)
	}
	topo := AlertTopology(cfg)
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := alert.Ensure(setup, js, topo); err != nil {
		return nil, fmt.Errorf("ensure the alert stream: %w", err)
	}
	drift, err := alert.Drift(setup, js, topo)
	if err != nil {
		return nil, err
	}
	for _, d := range drift {
		log.Warnf("Topology drift, running with the server's value: %s", d)
	}
	em := alert.NewEmitter(js, alert.EmitterOptions{Topology: topo, Source: cfg.Worker.ID, QueueSize: cfg.Alerts.QueueSize, Redactor: red, Logger: log})
	breakers := alert.NewBreakerAlerts(em, alert.BreakerAlertsOptions{ServiceDownAfter: cfg.Alerts.ServiceDownAfter, Logger: log})
	disp, err := alert.NewDispatcher(js, alert.DispatcherOptions{Topology: topo, Channels: chans, SummaryWindow: cfg.Alerts.SummaryWindow,
		ReporterTTL: cfg.Alerts.ReporterTTL, AttemptTimeout: cfg.Alerts.Timeout, Logger: log, Observer: m, ChannelBreakers: breakers})
	if err != nil {
		breakers.Close()
		return nil, fmt.Errorf("alert dispatcher: %w", err)
	}
	m.ObserveAlertEmitter(em)
	if len(chans) == 0 {
		log.Info("Alert channels: none enabled; alerts are logged as \"Sending alert: ...\"")
	} else {
		names := make([]string, len(chans))
		for i, c := range chans {
			names[i] = c.Name
		}
		m.AddAlertChannels(names...)
		log.Infof("Alert channels: %s", strings.Join(names, ", "))
	}
	return &alerting{
		emitter:     em,
		breakers:    breakers,
		fallbacks:   alert.NewFallbackAlerts(em, log),
		dispatcher:  disp,
		http:        hc,
		stopEmitter: startServices(ctx, log, service{name: "Alert emitter", level: logrus.WarnLevel, run: em.Run}),
	}, nil
}

// failure emits the events of a failed contact as the outcome table decided it.
func (a *alerting) failure(provider, contactID, reason string, deadLettered bool, detail string) {
	for _, ev := range alert.FailureEvents(provider, contactID, reason, deadLettered, detail) {
		_ = a.emitter.Emit(ev) // never blocks; a full queue is counted and logged by the emitter
	}
}

// close stops the breaker timers, then the emitter, which publishes the events still queued
// for up to alert.DefaultDrainTimeout (a shortfall is logged as "Alert emitter stopped: …");
// the dispatcher must have stopped before.
func (a *alerting) close() {
	defer a.http.CloseIdleConnections()
	a.breakers.Close()
	a.stopEmitter()
}

// fallbackFanout tells several listeners that a step changed provider.
type fallbackFanout []call.FallbackListener

func (f fallbackFanout) StepProviderChanged(step, from, to, reason string) {
	for _, l := range f {
		if l != nil {
			l.StepProviderChanged(step, from, to, reason)
		}
	}
}
