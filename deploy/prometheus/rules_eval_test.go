package prometheus_test

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/template"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/metrics"
	"github.com/callagent/resilience/internal/resilience"
)

// interval is the scrape and rule evaluation interval of prometheus.yml.
const interval = 15 * time.Second

// base is when the simulated timelines start.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// replica is one simulated worker: its real metrics on a real registry, with a clock that
// follows the timeline.
type replica struct {
	instance string
	reg      *prometheus.Registry
	m        *metrics.Metrics
	clock    *clock.Mock
	gone     bool // vanished: no longer scraped
}

// timeline scrapes the replicas' registries every interval, as Prometheus would (job and
// instance labels, up), into an in-memory store, then evaluates rules.yml's alerts on it with
// Prometheus's PromQL engine. (Prometheus's TSDB would bring in its configuration package and
// with it every cloud SDK of its service discovery and remote write.)
type timeline struct {
	t        *testing.T
	st       *memStore
	engine   *promql.Engine
	replicas []*replica
	now      time.Duration // the last scrape's time
	next     time.Duration // the next scrape's time
	// results caches query results: an instant query reads no sample after its time, and
	// the timeline only appends after the last scrape.
	results map[string]promql.Vector
}

func newTimeline(t *testing.T) *timeline {
	engine := promql.NewEngine(promql.EngineOpts{
		MaxSamples: 1e7, Timeout: time.Minute, LookbackDelta: 5 * time.Minute,
		NoStepSubqueryIntervalFn: func(int64) int64 { return interval.Milliseconds() },
		Parser:                   parser.NewParser(parser.Options{}),
	})
	t.Cleanup(func() { _ = engine.Close() })
	return &timeline{t: t, st: newMemStore(), engine: engine, results: map[string]promql.Vector{}}
}

// add starts a replica with the metrics the daemon sets up: a provider, an alert channel.
func (tl *timeline) add(instance string) *replica {
	mock := clock.NewMock()
	mock.Set(base.Add(tl.now))
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.WithClock(mock), metrics.WithVersion("v1.0.0"))
	if err != nil {
		tl.t.Fatal(err)
	}
	m.AddProvider("ElevenLabs", resilience.NewBulkhead(4))
	m.AddAlertChannels("email", "telegram", "slack")
	r := &replica{instance: instance, reg: reg, m: m, clock: mock}
	tl.replicas = append(tl.replicas, r)
	return r
}

// run advances the timeline to until, scraping every interval; before each scrape, each(now)
// may change the replicas' metrics.
func (tl *timeline) run(until time.Duration, each func(now time.Duration)) {
	for ; tl.next <= until; tl.next += interval {
		tl.now = tl.next
		if each != nil {
			each(tl.now)
		}
		ts := timestamp.FromTime(base.Add(tl.now))
		for _, r := range tl.replicas {
			if r.gone {
				continue
			}
			r.clock.Set(base.Add(tl.now))
			target := []string{"job", workerJob, "instance", r.instance}
			tl.st.add(labels.FromStrings(append([]string{model.MetricNameLabel, "up"}, target...)...), ts, 1)
			families, err := r.reg.Gather()
			if err != nil {
				tl.t.Fatal(err)
			}
			for _, f := range families {
				for _, s := range f.GetMetric() {
					var v float64
					switch f.GetType() {
					case dto.MetricType_COUNTER:
						v = s.GetCounter().GetValue()
					case dto.MetricType_GAUGE:
						v = s.GetGauge().GetValue()
					default:
						continue // the rules query no histogram
					}
					ls := append([]string{model.MetricNameLabel, f.GetName()}, target...)
					for _, l := range s.GetLabel() {
						ls = append(ls, l.GetName(), l.GetValue())
					}
					tl.st.add(labels.FromStrings(ls...), ts, v)
				}
			}
		}
	}
}

// query evaluates expr at at, which must not be after the last scrape.
func (tl *timeline) query(expr string, at time.Duration) promql.Vector {
	tl.t.Helper()
	if at > tl.now {
		tl.t.Fatalf("query at %s, after the last scrape at %s", at, tl.now)
	}
	key := at.String() + " " + expr
	if v, ok := tl.results[key]; ok {
		return v
	}
	q, err := tl.engine.NewInstantQuery(context.Background(), tl.st, nil, expr, base.Add(at))
	if err != nil {
		tl.t.Fatalf("%s: %v", expr, err)
	}
	defer q.Close()
	res := q.Exec(context.Background())
	if res.Err != nil {
		tl.t.Fatalf("%s: %v", expr, res.Err)
	}
	vec, err := res.Vector()
	if err != nil {
		tl.t.Fatalf("%s: %v", expr, err)
	}
	tl.results[key] = vec
	return vec
}

