package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/resilience"
)

// One breaker per provider for the whole fleet, through a KV bucket.
//
// Replicas write transitions only, never per call: the replica whose breaker trips proposes
// "open" with a compare-and-set write of the provider's record; every replica watches the
// bucket and opens its own breaker when it sees it. While a breaker is not closed, each
// replica's health checker asks for the provider's probe lease (a create-only key that
// expires after the probe interval), so one probe an interval runs fleet-wide; the replica
// whose probe succeeds closes its breaker, writes "closed", and every replica closes. An
// operator's override (publisher breaker open|close) is the same record with a mode and an
// expiry. When the bucket cannot be reached, each replica keeps its local breaker and probes
// on its own, and says so once.

// DefaultBreakerBucket is the shared breakers' KV bucket.
const DefaultBreakerBucket = "breakers"

// Shared breaker states and modes, as stored.
const (
	SharedOpen   = "open"
	SharedClosed = "closed"
	ModeAuto     = "auto"
)

// SharedRecord is a provider's fleet-wide breaker record, key "state.<provider key>".
type SharedRecord struct {
	Provider string    `json:"provider"`
	State    string    `json:"state"` // SharedOpen or SharedClosed
	Since    time.Time `json:"since"`
	By       string    `json:"by"` // the worker (or "publisher") that wrote it
	// Mode is an operator's override: SharedOpen or SharedClosed until Until; "" or ModeAuto
	// is the automatic breaker.
	Mode  string    `json:"mode,omitempty"`
	Until time.Time `json:"until,omitzero"`
}

// Override returns the override in force at now, "" when none.
func (r SharedRecord) Override(now time.Time) string {
	if r.Mode == SharedOpen || r.Mode == SharedClosed {
		if r.Until.IsZero() || now.Before(r.Until) {
			return r.Mode
		}
	}
	return ""
}

// BreakerBucketConfig is the shared breakers' bucket: one value per key, per-key TTLs for the
// probe leases.
func BreakerBucketConfig(name string, replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         name,
		Description:    "fleet-wide circuit breakers: state.<provider> records and probe.<provider> leases",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       max(replicas, 1),
		LimitMarkerTTL: time.Second,
	}
}

