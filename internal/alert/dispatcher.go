package alert

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/resilience"
)

// Defaults for DispatcherOptions.
const (
	DefaultSummaryWindow  = time.Minute
	DefaultReporterTTL    = 15 * time.Minute
	DefaultAttemptTimeout = 10 * time.Second
	DefaultRedeliverMin   = 5 * time.Second
	DefaultRedeliverMax   = 5 * time.Minute
	DefaultChannelAckWait = 2 * time.Minute
	defaultEventsAckWait  = 30 * time.Second
	// fetchWait bounds one pull, so loops notice shutdown promptly.
	fetchWait = 2 * time.Second
	// handleTimeout bounds the JetStream work for one event.
	handleTimeout = 20 * time.Second
	// maxEventDeliveries bounds the tries of one event (about half an hour with the default
	// redelivery delays) before it is given up, logged, so later events flow again.
	maxEventDeliveries = 12
)

// DefaultChannelRetry is the in-process retry of one delivery: 3 attempts, waiting 1s then
// 2s; a Retry-After up to 10s is slept, a longer one sends the notification back to the
// queue for that long.
func DefaultChannelRetry() resilience.RetryPolicy {
	return resilience.RetryPolicy{MaxAttempts: 3, InitialDelay: time.Second, Multiplier: 2,
		MaxDelay: 10 * time.Second, RetryAfterCap: 10 * time.Second}
}

// Observer learns the outcome of every delivery, for metrics (alerts by channel and result):
// *metrics.Metrics implements it. Calls come from the channel loops, concurrently.
type Observer interface {
	AlertDelivered(channel, result string)
}

// Delivery results passed to Observer.AlertDelivered.
const (
	// ResultSent: the channel accepted the notification.
	ResultSent = "sent"
	// ResultRetried: it failed and stays queued; tried again after a delay.
	ResultRetried = "retried"
	// ResultDeferred: not tried now (the channel's breaker is open, or it asked to wait).
	ResultDeferred = "deferred"
	// ResultDropped: the channel refused it for good (malformed, too large).
	ResultDropped = "dropped"
	// ResultFiltered: below the channel's minimum severity; not sent.
	ResultFiltered = "filtered"
)

// DispatcherOptions configures a Dispatcher. Zero fields take the defaults.
type DispatcherOptions struct {
	// Topology names the stream, consumers and bucket (zero fields: defaults).
	Topology Topology
	// Channels are the enabled channels; none is valid (the log still shows "Sending
	// alert: <title>" for every notification).
	Channels []Channel
	// SummaryWindow (ALERT_SUMMARY_WINDOW, default 1m) is how long call failures are
	// gathered into one summary after the first is sent on its own.
	SummaryWindow time.Duration
	// ReporterTTL (ALERT_REPORTER_TTL, default 15m): a worker that has not repeated its
	// report for this long no longer holds an incident open (it may have died with its
	// breaker open). Keep it well above BREAKER_OPEN_TIMEOUT + HEALTH_CHECK_INTERVAL.
	ReporterTTL time.Duration
	// Retry is each channel's in-process retry (default DefaultChannelRetry()).
	Retry resilience.RetryPolicy
	// Breaker is each channel's circuit breaker (defaults: 3 failures, 1 success, 30s).
	Breaker resilience.BreakerSettings
	// AttemptTimeout (ALERT_TIMEOUT, default 10s) bounds one delivery attempt.
	AttemptTimeout time.Duration
	// RedeliverMin and RedeliverMax bound the delay before a failed notification is tried
	// again: RedeliverMin doubled per delivery, at most RedeliverMax (defaults 5s, 5m).
	RedeliverMin, RedeliverMax time.Duration
	// ChannelAckWait is the channel consumers' AckWait (default 2m); it must exceed the
	// longest in-process delivery (attempts × AttemptTimeout + waits).
	ChannelAckWait time.Duration
	// Clock drives summary windows, reporter expiry and the maintenance tick; nil is the
	// real clock.
	Clock clock.Clock
	// Logger receives every log line; nil discards.
	Logger *logrus.Logger
	// Observer learns each delivery's result; may be nil.
	Observer Observer
	// ChannelBreakers learns of every channel breaker's transitions; may be nil. The worker
	// passes its breaker alerts, so a channel that is down or misconfigured (a Slack webhook
	// revoked, a wrong PagerDuty routing key) raises one incident on the other channels.
	ChannelBreakers resilience.StateListener
}

