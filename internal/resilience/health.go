package resilience

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/fault"
)

// Defaults for NewHealthChecker.
const (
	DefaultHealthInterval = 60 * time.Second
	DefaultHealthTimeout  = 5 * time.Second
	// DefaultOpenProbeInterval is the first wait between probes while the breaker is not
	// closed (see SetOpenInterval).
	DefaultOpenProbeInterval = time.Second
)

// Prober checks that a provider answers, with a cheap real request (ElevenLabs and OpenAI:
// GET /v1/models). It returns nil when healthy and the provider's classified error
// otherwise; it must return when ctx ends.
type Prober interface {
	Probe(ctx context.Context) error
}

// HealthStats counts a HealthChecker's probes.
type HealthStats struct {
	// Probes is the number of probes that completed (not cut short by shutdown).
	Probes uint64
	// Failures is how many of them failed, in any breaker state.
	Failures uint64
	// ConsecutiveFailures is the current run of failed probes; 0 after a success.
	ConsecutiveFailures uint64
	// Resets is how many times a successful probe closed the breaker.
	Resets uint64
}

// HealthChecker probes one provider in the background and closes its breaker when the
// provider is healthy again, so recovery never depends on real traffic (the worker stops
// taking contacts while a breaker is open).
//
// It probes at once, then every interval while the breaker is closed, and on the open
// schedule (see SetOpenInterval) while it is not. It is the half-open probe: when the breaker
// goes HALF_OPEN its next scheduled probe (at once, when it has none) tests the provider, and
// meanwhile the Guard refuses real calls in HALF_OPEN. A successful probe while OPEN or
// HALF_OPEN logs "<provider> is healthy" and resets the breaker (whose bulkhead then
// restarts in slow start); a failed half-open probe re-opens it (it counts like a real
// call); a failed probe while CLOSED is logged and counted but does not trip the breaker. A
// probe refused only for a missing permission (fault.KindPermission: the key is known but
// scoped, e.g. without ElevenLabs' models_read) is healthy, warned about once. Run one
// HealthChecker per Guard.
type HealthChecker struct {
	g         *Guard
	p         Prober
	interval  time.Duration
	timeout   time.Duration
	clock     clock.Clock
	realClock bool
	log       *logrus.Entry

	openInterval time.Duration
	jitter       func() float64      // in [0, 1); spreads the probes of many workers
	outageStart  time.Time           // when next first saw the breaker not closed; zero while on the interval; only Run's goroutine touches it
	scheduled    func(time.Duration) // test hook: told each wait the timer was set to; nil in production
	gate         ProbeGate           // nil: every probe of an open breaker runs
	wait         time.Duration       // the wait before the probe at hand; only Run's goroutine touches it

	healthy                                   bool // last probe succeeded; only Run's goroutine touches it
	permissionWarned                          bool // the scoped-key warning was logged; only Run's goroutine touches it
	probes, failures, consecutive, resetCount atomic.Uint64
}

// NewHealthChecker returns a checker for g's provider that calls p every interval (default
// 60s) with timeout per probe (default 5s), timed on c (nil means the real clock), logging
// to logger (nil discards). It starts nothing: call Run.
func NewHealthChecker(g *Guard, p Prober, interval, timeout time.Duration, c clock.Clock, logger *logrus.Logger) *HealthChecker {
	if interval <= 0 {
		interval = DefaultHealthInterval
	}
	if timeout <= 0 {
		timeout = DefaultHealthTimeout
	}
	c, real := clockOrReal(c)
	return &HealthChecker{
		g:            g,
		p:            p,
		interval:     interval,
		timeout:      timeout,
		openInterval: DefaultOpenProbeInterval,
		jitter:       rand.Float64,
		clock:        c,
		realClock:    real,
		log:          loggerOrDiscard(logger).WithField("service", g.Provider()),
	}
}

// openBackoffDivisor sets how the open-breaker probes back off: the wait between two probes
// is at least the open interval and at most a tenth of the outage so far, so a provider that
// recovers is seen within max(open interval, 10% of the outage's length).
const openBackoffDivisor = 10