// alertInstance is one firing alert: its labels and its summary and description expanded.
type alertInstance struct {
	labels labels.Labels
	text   string
}

// firing evaluates rule every interval up to at, as Prometheus's rule manager does, and
// returns the instances firing at at (their condition held at every evaluation of the
// rule's for).
func (tl *timeline) firing(rule rulefmt.Rule, at time.Duration) []alertInstance {
	tl.t.Helper()
	since := map[string]time.Duration{}
	var last promql.Vector
	// Only the last for of evaluations decides: the condition held at each of them or not.
	for ts := max(0, at-time.Duration(rule.For)); ts <= at; ts += interval {
		last = tl.query(rule.Expr, ts)
		seen := map[string]bool{}
		for _, s := range last {
			k := s.Metric.String()
			seen[k] = true
			if _, ok := since[k]; !ok {
				since[k] = ts
			}
		}
		for k := range since {
			if !seen[k] {
				delete(since, k)
			}
		}
	}
	var out []alertInstance
	for _, s := range last {
		if at-since[s.Metric.String()] >= time.Duration(rule.For) {
			out = append(out, alertInstance{labels: s.Metric, text: tl.expand(rule, s, at)})
		}
	}
	return out
}

var labelRef = regexp.MustCompile(`\$labels\.(\w+)`)

// expand expands rule's summary and description for s as Prometheus does, failing the test
// on a template error or a label the alert does not carry.
func (tl *timeline) expand(rule rulefmt.Rule, s promql.Sample, at time.Duration) string {
	tl.t.Helper()
	defs := "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
	data := template.AlertTemplateData(s.Metric.Map(), nil, "", s)
	var texts []string
	for _, a := range []string{"summary", "description"} {
		text := rule.Annotations[a]
		for _, m := range labelRef.FindAllStringSubmatch(text, -1) {
			if s.Metric.Get(m[1]) == "" {
				tl.t.Errorf("%s: the %s uses $labels.%s, which the alert %s does not carry", rule.Alert, a, m[1], s.Metric)
			}
		}
		got, err := template.NewTemplateExpander(context.Background(), defs+text, "__alert_"+rule.Alert, data,
			model.Time(timestamp.FromTime(base.Add(at))), nil, nil, nil).Expand()
		if err != nil {
			tl.t.Errorf("%s: expand the %s: %v", rule.Alert, a, err)
		}
		texts = append(texts, got)
	}
	return strings.Join(texts, " | ")
}

// check asserts which alerts fire at at: want maps an alert to the label values of its
// firing instances, as "label=value" (one label each, the one that tells them apart), or to
// {""} for one instance not checked further; every other alert must not fire.
func (tl *timeline) check(rules map[string]rulefmt.Rule, at time.Duration, want map[string][]string) {
	tl.t.Helper()
	names := slices.Sorted(maps.Keys(rules))
	for _, name := range names {
		w := slices.Clone(want[name])
		sort.Strings(w)
		var got []string
		for _, a := range tl.firing(rules[name], at) {
			tl.t.Logf("at %s, %s%s: %s", at, name, a.labels, a.text)
			id := ""
			if len(w) > 0 && w[0] != "" {
				l, _, _ := strings.Cut(w[0], "=")
				id = l + "=" + a.labels.Get(l)
			}
			got = append(got, id)
		}
		sort.Strings(got)
		if !slices.Equal(got, w) {
			tl.t.Errorf("at %s, %s fires %q, want %q", at, name, got, w)
		}
	}
}

// alertRules loads rules.yml's alerts by name.
func alertRules(t *testing.T) map[string]rulefmt.Rule {
	out := map[string]rulefmt.Rule{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out[r.Alert] = r
			}
		}
	}
	return out
}

// TestHealthyFleetFiresNothing: two replicas working normally for an hour raise no alert.
func TestHealthyFleetFiresNothing(t *testing.T) {
	rules := alertRules(t)
	tl := newTimeline(t)
	a, b := tl.add("w1:8397"), tl.add("w2:8397")
	cons := &consumer{pending: 3}
	a.m.ObserveConsumer(cons)
	b.m.ObserveConsumer(cons)
	tl.run(time.Hour, func(now time.Duration) {
		for _, r := range []*replica{a, b} {
			r.m.ContactOutcome(metrics.OutcomeCompleted)
			r.m.AlertDelivered("email", metrics.AlertSent)
		}
	})
	tl.check(rules, time.Hour, nil)
}

