package metrics

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/resilience"
)

// namespace prefixes every metric name.
const namespace = "callagent"

// Outcome is what became of a contact after one delivery; it is the outcome label of
// callagent_contacts_processed_total.
type Outcome string

// The outcomes. Success rate is completed / (completed + retried + dead_lettered).
const (
	// OutcomeCompleted: the calls were made and the contact acked.
	OutcomeCompleted Outcome = "completed"
	// OutcomeAlreadyCompleted: a redelivered contact that had been completed before; acked
	// without calling anyone.
	OutcomeAlreadyCompleted Outcome = "already_completed"
	// OutcomeRetried: failed transiently and went back to the queue with a delay.
	OutcomeRetried Outcome = "retried"
	// OutcomeDeadLettered: written off with a reason.
	OutcomeDeadLettered Outcome = "dead_lettered"
	// OutcomeHeld: kept in flight while a provider's breaker was open (counted each time).
	OutcomeHeld Outcome = "held"
	// OutcomeReleased: handed back at shutdown for another replica.
	OutcomeReleased Outcome = "released"
	// OutcomeHandedBack: held past the hold limit and given back to the queue (a copy
	// published, or the original nak'ed with a delay when the copy could not be), without a
	// failure counted.
	OutcomeHandedBack Outcome = "handed_back"
)

// Outcomes lists every Outcome, in the order above.
var Outcomes = []Outcome{OutcomeCompleted, OutcomeAlreadyCompleted, OutcomeRetried,
	OutcomeDeadLettered, OutcomeHeld, OutcomeReleased, OutcomeHandedBack}

// Results of an attempt and of a step besides an error category.
const (
	// ResultOK labels a successful attempt or step.
	ResultOK = "ok"
	// ResultError labels a failed step.
	ResultError = "error"
	// ResultCanceled labels an attempt cut short by the caller (shutdown, deadline of the
	// caller's context), which says nothing about the provider.
	ResultCanceled = "canceled"
	// ResultCircuitOpen labels an attempt refused by an open breaker.
	ResultCircuitOpen = "circuit_open"
)

// Alert delivery results, for AlertDelivered: the alert dispatcher's (alert.ResultSent…).
// Other short lower-case results are accepted too.
const (
	// AlertSent: the channel accepted the notification.
	AlertSent = "sent"
	// AlertRetried: the delivery failed; the notification stays queued and is tried again.
	AlertRetried = "retried"
	// AlertDeferred: not tried now (the channel's breaker is open, or it asked to wait).
	AlertDeferred = "deferred"
	// AlertDropped: the channel refused the notification for good.
	AlertDropped = "dropped"
	// AlertFiltered: below the channel's minimum severity; not sent.
	AlertFiltered = "filtered"
)

// AlertResults lists the alert delivery results, the result label values of
// callagent_alerts_total that AddAlertChannels makes exist at zero.
var AlertResults = []string{AlertSent, AlertRetried, AlertDeferred, AlertDropped, AlertFiltered}

// Alert event results, the result label of callagent_alert_events_total: what became of the
// alert events this worker raised, before any channel (see ObserveAlertEmitter).
const (
	// AlertEventPublished: stored in the alerts stream, for the dispatcher to deliver.
	AlertEventPublished = "published"
	// AlertEventDropped: refused when raised (queue full, emitter closed, invalid event).
	AlertEventDropped = "dropped"
	// AlertEventFailed: accepted but never stored in the alerts stream (NATS away).
	AlertEventFailed = "failed"
)

// Dead-letter reasons of the worker besides the error categories (fault.Kind strings).
const (
	ReasonMaxDeliveries = "max_deliveries"
	ReasonCircuitOpen   = ResultCircuitOpen
	ReasonInternal      = "internal"
)

// Sheets log results, for SheetsRows.
const (
	SheetsAppended     = "appended"
	SheetsDroppedFull  = "dropped_full"
	SheetsDroppedError = "dropped_error"
)

// other replaces a label value that does not look like a short name chosen by the code.
const other = "other"