// Dispatcher turns alert events into notifications and delivers them, inside every worker
// replica. See the package documentation for the flow.
type Dispatcher struct {
	js       jetstream.JetStream
	topo     Topology
	opts     DispatcherOptions
	log      *logrus.Logger
	clock    clock.Clock
	channels []*channelRunner
}

// ErrInvalidOptions is wrapped by every error NewDispatcher returns for bad options.
var ErrInvalidOptions = errors.New("invalid alert dispatcher options")

// NewDispatcher checks o, fills its defaults and returns a Dispatcher; it starts nothing.
func NewDispatcher(js jetstream.JetStream, o DispatcherOptions) (*Dispatcher, error) {
	o.Topology = o.Topology.WithDefaults()
	if err := o.Topology.Validate(); err != nil {
		return nil, err
	}
	if o.SummaryWindow == 0 {
		o.SummaryWindow = DefaultSummaryWindow
	}
	if o.ReporterTTL == 0 {
		o.ReporterTTL = DefaultReporterTTL
	}
	if o.Retry == (resilience.RetryPolicy{}) {
		o.Retry = DefaultChannelRetry()
	}
	if o.Breaker.SuccessThreshold == 0 {
		o.Breaker.SuccessThreshold = 1
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	if o.RedeliverMin == 0 {
		o.RedeliverMin = DefaultRedeliverMin
	}
	if o.RedeliverMax == 0 {
		o.RedeliverMax = DefaultRedeliverMax
	}
	if o.ChannelAckWait == 0 {
		o.ChannelAckWait = DefaultChannelAckWait
	}
	if o.Clock == nil {
		o.Clock = clock.New()
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case o.SummaryWindow < 0:
		return nil, bad("summary window must be positive, got %s", o.SummaryWindow)
	case o.ReporterTTL < 0:
		return nil, bad("reporter TTL must be positive, got %s", o.ReporterTTL)
	case o.AttemptTimeout < 0:
		return nil, bad("attempt timeout must be positive, got %s", o.AttemptTimeout)
	case o.RedeliverMin < 0 || o.RedeliverMax < o.RedeliverMin:
		return nil, bad("redelivery delays must satisfy 0 < min <= max, got %s and %s", o.RedeliverMin, o.RedeliverMax)
	case o.ChannelAckWait < time.Second:
		return nil, bad("channel ack wait must be at least 1s, got %s", o.ChannelAckWait)
	}
	if err := o.Retry.Validate(); err != nil {
		return nil, bad("%v", err)
	}
	if worst := longestDelivery(o.Retry, o.AttemptTimeout); o.ChannelAckWait <= worst {
		return nil, bad("channel ack wait %s must exceed the longest delivery, %s (attempts × timeout + waits)", o.ChannelAckWait, worst)
	}
	if err := (resilience.GuardOptions{Breaker: o.Breaker}).Validate(); err != nil {
		return nil, bad("%v", err)
	}
	d := &Dispatcher{js: js, topo: o.Topology, opts: o, log: loggerOrDiscard(o.Logger), clock: o.Clock}
	seen := map[string]string{}
	retrier := resilience.NewRetrier(o.Retry, nil, d.log)
	for i, ch := range o.Channels {
		if ch.Name == "" || ch.Notifier == nil {
			return nil, bad("channel %d needs a name and a notifier", i)
		}
		slug := Slug(ch.Name)
		if other, dup := seen[slug]; dup {
			return nil, bad("channels %q and %q have the same consumer name %q", other, ch.Name, o.Topology.channelConsumerName(ch.Name))
		}
		seen[slug] = ch.Name
		minSev := ch.MinSeverity
		if minSev == "" {
			minSev = SeverityInfo
		}
		if !minSev.Valid() {
			return nil, bad("channel %s: unknown minimum severity %q", ch.Name, ch.MinSeverity)
		}
		d.channels = append(d.channels, &channelRunner{
			d: d, name: ch.Name, notifier: ch.Notifier, min: minSev, retrier: retrier,
			guard: resilience.NewGuard(ch.Name, resilience.GuardOptions{
				Breaker: o.Breaker, MaxConcurrency: 1, Logger: d.log, Listener: o.ChannelBreakers,
			}),
		})
	}
	return d, nil
}

// longestDelivery is the longest one delivery can hold its message in process: every
// attempt timing out, with the longest wait between attempts.
func longestDelivery(p resilience.RetryPolicy, attempt time.Duration) time.Duration {
	p = p.WithDefaults()
	worst := time.Duration(p.MaxAttempts) * attempt
	for i := 1; i < p.MaxAttempts; i++ {
		worst += max(p.Wait(i), p.RetryAfterCap)
	}
	return worst
}

// Run ensures the stream, bucket and consumers, then processes events and delivers
// notifications until ctx ends: one loop on the shared events consumer, one maintenance
// tick (summaries of ended windows, silent reporters), and one loop per channel on its
// shared consumer. It returns nil after ctx ends, or the setup error. A failing channel
// never holds back another channel, the events or the caller.
func (d *Dispatcher) Run(ctx context.Context) error {
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := Ensure(setupCtx, d.js, d.topo); err != nil {
		return err
	}
	kv, err := d.js.KeyValue(setupCtx, d.topo.Bucket)
	if err != nil {
		return fmt.Errorf("open alert incidents bucket %s: %w", d.topo.Bucket, err)
	}
	events, err := d.js.CreateOrUpdateConsumer(setupCtx, d.topo.Stream, d.topo.eventsConsumerConfig(defaultEventsAckWait))
	if err != nil {
		return fmt.Errorf("ensure alert consumer %s: %w", d.topo.Consumer, err)
	}
	for _, ch := range d.channels {
		cfg := d.topo.channelConsumerConfig(ch.name, d.opts.ChannelAckWait)
		if ch.cons, err = d.js.CreateOrUpdateConsumer(setupCtx, d.topo.Stream, cfg); err != nil {
			return fmt.Errorf("ensure alert consumer %s: %w", cfg.Durable, err)
		}
	}
	p := &processor{js: d.js, kv: kv, topo: d.topo, window: d.opts.SummaryWindow,
		reporterTTL: d.opts.ReporterTTL, clock: d.clock, log: d.log}

	names := make([]string, 0, len(d.channels))
	for _, ch := range d.channels {
		names = append(names, ch.name)
	}
	if len(names) == 0 {
		d.log.Info("Alert dispatcher running with every channel disabled: alerts are only logged")
	} else {
		d.log.Infof("Alert dispatcher running; channels: %v", names)
	}

	var wg sync.WaitGroup
	wg.Go(func() { d.eventLoop(ctx, events, p) })
	wg.Go(func() { d.maintainLoop(ctx, p) })
	for _, ch := range d.channels {
		wg.Go(func() { ch.loop(ctx) })
	}
	wg.Wait()
	return nil
}

// eventLoop processes events one at a time: ack when applied, NakWithDelay when JetStream
// failed us (the event is applied again, harmlessly), Term when it is not an event.
func (d *Dispatcher) eventLoop(ctx context.Context, cons jetstream.Consumer, p *processor) {
	consumeLoop(ctx, d, cons, d.topo.Consumer, func(msg jetstream.Msg) {
		ev, err := DecodeEvent(msg.Data())
		if err != nil {
			d.log.WithError(err).Warnf("Discarding a message on %s that is not an alert event", msg.Subject())
			_ = msg.TermWithReason("not an alert event")
			return
		}
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handleTimeout)
		defer cancel()
		if err := p.handle(hctx, ev); err != nil {
			if delivered(msg) >= maxEventDeliveries {
				// The fleet processes events one at a time: one that always fails would
				// hold back every alert after it.
				d.log.WithError(err).WithFields(eventFields(ev)).
					Errorf("Giving up on alert event %s after %d tries", ev.Kind, maxEventDeliveries)
				_ = msg.TermWithReason("alert event could not be processed")
				return
			}
			delay := d.redeliverDelay(msg)
			d.log.WithError(err).WithFields(eventFields(ev)).
				Warnf("Could not process alert event %s; trying again in %s", ev.Kind, delay)
			_ = msg.NakWithDelay(delay)
			return
		}
		if err := msg.DoubleAck(hctx); err != nil {
			d.log.WithError(err).WithFields(eventFields(ev)).Warn("Could not ack alert event; it will be processed again, harmlessly")
		}
	})
}

