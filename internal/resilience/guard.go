package resilience

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
	circuitbreaker "github.com/mercari/go-circuitbreaker"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/fault"
)

// State is a breaker state, spelled as the seed logs it (the circuit_state log field).
type State string

// Breaker states.
const (
	StateClosed   State = "CLOSED"
	StateOpen     State = "OPEN"
	StateHalfOpen State = "HALF_OPEN"
)

// StateListener learns of breaker transitions (alerts and metrics plug in here). Each real
// transition is delivered exactly once — repeats such as OPEN→OPEN are dropped — in order,
// one at a time, from a goroutine of the Guard's, never under the breaker's lock: the
// listener may call the Guard, and a slow listener delays only later notifications.
type StateListener interface {
	BreakerStateChanged(provider string, from, to State, at time.Time)
}

// Defaults for GuardOptions (the seed's values).
const (
	DefaultFailureThreshold = 3
	DefaultSuccessThreshold = 2
	DefaultOpenTimeout      = 30 * time.Second
	DefaultMaxConcurrency   = 5
)

// BreakerSettings configures a provider's circuit breaker. Zero fields take the defaults.
type BreakerSettings struct {
	// FailureThreshold is how many consecutive counted failures open the breaker
	// (default 3).
	FailureThreshold int
	// SuccessThreshold is how many successful calls in HALF_OPEN close it (default 2).
	SuccessThreshold int
	// OpenTimeout is how long it stays OPEN before HALF_OPEN (default 30s).
	OpenTimeout time.Duration
}

// GuardOptions configures a Guard. Zero fields take the defaults.
type GuardOptions struct {
	Breaker BreakerSettings
	// MaxConcurrency caps concurrent calls to the provider from this process
	// (default 5; ElevenLabs plans allow 2–15): the ceiling of the bulkhead's adaptive
	// window, which starts at the failure threshold, drops to 1 on a failure and doubles
	// with each success (see Bulkhead).
	MaxConcurrency int
	// Clock drives the breaker's open timeout; nil means the real clock.
	Clock clock.Clock
	// Listener learns of transitions; may be nil.
	Listener StateListener
	// Logger receives transition and concurrency logs; nil discards them.
	Logger *logrus.Logger
}

// Validate reports the first invalid field; zero means "default" and is valid.
func (o GuardOptions) Validate() error {
	switch {
	case o.Breaker.FailureThreshold < 0:
		return fmt.Errorf("breaker failure threshold must not be negative, got %d", o.Breaker.FailureThreshold)
	case o.Breaker.SuccessThreshold < 0:
		return fmt.Errorf("breaker success threshold must not be negative, got %d", o.Breaker.SuccessThreshold)
	case o.Breaker.OpenTimeout < 0:
		return fmt.Errorf("breaker open timeout must not be negative, got %s", o.Breaker.OpenTimeout)
	case o.MaxConcurrency < 0:
		return fmt.Errorf("max concurrency must not be negative, got %d", o.MaxConcurrency)
	}
	return nil
}

// WithDefaults returns o with zero (or negative) fields replaced by the defaults.
func (o GuardOptions) WithDefaults() GuardOptions {
	if o.Breaker.FailureThreshold <= 0 {
		o.Breaker.FailureThreshold = DefaultFailureThreshold
	}
	if o.Breaker.SuccessThreshold <= 0 {
		o.Breaker.SuccessThreshold = DefaultSuccessThreshold
	}
	if o.Breaker.OpenTimeout <= 0 {
		o.Breaker.OpenTimeout = DefaultOpenTimeout
	}
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = DefaultMaxConcurrency
	}
	return o
}