// DefaultConsumerTimeout bounds the consumer read made at each scrape.
const DefaultConsumerTimeout = 2 * time.Second

// Option configures New.
type Option func(*Metrics)

// WithClock sets the clock that times the breaker's current OPEN period at scrape (default
// the real clock). Use the same clock as the guards.
func WithClock(c clock.Clock) Option {
	return func(m *Metrics) {
		if c != nil {
			m.clock = c
		}
	}
}

// WithConsumerTimeout bounds the consumer read made at each scrape (default 2s; a value of 0
// or less keeps the default).
func WithConsumerTimeout(d time.Duration) Option {
	return func(m *Metrics) {
		if d > 0 {
			m.consumerTimeout = d
		}
	}
}

// WithVersion sets the version label of callagent_build_info (the -X linker version, for
// example cli.Version). Without it, or with "", the main module's version from the build
// information is used ("(devel)" for a plain go build).
func WithVersion(v string) Option {
	return func(m *Metrics) {
		if v != "" {
			m.version = v
		}
	}
}

// Metrics holds the worker's collectors. Build it with New; a nil *Metrics is valid and
// records nothing. Safe for concurrent use.
type Metrics struct {
	clock           clock.Clock
	consumerTimeout time.Duration
	version         string

	contacts      *prometheus.CounterVec
	inFlight      prometheus.Gauge
	attempts      *prometheus.CounterVec
	retries       *prometheus.CounterVec
	stepDuration  *prometheus.HistogramVec
	deadLetters   *prometheus.CounterVec
	alerts        *prometheus.CounterVec
	transitions   *prometheus.CounterVec
	recovery      *prometheus.HistogramVec
	consumerErrs  prometheus.Counter
	sheetsRows    *prometheus.CounterVec
	tokens        *prometheus.CounterVec
	characters    *prometheus.CounterVec
	buildInfo     *prometheus.GaugeVec
	alertEvents   *alertEventCollector
	breakers      *breakerCollector
	bulkheads     *bulkheadCollector
	consumers     *consumerCollector
	providersOnce sync.Map // provider name → struct{}: AddProvider ran
}