// TestFirstDeadLetterFires: the first dead letter ever fires CallAgentDeadLetters at the
// next evaluation, because its counter was at 0 before (a series born at 1 has nothing for
// increase() to compare with).
func TestFirstDeadLetterFires(t *testing.T) {
	rules := alertRules(t)
	tl := newTimeline(t)
	w := tl.add("w1:8397")
	tl.run(10*time.Minute, nil)
	tl.check(rules, tl.now, nil)
	w.m.DeadLettered("quota_exceeded")
	// What the preset buys: a counter that appears only with its first dead letter (as one
	// without it would) is not seen by increase(), however many scrapes follow.
	born := labels.FromStrings(model.MetricNameLabel, "callagent_dead_letters_total", "job", workerJob,
		"instance", w.instance, "reason", "born_at_one")
	tl.run(15*time.Minute, func(now time.Duration) { tl.st.add(born, timestamp.FromTime(base.Add(now)), 1) })
	tl.check(rules, 10*time.Minute+interval, map[string][]string{"CallAgentDeadLetters": {"reason=quota_exceeded"}})
	tl.check(rules, 15*time.Minute, map[string][]string{"CallAgentDeadLetters": {"reason=quota_exceeded"}})
}

// TestReplicaVanishes: a replica that leaves service discovery fires CallAgentWorkerVanished
// (it never reports up == 0); when every replica is gone, CallAgentNoWorkers fires too.
func TestReplicaVanishes(t *testing.T) {
	rules := alertRules(t)
	tl := newTimeline(t)
	tl.add("w1:8397")
	w2 := tl.add("w2:8397")
	tl.run(30*time.Minute, nil)
	tl.check(rules, tl.now, nil)
	w2.gone = true
	tl.run(39*time.Minute, nil) // stale after 5m, then 5m of for
	tl.check(rules, tl.now, nil)
	tl.run(41*time.Minute, nil)
	tl.check(rules, tl.now, map[string][]string{"CallAgentWorkerVanished": {""}})

	for _, r := range tl.replicas {
		r.gone = true
	}
	tl.run(49*time.Minute, nil)
	tl.check(rules, tl.now, map[string][]string{"CallAgentNoWorkers": {""}})
}

// TestAlertDeliveriesFail: a channel that only fails fires CallAgentAlertDeliveryFailing, a
// refused notification CallAgentAlertsDropped, an event that never reached the stream
// CallAgentAlertEventsLost; a channel that sends does not fire.
func TestAlertDeliveriesFail(t *testing.T) {
	rules := alertRules(t)
	tl := newTimeline(t)
	w := tl.add("w1:8397")
	em := &emitter{}
	w.m.ObserveAlertEmitter(em)
	tl.run(5*time.Minute, nil)
	tl.run(16*time.Minute, func(now time.Duration) {
		w.m.AlertDelivered("email", alert.ResultRetried)
		w.m.AlertDelivered("telegram", alert.ResultSent)
		w.m.AlertDelivered("telegram", alert.ResultRetried) // fails now and then, still sends
		if now == 10*time.Minute {
			w.m.AlertDelivered("slack", alert.ResultDropped)
			em.failed.Add(1)
		}
	})
	at := tl.now
	tl.check(rules, at, map[string][]string{
		"CallAgentAlertDeliveryFailing": {"channel=email"},
		"CallAgentAlertsDropped":        {"channel=slack"},
		"CallAgentAlertEventsLost":      {"instance=w1:8397"},
	})
}

// TestPausedAndOldestPending: a paused consumer fires CallAgentConsumerPaused after 30
// minutes and silences the queue alerts; once resumed, the contact waiting since the start
// fires CallAgentOldestPendingTooOld, then CallAgentQueueStuck.
func TestPausedAndOldestPending(t *testing.T) {
	rules := alertRules(t)
	tl := newTimeline(t)
	w := tl.add("w1:8397")
	cons := &consumer{pending: 5}
	cons.paused.Store(true)
	w.m.ObserveConsumer(cons)
	w.m.ObserveStream(stream{first: base})
	tl.run(29*time.Minute, nil)
	tl.check(rules, tl.now, nil)
	tl.run(31*time.Minute, nil)
	tl.check(rules, tl.now, map[string][]string{"CallAgentConsumerPaused": {"consumer=workers"}})
	cons.paused.Store(false)
	tl.run(37*time.Minute, nil)
	tl.check(rules, tl.now, map[string][]string{"CallAgentOldestPendingTooOld": {""}})
	tl.run(43*time.Minute, nil)
	tl.check(rules, tl.now, map[string][]string{
		"CallAgentOldestPendingTooOld": {""},
		"CallAgentQueueStuck":          {""},
	})
}