// Guard protects one provider: a circuit breaker and a bulkhead around each attempt. Create
// one per provider and share it among all workers of the process. Safe for concurrent use.
type Guard struct {
	provider    string
	cb          *circuitbreaker.CircuitBreaker
	bulkhead    *Bulkhead
	clock       clock.Clock
	realClock   bool
	log         *logrus.Logger
	listener    StateListener
	openTimeout time.Duration

	state   atomic.Pointer[State] // mirror of the breaker's state, written under cb's lock
	probing atomic.Bool           // the one HALF_OPEN call (or health probe) is in flight
	// settingsOpen: the breaker opened on a settings error (configuration, permission) that a
	// health probe cannot see; see SettingsOpen.
	settingsOpen atomic.Bool
	recordMu     sync.Mutex    // serialises record, so tripNow belongs to the failure recorded
	tripNow      atomic.Bool   // the failure being recorded opens the breaker at once
	checkers     atomic.Int32  // running HealthCheckers: they own the HALF_OPEN probe
	hold         atomic.Int32  // a Hold: an operator's override (publisher breaker)
	halfOpen     chan struct{} // signalled on entering HALF_OPEN, for the health checker
	opened       chan struct{} // signalled on entering OPEN, so the health checker probes often

	mu       sync.Mutex // guards the fields below
	retryAt  time.Time
	events   []transition
	flushing bool
}

type transition struct {
	from, to State
	at       time.Time
}

var (
	closedState   = StateClosed
	openState     = StateOpen
	halfOpenState = StateHalfOpen
)

// NewGuard returns the guard for provider (its display name, e.g. "ElevenLabs"), with o's
// zero fields set to the defaults. It starts no goroutine.
func NewGuard(provider string, o GuardOptions) *Guard {
	o = o.WithDefaults()
	c, real := clockOrReal(o.Clock)
	g := &Guard{
		provider:    provider,
		bulkhead:    NewBulkhead(o.MaxConcurrency),
		clock:       c,
		realClock:   real,
		log:         loggerOrDiscard(o.Logger),
		listener:    o.Listener,
		openTimeout: o.Breaker.OpenTimeout,
		halfOpen:    make(chan struct{}, 1),
		opened:      make(chan struct{}, 1),
	}
	// Slow start (see Bulkhead): as many calls as it takes to open the breaker.
	g.bulkhead.start = o.Breaker.FailureThreshold
	g.bulkhead.window = min(o.Breaker.FailureThreshold, o.MaxConcurrency)
	g.state.Store(&closedState)
	g.cb = circuitbreaker.New(
		circuitbreaker.WithClock(c),
		circuitbreaker.WithTripFunc(func(c *circuitbreaker.Counters) bool {
			if Hold(g.hold.Load()) == HoldClosed {
				return false
			}
			return g.tripNow.Load() || c.ConsecutiveFailures >= int64(o.Breaker.FailureThreshold)
		}),
		circuitbreaker.WithCounterResetInterval(-1),
		circuitbreaker.WithHalfOpenMaxSuccesses(int64(o.Breaker.SuccessThreshold)),
		circuitbreaker.WithOpenTimeout(o.Breaker.OpenTimeout),
		circuitbreaker.WithOnStateChangeHookFn(g.onStateChange),
	)
	return g
}

// Provider returns the provider's display name.
func (g *Guard) Provider() string { return g.provider }

// Bulkhead returns the provider's bulkhead, e.g. to apply ElevenLabs'
// maximum-concurrent-requests header with SetLimit.
func (g *Guard) Bulkhead() *Bulkhead { return g.bulkhead }

// State returns the breaker's state.
func (g *Guard) State() State { return *g.state.Load() }

// RetryAt returns when the breaker may let a call through: the end of the open timeout
// while OPEN, now while HALF_OPEN, and the zero time while CLOSED.
func (g *Guard) RetryAt() time.Time {
	if g.Held() == HoldOpen {
		// Held by an operator: the open timeout's HALF_OPEN admits nothing; look again later.
		return g.clock.Now().Add(g.openTimeout)
	}
	switch g.State() {
	case StateOpen:
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.retryAt
	case StateHalfOpen:
		return g.clock.Now()
	default:
		return time.Time{}
	}
}

// Ready reports whether Do would admit a call now: CLOSED, or HALF_OPEN with the probe free
// and no HealthChecker owning it. Workers use it to stop taking contacts while a provider is
// down.
func (g *Guard) Ready() bool {
	if g.Held() == HoldOpen {
		return false
	}
	switch g.State() {
	case StateClosed:
		return true
	case StateHalfOpen:
		return g.realProbe() && !g.probing.Load()
	default:
		return false
	}
}