// New builds the metrics and registers them on reg. It returns an error (wrapping
// prometheus.AlreadyRegisteredError, for example when New runs twice on one registry) if a
// collector cannot be registered.
func New(reg prometheus.Registerer, opts ...Option) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: the registerer is nil")
	}
	m := &Metrics{clock: clock.New(), consumerTimeout: DefaultConsumerTimeout}
	for _, o := range opts {
		o(m)
	}
	build := readBuild()
	if m.version == "" {
		m.version = build.version
	}
	m.contacts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "contacts_processed_total",
		Help: "Contacts processed, by outcome: completed, already_completed, retried, dead_lettered, held, released, handed_back.",
	}, []string{"outcome"})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "contacts_in_flight",
		Help: "Contacts this worker is processing now.",
	})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "provider_attempts_total",
		Help: "Calls to a provider, by result: ok or the error category.",
	}, []string{"provider", "result"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "provider_retries_total",
		Help: "In-process retries of a provider call, by the category of the failure that caused them.",
	}, []string{"provider", "category"})
	m.stepDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "step_duration_seconds",
		Help:    "Duration of one pipeline step, its in-process retries included, by provider, step and result.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80},
	}, []string{"provider", "step", "result"})
	m.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "dead_letters_total",
		Help: "Contacts dead-lettered, by reason.",
	}, []string{"reason"})
	m.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "alerts_total",
		Help: "Alert deliveries, by channel and result.",
	}, []string{"channel", "result"})
	m.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "breaker_transitions_total",
		Help: "Circuit breaker transitions, by provider and states (closed, half_open, open).",
	}, []string{"provider", "from", "to"})
	m.recovery = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "breaker_recovery_seconds",
		Help:    "Time from a breaker opening to it closing again (mean time to recovery), by provider.",
		Buckets: []float64{1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200},
	}, []string{"provider"})
	m.consumerErrs = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "consumer_info_errors_total",
		Help: "Reads of the JetStream consumer's or stream's state that failed or timed out at scrape.",
	})
	m.sheetsRows = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "sheets_rows_total",
		Help: "Error log rows for Google Sheets, by result: appended, dropped_full, dropped_error.",
	}, []string{"result"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "llm_tokens_total",
		Help: "LLM tokens the providers reported, by provider, model and type: prompt, completion, cached (of the prompt), reasoning (of the completion).",
	}, []string{"provider", "model", "type"})
	m.characters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "tts_characters_total",
		Help: "Text-to-speech characters billed (ElevenLabs character-cost; characters sent for OpenAI speech), by provider and model.",
	}, []string{"provider", "model"})
	m.buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Always 1; the labels say which build of the worker runs: version, Go version and VCS revision.",
	}, []string{"version", "goversion", "revision"})
	m.alertEvents = newAlertEventCollector()
	m.breakers = newBreakerCollector(m.clock)
	m.bulkheads = newBulkheadCollector()
	m.consumers = newConsumerCollector(m.clock, m.consumerTimeout, m.consumerErrs)

	m.buildInfo.WithLabelValues(m.version, runtime.Version(), build.revision).Set(1)
	for _, o := range Outcomes {
		m.contacts.WithLabelValues(string(o))
	}
	for _, r := range DeadLetterReasons() {
		m.deadLetters.WithLabelValues(r)
	}
	for _, r := range []string{SheetsAppended, SheetsDroppedFull, SheetsDroppedError} {
		m.sheetsRows.WithLabelValues(r)
	}

	for _, c := range []struct {
		name string
		c    prometheus.Collector
	}{
		{"contacts_processed_total", m.contacts},
		{"contacts_in_flight", m.inFlight},
		{"provider_attempts_total", m.attempts},
		{"provider_retries_total", m.retries},
		{"step_duration_seconds", m.stepDuration},
		{"dead_letters_total", m.deadLetters},
		{"alerts_total", m.alerts},
		{"breaker_transitions_total", m.transitions},
		{"breaker_recovery_seconds", m.recovery},
		{"consumer_info_errors_total", m.consumerErrs},
		{"sheets_rows_total", m.sheetsRows},
		{"llm_tokens_total", m.tokens},
		{"tts_characters_total", m.characters},
		{"build_info", m.buildInfo},
		{"alert_events_total", m.alertEvents},
		{"breaker_state and breaker_open_seconds_total", m.breakers},
		{"bulkhead_in_use and bulkhead_limit", m.bulkheads},
		{"consumer_pending_messages, consumer_ack_pending_messages, consumer_paused and oldest_pending_age_seconds", m.consumers},
	} {
		if err := reg.Register(c.c); err != nil {
			return nil, fmt.Errorf("metrics: register %s_%s: %w", namespace, c.name, err)
		}
	}
	return m, nil
}

// NewRegistry returns a registry with the Go runtime and process collectors, ready for New and
// for the health server's /metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// ContactOutcome counts one contact outcome. An Outcome not in Outcomes is counted as "other".
func (m *Metrics) ContactOutcome(o Outcome) {
	if m == nil {
		return
	}
	label := other
	for _, known := range Outcomes {
		if o == known {
			label = string(o)
			break
		}
	}
	m.contacts.WithLabelValues(label).Inc()
}

// TrackInFlight counts a contact as in flight until the returned func is called (once; more
// calls do nothing).
func (m *Metrics) TrackInFlight() (done func()) {
	if m == nil {
		return func() {}
	}
	m.inFlight.Inc()
	var once sync.Once
	return func() { once.Do(m.inFlight.Dec) }
}

// DeadLettered counts one dead letter with its reason (a fault.Kind string or one of the
// worker's reasons: max_deliveries, circuit_open, internal).
func (m *Metrics) DeadLettered(reason string) {
	if m == nil {
		return
	}
	m.deadLetters.WithLabelValues(name(reason)).Inc()
}

