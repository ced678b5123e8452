package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/redact"
)

// Defaults for EmitterOptions.
const (
	DefaultQueueSize      = 1024
	DefaultPublishTimeout = 5 * time.Second
	DefaultDrainTimeout   = 5 * time.Second
	// publishAttempts bounds the tries of one event before it is counted as failed.
	publishAttempts = 3
)

// Errors Emit returns; the event is not published and is counted as dropped.
var (
	// ErrQueueFull: the publishing queue is full (NATS is slow or away).
	ErrQueueFull = errors.New("alert queue full: event dropped")
	// ErrEmitterClosed: Run's context has ended.
	ErrEmitterClosed = errors.New("alert emitter closed: event dropped")
)

// EventSink takes alert events without blocking. *Emitter is the implementation;
// BreakerAlerts emits through it.
type EventSink interface {
	Emit(ev Event) error
}

// EmitterOptions configures an Emitter. Zero fields take the defaults.
type EmitterOptions struct {
	// Topology gives the stream and subject prefix (zero fields: defaults).
	Topology Topology
	// Source names this worker in every event (Event.Source), e.g. the worker id.
	Source string
	// QueueSize (ALERT_QUEUE_SIZE, default 1024) bounds the events waiting to be published;
	// beyond it Emit drops and counts.
	QueueSize int
	// PublishTimeout bounds one publish attempt (default 5s).
	PublishTimeout time.Duration
	// DrainTimeout bounds how long Run goes on publishing the queued events once its context
	// has ended (default 5s).
	DrainTimeout time.Duration
	// Redactor removes secrets and phone numbers from event text; nil redacts credential
	// shapes and phone numbers only.
	Redactor *redact.Redactor
	// Clock stamps events; nil is the real clock.
	Clock clock.Clock
	// Logger receives drop and publish-failure warnings; nil discards.
	Logger *logrus.Logger
}

// EmitterStats counts what an Emitter did.
type EmitterStats struct {
	// Emitted events were accepted by Emit.
	Emitted int64
	// Published events are stored in the stream (duplicates included).
	Published int64
	// Dropped events were refused by Emit (queue full, closed, invalid).
	Dropped int64
	// Failed events were accepted but could not be published (NATS away for all attempts,
	// or still queued when Run's drain timed out).
	Failed int64
}

// Emitter publishes alert events to the alerts stream without ever blocking its caller:
// Emit puts the event on a bounded queue and Run publishes the queue in order, each with
// Nats-Msg-Id = event id. When the queue is full the event is dropped, counted and logged
// (the first drop, then every 100th). Safe for concurrent use.
type Emitter struct {
	js      jetstream.JetStream
	topo    Topology
	source  string
	timeout time.Duration
	drain   time.Duration
	red     *redact.Redactor
	clock   clock.Clock
	log     *logrus.Logger

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	queue  chan Event
	ran    atomic.Bool

	emitted, published, dropped, failed atomic.Int64
}

// NewEmitter returns an Emitter publishing with js once Run runs; events emitted before wait
// in the queue. The alerts stream should exist (see Ensure); events published before it does
// fail and are counted.
func NewEmitter(js jetstream.JetStream, o EmitterOptions) *Emitter {
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.Clock == nil {
		o.Clock = clock.New()
	}
	return &Emitter{
		js:      js,
		topo:    o.Topology.WithDefaults(),
		source:  o.Source,
		timeout: o.PublishTimeout,
		drain:   o.DrainTimeout,
		red:     o.Redactor,
		clock:   o.Clock,
		log:     loggerOrDiscard(o.Logger),
		queue:   make(chan Event, o.QueueSize),
	}
}

// Emit completes ev (ID, Time, Source, Severity, DedupKey when empty), redacts and bounds
// its text and queues it for publishing. It never blocks: it returns ErrQueueFull or
// ErrEmitterClosed when the event is dropped, or an error wrapping ErrInvalidEvent.
func (e *Emitter) Emit(ev Event) error {
	ev = e.complete(ev)
	if err := ev.Validate(); err != nil {
		e.dropped.Add(1)
		return err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		e.drop(ev, "the emitter is closed")
		return ErrEmitterClosed
	}
	select {
	case e.queue <- ev:
		e.emitted.Add(1)
		return nil
	default:
		e.drop(ev, "the queue is full")
		return ErrQueueFull
	}
}

