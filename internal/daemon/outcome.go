package daemon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/resilience"
)

// Action is what happens to a contact's JetStream message after an attempt to process it.
type Action int

const (
	// Ack: done (completed now or before).
	Ack Action = iota + 1
	// Retry: NakWithDelay, so JetStream redelivers after Delay (to any replica).
	Retry
	// DeadLetter: written off with a reason; the message is terminated.
	DeadLetter
	// Hold: a provider's breaker is open; keep the message (InProgress heartbeats) and run
	// the contact again when the breaker closes, without using a delivery.
	Hold
	// Release: the worker is stopping; Nak at once so another replica takes the contact.
	Release
	// Yield: another worker holds a live claim on the contact; redeliver after its lease, by
	// when the owner has completed it (then the redelivery is acked) or has died.
	Yield
	// Abandon: this worker lost its claim (its lease expired during a stall and another
	// worker took over); the message now belongs to that worker's delivery: touch nothing.
	Abandon
	// HandBack: the contact was held longer than the hold limit (see Policy.HoldLimit);
	// release its claim without counting a failure, publish a copy of its message to the
	// contacts stream and ack the original, so a long outage does not keep the consumer's
	// MAX_ACK_PENDING slots (a nak'ed message keeps its slot until redelivered). Delay is
	// when the breaker may pass again: the copy's earliest useful try, and the NakWithDelay
	// used instead if the copy cannot be published.
	HandBack
)

func (a Action) String() string {
	switch a {
	case Ack:
		return "ack"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead-letter"
	case Hold:
		return "hold"
	case Release:
		return "release"
	case Yield:
		return "yield"
	case Abandon:
		return "abandon"
	case HandBack:
		return "hand back"
	}
	return "unknown"
}

// Decision is an Action with its details.
type Decision struct {
	Action Action
	// Delay before redelivery, for Retry, Yield and HandBack.
	Delay time.Duration
	// Reason is the error category, for DeadLetter and Retry (a fault.Kind string, or one of
	// the reasons below).
	Reason string
}

// Dead-letter reasons that are not provider error kinds.
const (
	ReasonInvalidContact     = "invalid_payload"
	ReasonDeliveriesExceeded = "max_deliveries"
	ReasonBreakerOpen        = "circuit_open"
	ReasonInternal           = "internal"
)

// maxRedeliveryDelay bounds one NakWithDelay whatever the schedule says.
const maxRedeliveryDelay = time.Hour

// minHandBackDelay is the shortest wait of a contact handed back while a breaker is open
// (a half-open breaker says "now").
const minHandBackDelay = time.Second

// BreakerOpenPolicy is what happens to a contact whose provider's breaker is open
// (ON_BREAKER_OPEN).
type BreakerOpenPolicy string

const (
	// HoldOnOpen keeps the contact in flight until the breaker closes (the default).
	HoldOnOpen BreakerOpenPolicy = "hold"
	// DeadLetterOnOpen dead-letters it at once (circuit_open), as the seed skipped it.
	DeadLetterOnOpen BreakerOpenPolicy = "deadletter"
)

// Policy holds the settings the outcome table depends on.
type Policy struct {
	// MaxDeliver is how many failed deliveries a contact gets: the one that fails transiently
	// for the MaxDeliver-th time is dead-lettered instead of redelivered.
	MaxDeliver int
	// OnBreakerOpen is HoldOnOpen (the default, also for "") or DeadLetterOnOpen (the seed's
	// "skip the contact").
	OnBreakerOpen BreakerOpenPolicy
	// Redelivery is the schedule for Retry delays: redelivery n waits Wait(n), continuing
	// the in-process backoff. Its MaxDelay (RETRY_MAX_DELAY) caps every delay Decide returns,
	// and none is ever longer than an hour.
	Redelivery resilience.RetryPolicy
	// HoldLimit is how long a contact may be held in the worker (Hold: a breaker open, or
	// settings refused) before it is handed back to JetStream (HandBack). A held contact keeps
	// its message in flight, and with it one of the consumer's MAX_ACK_PENDING slots, which
	// every replica shares: enough held contacts would stop a fleet whose other replicas'
	// breakers are closed. Zero means the worker's default, the longer of 2 × ACK_WAIT and
	// BREAKER_OPEN_TIMEOUT (60s with the defaults): a short outage still resumes a held
	// contact the moment the breaker closes, a long one gives its slot back.
	HoldLimit time.Duration
}

