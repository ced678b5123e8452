package metrics

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/resilience"
)

// Occupancy is a bulkhead as the metrics read it at scrape; *resilience.Bulkhead satisfies it.
type Occupancy interface {
	InUse() int
	Limit() int
}

// ConsumerInfo reads a JetStream consumer's state; jetstream.Consumer satisfies it.
type ConsumerInfo interface {
	Info(ctx context.Context) (*jetstream.ConsumerInfo, error)
}

// StreamInfo reads a JetStream stream's state; jetstream.Stream satisfies it.
type StreamInfo interface {
	Info(ctx context.Context, opts ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error)
}

// AlertEmitter counts the alert events a worker raised; *alert.Emitter satisfies it.
type AlertEmitter interface {
	Stats() alert.EmitterStats
}

// alertEventCollector exports the alert emitters' counters at scrape: the three results
// always, at 0 while no emitter is known, so increase() sees the first failure.
type alertEventCollector struct {
	desc *prometheus.Desc

	mu       sync.Mutex
	emitters []AlertEmitter
}

func newAlertEventCollector() *alertEventCollector {
	return &alertEventCollector{
		desc: prometheus.NewDesc(namespace+"_alert_events_total",
			"Alert events this worker raised, by what became of them: published to the alerts stream, dropped when raised (queue full, emitter closed, invalid), failed to publish (NATS away).",
			[]string{"result"}, nil),
	}
}

func (c *alertEventCollector) add(e AlertEmitter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.emitters = append(c.emitters, e)
}

// Describe implements prometheus.Collector.
func (c *alertEventCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *alertEventCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	emitters := slices.Clone(c.emitters)
	c.mu.Unlock()
	var sum alert.EmitterStats
	for _, e := range emitters {
		s := e.Stats()
		sum.Published += s.Published
		sum.Dropped += s.Dropped
		sum.Failed += s.Failed
	}
	for _, r := range []struct {
		result string
		n      int64
	}{{AlertEventPublished, sum.Published}, {AlertEventDropped, sum.Dropped}, {AlertEventFailed, sum.Failed}} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(r.n), r.result)
	}
}

// breakerCollector exports each provider's breaker state and its time spent OPEN, computed at
// scrape so that a breaker open right now counts its current period too.
type breakerCollector struct {
	clock     clock.Clock
	stateDesc *prometheus.Desc
	openDesc  *prometheus.Desc

	mu        sync.Mutex
	providers map[string]*breakerStats
}

// breakerStats is one provider's breaker history.
type breakerStats struct {
	state     resilience.State
	openSince time.Time // start of the current OPEN period; zero when not OPEN
	incident  time.Time // first OPEN of the current incident; zero once CLOSED
	openSecs  float64   // finished OPEN periods
	emitted   float64   // last exported open seconds, so the counter never goes down
}

func newBreakerCollector(c clock.Clock) *breakerCollector {
	return &breakerCollector{
		clock: c,
		stateDesc: prometheus.NewDesc(namespace+"_breaker_state",
			"Circuit breaker state by provider: 0 closed, 1 half-open, 2 open.", []string{"provider"}, nil),
		openDesc: prometheus.NewDesc(namespace+"_breaker_open_seconds_total",
			"Seconds the provider's circuit breaker has spent OPEN, the current period included.", []string{"provider"}, nil),
		providers: map[string]*breakerStats{},
	}
}

// add makes provider known with a closed breaker, if it is not known yet.
func (b *breakerCollector) add(provider string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.statsLocked(provider)
}

func (b *breakerCollector) statsLocked(provider string) *breakerStats {
	s, ok := b.providers[provider]
	if !ok {
		s = &breakerStats{state: resilience.StateClosed}
		b.providers[provider] = s
	}
	return s
}

// transition applies a move to state to at; when it closes an incident that began with an
// OPEN, it returns the incident's length and true.
func (b *breakerCollector) transition(provider string, to resilience.State, at time.Time) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.statsLocked(provider)
	if s.state == resilience.StateOpen && to != resilience.StateOpen && !s.openSince.IsZero() {
		s.openSecs += max(at.Sub(s.openSince), 0).Seconds()
		s.openSince = time.Time{}
	}
	var recovered time.Duration
	closed := false
	switch to {
	case resilience.StateOpen:
		if s.state != resilience.StateOpen {
			s.openSince = at
		}
		if s.incident.IsZero() {
			s.incident = at
		}
	case resilience.StateClosed:
		if !s.incident.IsZero() {
			recovered, closed = max(at.Sub(s.incident), 0), true
			s.incident = time.Time{}
		}
	}
	s.state = to
	return recovered, closed
}

// Describe implements prometheus.Collector.
func (b *breakerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- b.stateDesc
	ch <- b.openDesc
}

// Collect implements prometheus.Collector.
func (b *breakerCollector) Collect(ch chan<- prometheus.Metric) {
	now := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range sortedKeys(b.providers) {
		s := b.providers[p]
		open := s.openSecs
		if s.state == resilience.StateOpen && !s.openSince.IsZero() {
			open += max(now.Sub(s.openSince), 0).Seconds()
		}
		s.emitted = max(s.emitted, open)
		ch <- prometheus.MustNewConstMetric(b.stateDesc, prometheus.GaugeValue, stateValue(s.state), p)
		ch <- prometheus.MustNewConstMetric(b.openDesc, prometheus.CounterValue, s.emitted, p)
	}
}