// EnsureBreakerBucket opens the shared breakers' bucket, creating it when missing (never
// changing it).
func EnsureBreakerBucket(ctx context.Context, js jetstream.KeyValueManager, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errorsIsBucketNotFound(err) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("shared breakers KV bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// ProviderKey is the key form of a provider's display name ("OpenAI TTS" → "openai-tts").
func ProviderKey(provider string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(provider) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

func stateKey(provider string) string { return "state." + ProviderKey(provider) }
func leaseKey(provider string) string { return "probe." + ProviderKey(provider) }

// SharedBreakers joins this replica's guards to the fleet's breakers. Watch it as a
// resilience.StateListener, give its Gate to the health checkers, and Run it.
type SharedBreakers struct {
	kv     jetstream.KeyValue
	worker string
	log    logrus.FieldLogger
	now    func() time.Time

	mu     sync.Mutex
	guards map[string]*resilience.Guard // by provider key
	timers map[string]*time.Timer       // override expiries
	// caused marks, by provider key, the state a record made this replica's guard take:
	// its transition is the fleet's, not this replica's, and is not proposed back.
	caused map[string]resilience.State

	applyMu sync.Mutex // one apply at a time (the watch and the expiry timers)

	down atomic.Bool // the bucket is unreachable: local breakers only
}

// NewSharedBreakers shares the breakers of guards through kv for worker. It starts nothing.
func NewSharedBreakers(kv jetstream.KeyValue, worker string, log logrus.FieldLogger, guards ...*resilience.Guard) *SharedBreakers {
	s := &SharedBreakers{kv: kv, worker: worker, log: log, now: time.Now,
		guards: map[string]*resilience.Guard{}, timers: map[string]*time.Timer{}, caused: map[string]resilience.State{}}
	for _, g := range guards {
		s.guards[ProviderKey(g.Provider())] = g
	}
	return s
}

// Add joins g to the fleet's breakers (call before the guard sees traffic).
func (s *SharedBreakers) Add(g *resilience.Guard) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.guards[ProviderKey(g.Provider())] = g
}

// opTimeout bounds one KV operation: a slow bucket must not hold a breaker transition or a
// probe for long.
const opTimeout = 2 * time.Second

// BreakerStateChanged implements resilience.StateListener: a local trip proposes "open", a
// local close (this replica's probe succeeded) writes "closed". Transitions the watch caused
// find the record already saying so and write nothing.
func (s *SharedBreakers) BreakerStateChanged(provider string, _, to resilience.State, at time.Time) {
	g := s.guard(provider)
	if g == nil || g.Held() != resilience.HoldNone {
		return
	}
	if s.consumeCaused(provider, to) || g.State() != to {
		return // the fleet's own transition, or a stale one the guard has left already
	}
	var want string
	switch to {
	case resilience.StateOpen:
		if g.SettingsOpen() {
			return // a settings error: each replica finds it with one call; a probe cannot see it
		}
		want = SharedOpen
	case resilience.StateClosed:
		want = SharedClosed
	default:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for range 3 {
		rec, rev, err := s.read(ctx, provider)
		if err != nil {
			s.unavailable(err)
			return
		}
		if rec.State == want || rec.Override(s.now()) != "" || rec.Since.After(at) {
			s.available() // said already, held by an operator, or newer than this transition
			return
		}
		if want == SharedClosed && rev == 0 {
			return // never opened fleet-wide
		}
		next := SharedRecord{Provider: provider, State: want, Since: at, By: s.worker}
		if err = s.write(ctx, provider, next, rev); err == nil {
			s.available()
			s.log.WithField("service", provider).Debugf("Fleet breaker for %s: %s (by %s)", provider, strings.ToUpper(want), s.worker)
			return
		}
		if !IsConflict(err) {
			s.unavailable(err)
			return
		}
	}
}

// Gate is the health checkers' resilience.ProbeGate: it grants the probe of a provider that is
// not closed to the replica that takes its lease for the interval. Without the bucket it
// grants every probe (local breakers).
func (s *SharedBreakers) Gate(ctx context.Context, provider string, interval time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_, err := s.kv.Create(ctx, leaseKey(provider), []byte(s.worker), jetstream.KeyTTL(max(interval, time.Second)))
	switch {
	case err == nil:
		s.available()
		return true
	case errors.Is(err, jetstream.ErrKeyExists):
		s.available()
		return false
	default:
		s.unavailable(err)
		return true
	}
}

// Sync applies the records there are now, before this replica calls anyone: a provider an
// operator holds open is not called or probed in the moment the watch takes to start.
func (s *SharedBreakers) Sync(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	recs, err := ListShared(ctx, s.kv)
	if err != nil {
		s.unavailable(err)
		return
	}
	for _, rec := range recs {
		s.apply(rec)
	}
}

// Run watches the bucket and applies every record to this replica's guards until ctx ends;
// it re-creates the watch after a failure.
func (s *SharedBreakers) Run(ctx context.Context) error {
	defer s.stopTimers()
	for ctx.Err() == nil {
		err := s.watch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		s.unavailable(err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func (s *SharedBreakers) watch(ctx context.Context) error {
	w, err := s.kv.Watch(ctx, "state.*")
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the watch of the shared breakers ended")
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var rec SharedRecord
			if json.Unmarshal(e.Value(), &rec) != nil {
				continue
			}
			s.available()
			s.apply(rec)
		}
	}
}

// apply makes this replica's guard follow rec.
func (s *SharedBreakers) apply(rec SharedRecord) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	g := s.guard(rec.Provider)
	if g == nil {
		return
	}
	s.stopTimer(rec.Provider)
	now := s.now()
	hold := map[string]resilience.Hold{SharedOpen: resilience.HoldOpen, SharedClosed: resilience.HoldClosed}[rec.Override(now)]
	wasHeldOpen := g.Held() == resilience.HoldOpen
	if hold != g.Held() {
		e := s.log.WithField("service", rec.Provider)
		if hold == resilience.HoldNone {
			e.Infof("Fleet breaker for %s back to automatic", rec.Provider)
		} else {
			until := "until released"
			if !rec.Until.IsZero() {
				until = "until " + rec.Until.UTC().Format(time.RFC3339)
			}
			e.Warnf("Fleet breaker for %s held %s by an operator (%s) %s", rec.Provider, strings.ToUpper(rec.Mode), rec.By, until)
		}
		g.SetHold(hold)
	}
	if hold != resilience.HoldNone {
		s.expireAt(rec)
		return
	}
	switch {
	case rec.State == SharedOpen && g.State() == resilience.StateClosed:
		s.markCaused(rec.Provider, resilience.StateOpen)
		g.ForceOpen()
	case rec.State == SharedClosed && g.State() != resilience.StateClosed && !g.SettingsOpen() && !wasHeldOpen:
		// A breaker released from an operator's hold stays open until a probe sees the
		// provider up: the maintenance may not be over.
		s.markCaused(rec.Provider, resilience.StateClosed)
		g.Reset()
	}
}

func (s *SharedBreakers) markCaused(provider string, st resilience.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.caused[ProviderKey(provider)] = st
}

// consumeCaused reports (once) whether the transition to st was caused by a record.
func (s *SharedBreakers) consumeCaused(provider string, st resilience.State) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ProviderKey(provider)
	if c, ok := s.caused[key]; ok && c == st {
		delete(s.caused, key)
		return true
	}
	return false
}

func (s *SharedBreakers) stopTimer(provider string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ProviderKey(provider)
	if t := s.timers[key]; t != nil {
		t.Stop()
		delete(s.timers, key)
	}
}

// expireAt re-applies the provider's current record when rec's override ends, so the guard
// returns to automatic; a newer record applied meanwhile stops the timer.
func (s *SharedBreakers) expireAt(rec SharedRecord) {
	if rec.Until.IsZero() {
		return
	}
	key := ProviderKey(rec.Provider)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timers[key] = time.AfterFunc(time.Until(rec.Until)+10*time.Millisecond, func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		cur, _, err := ReadShared(ctx, s.kv, rec.Provider)
		if err != nil {
			cur = rec // the bucket is away: the expiry still ends the override
		}
		s.apply(cur)
	})
}

func (s *SharedBreakers) stopTimers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.timers {
		t.Stop()
	}
}