// AlertDelivered counts one alert delivery attempt on channel (email, telegram, webhook…) with
// its result (AlertSent, AlertFailed…).
func (m *Metrics) AlertDelivered(channel, result string) {
	if m == nil {
		return
	}
	m.alerts.WithLabelValues(name(channel), name(result)).Inc()
}

// SheetsRows counts n Google Sheets log rows with result (SheetsAppended, SheetsDroppedFull,
// SheetsDroppedError). It makes *Metrics a sheets.Observer.
func (m *Metrics) SheetsRows(result string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.sheetsRows.WithLabelValues(name(result)).Add(float64(n))
}

// Token types, the type label of llm_tokens_total.
const (
	TokensPrompt     = "prompt"
	TokensCompletion = "completion"
	TokensCached     = "cached"
	TokensReasoning  = "reasoning"
)

// ObserveSpend counts what one paid step cost: LLM tokens by type, or TTS characters.
func (m *Metrics) ObserveSpend(s call.Spend) {
	if m == nil {
		return
	}
	provider, model := name(s.Provider), modelLabel(s.Model)
	for typ, n := range map[string]int{TokensPrompt: s.PromptTokens, TokensCompletion: s.CompletionTokens,
		TokensCached: s.CachedTokens, TokensReasoning: s.ReasoningTokens} {
		if n > 0 {
			m.tokens.WithLabelValues(provider, model, typ).Add(float64(n))
		}
	}
	if s.Characters > 0 {
		m.characters.WithLabelValues(provider, model).Add(float64(s.Characters))
	}
}

// ObserveStep records one pipeline step of provider (step is "llm", "tts", "crm"…) that took
// d, its retries included, and ended with err (nil for success).
func (m *Metrics) ObserveStep(provider, step string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := ResultOK
	if err != nil {
		result = ResultError
	}
	m.stepDuration.WithLabelValues(name(provider), name(step), result).Observe(max(d, 0).Seconds())
}

// ObserveAttempt counts one call to provider that ended with err (nil for success).
func (m *Metrics) ObserveAttempt(provider string, err error) {
	if m == nil {
		return
	}
	m.attempts.WithLabelValues(name(provider), Category(err)).Inc()
}

// ObserveRetry counts one in-process retry of provider caused by err.
func (m *Metrics) ObserveRetry(provider string, err error) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(name(provider), Category(err)).Inc()
}

// InstrumentAttempts wraps the op of ONE retry loop (resilience.Retrier.Run) for provider:
// each call of the returned func is one attempt, counted by result, and each call after a
// failed one is a retry, counted by the category of that failure. Build a new wrapper for each
// Run: it remembers the previous attempt's error.
func (m *Metrics) InstrumentAttempts(provider string, op func(ctx context.Context) error) func(ctx context.Context) error {
	if m == nil {
		return op
	}
	var (
		mu   sync.Mutex
		prev error
		n    int
	)
	return func(ctx context.Context) error {
		mu.Lock()
		if n > 0 && prev != nil {
			m.ObserveRetry(provider, prev)
		}
		n++
		mu.Unlock()
		err := op(ctx)
		mu.Lock()
		prev = err
		mu.Unlock()
		m.ObserveAttempt(provider, err)
		return err
	}
}

// AddProvider makes provider's metrics exist from the start: the breaker state gauge at
// closed, the breaker counters, callagent_provider_attempts_total for every result
// (AttemptResults) and callagent_provider_retries_total for every transient category at
// zero, and, when b is not nil, the bulkhead occupancy read at each scrape
// (*resilience.Bulkhead satisfies Occupancy; pass Guard.Bulkhead()). Call it once per
// provider, right after creating its guard; later calls for the same provider only replace
// the bulkhead.
func (m *Metrics) AddProvider(provider string, b Occupancy) {
	if m == nil {
		return
	}
	p := name(provider)
	if b != nil {
		m.bulkheads.add(p, b)
	}
	if _, loaded := m.providersOnce.LoadOrStore(p, struct{}{}); loaded {
		return
	}
	m.breakers.add(p)
	m.recovery.WithLabelValues(p)
	for _, r := range AttemptResults() {
		m.attempts.WithLabelValues(p, r)
	}
	for _, k := range kinds() {
		if k.Transient() {
			m.retries.WithLabelValues(p, k.String())
		}
	}
	for _, tr := range [][2]resilience.State{
		{resilience.StateClosed, resilience.StateOpen},
		{resilience.StateOpen, resilience.StateHalfOpen},
		{resilience.StateHalfOpen, resilience.StateOpen},
		{resilience.StateHalfOpen, resilience.StateClosed},
		{resilience.StateOpen, resilience.StateClosed},
	} {
		m.transitions.WithLabelValues(p, stateLabel(tr[0]), stateLabel(tr[1]))
	}
}

