package alert

import (
	"fmt"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/resilience"
)

// DefaultServiceDownAfter is how long a breaker stays open before service_down is emitted.
const DefaultServiceDownAfter = 5 * time.Minute

// BreakerAlertsOptions configures BreakerAlerts. Zero fields take the defaults.
type BreakerAlertsOptions struct {
	// ServiceDownAfter (SERVICE_DOWN_ALERT_AFTER, default 5m) is how long a breaker must
	// stay open (OPEN and HALF_OPEN, without closing) before service_down is emitted, once
	// per outage. Negative disables service_down.
	ServiceDownAfter time.Duration
	// Clock runs the service-down timers; nil is the real clock.
	Clock clock.Clock
	// Logger receives a warning when an event cannot be emitted; nil discards.
	Logger *logrus.Logger
}

// BreakerAlerts turns one worker's breaker transitions into alert events. It implements
// resilience.StateListener: chain it after the worker's own listener.
//
// Per provider it tracks one outage, from the first OPEN to the next CLOSED:
//
//	CLOSED → OPEN          breaker_opened, and a timer for service_down
//	HALF_OPEN → OPEN       breaker_opened again (a failed probe: the dispatcher counts it as a
//	                       repeat and as proof this worker still sees the provider down)
//	OPEN → OPEN (repeated) nothing: the hook may fire twice for one transition
//	timer fires            service_down, once per outage
//	→ CLOSED               breaker_closed with the outage's duration; the timer stops
//	CLOSED → HALF_OPEN     nothing (a race of Reset with the open timer; no outage)
//
// It never blocks: it emits through an EventSink (the Emitter's queue). Safe for
// concurrent use; Close stops every timer.
type BreakerAlerts struct {
	sink      EventSink
	downAfter time.Duration
	clock     clock.Clock
	log       *logrus.Logger

	mu      sync.Mutex
	closed  bool
	gen     uint64 // numbers outages, so a late timer cannot fire for the next one
	outages map[string]*outage
}

// outage is one provider's current outage on this worker.
type outage struct {
	since time.Time
	state resilience.State
	timer *clock.Timer
	gen   uint64 // identifies the outage the timer belongs to
}

// NewBreakerAlerts returns a listener that emits to sink.
func NewBreakerAlerts(sink EventSink, o BreakerAlertsOptions) *BreakerAlerts {
	if o.ServiceDownAfter == 0 {
		o.ServiceDownAfter = DefaultServiceDownAfter
	}
	if o.Clock == nil {
		o.Clock = clock.New()
	}
	return &BreakerAlerts{
		sink:      sink,
		downAfter: o.ServiceDownAfter,
		clock:     o.Clock,
		log:       loggerOrDiscard(o.Logger),
		outages:   map[string]*outage{},
	}
}

// BreakerStateChanged implements resilience.StateListener.
func (b *BreakerAlerts) BreakerStateChanged(provider string, from, to resilience.State, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	o := b.outages[provider]
	switch to {
	case resilience.StateOpen:
		switch {
		case o == nil:
			b.gen++
			o = &outage{since: at, state: to, gen: b.gen}
			b.outages[provider] = o
			if b.downAfter > 0 {
				gen := o.gen
				o.timer = b.clock.AfterFunc(b.downAfter, func() { b.serviceDown(provider, gen) })
			}
			b.emit(Event{Kind: KindBreakerOpened, Provider: provider, Time: at,
				Message: fmt.Sprintf("Circuit breaker OPENED for %s: calls to it fail fast", provider)})
		case o.state == resilience.StateOpen:
			// OPEN→OPEN: the hook fired twice for one transition.
		default:
			o.state = to
			b.emit(Event{Kind: KindBreakerOpened, Provider: provider, Time: at,
				Message: fmt.Sprintf("Circuit breaker OPENED again for %s after a failed probe (down for %s)",
					provider, formatDuration(at.Sub(o.since)))})
		}
	case resilience.StateHalfOpen:
		if o != nil {
			o.state = to
		}
	case resilience.StateClosed:
		if o == nil {
			return
		}
		if o.timer != nil {
			o.timer.Stop()
		}
		delete(b.outages, provider)
		b.emit(Event{Kind: KindBreakerClosed, Provider: provider, Time: at,
			Message: fmt.Sprintf("Circuit breaker CLOSED for %s after %s", provider, formatDuration(at.Sub(o.since)))})
	}
}

// serviceDown runs on the timer: the outage gen is still going on.
func (b *BreakerAlerts) serviceDown(provider string, gen uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o := b.outages[provider]
	if b.closed || o == nil || o.gen != gen {
		return
	}
	now := b.clock.Now()
	b.emit(Event{Kind: KindServiceDown, Provider: provider, Time: now,
		Message: fmt.Sprintf("%s has been down for %s (circuit breaker open since %s)",
			provider, formatDuration(now.Sub(o.since)), formatTime(o.since))})
}

// emit hands ev to the sink; called with b.mu held, which is fine: Emit never blocks.
func (b *BreakerAlerts) emit(ev Event) {
	if err := b.sink.Emit(ev); err != nil {
		b.log.WithError(err).WithField("service", ev.Provider).Warnf("Could not emit %s alert", ev.Kind)
	}
}

// Close stops every service-down timer; later transitions are ignored. Idempotent.
func (b *BreakerAlerts) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, o := range b.outages {
		if o.timer != nil {
			o.timer.Stop()
		}
	}
}
