package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/resilience"
)

// Store is where a Reporter writes; jetstream.KeyValue satisfies it.
type Store interface {
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error
}

// Breaker is a provider's breaker as the Reporter reads it; *resilience.Guard satisfies it.
type Breaker interface {
	Provider() string
	State() resilience.State
	RetryAt() time.Time
}

// Defaults of ReporterOptions.
const (
	// DefaultRefresh is how often every report is rewritten: a third of DefaultTTL, so one
	// lost write does not make a live worker vanish.
	DefaultRefresh = DefaultTTL / 3
	// DefaultWriteTimeout bounds one write to the bucket.
	DefaultWriteTimeout = 5 * time.Second
)

// ReporterOptions configures a Reporter. Zero fields take the defaults.
type ReporterOptions struct {
	// Refresh is how often every report is rewritten (default 10s); keep it at most a third
	// of the bucket's TTL.
	Refresh time.Duration
	// WriteTimeout bounds one write or delete (default 5s).
	WriteTimeout time.Duration
	// Clock times the refresh and stamps the reports; nil means the real clock.
	Clock clock.Clock
	// Logger receives write failures (once per failure streak); nil discards them.
	Logger logrus.FieldLogger
}

// Reporter keeps one worker's breaker reports current in the fleet bucket. It is a
// resilience.StateListener: a transition marks the provider's report for writing at once. Run
// does the writing. Safe for concurrent use.
type Reporter struct {
	store   Store
	worker  string
	refresh time.Duration
	timeout time.Duration
	clock   clock.Clock
	log     logrus.FieldLogger
	wake    chan struct{}

	mu      sync.Mutex
	entries map[string]*entry // by provider name
	order   []string          // providers in the order first seen
	failing bool              // the last write failed; logged once until one succeeds
}

// entry is what the reporter knows of one provider's breaker.
type entry struct {
	breaker Breaker // nil when only transitions were seen
	state   resilience.State
	since   time.Time
	retryAt time.Time
	dirty   bool
}

// NewReporter returns a reporter that writes worker's reports to store (the bucket from
// EnsureBucket). It starts nothing: add the guards with Watch, pass it as (or chain it from)
// the guards' StateListener, and call Run.
func NewReporter(store Store, worker string, o ReporterOptions) *Reporter {
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Clock == nil {
		o.Clock = clock.New()
	}
	if o.Logger == nil {
		l := logrus.New()
		l.Out = io.Discard
		o.Logger = l
	}
	return &Reporter{
		store:   store,
		worker:  worker,
		refresh: o.Refresh,
		timeout: o.WriteTimeout,
		clock:   o.Clock,
		log:     o.Logger,
		wake:    make(chan struct{}, 1),
		entries: map[string]*entry{},
	}
}

// Watch adds b's provider: its state is reported from now on, read from b at every refresh, so
// the report is right even before the first transition.
func (r *Reporter) Watch(b Breaker) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entryLocked(b.Provider())
	e.breaker = b
	e.state = b.State()
	e.retryAt = b.RetryAt()
	e.dirty = true
	r.signal()
}

// BreakerStateChanged implements resilience.StateListener: the provider's report is written
// at once by Run. It never blocks on the bucket.
func (r *Reporter) BreakerStateChanged(provider string, _, to resilience.State, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entryLocked(provider)
	e.state, e.since, e.dirty = to, at, true
	e.retryAt = time.Time{}
	if e.breaker != nil {
		e.retryAt = e.breaker.RetryAt()
	}
	r.signal()
}

func (r *Reporter) entryLocked(provider string) *entry {
	e, ok := r.entries[provider]
	if !ok {
		e = &entry{state: resilience.StateClosed, since: r.clock.Now()}
		r.entries[provider] = e
		r.order = append(r.order, provider)
	}
	return e
}

func (r *Reporter) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run writes the reports at once, again after each transition, and all of them every refresh
// interval, until ctx ends; then it deletes this worker's reports (within one write timeout:
// stop it before draining the NATS connection) so a clean stop vanishes at once, and returns
// nil. A failed write is logged and tried
// again at the next transition or refresh. Call it once, in a goroutine you wait for.
func (r *Reporter) Run(ctx context.Context) error {
	ticker := r.clock.Ticker(r.refresh)
	defer ticker.Stop()
	r.write(ctx, false)
	for {
		select {
		case <-ctx.Done():
			r.remove(context.WithoutCancel(ctx))
			return nil
		case <-r.wake:
			r.write(ctx, false)
		case <-ticker.C:
			r.write(ctx, true)
		}
	}
}

// write puts the dirty reports, or all of them when all is set.
func (r *Reporter) write(ctx context.Context, all bool) {
	now := r.clock.Now()
	reports := r.collect(now, all)
	var failed []string
	var firstErr error
	for _, rep := range reports {
		if err := r.put(ctx, rep); err != nil {
			if ctx.Err() != nil {
				return // stopping: Run deletes the reports
			}
			failed = append(failed, rep.Provider)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range failed {
		r.entries[p].dirty = true
	}
	switch {
	case firstErr != nil && !r.failing:
		r.failing = true
		r.log.WithError(firstErr).Warnf("Could not publish the breaker states of %s to the fleet bucket; will try again", r.worker)
	case firstErr == nil && len(reports) > 0 && r.failing:
		r.failing = false
		r.log.Infof("Publishing the breaker states of %s to the fleet bucket again", r.worker)
	}
}

// collect builds the reports to write and clears their dirty marks. A watched breaker's state
// is read from it, so a transition not yet delivered (or missed) is reported anyway.
func (r *Reporter) collect(now time.Time, all bool) []Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Report
	for _, p := range r.order {
		e := r.entries[p]
		if b := e.breaker; b != nil {
			if st := b.State(); st != e.state {
				e.state, e.since = st, now
			}
			e.retryAt = b.RetryAt()
		}
		if !all && !e.dirty {
			continue
		}
		e.dirty = false
		rep := Report{Worker: r.worker, Provider: p, State: e.state, Since: e.since.UTC(), UpdatedAt: now.UTC()}
		if e.state == resilience.StateOpen && !e.retryAt.IsZero() {
			rep.RetryAt = e.retryAt.UTC()
		}
		out = append(out, rep)
	}
	return out
}

func (r *Reporter) put(ctx context.Context, rep Report) error {
	body, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode the fleet report %s: %w", rep.Key(), err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if _, err := r.store.Put(ctx, rep.Key(), body); err != nil {
		return fmt.Errorf("write the fleet report %s: %w", rep.Key(), err)
	}
	return nil
}

// remove deletes this worker's reports, all within one write timeout.
func (r *Reporter) remove(ctx context.Context) {
	r.mu.Lock()
	providers := append([]string(nil), r.order...)
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var errs []error
	for _, p := range providers {
		if err := r.store.Delete(ctx, Key(r.worker, p)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			errs = append(errs, fmt.Errorf("delete the fleet report %s: %w", Key(r.worker, p), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		r.log.WithError(err).Warnf("Could not remove the breaker states of %s from the fleet bucket; they expire with its TTL", r.worker)
	}
}