func (s *SharedBreakers) guard(provider string) *resilience.Guard {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.guards[ProviderKey(provider)]
}

func (s *SharedBreakers) read(ctx context.Context, provider string) (SharedRecord, uint64, error) {
	return ReadShared(ctx, s.kv, provider)
}

func (s *SharedBreakers) write(ctx context.Context, provider string, rec SharedRecord, rev uint64) error {
	_, err := WriteShared(ctx, s.kv, rec, rev)
	return err
}

func (s *SharedBreakers) unavailable(err error) {
	if s.down.CompareAndSwap(false, true) {
		s.log.Warnf("Fleet breakers unavailable, each breaker works on this worker alone until the bucket answers: %v", err)
	}
}

func (s *SharedBreakers) available() {
	if s.down.CompareAndSwap(true, false) {
		s.log.Info("Fleet breakers available again")
	}
}

// ReadShared reads provider's record and its revision (0 and a zero record when none).
func ReadShared(ctx context.Context, kv jetstream.KeyValue, provider string) (SharedRecord, uint64, error) {
	e, err := kv.Get(ctx, stateKey(provider))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return SharedRecord{}, 0, nil
	}
	if err != nil {
		return SharedRecord{}, 0, err
	}
	var rec SharedRecord
	_ = json.Unmarshal(e.Value(), &rec) // an unreadable record is replaced by the next write
	return rec, e.Revision(), nil
}

// WriteShared writes rec expecting revision rev (0: the record must not exist).
func WriteShared(ctx context.Context, kv jetstream.KeyValue, rec SharedRecord, rev uint64) (uint64, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		return kv.Create(ctx, stateKey(rec.Provider), body)
	}
	return kv.Update(ctx, stateKey(rec.Provider), body, rev)
}

// ListShared returns every provider's record.
func ListShared(ctx context.Context, kv jetstream.KeyValue) ([]SharedRecord, error) {
	w, err := kv.Watch(ctx, "state.*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	var out []SharedRecord
	for e := range w.Updates() {
		if e == nil {
			return out, nil
		}
		var rec SharedRecord
		if json.Unmarshal(e.Value(), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out, nil
}

// IsConflict reports whether a WriteShared was refused because the record changed (or
// appeared) since it was read: read it again and retry.
func IsConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
