package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/natstest"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/metrics"
	"github.com/callagent/resilience/internal/provider/sim"
	"github.com/callagent/resilience/internal/resilience"
	"github.com/callagent/resilience/internal/testwait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.IgnoreLibraryLeaks()...) }

// scrape GETs url (a /metrics endpoint) and parses the text exposition.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: status %d: %s", url, resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the scrape of %s: %v", url, err)
	}
	return families
}

// sample returns the metric of family name whose labels include want, or nil.
func sample(families map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := families[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// value returns the counter or gauge value of one sample, failing the test when it is absent.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	m := sample(families, name, labels)
	if m == nil {
		t.Fatalf("no sample %s%v in the scrape", name, labels)
	}
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, labels)
	return 0
}

func newMetrics(t *testing.T, opts ...metrics.Option) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, reg
}

// TestScriptedOutageScrapedOverHTTP plays the seed's scenario with the simulated ElevenLabs
// (503 for a minute), the real Guard and Retrier, and a mock clock for the breaker, then
// scrapes /metrics over HTTP: the breaker opened once, re-opened once after a failed
// half-open call, recovered once after 60s (MTTR), spent 60s OPEN; retries are counted by
// category and dead letters by reason.
func TestScriptedOutageScrapedOverHTTP(t *testing.T) {
	mock := clock.NewMock()
	m, reg := newMetrics(t, metrics.WithClock(mock))
	tts := resilience.NewGuard(sim.Provider, resilience.GuardOptions{Clock: mock, Listener: m})
	llm := resilience.NewGuard("LLM", resilience.GuardOptions{Clock: mock, Listener: m})
	m.AddProvider(tts.Provider(), tts.Bulkhead())
	m.AddProvider(llm.Provider(), llm.Bulkhead())
	retrier := resilience.NewRetrier(resilience.RetryPolicy{InitialDelay: time.Microsecond}, nil, nil)
	simTTS := sim.NewTTS(sim.Options{Scenario: sim.TTS503, Outage: time.Minute, Now: mock.Now})
	c := contact.Contact{ID: "c-1", Name: "Contact 1", Phone: "+14155550100"}

	ctx := context.Background()
	synth := func(ctx context.Context) error {
		_, err := simTTS.Synthesize(ctx, c, "Hello")
		return err
	}
	step := func(g *resilience.Guard, op func(context.Context) error) error {
		start := mock.Now()
		err := retrier.Run(ctx, nil, g, m.InstrumentAttempts(g.Provider(), op))
		m.ObserveStep(g.Provider(), "tts", mock.Now().Sub(start), err)
		return err
	}

	// Contact 1: three 503s, the third opens the breaker; the contact goes back to the queue.
	var exhausted *resilience.RetriesExhaustedError
	if err := step(tts, synth); !errors.As(err, &exhausted) {
		t.Fatalf("contact 1: %v, want retries exhausted", err)
	}
	m.ContactOutcome(metrics.OutcomeRetried)
	// Contact 2: the breaker refuses at once; the contact is held.
	if err := step(tts, synth); !errors.Is(err, resilience.ErrBreakerOpen) {
		t.Fatalf("contact 2: %v, want breaker open", err)
	}
	m.ContactOutcome(metrics.OutcomeHeld)
	// 30s later the breaker is half-open; the outage lasts 60s, so the probe fails: OPEN again.
	mock.Add(30 * time.Second)
	if err := tts.Do(ctx, m.InstrumentAttempts(tts.Provider(), synth)); fault.KindOf(err) != fault.KindUnavailable {
		t.Fatalf("half-open probe at 30s: %v, want 503", err)
	}
	// At 60s the outage is over: two successes close the breaker.
	mock.Add(30 * time.Second)
	for i := range 2 {
		if err := tts.Do(ctx, m.InstrumentAttempts(tts.Provider(), synth)); err != nil {
			t.Fatalf("half-open call %d at 60s: %v", i+1, err)
		}
	}
	m.ContactOutcome(metrics.OutcomeCompleted)
	// A permanent LLM error (402) dead-letters a contact; another one ran out of deliveries.
	quota := func(context.Context) error { return fault.Classify(fault.Facts{Provider: "LLM", Status: 402}) }
	err := step(llm, quota)
	m.DeadLettered(fault.KindOf(err).String())
	m.DeadLettered("max_deliveries")
	m.ContactOutcome(metrics.OutcomeDeadLettered)
	m.ContactOutcome(metrics.OutcomeDeadLettered)

	testwait.True(t, 5*time.Second, "the listener to see the breaker close", func() bool {
		return gatherValue(t, reg, "callagent_breaker_transitions_total",
			map[string]string{"provider": sim.Provider, "from": "half_open", "to": "closed"}) == 1
	})

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	got := scrape(t, srv.URL+"/metrics")

	el := map[string]string{"provider": sim.Provider}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"callagent_breaker_state", el, 0},
		{"callagent_breaker_transitions_total", with(el, "from", "closed", "to", "open"), 1},
		{"callagent_breaker_transitions_total", with(el, "from", "open", "to", "half_open"), 2},
		{"callagent_breaker_transitions_total", with(el, "from", "half_open", "to", "open"), 1},
		{"callagent_breaker_transitions_total", with(el, "from", "half_open", "to", "closed"), 1},
		{"callagent_breaker_open_seconds_total", el, 60},
		{"callagent_provider_attempts_total", with(el, "result", "service_unavailable"), 4},
		{"callagent_provider_attempts_total", with(el, "result", "ok"), 2},
		{"callagent_provider_retries_total", with(el, "category", "service_unavailable"), 2},
		{"callagent_provider_attempts_total", map[string]string{"provider": "LLM", "result": "quota_exceeded"}, 1},
		{"callagent_dead_letters_total", map[string]string{"reason": "quota_exceeded"}, 1},
		{"callagent_dead_letters_total", map[string]string{"reason": "max_deliveries"}, 1},
		{"callagent_contacts_processed_total", map[string]string{"outcome": "retried"}, 1},
		{"callagent_contacts_processed_total", map[string]string{"outcome": "held"}, 1},
		{"callagent_contacts_processed_total", map[string]string{"outcome": "completed"}, 1},
		{"callagent_contacts_processed_total", map[string]string{"outcome": "dead_lettered"}, 2},
		{"callagent_contacts_processed_total", map[string]string{"outcome": "released"}, 0},
		{"callagent_bulkhead_limit", el, resilience.DefaultMaxConcurrency},
		{"callagent_bulkhead_in_use", el, 0},
	}
	for _, c := range checks {
		if v := value(t, got, c.name, c.labels); v != c.want {
			t.Errorf("%s%v = %g, want %g", c.name, c.labels, v, c.want)
		}
	}
	for _, m := range got["callagent_provider_retries_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "provider" && l.GetValue() == "LLM" && m.GetCounter().GetValue() != 0 {
				t.Errorf("a permanent error was counted as a retry: %v", m)
			}
		}
	}

	mttr := sample(got, "callagent_breaker_recovery_seconds", el)
	if mttr == nil || mttr.GetHistogram().GetSampleCount() != 1 || mttr.GetHistogram().GetSampleSum() != 60 {
		t.Errorf("MTTR histogram = %v, want one observation of 60s", mttr)
	}
	steps := sample(got, "callagent_step_duration_seconds", with(el, "step", "tts", "result", "error"))
	if steps == nil || steps.GetHistogram().GetSampleCount() != 2 {
		t.Errorf("failed tts steps = %v, want 2", steps)
	}
}