// TestBreakerOpenAndNATSUnreachable: a breaker open for 5 minutes, and consumer reads failing
// at every scrape, each fire their alert.
func TestBreakerOpenAndNATSUnreachable(t *testing.T) {
	rules := alertRules(t)
	tl := newTimeline(t)
	w := tl.add("w1:8397")
	cons := &consumer{pending: 1}
	w.m.ObserveConsumer(cons)
	tl.run(5*time.Minute, nil)
	w.m.BreakerStateChanged("ElevenLabs", resilience.StateClosed, resilience.StateOpen, base.Add(tl.now))
	cons.down.Store(true)
	tl.run(11*time.Minute, nil)
	tl.check(rules, tl.now, map[string][]string{
		"CallAgentBreakerOpen":     {"provider=ElevenLabs"},
		"CallAgentNATSUnreachable": {"instance=w1:8397"},
	})
}

// consumer stands in for the contacts consumer's state as JetStream reports it (the real
// reads are tested in internal/metrics).
type consumer struct {
	pending uint64
	paused  atomic.Bool
	down    atomic.Bool
}

func (c *consumer) Info(context.Context) (*jetstream.ConsumerInfo, error) {
	if c.down.Load() {
		return nil, errors.New("nats: timeout")
	}
	return &jetstream.ConsumerInfo{Stream: "CONTACTS", Name: "workers", NumPending: c.pending, Paused: c.paused.Load()}, nil
}

// stream stands in for the contacts stream whose oldest message was published at first.
type stream struct{ first time.Time }

func (s stream) Info(context.Context, ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	return &jetstream.StreamInfo{Config: jetstream.StreamConfig{Name: "CONTACTS"},
		State: jetstream.StreamState{Msgs: 1, FirstSeq: 1, FirstTime: s.first}}, nil
}

// emitter stands in for an alert emitter whose events failed to publish.
type emitter struct{ failed atomic.Int64 }

func (e *emitter) Stats() alert.EmitterStats { return alert.EmitterStats{Failed: e.failed.Load()} }

// memStore is an in-memory series store the PromQL engine can query.
type memStore struct {
	series map[string]*memSeries   // by labels.String()
	byName map[string][]*memSeries // by metric name, in order of appearance
}

type memSeries struct {
	labels  labels.Labels
	samples []chunks.Sample // in time order
}

func newMemStore() *memStore {
	return &memStore{series: map[string]*memSeries{}, byName: map[string][]*memSeries{}}
}

func (m *memStore) add(ls labels.Labels, t int64, v float64) {
	k := ls.String()
	s, ok := m.series[k]
	if !ok {
		s = &memSeries{labels: ls}
		m.series[k] = s
		name := ls.Get(model.MetricNameLabel)
		m.byName[name] = append(m.byName[name], s)
	}
	s.samples = append(s.samples, fpoint{t: t, f: v})
}

// Querier implements storage.Queryable.
func (m *memStore) Querier(mint, maxt int64) (storage.Querier, error) {
	return &storage.MockQuerier{SelectMockFunction: func(_ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
		candidates := slices.Collect(maps.Values(m.series))
		for _, matcher := range ms {
			if matcher.Name == model.MetricNameLabel && matcher.Type == labels.MatchEqual {
				candidates = m.byName[matcher.Value]
			}
		}
		var out []storage.Series
		for _, s := range candidates {
			if !matchAll(ms, s.labels) {
				continue
			}
			from, _ := slices.BinarySearchFunc(s.samples, mint, func(p chunks.Sample, t int64) int { return cmp.Compare(p.T(), t) })
			to, found := slices.BinarySearchFunc(s.samples, maxt, func(p chunks.Sample, t int64) int { return cmp.Compare(p.T(), t) })
			if found {
				to++
			}
			out = append(out, storage.NewListSeries(s.labels, s.samples[from:to]))
		}
		slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
		return &seriesSet{series: out, i: -1}
	}}, nil
}

func matchAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

type seriesSet struct {
	series []storage.Series
	i      int
}

func (s *seriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *seriesSet) At() storage.Series                { return s.series[s.i] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }

// fpoint is a float sample.
type fpoint struct {
	t int64
	f float64
}

func (p fpoint) T() int64                      { return p.t }
func (p fpoint) ST() int64                     { return 0 }
func (p fpoint) F() float64                    { return p.f }
func (p fpoint) H() *histogram.Histogram       { return nil }
func (p fpoint) FH() *histogram.FloatHistogram { return nil }
func (p fpoint) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (p fpoint) Copy() chunks.Sample           { return p }