// AddStep makes callagent_step_duration_seconds exist from the start for step (call.StepLLM,
// call.StepTTS, call.StepCRM) served by each of providers, with both results (ok and error)
// at zero. Call it once per step with the step's providers, primary first. The spend
// counters are not made here: their model label is the model the provider reports with
// its first answer.
func (m *Metrics) AddStep(step string, providers ...string) {
	if m == nil {
		return
	}
	for _, p := range providers {
		for _, r := range []string{ResultOK, ResultError} {
			m.stepDuration.WithLabelValues(name(p), name(step), r)
		}
	}
}

// AddAlertChannels makes callagent_alerts_total exist from the start for each enabled alert
// channel (the alert.Channel names: Email, Telegram, Webhook, Slack, PagerDuty) with every
// result in AlertResults at zero.
func (m *Metrics) AddAlertChannels(channels ...string) {
	if m == nil {
		return
	}
	for _, c := range channels {
		for _, r := range AlertResults {
			m.alerts.WithLabelValues(name(c), r)
		}
	}
}

// ObserveAlertEmitter exports e's counters as callagent_alert_events_total{result}: alert
// events published to the alerts stream, dropped when raised, or failed to publish. They
// are read at each scrape; with several emitters the counts are summed, and with none the
// three series are 0. *alert.Emitter satisfies AlertEmitter.
func (m *Metrics) ObserveAlertEmitter(e AlertEmitter) {
	if m == nil || e == nil {
		return
	}
	m.alertEvents.add(e)
}

// BreakerStateChanged implements resilience.StateListener: it moves the state gauge, counts
// the transition, adds the OPEN period to the open-seconds counter when the breaker leaves
// OPEN, and observes the recovery time when it closes after opening.
func (m *Metrics) BreakerStateChanged(provider string, from, to resilience.State, at time.Time) {
	if m == nil {
		return
	}
	p := name(provider)
	m.transitions.WithLabelValues(p, stateLabel(from), stateLabel(to)).Inc()
	if recovered, ok := m.breakers.transition(p, to, at); ok {
		m.recovery.WithLabelValues(p).Observe(recovered.Seconds())
	}
}

// ObserveConsumer exports c's pending and ack-pending counts and whether it is paused
// (JetStream's consumer pause), read at each scrape within the consumer timeout.
// jetstream.Consumer satisfies ConsumerInfo.
func (m *Metrics) ObserveConsumer(c ConsumerInfo) {
	if m == nil || c == nil {
		return
	}
	m.consumers.add(c)
}

// AttemptResults lists the result label values of callagent_provider_attempts_total: "ok",
// "canceled", "circuit_open" and every error category (fault.Kind string), the values
// Category returns.
func AttemptResults() []string {
	out := []string{ResultOK, ResultCanceled, ResultCircuitOpen}
	for _, k := range kinds() {
		out = append(out, k.String())
	}
	return out
}

// DeadLetterReasons lists the reason label values of callagent_dead_letters_total that New
// makes exist at zero: every error category (fault.Kind string) and the worker's own
// reasons (max_deliveries, circuit_open, internal).
func DeadLetterReasons() []string {
	out := []string{}
	for _, k := range kinds() {
		out = append(out, k.String())
	}
	return append(out, ReasonMaxDeliveries, ReasonCircuitOpen, ReasonInternal)
}

