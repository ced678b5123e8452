package resilience

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/avast/retry-go/v4"
	"github.com/benbjohnson/clock"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/fault"
)

// Defaults for RetryPolicy (the seed's code: 3 attempts, waits 5s then 10s).
const (
	DefaultMaxAttempts   = 3
	DefaultInitialDelay  = 5 * time.Second
	DefaultMultiplier    = 2.0
	DefaultRetryAfterCap = 30 * time.Second
)

// RetryPolicy is the in-process retry schedule of one step. Zero fields take the defaults.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts in all, the first included (default 3). There is
	// no "forever".
	MaxAttempts int
	// InitialDelay is the wait after the first failed attempt (default 5s).
	InitialDelay time.Duration
	// Multiplier grows each following wait (default 2: 5s, 10s, 20s…).
	Multiplier float64
	// MaxDelay caps each computed wait; 0 means no cap.
	MaxDelay time.Duration
	// Jitter draws each wait uniformly from [0, wait] (full jitter), after the MaxDelay cap.
	Jitter bool
	// RetryAfterCap is the longest provider Retry-After honoured in process (default 30s);
	// a longer one ends the loop with *DeferError so the contact waits in the queue.
	RetryAfterCap time.Duration
}

// DefaultRetryPolicy returns the seed's schedule.
func DefaultRetryPolicy() RetryPolicy { return RetryPolicy{}.WithDefaults() }

// WithDefaults returns p with zero (or negative) fields replaced by the defaults; MaxDelay
// and Jitter have no default.
func (p RetryPolicy) WithDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.InitialDelay <= 0 {
		p.InitialDelay = DefaultInitialDelay
	}
	if p.Multiplier <= 0 {
		p.Multiplier = DefaultMultiplier
	}
	if p.MaxDelay < 0 {
		p.MaxDelay = 0
	}
	if p.RetryAfterCap <= 0 {
		p.RetryAfterCap = DefaultRetryAfterCap
	}
	return p
}

// Validate reports the first invalid field; zero means "default" and is valid.
func (p RetryPolicy) Validate() error {
	switch {
	case p.MaxAttempts < 0:
		return fmt.Errorf("retry max attempts must not be negative, got %d", p.MaxAttempts)
	case p.InitialDelay < 0:
		return fmt.Errorf("retry initial delay must not be negative, got %s", p.InitialDelay)
	case p.Multiplier != 0 && (p.Multiplier < 1 || math.IsNaN(p.Multiplier) || math.IsInf(p.Multiplier, 0)):
		return fmt.Errorf("retry multiplier must be at least 1, got %g", p.Multiplier)
	case p.MaxDelay < 0:
		return fmt.Errorf("retry max delay must not be negative, got %s", p.MaxDelay)
	case p.RetryAfterCap < 0:
		return fmt.Errorf("retry-after cap must not be negative, got %s", p.RetryAfterCap)
	}
	return nil
}

// Wait returns the wait before retry number retry (1 is the wait after the first failed
// attempt), without jitter: InitialDelay × Multiplier^(retry-1), capped by MaxDelay. With
// the defaults Wait(1)=5s, Wait(2)=10s, Wait(3)=20s. Zero fields take the defaults; retry
// below 1 is taken as 1.
func (p RetryPolicy) Wait(retry int) time.Duration {
	p = p.WithDefaults()
	d := float64(p.InitialDelay) * math.Pow(p.Multiplier, float64(max(retry, 1)-1))
	if p.MaxDelay > 0 && d > float64(p.MaxDelay) {
		return p.MaxDelay
	}
	if d >= math.MaxInt64 || math.IsNaN(d) {
		return math.MaxInt64
	}
	return time.Duration(d)
}

// wait is Wait with jitter applied when asked.
func (p RetryPolicy) wait(retry int) time.Duration {
	d := p.Wait(retry)
	if p.Jitter && d > 0 && d < math.MaxInt64 {
		d = time.Duration(rand.Int64N(int64(d) + 1))
	}
	return d
}

// Retrier runs the retry loop of one step with retry-go, each attempt through a Guard.
// Build one per policy and share it; safe for concurrent use.
type Retrier struct {
	policy RetryPolicy
	log    *logrus.Logger
	opts   []retry.Option // the options every run shares
}

// NewRetrier returns a Retrier for p (zero fields take the defaults). Waits run on c (nil
// means the real clock); logger is used when Run gets no log entry (nil discards).
func NewRetrier(p RetryPolicy, c clock.Clock, logger *logrus.Logger) *Retrier {
	p = p.WithDefaults()
	c, _ = clockOrReal(c)
	return &Retrier{
		policy: p,
		log:    loggerOrDiscard(logger),
		opts: []retry.Option{
			retry.Attempts(uint(p.MaxAttempts)), // never 0: that would mean forever
			retry.LastErrorOnly(true),
			// A custom RetryIf replaces retry-go's Unrecoverable check: keep it.
			retry.RetryIf(func(err error) bool { return retry.IsRecoverable(err) && fault.IsTransient(err) }),
			retry.WithTimer(retryTimer{c}),
		},
	}
}

// Policy returns the policy in use, defaults applied.
func (r *Retrier) Policy() RetryPolicy { return r.policy }