// realProbe reports whether the HALF_OPEN probe belongs to a real call: when no
// HealthChecker runs, or when the breaker opened on a settings error that only a real call
// can test.
func (g *Guard) realProbe() bool { return g.checkers.Load() == 0 || g.settingsOpen.Load() }

// SettingsOpen reports whether the breaker is open (or half-open) because the provider
// refused our settings (a retired model, a format the plan lacks, a key without a
// permission). Such an error opens the breaker at the first failure, since every call fails
// the same way; a healthy health probe does not close it (the probe endpoint cannot see the
// settings), and the HALF_OPEN probe after the open timeout is one real call. So a
// misconfigured provider costs one refused request per open timeout, and its alert stays
// open instead of flapping with every probe.
func (g *Guard) SettingsOpen() bool { return g.settingsOpen.Load() && g.State() != StateClosed }

// Reset closes the breaker and clears its counters (the health checker does this when the
// provider is healthy again). The transition is logged and reported once; resetting a closed
// breaker reports nothing. A breaker held open (see SetHold) stays open.
func (g *Guard) Reset() {
	if g.Held() == HoldOpen {
		return
	}
	g.cb.Reset()
}

// ForceOpen opens a closed breaker as if it had tripped: another replica saw the provider
// fail (see fleet.SharedBreakers). It counts no failure here; the open timeout and the
// health checker's probes run as after a trip.
func (g *Guard) ForceOpen() {
	if g.State() == StateClosed {
		g.cb.SetState(circuitbreaker.StateOpen)
	}
}

// Hold is an operator's override of a breaker (`publisher breaker open|close|auto`).
type Hold int32

const (
	// HoldNone is the automatic breaker.
	HoldNone Hold = iota
	// HoldOpen keeps the breaker open: no call, no probe, no reset until released.
	HoldOpen
	// HoldClosed keeps the breaker closed whatever fails.
	HoldClosed
)

// SetHold applies an operator's override: HoldOpen opens the breaker and keeps it open,
// HoldClosed closes it and keeps it closed, HoldNone returns to the automatic breaker (a
// breaker released from HoldOpen stays open until its health checker sees the provider up).
func (g *Guard) SetHold(h Hold) {
	g.hold.Store(int32(h))
	switch h {
	case HoldOpen:
		g.settingsOpen.Store(false) // a settings error is not why it is open now
		if g.State() != StateOpen {
			g.cb.SetState(circuitbreaker.StateOpen)
		}
	case HoldClosed:
		g.cb.Reset()
	}
}

// Held returns the operator's override in force.
func (g *Guard) Held() Hold { return Hold(g.hold.Load()) }

// Do runs op as ONE attempt against the provider: it fails fast with *OpenError when the
// breaker refuses, waits for a bulkhead slot (or returns ctx's error wrapped), calls
// op(ctx), and records the outcome in the breaker and the bulkhead's window.
//
// A call waiting for its slot when the breaker opens wakes at once with *OpenError, and a
// call granted a slot checks the breaker again before it calls the provider: no call waits
// out an outage in the bulkhead only to call a provider known to be down.
//
// The bulkhead's window adapts (see Bulkhead): a new Guard, and a Guard whose breaker just
// closed, let FailureThreshold calls through, and each success doubles the calls allowed in
// flight up to MaxConcurrency; a counted failure drops them to one. So a provider that is
// down when the worker starts sees FailureThreshold calls before the breaker opens, and one
// that fails later the calls already in flight, and no more.
//
// op's error comes back as it was, except that a bare transport error (deadline, net.Error,
// EOF) is classified as a *fault.ServiceError for the provider. A concurrency_limit error
// also lowers the bulkhead's ceiling to one below the calls in flight. Do does not log a
// refusal; Retrier.Run does, with the contact's fields.
func (g *Guard) Do(ctx context.Context, op func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	probe, err := g.enter(ctx)
	if err != nil {
		return err
	}
	if probe {
		defer g.probing.Store(false)
	}
	result := neutral
	defer func() { g.bulkhead.release(result) }()
	err = g.normalize(ctx, op(ctx))
	if err != nil && fault.KindOf(err) == fault.KindConcurrencyLimit {
		g.lowerConcurrency(err)
	}
	if g.record(ctx, err) {
		result = failure
	} else if err == nil {
		result = success
	}
	return err
}