// maintainLoop ticks on the clock: every tenth of the summary window, between 100ms and 5s.
func (d *Dispatcher) maintainLoop(ctx context.Context, p *processor) {
	every := min(max(d.opts.SummaryWindow/10, 100*time.Millisecond), 5*time.Second)
	t := d.clock.Ticker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mctx, cancel := context.WithTimeout(ctx, handleTimeout)
		if err := p.maintain(mctx); err != nil && ctx.Err() == nil {
			d.log.WithError(err).Warn("Alert maintenance (summaries, silent reporters) failed; trying again at the next tick")
		}
		cancel()
	}
}

// delivered is the message's delivery count (1 when unknown).
func delivered(msg jetstream.Msg) uint64 {
	if md, err := msg.Metadata(); err == nil && md.NumDelivered > 0 {
		return md.NumDelivered
	}
	return 1
}

// redeliverDelay is RedeliverMin doubled per delivery so far, at most RedeliverMax.
func (d *Dispatcher) redeliverDelay(msg jetstream.Msg) time.Duration {
	n := delivered(msg)
	delay := d.opts.RedeliverMin
	for i := uint64(1); i < n && delay < d.opts.RedeliverMax; i++ {
		delay *= 2
	}
	return min(delay, d.opts.RedeliverMax)
}

