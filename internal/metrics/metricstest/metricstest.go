// Package metricstest lists what the worker's metrics registry exports, for tests of the
// files that query it (Prometheus rules, the Grafana dashboard).
package metricstest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/metrics"
	"github.com/callagent/resilience/internal/resilience"
)

// Series are the series names a registry exports: a histogram's name_bucket, name_sum and
// name_count, a summary's name, name_sum and name_count, and every other family's name.
type Series map[string]Family

// Family is what one series name carries.
type Family struct {
	// Type is the type of the family the series belongs to.
	Type dto.MetricType
	// Labels maps each label name of the series to the values it was seen with ("le" of a
	// histogram's buckets, "quantile" of a summary included).
	Labels map[string]map[string]bool
}

// Exported builds the worker's metrics as the daemon does (metrics.NewRegistry and
// metrics.New), has every collector export something (a provider with a step, a bulkhead and
// breaker transitions, a consumer, an alert emitter, an alert channel, spend…), gathers the
// registry and returns every series name it exports.
func Exported(t testing.TB) Series {
	t.Helper()
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg, metrics.WithVersion("v0.0.0-test"))
	if err != nil {
		t.Fatalf("metrics.New: %v", err)
	}
	const p = "ElevenLabs"
	m.AddProvider(p, resilience.NewBulkhead(1))
	m.AddStep(call.StepTTS, p)
	m.AddAlertChannels("email")
	m.ObserveConsumer(consumer{})
	m.ObserveStream(stream{})
	m.ObserveAlertEmitter(emitter{})
	m.ContactOutcome(metrics.OutcomeCompleted)
	m.TrackInFlight()()
	m.ObserveAttempt(p, nil)
	m.ObserveRetry(p, errors.New("x"))
	m.ObserveStep(p, call.StepTTS, time.Second, nil)
	m.ObserveSpend(call.Spend{Provider: "LLM", Model: "gpt-4o-mini", PromptTokens: 1, CompletionTokens: 1})
	m.ObserveSpend(call.Spend{Provider: p, Model: "eleven_flash_v2_5", Characters: 1})
	m.DeadLettered("max_deliveries")
	m.AlertDelivered("email", metrics.AlertSent)
	m.SheetsRows(metrics.SheetsAppended, 1)
	now := time.Now()
	m.BreakerStateChanged(p, resilience.StateClosed, resilience.StateOpen, now)
	m.BreakerStateChanged(p, resilience.StateOpen, resilience.StateClosed, now.Add(time.Second))

	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := Series{}
	add := func(name string, typ dto.MetricType, labels []*dto.LabelPair, extra ...string) {
		f, ok := out[name]
		if !ok {
			f = Family{Type: typ, Labels: map[string]map[string]bool{}}
			out[name] = f
		}
		seen := func(k, v string) {
			if f.Labels[k] == nil {
				f.Labels[k] = map[string]bool{}
			}
			f.Labels[k][v] = true
		}
		for _, l := range labels {
			seen(l.GetName(), l.GetValue())
		}
		for i := 0; i+1 < len(extra); i += 2 {
			seen(extra[i], extra[i+1])
		}
	}
	for _, f := range families {
		name, typ := f.GetName(), f.GetType()
		for _, m := range f.GetMetric() {
			switch typ {
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				for _, b := range m.GetHistogram().GetBucket() {
					add(name+"_bucket", typ, m.GetLabel(), "le", fmt.Sprint(b.GetUpperBound()))
				}
				add(name+"_bucket", typ, m.GetLabel(), "le", "+Inf")
				add(name+"_sum", typ, m.GetLabel())
				add(name+"_count", typ, m.GetLabel())
			case dto.MetricType_SUMMARY:
				for _, q := range m.GetSummary().GetQuantile() {
					add(name, typ, m.GetLabel(), "quantile", fmt.Sprint(q.GetQuantile()))
				}
				add(name+"_sum", typ, m.GetLabel())
				add(name+"_count", typ, m.GetLabel())
			default:
				add(name, typ, m.GetLabel())
			}
		}
	}
	return out
}

// consumer is a consumer whose state is known, so the consumer gauges are exported.
type consumer struct{}

func (consumer) Info(context.Context) (*jetstream.ConsumerInfo, error) {
	return &jetstream.ConsumerInfo{Stream: "CONTACTS", Name: "workers", NumPending: 1}, nil
}

// stream is a stream whose state is known, so the oldest pending age is exported.
type stream struct{}

func (stream) Info(context.Context, ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	return &jetstream.StreamInfo{Config: jetstream.StreamConfig{Name: "CONTACTS"},
		State: jetstream.StreamState{Msgs: 1, FirstTime: time.Now().Add(-time.Minute)}}, nil
}

// emitter is an alert emitter that published one event.
type emitter struct{}

func (emitter) Stats() alert.EmitterStats { return alert.EmitterStats{Emitted: 1, Published: 1} }