// SetOpenInterval sets how often the checker probes while the breaker is not closed: the
// first probe of an outage comes a random d/2 to d after the breaker opened (the random part
// keeps the workers of a fleet from probing in step), then one every d, until the outage has
// lasted 10 × d; from then on the wait is a tenth of the outage so far, at most the breaker's
// open timeout. With d = 1 s a provider that comes back is seen within about one second for
// the first 10 s of an outage, and within 10% of the outage's length after that (3 s after
// a 30 s outage), at a cost of 10 probes for the first 10 s, about 30 for the first minute
// and 155 for an hour (a fixed 1 s would be 3,600, the seed's 60 s interval 60 but a minute's
// delay). At most one probe per wait: the half-open transition does not add one (the next
// scheduled probe is the half-open probe), and a breaker that re-opens after a failed
// half-open probe keeps the schedule of its outage. d <= 0 keeps the default (1 s). Call it
// before Run.
func (h *HealthChecker) SetOpenInterval(d time.Duration) {
	if d > 0 {
		h.openInterval = d
	}
}

// next is the wait before the next probe: the interval while CLOSED, the open schedule (see
// SetOpenInterval) otherwise. It starts an outage's schedule when it first sees the breaker
// not closed, and ends it when it sees the breaker closed.
func (h *HealthChecker) next() time.Duration {
	if h.g.State() == StateClosed || h.openInterval <= 0 { // <= 0: only the interval (tests)
		h.outageStart = time.Time{}
		return h.interval
	}
	now := h.clock.Now()
	d := h.openInterval
	if ot := h.g.openTimeout; ot > 0 && d > ot {
		d = ot
	}
	if h.outageStart.IsZero() {
		h.outageStart = now
		return d/2 + time.Duration(float64(d/2)*h.jitter())
	}
	wait := max(d, now.Sub(h.outageStart)/openBackoffDivisor)
	if ot := h.g.openTimeout; ot > 0 && wait > ot {
		wait = ot
	}
	return wait
}

// onSchedule reports whether the timer is set on an outage's schedule: its next probe is
// at most one wait away, and it will be the half-open probe if the breaker gets there first.
func (h *HealthChecker) onSchedule() bool { return !h.outageStart.IsZero() }

// Stats returns the probe counters; safe to call at any time.
func (h *HealthChecker) Stats() HealthStats {
	return HealthStats{
		Probes:              h.probes.Load(),
		Failures:            h.failures.Load(),
		ConsecutiveFailures: h.consecutive.Load(),
		Resets:              h.resetCount.Load(),
	}
}

// Run probes until ctx is done, then returns (at once: a probe in flight is cancelled). It
// blocks; the caller runs it in a goroutine it owns and waits for it. Call it once.
func (h *HealthChecker) Run(ctx context.Context) {
	provider := h.g.Provider()
	h.log.Infof("Health checker started for %s", provider)
	defer h.log.Infof("Health checker stopped for %s", provider)
	h.g.checkers.Add(1)
	defer h.g.checkers.Add(-1)

	// The timer exists before the first probe, so the schedule is interval after start.
	timer := h.clock.Timer(h.interval)
	defer timer.Stop()
	reset := func() {
		d := h.next()
		h.wait = d
		timer.Stop()
		timer.Reset(d)
		if h.scheduled != nil {
			h.scheduled(d)
		}
	}
	h.check(ctx)
	if h.g.State() != StateClosed {
		reset()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			h.check(ctx)
			reset()
		case <-h.g.opened:
			// Probe soon: the sooner a recovery is seen, the shorter the outage. A breaker
			// that re-opens after its half-open probe keeps its outage's schedule.
			if !h.onSchedule() && h.g.State() != StateClosed {
				reset()
			}
		case <-h.g.halfOpen:
			// The checker owns the half-open probe. On an outage's schedule it is the next
			// scheduled probe, at most one wait away: probing now as well would probe twice
			// in one wait.
			if !h.onSchedule() {
				h.check(ctx)
				reset()
			}
		}
	}
}