// enter admits a call and takes its bulkhead slot; probe is true when it is the HALF_OPEN
// probe and must clear g.probing when done. A call that waited for its slot is admitted
// again once it has one: the breaker may have opened, or gone half-open with the probe
// another's, during the wait. A call refused only because the breaker closed again while
// it woke (a Reset right after the opening) starts over.
func (g *Guard) enter(ctx context.Context) (probe bool, err error) {
	for {
		probe, err = g.admit()
		if err != nil {
			return false, err
		}
		err = g.bulkhead.Acquire(ctx)
		if err == nil {
			st := g.State()
			if st == StateClosed || (probe && st == StateHalfOpen) {
				return probe, nil
			}
			g.bulkhead.Release()
		} else if err != ErrBreakerOpen {
			if probe {
				g.probing.Store(false)
			}
			return false, fmt.Errorf("wait for a %s concurrency slot: %w", g.provider, err)
		}
		if probe {
			g.probing.Store(false)
		}
		switch st := g.State(); st {
		case StateOpen:
			return false, g.openError()
		case StateHalfOpen:
			return false, &OpenError{Provider: g.provider, State: st, RetryAt: g.clock.Now()}
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
	}
}

// admit decides whether a call may start; probe is true when it is the HALF_OPEN probe and
// must clear g.probing when done.
func (g *Guard) admit() (probe bool, err error) {
	if g.Held() == HoldOpen {
		return false, g.openError()
	}
	switch st := g.State(); st {
	case StateClosed:
		return false, nil
	case StateHalfOpen:
		if g.realProbe() && g.probing.CompareAndSwap(false, true) {
			return true, nil
		}
		return false, &OpenError{Provider: g.provider, State: st, RetryAt: g.clock.Now()}
	default:
		return false, g.openError()
	}
}

func (g *Guard) openError() *OpenError {
	g.mu.Lock()
	at := g.retryAt
	g.mu.Unlock()
	return &OpenError{Provider: g.provider, State: StateOpen, RetryAt: at}
}

// normalize classifies bare transport errors; everything else is returned unchanged.
func (g *Guard) normalize(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var se *fault.ServiceError
	if errors.As(err, &se) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return err // the caller's context ended: not the provider's doing
	}
	classified := fault.Classify(fault.Facts{Provider: g.provider, Err: err})
	if fault.KindOf(classified) == fault.KindUnknown {
		return err
	}
	return classified
}

// record tells the breaker how the attempt went, and reports whether err counted as a
// failure. What counts as a provider failure is decided here, not by mercari's ctx sniffing;
// Ignore is applied unwrapped so Done sees it.
func (g *Guard) record(ctx context.Context, err error) (counted bool) {
	counted = err != nil && countsAsFailure(ctx, err)
	if err != nil && !counted {
		err = circuitbreaker.Ignore(err)
	}
	settings := counted && isSettingsError(err)
	g.recordMu.Lock()
	defer g.recordMu.Unlock()
	g.tripNow.Store(settings)
	_ = g.cb.Done(ctx, err)
	g.tripNow.Store(false)
	return counted
}

// isSettingsError reports whether err says the provider refused our settings rather than
// failed: every call would fail the same way until an operator acts.
func isSettingsError(err error) bool {
	switch fault.KindOf(err) {
	case fault.KindConfiguration, fault.KindPermission:
		return true
	}
	return false
}

// countsAsFailure reports whether err is evidence that the provider is failing.
func countsAsFailure(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false // the caller gave up (shutdown, its own deadline)
	}
	var se *fault.ServiceError
	if !errors.As(err, &se) {
		return false // cancellations and unclassified errors say nothing about the provider
	}
	if errors.Is(err, fault.ErrOwnLimit) {
		return false // our own budget ran out: nothing to do with the provider
	}
	switch se.Kind {
	case fault.KindInvalidPayload, fault.KindConcurrencyLimit:
		return false
	default:
		return true
	}
}

