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
// It probes at once, then every interval. When the breaker goes HALF_OPEN it probes at once
// and is the half-open probe: while it runs, the Guard refuses real calls in HALF_OPEN. A
// successful probe while OPEN or HALF_OPEN logs "<provider> is healthy" and resets the
// breaker; a failed half-open probe re-opens it (it counts like a real call); a failed probe
// while CLOSED is logged and counted but does not trip the breaker. A probe refused only for
// a missing permission (fault.KindPermission: the key is known but scoped, e.g. without
// ElevenLabs' models_read) is healthy, warned about once. Run one HealthChecker per Guard.
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
	openProbes   int                 // probes since the breaker left CLOSED; only Run's goroutine touches it
	scheduled    func(time.Duration) // test hook: told each wait the timer was set to; nil in production

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

// maxOpenBackoffShift caps the backoff of probes while open at 4 × the open interval.
const maxOpenBackoffShift = 2

// SetOpenInterval sets how soon the checker probes once the breaker has opened: after d,
// then 2d, then every 4d (never more than the breaker's open timeout), each wait stretched by a random 0–50% so
// the workers of a fleet do not probe in step. A provider that recovers is then found within
// about one probe interval, where the seed's 60 s interval (kept while the breaker is closed)
// would leave an outage of 10 s costing a minute. d <= 0 keeps the default (1 s). Call it
// before Run.
func (h *HealthChecker) SetOpenInterval(d time.Duration) {
	if d > 0 {
		h.openInterval = d
	}
}

// next is the wait before the next probe: the interval while CLOSED, the backed-off open
// interval otherwise.
func (h *HealthChecker) next() time.Duration {
	if h.g.State() == StateClosed || h.openInterval <= 0 { // <= 0: only the interval (tests)
		h.openProbes = 0
		return h.interval
	}
	// Back off to at most maxOpenBackoff × the open interval (and the open timeout): a
	// recovery is then seen within a few seconds however long the outage lasted.
	d := h.openInterval << min(h.openProbes, maxOpenBackoffShift)
	if ot := h.g.openTimeout; ot > 0 && d > ot {
		d = ot
	}
	h.openProbes++
	return d + time.Duration(float64(d)*0.5*h.jitter())
}

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
			// Probe soon: the sooner a recovery is seen, the shorter the outage.
			h.openProbes = 0
			reset()
		case <-h.g.halfOpen:
			h.check(ctx)
		}
	}
}

// check makes one probe and acts on it.
func (h *HealthChecker) check(ctx context.Context) {
	if ctx.Err() != nil {
		return
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