func (e *Emitter) complete(ev Event) Event {
	if ev.ID == "" {
		ev.ID = "evt_" + nuid.Next()
	}
	if ev.Time.IsZero() {
		ev.Time = e.clock.Now()
	}
	ev.Time = ev.Time.UTC()
	if ev.Source == "" {
		ev.Source = e.source
	}
	if ev.Severity == "" {
		ev.Severity = ev.Kind.DefaultSeverity()
	}
	ev = ev.sanitized(e.red)
	if ev.DedupKey == "" && ev.Kind.Valid() {
		ev.DedupKey = DedupKey(ev.Provider, ev.Kind)
	}
	return ev
}

func (e *Emitter) drop(ev Event, why string) {
	n := e.dropped.Add(1)
	if n == 1 || n%100 == 0 {
		e.log.WithField("alert_kind", string(ev.Kind)).
			Warnf("Alert event dropped because %s (%d dropped so far): %s", why, n, ev.Message)
	}
}

// Stats returns the counters.
func (e *Emitter) Stats() EmitterStats {
	return EmitterStats{
		Emitted:   e.emitted.Load(),
		Published: e.published.Load(),
		Dropped:   e.dropped.Load(),
		Failed:    e.failed.Load(),
	}
}

// Run publishes the queued events in order until ctx ends. Then it stops accepting events
// (Emit returns ErrEmitterClosed) and goes on publishing those still queued, the one it was
// publishing first, for at most DrainTimeout; events left when that ends are counted as
// failed, and Run returns an error wrapping context.DeadlineExceeded. Run runs once: a second
// call returns an error at once.
func (e *Emitter) Run(ctx context.Context) error {
	if !e.ran.CompareAndSwap(false, true) {
		return errors.New("alert emitter: Run called twice")
	}
	for {
		select {
		case <-ctx.Done():
			return e.drainQueue(ctx)
		case ev := <-e.queue:
			err := e.publish(ctx, ev)
			if err != nil && ctx.Err() != nil {
				return e.drainQueue(ctx, ev) // cut off by the end of ctx: published again
			}
			e.count(ev, err)
		}
	}
}

// drainQueue stops Emit, then publishes first and every event still queued until
// DrainTimeout has passed since ctx ended.
func (e *Emitter) drainQueue(ctx context.Context, first ...Event) error {
	e.mu.Lock()
	e.closed = true
	close(e.queue)
	e.mu.Unlock()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.drain)
	defer cancel()
	cut := 0 // events the deadline left unpublished
	publish := func(ev Event) {
		if dctx.Err() != nil {
			cut++
			e.failed.Add(1)
			return
		}
		err := e.publish(dctx, ev)
		if err != nil && dctx.Err() != nil {
			cut++
		}
		e.count(ev, err)
	}
	for _, ev := range first {
		publish(ev)
	}
	for ev := range e.queue {
		publish(ev)
	}
	if cut > 0 {
		return fmt.Errorf("%d alert events were not published within %s of shutdown: %w", cut, e.drain, context.DeadlineExceeded)
	}
	return nil
}

// count records the outcome of publishing ev.
func (e *Emitter) count(ev Event, err error) {
	if err != nil {
		n := e.failed.Add(1)
		e.log.WithError(err).WithField("alert_kind", string(ev.Kind)).
			Warnf("Could not publish alert event (%d lost so far): %s", n, ev.Message)
		return
	}
	e.published.Add(1)
}

// publish stores ev in the stream, trying publishAttempts times with a short pause.
func (e *Emitter) publish(ctx context.Context, ev Event) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode alert event %s: %w", ev.ID, err)
	}
	var last error
	for attempt := 1; attempt <= publishAttempts; attempt++ {
		msg := nats.NewMsg(ev.Subject(e.topo.SubjectPrefix))
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
		pctx, cancel := context.WithTimeout(ctx, e.timeout)
		_, last = e.js.PublishMsg(pctx, msg, jetstream.WithExpectStream(e.topo.Stream))
		cancel()
		if last == nil {
			return nil
		}
		if ctx.Err() != nil || attempt == publishAttempts {
			break
		}
		// A real-time pause: it paces NATS retries, not alert logic, so it ignores e.clock.
		t := time.NewTimer(time.Duration(attempt) * 200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	return fmt.Errorf("publish alert event %s to %s: %w", ev.ID, ev.Subject(e.topo.SubjectPrefix), last)
}
