package metrics_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/metrics"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/resilience"
	"github.com/callagent/resilience/internal/testwait"
)

// gathered gathers reg into a map by family name.
func gathered(t *testing.T, reg prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range families {
		out[f.GetName()] = f
	}
	return out
}

// labelSets lists the label sets of family name as "k=v,k=v" strings, sorted.
func labelSets(families map[string]*dto.MetricFamily, name string) []string {
	var out []string
	for _, m := range families[name].GetMetric() {
		var kv []string
		for _, l := range m.GetLabel() {
			kv = append(kv, l.GetName()+"="+l.GetValue())
		}
		out = append(out, strings.Join(kv, ","))
	}
	slices.Sort(out)
	return out
}

// TestCountersStartAtZero: before anything happens, every counter has a series at 0 for each
// label value known in advance, so increase() over the first burst sees it (a series born
// at 1 has no earlier sample to increase from).
func TestCountersStartAtZero(t *testing.T) {
	m, reg := newMetrics(t)
	m.AddProvider("LLM", resilience.NewBulkhead(2))
	m.AddProvider("ElevenLabs", resilience.NewBulkhead(2))
	m.AddStep(call.StepLLM, "LLM")
	m.AddStep(call.StepTTS, "ElevenLabs")
	m.AddAlertChannels("email", "telegram")
	families := gathered(t, reg)

	// Every sample of every callagent_ counter (and histogram count) is 0.
	for name, f := range families {
		if !strings.HasPrefix(name, "callagent_") {
			continue
		}
		for _, s := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				if v := s.GetCounter().GetValue(); v != 0 && name != "callagent_breaker_open_seconds_total" {
					t.Errorf("%s%v = %g before anything happened", name, s.GetLabel(), v)
				}
			case dto.MetricType_HISTOGRAM:
				if n := s.GetHistogram().GetSampleCount(); n != 0 {
					t.Errorf("%s%v counted %d before anything happened", name, s.GetLabel(), n)
				}
			}
		}
	}

	want := func(name string, sets []string) {
		t.Helper()
		slices.Sort(sets)
		if got := labelSets(families, name); !slices.Equal(got, sets) {
			t.Errorf("%s series at start:\n got %v\nwant %v", name, got, sets)
		}
	}
	var outcomes []string
	for _, o := range metrics.Outcomes {
		outcomes = append(outcomes, "outcome="+string(o))
	}
	want("callagent_contacts_processed_total", outcomes)

	var reasons []string
	for _, r := range metrics.DeadLetterReasons() {
		reasons = append(reasons, "reason="+r)
	}
	want("callagent_dead_letters_total", reasons)
	for _, r := range []string{"max_deliveries", "circuit_open", "internal", "invalid_payload", "quota_exceeded",
		"authentication", "configuration", "service_unavailable", "unknown"} {
		if !slices.Contains(metrics.DeadLetterReasons(), r) {
			t.Errorf("dead-letter reason %s is not made at start", r)
		}
	}

	var attempts, retries []string
	for _, p := range []string{"ElevenLabs", "LLM"} {
		for _, r := range metrics.AttemptResults() {
			attempts = append(attempts, "provider="+p+",result="+r)
		}
		for _, k := range []fault.Kind{fault.KindTimeout, fault.KindNetwork, fault.KindUnavailable,
			fault.KindRateLimited, fault.KindConcurrencyLimit, fault.KindBadResponse} {
			retries = append(retries, "category="+k.String()+",provider="+p)
		}
	}
	want("callagent_provider_attempts_total", attempts)
	want("callagent_provider_retries_total", retries)
	for _, err := range []error{nil, context.Canceled, resilience.ErrBreakerOpen,
		fault.Classify(fault.Facts{Provider: "LLM", Status: 503}), fault.Classify(fault.Facts{Provider: "LLM", Status: 401})} {
		if c := metrics.Category(err); !slices.Contains(metrics.AttemptResults(), c) {
			t.Errorf("Category(%v) = %s, not in AttemptResults", err, c)
		}
	}

	want("callagent_step_duration_seconds", []string{
		"provider=LLM,result=error,step=llm", "provider=LLM,result=ok,step=llm",
		"provider=ElevenLabs,result=error,step=tts", "provider=ElevenLabs,result=ok,step=tts"})

	var alerts []string
	for _, c := range []string{"email", "telegram"} {
		for _, r := range metrics.AlertResults {
			alerts = append(alerts, "channel="+c+",result="+r)
		}
	}
	want("callagent_alerts_total", alerts)
	want("callagent_alert_events_total", []string{"result=dropped", "result=failed", "result=published"})
	want("callagent_breaker_transitions_total", []string{
		"from=closed,provider=ElevenLabs,to=open", "from=half_open,provider=ElevenLabs,to=closed",
		"from=half_open,provider=ElevenLabs,to=open", "from=open,provider=ElevenLabs,to=closed",
		"from=open,provider=ElevenLabs,to=half_open",
		"from=closed,provider=LLM,to=open", "from=half_open,provider=LLM,to=closed",
		"from=half_open,provider=LLM,to=open", "from=open,provider=LLM,to=closed",
		"from=open,provider=LLM,to=half_open"})
	want("callagent_sheets_rows_total", []string{"result=appended", "result=dropped_error", "result=dropped_full"})
	want("callagent_consumer_info_errors_total", []string{""})

	// A preset series is the one the event increments, not a second one.
	m.DeadLettered("max_deliveries")
	m.ObserveAttempt("LLM", fault.Classify(fault.Facts{Provider: "LLM", Status: 503}))
	m.ObserveRetry("ElevenLabs", fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 429}))
	m.AlertDelivered("email", alert.ResultRetried)
	m.ObserveStep("LLM", call.StepLLM, time.Second, nil)
	families = gathered(t, reg)
	want("callagent_dead_letters_total", reasons)
	want("callagent_provider_attempts_total", attempts)
	want("callagent_provider_retries_total", retries)
	want("callagent_alerts_total", alerts)
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"callagent_dead_letters_total", map[string]string{"reason": "max_deliveries"}},
		{"callagent_provider_attempts_total", map[string]string{"provider": "LLM", "result": "service_unavailable"}},
		{"callagent_provider_retries_total", map[string]string{"provider": "ElevenLabs", "category": "rate_limited"}},
		{"callagent_alerts_total", map[string]string{"channel": "email", "result": "retried"}},
	} {
		if v := value(t, families, c.name, c.labels); v != 1 {
			t.Errorf("%s%v = %g, want 1", c.name, c.labels, v)
		}
	}
}