// consumeLoop fetches one message at a time from cons and hands it to handle until ctx
// ends. If the consumer disappears (deleted by an operator) it is created again.
func consumeLoop(ctx context.Context, d *Dispatcher, cons jetstream.Consumer, name string, handle func(jetstream.Msg)) {
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err := cons.Fetch(1, jetstream.FetchContext(fctx))
		if err == nil {
			for msg := range batch.Messages() {
				handle(msg)
			}
			err = batch.Error()
		}
		cancel()
		if err == nil || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) ||
			errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.Canceled) {
			continue
		}
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
			d.log.WithError(err).Warnf("Alert consumer %s is gone; creating it again", name)
			if c, rerr := d.recreate(ctx, name); rerr == nil {
				cons = c
			}
		} else {
			d.log.WithError(err).Warnf("Fetching from alert consumer %s failed; trying again", name)
		}
		pause(ctx, time.Second)
	}
}

// recreate creates the named consumer again with its configuration.
func (d *Dispatcher) recreate(ctx context.Context, name string) (jetstream.Consumer, error) {
	cfg := d.topo.eventsConsumerConfig(defaultEventsAckWait)
	for _, ch := range d.channels {
		if d.topo.channelConsumerName(ch.name) == name {
			cfg = d.topo.channelConsumerConfig(ch.name, d.opts.ChannelAckWait)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return d.js.CreateOrUpdateConsumer(cctx, d.topo.Stream, cfg)
}

// pause waits d of real time or until ctx ends. It paces NATS calls, not alert logic, so it
// ignores the injected clock.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