// Run is the whole retry loop for one step of one contact: op runs through g.Do until it
// succeeds, fails permanently, or the attempts run out. log carries the contact's fields
// (nil uses the Retrier's logger). It returns:
//
//   - nil on success;
//   - *OpenError when the breaker refused an attempt, or opened with attempts left (the
//     loop stops at once: waiting would only meet the open breaker);
//   - *DeferError when the provider asked for a wait beyond RetryAfterCap;
//   - *RetriesExhaustedError when every attempt failed transiently;
//   - an error matching ctx's (context.Canceled…) when ctx ended, during an attempt or a wait;
//   - otherwise the permanent error as op (or Guard.Do) returned it, including a
//     bad_response seen twice, marked with fault.Final so fault.IsTransient is false.
func (r *Retrier) Run(ctx context.Context, log *logrus.Entry, g *Guard, op func(ctx context.Context) error) error {
	s := &run{r: r, g: g, base: log}
	opts := make([]retry.Option, 0, len(r.opts)+3)
	opts = append(opts, r.opts...)
	opts = append(opts, retry.Context(ctx), retry.OnRetry(s.onRetry), retry.DelayType(s.delay))
	err := retry.Do(func() error { return s.attempt(ctx, op) }, opts...)
	return s.result(ctx, err)
}

// run is the state of one Run.
type run struct {
	r        *Retrier
	g        *Guard
	base     *logrus.Entry // the caller's entry, or nil; entries are built only to log
	attempts int
	next     time.Duration // the wait before the next attempt, decided by attempt
}

// logWith returns the entry for a log line of this run, with fields.
func (s *run) logWith(fields logrus.Fields) *logrus.Entry {
	base := s.base
	if base == nil {
		base = logrus.NewEntry(s.r.log)
	}
	fields["service"] = s.g.Provider()
	return base.WithFields(fields)
}

// attempt makes one attempt and decides, while it knows the error, whether and how long to
// wait; everything that must not be retried is returned as retry.Unrecoverable.
func (s *run) attempt(ctx context.Context, op func(ctx context.Context) error) error {
	s.attempts++
	err := s.g.Do(ctx, op)
	if err == nil {
		return nil
	}
	var open *OpenError
	if errors.As(err, &open) {
		return retry.Unrecoverable(err)
	}
	if !retry.IsRecoverable(err) {
		return retry.Unrecoverable(fault.Final(err)) // op said so: permanent
	}
	if !fault.Retryable(err, s.attempts) {
		if fault.IsTransient(err) {
			err = fault.Final(err) // a bad_response seen again: permanent now
		}
		return retry.Unrecoverable(err)
	}
	p := s.r.policy
	wait := p.wait(s.attempts)
	if ra := fault.RetryAfterOf(err); ra > wait {
		if ra > p.RetryAfterCap {
			return retry.Unrecoverable(&DeferError{Provider: s.g.Provider(), After: ra, Err: err})
		}
		wait = ra
	}
	s.next = wait
	if s.attempts < p.MaxAttempts && s.g.State() == StateOpen {
		return retry.Unrecoverable(s.g.openError()) // this failure opened the breaker
	}
	return err
}

// onRetry logs the seed's line; retry-go also calls it after the last attempt, when no
// retry follows, and then it stays silent.
func (s *run) onRetry(_ uint, err error) {
	if s.attempts >= s.r.policy.MaxAttempts {
		return
	}
	s.logWith(logrus.Fields{
		"error_category": fault.KindOf(err).String(),
		"retry_count":    s.attempts,
		"circuit_state":  string(s.g.State()),
	}).Warnf("Transient error on attempt %d: %v. Retrying in %s...", s.attempts, err, roundWait(s.next))
}

// delay is retry-go's DelayType: the wait attempt decided.
func (s *run) delay(uint, error, *retry.Config) time.Duration { return s.next }

func (s *run) result(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	provider := s.g.Provider()
	var (
		open *OpenError
		def  *DeferError
	)
	switch {
	case errors.As(err, &open):
		s.logWith(logrus.Fields{
			"error_category": "circuit_open",
			"retry_count":    s.attempts - 1,
			"circuit_state":  string(open.State),
		}).Warnf("Circuit breaker is %s for %s. Failing fast.", open.State, provider)
		return err
	case errors.As(err, &def):
		s.logWith(logrus.Fields{
			"error_category": fault.KindOf(err).String(),
			"retry_count":    s.attempts - 1,
			"circuit_state":  string(s.g.State()),
		}).Warnf("%s asked to wait %s (over the %s in-process cap): returning the contact to the queue",
			provider, roundWait(def.After), s.r.policy.RetryAfterCap)
		return err
	case ctx.Err() != nil:
		msg := fmt.Sprintf("%s step stopped after %d attempt(s)", provider, s.attempts)
		if !errors.Is(err, ctx.Err()) && !errors.Is(err, context.Cause(ctx)) {
			msg += fmt.Sprintf(" (last error: %v)", err)
		}
		return fmt.Errorf("%s: %w", msg, ctx.Err())
	case fault.IsTransient(err):
		s.logWith(logrus.Fields{
			"error_category": fault.KindOf(err).String(),
			"retry_count":    s.attempts - 1,
			"circuit_state":  string(s.g.State()),
		}).Errorf("Max retry attempts (%d) reached for %s", s.attempts, provider)
		return &RetriesExhaustedError{Provider: provider, Attempts: s.attempts, Last: err}
	default:
		s.logWith(logrus.Fields{
			"error_category": fault.KindOf(err).String(),
			"retry_count":    s.attempts - 1,
			"circuit_state":  string(s.g.State()),
		}).Errorf("Permanent error on attempt %d: %v. Not retrying.", s.attempts, err)
		return err
	}
}

// roundWait makes jittered waits readable in logs ("3.218s", not "3.218734112s").
func roundWait(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Millisecond)
	}
	return d
}