// TestAlertResultsAreTheDispatchers: the results made at zero are those the alert
// dispatcher reports, so no series it increments is born at 1.
func TestAlertResultsAreTheDispatchers(t *testing.T) {
	want := []string{alert.ResultSent, alert.ResultRetried, alert.ResultDeferred, alert.ResultDropped, alert.ResultFiltered}
	if !slices.Equal(metrics.AlertResults, want) {
		t.Fatalf("AlertResults = %v, the dispatcher reports %v", metrics.AlertResults, want)
	}
}

func TestBuildInfo(t *testing.T) {
	for _, c := range []struct {
		opt     []metrics.Option
		version string // "" for any non-empty
	}{
		{[]metrics.Option{metrics.WithVersion("v1.4.2-3-gabcdef0")}, "v1.4.2-3-gabcdef0"},
		{nil, ""},
		{[]metrics.Option{metrics.WithVersion("")}, ""},
	} {
		_, reg := newMetrics(t, c.opt...)
		f := gathered(t, reg)["callagent_build_info"]
		if f.GetType() != dto.MetricType_GAUGE || len(f.GetMetric()) != 1 {
			t.Fatalf("callagent_build_info: %v", f)
		}
		s := f.GetMetric()[0]
		labels := map[string]string{}
		for _, l := range s.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if s.GetGauge().GetValue() != 1 {
			t.Errorf("build_info = %g, want 1", s.GetGauge().GetValue())
		}
		if labels["goversion"] != runtime.Version() {
			t.Errorf("goversion = %q, want %q", labels["goversion"], runtime.Version())
		}
		if labels["revision"] == "" {
			t.Error("revision is empty; want the VCS revision or unknown")
		}
		if c.version != "" && labels["version"] != c.version || labels["version"] == "" {
			t.Errorf("version = %q, want %q", labels["version"], c.version)
		}
	}
}