// bulkheadCollector reads each provider's bulkhead at scrape.
type bulkheadCollector struct {
	inUseDesc, limitDesc *prometheus.Desc

	mu        sync.Mutex
	bulkheads map[string]Occupancy
}

func newBulkheadCollector() *bulkheadCollector {
	return &bulkheadCollector{
		inUseDesc: prometheus.NewDesc(namespace+"_bulkhead_in_use",
			"Concurrency slots to the provider held now by this worker.", []string{"provider"}, nil),
		limitDesc: prometheus.NewDesc(namespace+"_bulkhead_limit",
			"Concurrency slots to the provider this worker may hold.", []string{"provider"}, nil),
		bulkheads: map[string]Occupancy{},
	}
}

func (b *bulkheadCollector) add(provider string, o Occupancy) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bulkheads[provider] = o
}

// Describe implements prometheus.Collector.
func (b *bulkheadCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- b.inUseDesc
	ch <- b.limitDesc
}

// Collect implements prometheus.Collector.
func (b *bulkheadCollector) Collect(ch chan<- prometheus.Metric) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range sortedKeys(b.bulkheads) {
		o := b.bulkheads[p]
		ch <- prometheus.MustNewConstMetric(b.inUseDesc, prometheus.GaugeValue, float64(o.InUse()), p)
		ch <- prometheus.MustNewConstMetric(b.limitDesc, prometheus.GaugeValue, float64(o.Limit()), p)
	}
}

// consumerCollector reads the JetStream consumers and streams at scrape, each within timeout.
// One that cannot be read exports nothing for that scrape and counts an error, so a NATS
// outage shows as a gap and a rising error counter instead of a stale number or a failed
// scrape.
type consumerCollector struct {
	clock                                        clock.Clock
	timeout                                      time.Duration
	errs                                         prometheus.Counter
	pendingDesc, ackPendDesc, pausedDesc, oldest *prometheus.Desc

	mu        sync.Mutex
	consumers []ConsumerInfo
	streams   []StreamInfo
}

func newConsumerCollector(c clock.Clock, timeout time.Duration, errs prometheus.Counter) *consumerCollector {
	return &consumerCollector{
		clock:   c,
		timeout: timeout,
		errs:    errs,
		pausedDesc: prometheus.NewDesc(namespace+"_consumer_paused",
			"1 while the consumer is paused (JetStream's consumer pause: no contact is delivered), 0 otherwise; the same for every worker.",
			[]string{"stream", "consumer"}, nil),
		oldest: prometheus.NewDesc(namespace+"_oldest_pending_age_seconds",
			"Age of the oldest message in the stream: for the contacts stream, the oldest contact not done yet (waiting, in progress, held or retried); 0 when empty. The same for every worker.",
			[]string{"stream"}, nil),
		pendingDesc: prometheus.NewDesc(namespace+"_consumer_pending_messages",
			"Messages in the stream not yet delivered to the consumer (queue depth); the same for every worker.",
			[]string{"stream", "consumer"}, nil),
		ackPendDesc: prometheus.NewDesc(namespace+"_consumer_ack_pending_messages",
			"Messages delivered to the consumer and not yet acknowledged; the same for every worker.",
			[]string{"stream", "consumer"}, nil),
	}
}

func (c *consumerCollector) add(ci ConsumerInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.consumers = append(c.consumers, ci)
}

func (c *consumerCollector) addStream(si StreamInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streams = append(c.streams, si)
}

// Describe implements prometheus.Collector.
func (c *consumerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pendingDesc
	ch <- c.ackPendDesc
	ch <- c.pausedDesc
	ch <- c.oldest
}

// Collect implements prometheus.Collector.
func (c *consumerCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	consumers, streams := slices.Clone(c.consumers), slices.Clone(c.streams)
	c.mu.Unlock()
	for _, ci := range consumers {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		info, err := ci.Info(ctx)
		cancel()
		if err != nil || info == nil {
			c.errs.Inc()
			continue
		}
		paused := 0.0
		if info.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(c.pendingDesc, prometheus.GaugeValue, float64(info.NumPending), info.Stream, info.Name)
		ch <- prometheus.MustNewConstMetric(c.ackPendDesc, prometheus.GaugeValue, float64(info.NumAckPending), info.Stream, info.Name)
		ch <- prometheus.MustNewConstMetric(c.pausedDesc, prometheus.GaugeValue, paused, info.Stream, info.Name)
	}
	for _, si := range streams {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		info, err := si.Info(ctx)
		cancel()
		if err != nil || info == nil {
			c.errs.Inc()
			continue
		}
		age := 0.0
		if info.State.Msgs > 0 && !info.State.FirstTime.IsZero() {
			// NATS stamps messages with its clock: a worker clock behind it counts 0, not less.
			age = max(c.clock.Now().Sub(info.State.FirstTime), 0).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, info.Config.Name)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