// lowerConcurrency shrinks the bulkhead after the provider refused for concurrency: to one
// below the calls in flight (this one included), never below 1, never upwards.
func (g *Guard) lowerConcurrency(err error) {
	to := max(g.bulkhead.InUse()-1, 1)
	before, changed := g.bulkhead.lower(to)
	if !changed {
		return
	}
	g.log.WithFields(logrus.Fields{
		"service":        g.provider,
		"error_category": fault.KindConcurrencyLimit.String(),
		"circuit_state":  string(g.State()),
	}).Warnf("%s refused a call for concurrency (%v): lowering our concurrency from %d to %d", g.provider, err, before, to)
}

// onStateChange is mercari's hook. It runs with the breaker's lock held, so it must not call
// g.cb; it may also repeat a state (OPEN→OPEN), which is dropped here.
//
// One race is left to heal itself: if Reset closes an OPEN breaker while mercari's open timer
// is already firing, the timer then moves CLOSED→HALF_OPEN. That is logged and reported like
// any transition, and the half-open probe (the health checker's, or one real call) closes the
// breaker again.
func (g *Guard) onStateChange(_, to circuitbreaker.State) {
	next := &closedState
	switch to {
	case circuitbreaker.StateOpen:
		next = &openState
	case circuitbreaker.StateHalfOpen:
		next = &halfOpenState
	}
	now := g.clock.Now()

	g.mu.Lock()
	prev := *g.state.Load()
	if prev == *next {
		g.mu.Unlock()
		return
	}
	if *next == StateOpen {
		// The failure that opened it says why, set before anyone can see the new state: a
		// probe must not close a breaker a settings error opened. A failure recorded while it
		// is already open changes nothing (no transition).
		g.settingsOpen.Store(g.tripNow.Load())
	}
	// The bulkhead follows the breaker: refusing while OPEN (waiters wake with *OpenError),
	// admitting the probe when HALF_OPEN, and in slow start once CLOSED, so the calls held
	// during the outage do not all hit the provider at once. It refuses after the state is
	// OPEN, and admits before the state leaves OPEN, so a woken caller reads the state that
	// woke it.
	switch *next {
	case StateHalfOpen:
		g.bulkhead.admit()
	case StateClosed:
		g.bulkhead.slowStart()
	}
	g.state.Store(next)
	if *next == StateOpen {
		g.bulkhead.refuseAll()
	}
	if *next == StateOpen {
		g.retryAt = now.Add(g.openTimeout)
	} else {
		g.retryAt = time.Time{}
	}
	retryAt := g.retryAt
	if g.listener != nil {
		g.events = append(g.events, transition{from: prev, to: *next, at: now})
		if !g.flushing {
			g.flushing = true
			go g.flush()
		}
	}
	g.mu.Unlock()

	e := g.log.WithFields(logrus.Fields{"service": g.provider, "circuit_state": string(*next)})
	switch *next {
	case StateOpen:
		e.WithField("retry_at", retryAt).Errorf("Circuit breaker OPENED for %s", g.provider)
		select {
		case g.opened <- struct{}{}:
		default:
		}
	case StateHalfOpen:
		e.Infof("Circuit breaker HALF_OPEN for %s", g.provider)
		select {
		case g.halfOpen <- struct{}{}:
		default:
		}
	default:
		g.settingsOpen.Store(false)
		e.Infof("Circuit breaker CLOSED for %s", g.provider)
	}
}

// flush delivers queued transitions to the listener, in order, outside every lock. At most
// one flush runs per guard; it ends when the queue is empty.
func (g *Guard) flush() {
	for {
		g.mu.Lock()
		if len(g.events) == 0 {
			g.flushing = false
			g.events = nil
			g.mu.Unlock()
			return
		}
		ev := g.events[0]
		g.events = g.events[1:]
		g.mu.Unlock()
		g.listener.BreakerStateChanged(g.provider, ev.from, ev.to, ev.at)
	}
}