// TestConsumerPausedAndOldestPending reads a real consumer's pause and a real WorkQueue
// stream's oldest message at scrape: paused follows JetStream's consumer pause, and the age
// is that of the oldest contact not acked yet, 0 once the stream is empty.
func TestConsumerPausedAndOldestPending(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CONTACTS", Subjects: []string{"contacts.queue"},
		Retention: jetstream.WorkQueuePolicy})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "CONTACTS", jetstream.ConsumerConfig{Durable: "workers",
		AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	mock := clock.NewMock()
	m, reg := newMetrics(t, metrics.WithClock(mock), metrics.WithConsumerTimeout(300*time.Millisecond))
	m.ObserveConsumer(cons)
	m.ObserveStream(stream)
	m.ObserveStream(nil)
	labels := map[string]string{"stream": "CONTACTS", "consumer": "workers"}
	age := func() float64 {
		return gatherValue(t, reg, "callagent_oldest_pending_age_seconds", map[string]string{"stream": "CONTACTS"})
	}

	if v := gatherValue(t, reg, "callagent_consumer_paused", labels); v != 0 {
		t.Errorf("paused = %g before any pause, want 0", v)
	}
	if v := age(); v != 0 {
		t.Errorf("oldest pending age = %g with an empty stream, want 0", v)
	}

	for i := range 3 {
		if _, err := js.Publish(ctx, "contacts.queue", fmt.Appendf(nil, `{"id":"c-%d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mock.Set(info.State.FirstTime.Add(90*time.Second + 500*time.Millisecond))
	if v := age(); v != 90.5 {
		t.Errorf("oldest pending age = %g, want 90.5 (the first contact's)", v)
	}
	mock.Set(info.State.FirstTime.Add(-time.Minute)) // the worker's clock behind NATS's
	if v := age(); v != 0 {
		t.Errorf("oldest pending age = %g with the worker's clock behind, want 0", v)
	}

	if _, err := js.PauseConsumer(ctx, "CONTACTS", "workers", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v := gatherValue(t, reg, "callagent_consumer_paused", labels); v != 1 {
		t.Errorf("paused = %g while paused, want 1", v)
	}
	if _, err := js.ResumeConsumer(ctx, "CONTACTS", "workers"); err != nil {
		t.Fatal(err)
	}
	if v := gatherValue(t, reg, "callagent_consumer_paused", labels); v != 0 {
		t.Errorf("paused = %g after resume, want 0", v)
	}

	// Acking every contact empties the WorkQueue stream: nothing pending, age 0.
	batch, err := cons.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for msg := range batch.Messages() {
		if err := msg.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mock.Set(info.State.FirstTime.Add(time.Hour))
	testwait.True(t, 10*time.Second, "age 0 once every contact is acked", func() bool { return age() == 0 })

	// With NATS gone the scrape succeeds without the samples, counting both failed reads.
	srv.Shutdown()
	for _, name := range []string{"callagent_consumer_paused", "callagent_oldest_pending_age_seconds"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 0 {
			t.Errorf("%s with NATS down: %d samples, %v; want none", name, n, err)
		}
	}
	if v := gatherValue(t, reg, "callagent_consumer_info_errors_total", nil); v < 2 {
		t.Errorf("read errors = %g with NATS down, want at least 2 (consumer and stream)", v)
	}
}

// TestAlertEventsFromRealEmitters counts what became of alert events raised through real
// emitters on a real JetStream server: published to the alerts stream, dropped when invalid,
// failed when no stream takes their subject.
func TestAlertEventsFromRealEmitters(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := alert.Ensure(ctx, js, alert.Topology{}); err != nil {
		t.Fatal(err)
	}
	m, reg := newMetrics(t)
	ok := alert.NewEmitter(js, alert.EmitterOptions{Source: "worker-1"})
	lost := alert.NewEmitter(js, alert.EmitterOptions{Source: "worker-1", PublishTimeout: 200 * time.Millisecond,
		Topology: alert.Topology{Stream: "NOWHERE", SubjectPrefix: "nowhere"}})
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, e := range []*alert.Emitter{ok, lost} {
		go func() { _ = e.Run(runCtx); done <- struct{}{} }()
	}
	t.Cleanup(func() { stop(); <-done; <-done })

	count := func(result string) float64 {
		return gatherValue(t, reg, "callagent_alert_events_total", map[string]string{"result": result})
	}
	if n, err := testutil.GatherAndCount(reg, "callagent_alert_events_total"); err != nil || n != 3 {
		t.Fatalf("alert_events_total before any emitter: %d series, %v; want 3 at 0", n, err)
	}
	m.ObserveAlertEmitter(ok)
	m.ObserveAlertEmitter(lost)
	m.ObserveAlertEmitter(nil)

	for range 2 {
		if err := ok.Emit(alert.CallFailed("ElevenLabs", "c-1", "service_unavailable", "503")); err != nil {
			t.Fatal(err)
		}
	}
	if err := ok.Emit(alert.Event{}); err == nil {
		t.Fatal("an event without a kind was accepted")
	}
	if err := lost.Emit(alert.CallFailed("ElevenLabs", "c-2", "service_unavailable", "503")); err != nil {
		t.Fatal(err)
	}
	testwait.True(t, 20*time.Second, "2 published and 1 failed", func() bool {
		return count(metrics.AlertEventPublished) == 2 && count(metrics.AlertEventFailed) == 1
	})
	if v := count(metrics.AlertEventDropped); v != 1 {
		t.Errorf("dropped = %g, want 1", v)
	}
}

func TestNewMethodsOnNilMetrics(t *testing.T) {
	var m *metrics.Metrics
	m.AddStep(call.StepLLM, "LLM")
	m.AddAlertChannels("email")
	m.ObserveAlertEmitter(nil)
	m.ObserveStream(nil)
	m.ObserveSpend(call.Spend{Provider: "LLM", PromptTokens: 1})
}