// Decide is the outcome table: the one place that maps the result of processing a contact to
// a JetStream action. attempt counts this contact's failed deliveries, this one included (1
// the first time); deliveries that failed nothing are not counted.
// stopping says the worker is giving back what it holds: the shutdown grace is over (the
// work context ended with errGraceOver, see graceOver), or a held contact's wait ended with
// the shutdown; a cancelled call is then released, not failed.
//
//	result                                   action
//	nil (completed, or completed before)      Ack
//	the worker is stopping (ctx cancelled)    Release: Nak, another replica takes it
//	another worker holds the contact's claim  Yield: redeliver after its lease
//	this worker lost the claim                Abandon: the other worker's delivery owns it
//	invalid contact payload                   DeadLetter invalid_payload
//	configuration / permission_denied         Hold, as for an open breaker (policy hold):
//	                                          the settings are wrong, not the contact
//	permanent provider error (auth, quota…)   DeadLetter <kind>
//	breaker open, policy hold                 Hold until the breaker closes
//	held longer than the hold limit           HandBack: re-enqueued, no failure counted;
//	                                          Delay until the breaker may pass (at least 1s)
//	breaker open, policy deadletter           DeadLetter circuit_open
//	provider asked to wait beyond the cap     Retry after the provider's delay, capped
//	retries exhausted / transient error       Retry with backoff, until MaxDeliver;
//	                                          then DeadLetter <kind>
//	anything else (NATS, KV)                  Retry with backoff, until MaxDeliver
//
// Every delay is capped by the redelivery schedule's MaxDelay (RETRY_MAX_DELAY), and never
// exceeds an hour: a provider's Retry-After of a year, or a breaker open for a day, does
// not park a contact out of the operator's sight.
func (p Policy) Decide(err error, attempt uint64, stopping bool) Decision {
	if err == nil {
		return Decision{Action: Ack}
	}
	if stopping && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return Decision{Action: Release}
	}
	if errors.Is(err, call.ErrClaimLost) {
		return Decision{Action: Abandon}
	}
	var expired *HoldExpiredError
	if errors.As(err, &expired) {
		delay := p.capDelay(max(time.Until(expired.RetryAt), minHandBackDelay))
		return Decision{Action: HandBack, Delay: delay, Reason: expired.Reason}
	}
	var held *call.ClaimHeldError
	if errors.As(err, &held) {
		return Decision{Action: Yield, Delay: max(time.Until(held.Until), 0) + time.Second, Reason: "claimed"}
	}
	var invalid *contact.InvalidError
	if errors.As(err, &invalid) {
		return Decision{Action: DeadLetter, Reason: ReasonInvalidContact}
	}
	var open *resilience.OpenError
	if errors.As(err, &open) {
		if p.OnBreakerOpen == DeadLetterOnOpen {
			return Decision{Action: DeadLetter, Reason: ReasonBreakerOpen}
		}
		return Decision{Action: Hold, Reason: ReasonBreakerOpen}
	}
	kind := fault.KindOf(err)
	reason := kind.String()
	if kind == fault.KindUnknown {
		reason = ReasonInternal
	}
	if (kind == fault.KindConfiguration || kind == fault.KindPermission) && p.OnBreakerOpen != DeadLetterOnOpen {
		// Our settings are wrong, not the contact: hold it like an open breaker (the failures
		// open it at once) until an operator fixes the settings or the provider accepts them.
		return Decision{Action: Hold, Reason: reason}
	}
	// fault.IsTransient, not kind.Transient: an error marked final (a bad response seen
	// twice, say) keeps its transient kind but must not be redelivered.
	var svc *fault.ServiceError
	if errors.As(err, &svc) && !fault.IsTransient(err) {
		return Decision{Action: DeadLetter, Reason: reason}
	}
	if p.MaxDeliver > 0 && attempt >= uint64(p.MaxDeliver) {
		return Decision{Action: DeadLetter, Reason: reason}
	}
	var deferred *resilience.DeferError
	if errors.As(err, &deferred) {
		return Decision{Action: Retry, Delay: p.capDelay(max(deferred.After, time.Second)), Reason: reason}
	}
	return Decision{Action: Retry, Delay: p.redeliveryDelay(attempt), Reason: reason}
}

// redeliveryDelay continues the in-process schedule: after MaxAttempts in-process attempts,
// failed delivery n waits as retry MaxAttempts+n-1 would have.
func (p Policy) redeliveryDelay(attempt uint64) time.Duration {
	n := p.Redelivery.MaxAttempts + int(min(attempt, math.MaxInt32)) - 1
	d := p.Redelivery.Wait(max(n, 1))
	if d <= 0 {
		d = time.Second
	}
	return p.capDelay(d)
}

// deadLetterRetry is how long a contact whose dead letter could not be written on its
// tries-th try waits before the next: the redelivery schedule, and from the
// deadLetterTries-th try on the longest redelivery delay. Nothing is lost meanwhile: the
// original stays in the contacts stream until its dead letter is written.
func (p Policy) deadLetterRetry(tries uint64) time.Duration {
	if tries < deadLetterTries {
		return p.redeliveryDelay(tries)
	}
	return p.maxDelay()
}

// maxDelay is the longest redelivery delay: the schedule's MaxDelay (RETRY_MAX_DELAY), at
// most an hour. Without RETRY_MAX_DELAY the schedule grows without bound; a contact parked
// for days is as good as lost to the operator.
func (p Policy) maxDelay() time.Duration {
	if p.Redelivery.MaxDelay > 0 {
		return min(p.Redelivery.MaxDelay, maxRedeliveryDelay)
	}
	return maxRedeliveryDelay
}

// capDelay bounds d by maxDelay.
func (p Policy) capDelay(d time.Duration) time.Duration { return min(d, p.maxDelay()) }

// HoldExpiredError is what a contact held longer than the hold limit (Policy.HoldLimit)
// ends with: the worker gives it back to JetStream (HandBack) until RetryAt, when the
// breaker that held it may let a call through again.
type HoldExpiredError struct {
	// Reason is the hold's reason: circuit_open, or the settings error's kind.
	Reason string
	// Held is how long the contact was held.
	Held time.Duration
	// RetryAt is when the earliest blocking breaker may pass a call again (zero: unknown).
	RetryAt time.Time
	// Err is the error that held the contact (a *resilience.OpenError, a settings error).
	Err error
}

// Error says how long the contact was held and why.
func (e *HoldExpiredError) Error() string {
	return fmt.Sprintf("held for %s, longer than the hold limit: %v", e.Held.Round(time.Millisecond), e.Err)
}

// Unwrap returns Err.
func (e *HoldExpiredError) Unwrap() error { return e.Err }