// ProbeGate decides whether this replica probes a provider whose breaker is not closed, for
// the probe interval at hand: fleet.SharedBreakers grants one replica a lease, so one probe a
// interval runs fleet-wide. It must not block longer than a short KV round trip, and grant
// the probe when it cannot tell.
type ProbeGate func(ctx context.Context, provider string, interval time.Duration) bool

// SetProbeGate makes the probes of a breaker that is not closed ask gate first. Call it
// before Run.
func (h *HealthChecker) SetProbeGate(gate ProbeGate) { h.gate = gate }

// check makes one probe and acts on it.
func (h *HealthChecker) check(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if h.g.Held() == HoldOpen {
		return // an operator holds it open: nothing to learn
	}
	// The lease lasts as long as this checker's wait, which grows with the outage: one probe a
	// wait fleet-wide, not one a HEALTH_CHECK_OPEN_INTERVAL per replica late in an outage.
	if h.gate != nil && h.g.State() != StateClosed && !h.gate(ctx, h.g.Provider(), max(h.openInterval, h.wait)) {
		return // another replica probes this interval
	}
	halfOpen := h.g.State() == StateHalfOpen
	if halfOpen && h.g.SettingsOpen() {
		return // a settings error: the half-open probe is a real call (see Guard.SettingsOpen)
	}
	if halfOpen {
		if !h.g.probing.CompareAndSwap(false, true) {
			return // a call admitted before this checker started is the probe
		}
		defer h.g.probing.Store(false)
	}

	pctx, cancel := withTimeout(ctx, h.clock, h.realClock, h.timeout)
	err := h.p.Probe(pctx)
	timedOut := errors.Is(pctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
	cancel()
	if err != nil && timedOut && fault.KindOf(err) == fault.KindUnknown {
		// The probe's own deadline passed: a provider timeout, whatever the prober made of it.
		err = fault.Classify(fault.Facts{Provider: h.g.Provider(),
			Err: fmt.Errorf("health probe timed out after %s: %w", h.timeout, context.DeadlineExceeded)})
	}
	err = h.g.normalize(ctx, err)
	if ctx.Err() != nil {
		return // stopping: the result says nothing about the provider
	}
	if fault.KindOf(err) == fault.KindPermission {
		// The provider answered and knows the key; the key only lacks the permission of the
		// probe endpoint (a key scoped to text-to-speech). That proves it is up.
		if !h.permissionWarned {
			h.permissionWarned = true
			h.log.WithField("error_category", fault.KindPermission.String()).Warnf(
				"Health probe of %s: the API key lacks the permission of the probe endpoint (%v); counting the answer as healthy. Grant the permission to silence this warning.",
				h.g.Provider(), err)
		}
		err = nil
	}
	h.probes.Add(1)
	provider := h.g.Provider()

	if err == nil {
		h.consecutive.Store(0)
		wasHealthy := h.healthy
		h.healthy = true
		if h.g.SettingsOpen() {
			h.log.WithField("circuit_state", string(h.g.State())).Debugf(
				"%s answers its health probe, but its breaker opened on a settings error; a real call tests the settings after the open timeout", provider)
			return
		}
		if h.g.State() != StateClosed {
			h.log.WithField("circuit_state", string(h.g.State())).Infof("%s is healthy", provider)
			h.resetCount.Add(1)
			h.g.Reset()
			return
		}
		if !wasHealthy {
			h.log.WithField("circuit_state", string(StateClosed)).Infof("%s is healthy", provider)
		} else {
			h.log.WithField("circuit_state", string(StateClosed)).Debugf("%s is healthy", provider)
		}
		return
	}

	h.healthy = false
	h.failures.Add(1)
	n := h.consecutive.Add(1)
	if halfOpen {
		h.g.record(ctx, err) // a failed half-open probe re-opens the breaker
	}
	h.log.WithFields(logrus.Fields{
		"error_category": fault.KindOf(err).String(),
		"circuit_state":  string(h.g.State()),
		"failed_probes":  n,
	}).Warnf("Health check failed for %s: %v", provider, err)
}