// kinds lists every fault.Kind: KindUnknown (0), then each kind with a name of its own.
func kinds() []fault.Kind {
	out := []fault.Kind{fault.KindUnknown}
	for k := fault.KindUnknown + 1; k < 64 && k.String() != fault.KindUnknown.String(); k++ {
		out = append(out, k)
	}
	return out
}

// build is what the binary says about itself.
type build struct{ version, revision string }

// readBuild reads the main module's version and VCS revision from the build information
// ("unknown" for what it does not hold: a test binary, or a build with -buildvcs=false).
func readBuild() build {
	b := build{version: "unknown", revision: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := info.Main.Version; v != "" {
		b.version = v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			b.revision = s.Value
		}
	}
	return b
}

// ObserveStream exports the age of the oldest message in s, read at each scrape within the
// consumer timeout: for the contacts stream (WorkQueue retention, a message is removed when
// acked or terminated) it is the oldest contact not done yet, waiting, in progress, held or
// waiting for its retry; 0 when the stream is empty. jetstream.Stream satisfies StreamInfo.
func (m *Metrics) ObserveStream(s StreamInfo) {
	if m == nil || s == nil {
		return
	}
	m.consumers.addStream(s)
}

// Category is the label value of an attempt's result: "ok" for nil, "canceled" when the
// caller's context ended, "circuit_open" for a breaker refusal, otherwise the error's
// fault.Kind string; a bare transport error is classified as the Guard would (timeout,
// network), anything else is "unknown".
func Category(err error) string {
	if err == nil {
		return ResultOK
	}
	var se *fault.ServiceError
	switch {
	case errors.As(err, &se):
		return se.Kind.String()
	case errors.Is(err, resilience.ErrBreakerOpen):
		return ResultCircuitOpen
	case errors.Is(err, context.Canceled):
		return ResultCanceled
	}
	return fault.KindOf(fault.Classify(fault.Facts{Err: err})).String()
}

// isLabelName reports whether s looks like a label value chosen by the code, a short name:
// ^[A-Za-z][A-Za-z0-9_. -]{0,39}$ (checked by hand: it runs on every provider call).
func isLabelName(s string) bool {
	if len(s) == 0 || len(s) > 40 || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '_' && c != '.' && c != ' ' && c != '-' {
			return false
		}
	}
	return true
}

// isModelName reports whether s looks like a model name as providers spell them ("gpt-4o-mini",
// "eleven_flash_v2_5", "meta-llama/Llama-3.1-8B", "llama3:8b"):
// ^[A-Za-z0-9][A-Za-z0-9_.:/ -]{0,79}$.
func isModelName(s string) bool {
	if len(s) == 0 || len(s) > 80 || (!isLetter(s[0]) && !isDigit(s[0])) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '_' && c != '.' && c != ':' && c != '/' && c != ' ' && c != '-' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// name returns s when it looks like a name chosen by the code, else "other": a contact id or
// an error message passed by mistake must not create one series per value. Contact ids in
// this project are free-form, so a short id-like value can still pass; callers pass constants.
func name(s string) string {
	if isLabelName(s) && !hasLongDigitRun(s) {
		return s
	}
	return other
}

// modelLabel is name for model names: a model reported by a provider is kept if it looks
// like one, "unknown" when empty, "other" otherwise.
func modelLabel(s string) string {
	switch {
	case s == "":
		return "unknown"
	case isModelName(s):
		return s
	}
	return other
}

// hasLongDigitRun reports whether s holds 6 or more digits in a row (ids, phone numbers).
func hasLongDigitRun(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			run++
			if run >= 6 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// stateLabel is the label spelling of a breaker state.
func stateLabel(s resilience.State) string {
	switch s {
	case resilience.StateClosed:
		return "closed"
	case resilience.StateHalfOpen:
		return "half_open"
	case resilience.StateOpen:
		return "open"
	}
	return other
}

// stateValue is the breaker state gauge's value.
func stateValue(s resilience.State) float64 {
	switch s {
	case resilience.StateHalfOpen:
		return 1
	case resilience.StateOpen:
		return 2
	}
	return 0
}