func with(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestOpenSecondsCountCurrentPeriodAndNeverDecrease(t *testing.T) {
	mock := clock.NewMock()
	m, reg := newMetrics(t, metrics.WithClock(mock))
	m.AddProvider("ElevenLabs", nil)
	open := func() float64 {
		return gatherValue(t, reg, "callagent_breaker_open_seconds_total", map[string]string{"provider": "ElevenLabs"})
	}
	state := func() float64 {
		return gatherValue(t, reg, "callagent_breaker_state", map[string]string{"provider": "ElevenLabs"})
	}
	if open() != 0 || state() != 0 {
		t.Fatalf("before any transition: open %g s, state %g; want 0, 0", open(), state())
	}
	t0 := mock.Now()
	m.BreakerStateChanged("ElevenLabs", resilience.StateClosed, resilience.StateOpen, t0)
	mock.Add(10 * time.Second)
	if got := open(); got != 10 {
		t.Fatalf("open for 10s and still open: %g, want 10", got)
	}
	if state() != 2 {
		t.Fatalf("state = %g, want 2 (open)", state())
	}
	// The half-open transition is reported with an earlier time than the last scrape (another
	// clock, or a late notification): the counter must not go down.
	m.BreakerStateChanged("ElevenLabs", resilience.StateOpen, resilience.StateHalfOpen, t0.Add(5*time.Second))
	if got := open(); got != 10 {
		t.Fatalf("after a late half-open: %g, want it to stay at 10", got)
	}
	if state() != 1 {
		t.Fatalf("state = %g, want 1 (half-open)", state())
	}
	mock.Add(time.Hour) // half-open time does not count as open
	m.BreakerStateChanged("ElevenLabs", resilience.StateHalfOpen, resilience.StateOpen, mock.Now())
	mock.Add(20 * time.Second)
	m.BreakerStateChanged("ElevenLabs", resilience.StateOpen, resilience.StateClosed, mock.Now())
	mock.Add(time.Hour)
	if got := open(); got != 25 {
		t.Fatalf("after 5s + 20s open: %g, want 25", got)
	}
	want := fmt.Sprintf(`
# HELP callagent_breaker_recovery_seconds Time from a breaker opening to it closing again (mean time to recovery), by provider.
# TYPE callagent_breaker_recovery_seconds histogram
callagent_breaker_recovery_seconds_bucket{provider="ElevenLabs",le="1"} 0
callagent_breaker_recovery_seconds_bucket{provider="ElevenLabs",le="5"} 0
callagent_breaker_recovery_seconds_bucket{provider="ElevenLabs",le="10"} 0
callagent_breaker_recovery_seconds_bucket{provider="ElevenLabs",le="30"} 0
callagent_breaker_recovery_seconds_bucket{provider="ElevenLabs",le="60"} 0
callagent_breaker_recovery_seconds_bucket{provider="ElevenLabs",le="120"} 0
callagent_breaker_recovery_seconds_bucket{provider="ElevenLabs",le="300"} 0
callagent_breaker_recovery_seconds_bucket{provider="ElevenLabs",le="600"} 0
callagent_breaker_recovery_seconds_bucket{provider="ElevenLabs",le="1800"} 0
callagent_breaker_recovery_seconds_bucket{provider="ElevenLabs",le="3600"} 0
callagent_breaker_recovery_seconds_bucket{provider="ElevenLabs",le="7200"} 1
callagent_breaker_recovery_seconds_bucket{provider="ElevenLabs",le="+Inf"} 1
callagent_breaker_recovery_seconds_sum{provider="ElevenLabs"} %d
callagent_breaker_recovery_seconds_count{provider="ElevenLabs"} 1
`, 10+3600+20)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "callagent_breaker_recovery_seconds"); err != nil {
		t.Fatal(err)
	}
}

// gatherValue gathers reg and returns one counter or gauge sample.
func gatherValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
	}
	return value(t, byName, name, labels)
}

func TestCategory(t *testing.T) {
	deadline, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"success", nil, "ok"},
		{"classified", fault.Classify(fault.Facts{Provider: "X", Status: 503}), "service_unavailable"},
		{"wrapped classified", fmt.Errorf("step: %w", fault.Classify(fault.Facts{Status: 401})), "authentication"},
		{"breaker open", &resilience.OpenError{Provider: "X", State: resilience.StateOpen}, "circuit_open"},
		{"canceled", fmt.Errorf("stopping: %w", context.Canceled), "canceled"},
		{"bare deadline", deadline.Err(), "timeout"},
		{"bare network", &os.SyscallError{Syscall: "connect", Err: errors.New("refused")}, "network"},
		{"anything else", errors.New("boom"), "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := metrics.Category(tt.err); got != tt.want {
				t.Fatalf("Category(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// TestLabelsStayLowCardinality: values that look like ids, phone numbers or messages are
// counted as "other", never as a series of their own.
func TestLabelsStayLowCardinality(t *testing.T) {
	m, reg := newMetrics(t)
	for _, bad := range []string{"c-000123456", "+14155550100", "", "a message with: punctuation!",
		strings.Repeat("x", 41), "3abc"} {
		m.DeadLettered(bad)
		m.AlertDelivered(bad, metrics.AlertSent)
	}
	m.DeadLettered("max_deliveries")
	m.ContactOutcome("bogus")
	want := `
# HELP callagent_alerts_total Alert deliveries, by channel and result.
# TYPE callagent_alerts_total counter
callagent_alerts_total{channel="other",result="sent"} 6
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "callagent_alerts_total"); err != nil {
		t.Fatal(err)
	}
	// The reasons New made at zero, the one counted, and "other" for the bad ones.
	wantLetters := len(metrics.DeadLetterReasons()) + 1
	if n, err := testutil.GatherAndCount(reg, "callagent_dead_letters_total"); err != nil || n != wantLetters {
		t.Fatalf("dead_letters_total has %d series (%v), want %d", n, err, wantLetters)
	}
	if got := gatherValue(t, reg, "callagent_dead_letters_total", map[string]string{"reason": "max_deliveries"}); got != 1 {
		t.Fatalf("max_deliveries counted %g times, want 1", got)
	}
	if got := gatherValue(t, reg, "callagent_dead_letters_total", map[string]string{"reason": "other"}); got != 6 {
		t.Fatalf("bad reasons counted %g times as other, want 6", got)
	}
	if got := gatherValue(t, reg, "callagent_contacts_processed_total", map[string]string{"outcome": "other"}); got != 1 {
		t.Fatalf("unknown outcome counted %g times as other, want 1", got)
	}
}

func TestInFlightAndSheetsRows(t *testing.T) {
	m, reg := newMetrics(t)
	done1 := m.TrackInFlight()
	done2 := m.TrackInFlight()
	if got := gatherValue(t, reg, "callagent_contacts_in_flight", nil); got != 2 {
		t.Fatalf("in flight = %g, want 2", got)
	}
	done1()
	done1() // a second call must not decrement again
	if got := gatherValue(t, reg, "callagent_contacts_in_flight", nil); got != 1 {
		t.Fatalf("in flight after one done (called twice) = %g, want 1", got)
	}
	done2()
	m.SheetsRows(metrics.SheetsAppended, 3)
	m.SheetsRows(metrics.SheetsDroppedFull, 2)
	m.SheetsRows(metrics.SheetsDroppedError, 0)
	want := `
# HELP callagent_sheets_rows_total Error log rows for Google Sheets, by result: appended, dropped_full, dropped_error.
# TYPE callagent_sheets_rows_total counter
callagent_sheets_rows_total{result="appended"} 3
callagent_sheets_rows_total{result="dropped_error"} 0
callagent_sheets_rows_total{result="dropped_full"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "callagent_sheets_rows_total"); err != nil {
		t.Fatal(err)
	}
}

func TestNewRefusesARegistryThatHasThem(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg); err != nil {
		t.Fatal(err)
	}
	_, err := metrics.New(reg)
	var already prometheus.AlreadyRegisteredError
	if !errors.As(err, &already) || !strings.Contains(err.Error(), "callagent_contacts_processed_total") {
		t.Fatalf("second New on one registry: %v, want AlreadyRegisteredError naming the metric", err)
	}
	if _, err := metrics.New(nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

func TestNewRegistryLintsClean(t *testing.T) {
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.AddProvider("ElevenLabs", resilience.NewBulkhead(3))
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "callagent_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "go_goroutines"); err != nil || n != 1 {
		t.Errorf("NewRegistry has no Go collector: %d, %v", n, err)
	}
}

func TestNilMetricsDoNothing(t *testing.T) {
	var m *metrics.Metrics
	m.ContactOutcome(metrics.OutcomeCompleted)
	m.TrackInFlight()()
	m.DeadLettered("x")
	m.AlertDelivered("email", metrics.AlertSent)
	m.SheetsRows(metrics.SheetsAppended, 1)
	m.ObserveStep("p", "s", time.Second, nil)
	m.ObserveAttempt("p", nil)
	m.ObserveRetry("p", errors.New("x"))
	m.AddProvider("p", nil)
	m.BreakerStateChanged("p", resilience.StateClosed, resilience.StateOpen, time.Now())
	m.ObserveConsumer(nil)
	called := false
	op := m.InstrumentAttempts("p", func(context.Context) error { called = true; return nil })
	if err := op(context.Background()); err != nil || !called {
		t.Fatalf("the nil wrapper did not run op: %v, %v", err, called)
	}
}

// Spend is counted per provider and model: tokens by type, TTS characters.
func TestSpendCounters(t *testing.T) {
	m, reg := newMetrics(t)
	m.ObserveSpend(call.Spend{Provider: "LLM", Model: "gpt-5-mini", PromptTokens: 100, CompletionTokens: 50, CachedTokens: 64, ReasoningTokens: 30})
	m.ObserveSpend(call.Spend{Provider: "LLM", Model: "gpt-5-mini", PromptTokens: 10, CompletionTokens: 5})
	m.ObserveSpend(call.Spend{Provider: "ElevenLabs", Model: "eleven_flash_v2_5", Characters: 420})
	m.ObserveSpend(call.Spend{Provider: "OpenAI TTS", Model: "meta-llama/Llama 3.1:8b", Characters: 7})
	m.ObserveSpend(call.Spend{Provider: "ElevenLabs", Model: "", Characters: 3})
	want := `
# HELP callagent_llm_tokens_total LLM tokens the providers reported, by provider, model and type: prompt, completion, cached (of the prompt), reasoning (of the completion).
# TYPE callagent_llm_tokens_total counter
callagent_llm_tokens_total{model="gpt-5-mini",provider="LLM",type="cached"} 64
callagent_llm_tokens_total{model="gpt-5-mini",provider="LLM",type="completion"} 55
callagent_llm_tokens_total{model="gpt-5-mini",provider="LLM",type="prompt"} 110
callagent_llm_tokens_total{model="gpt-5-mini",provider="LLM",type="reasoning"} 30
# HELP callagent_tts_characters_total Text-to-speech characters billed (ElevenLabs character-cost; characters sent for OpenAI speech), by provider and model.
# TYPE callagent_tts_characters_total counter
callagent_tts_characters_total{model="eleven_flash_v2_5",provider="ElevenLabs"} 420
callagent_tts_characters_total{model="meta-llama/Llama 3.1:8b",provider="OpenAI TTS"} 7
callagent_tts_characters_total{model="unknown",provider="ElevenLabs"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "callagent_llm_tokens_total", "callagent_tts_characters_total"); err != nil {
		t.Fatal(err)
	}
}
