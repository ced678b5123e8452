package daemon

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/metrics"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/resilience"
)

// OutcomeEvent is what happened to one contact: a decision of the outcome table carried out
// by the worker (see worker.apply), a contact held (Hold), or a contact the MAX_DELIVERIES
// sweeper dead-lettered (Swept).
type OutcomeEvent struct {
	// ContactID is the contact's id ("" for a poison message without a readable one).
	ContactID string
	// Name is how log lines name the contact ("Contact c-1", "message").
	Name string
	// Decision is the outcome table's decision.
	Decision Decision
	// Provider is the provider the failure came from ("" when none).
	Provider string
	// Cause is the error the decision was taken on (nil for Ack).
	Cause error
	// Detail is the failure's message, redacted, for logs and alerts.
	Detail string
	// AlreadyCompleted marks an Ack of a contact completed before.
	AlreadyCompleted bool
	// FirstHold marks the first Hold of a contact.
	FirstHold bool
	// Swept marks a contact that exhausted its deliveries, dead-lettered by the sweeper.
	Swept bool
	// Letter is a DeadLetter's dead letter as written (or as it would have been).
	Letter queue.DeadLetter
	// LetterErr is why the dead letter could not be written, on its Tries-th try; the
	// contact stays in the stream and is tried again in RetryIn.
	LetterErr error
	Tries     uint64
	RetryIn   time.Duration
	// Requeued is the sequence of a HandBack's copy, or RequeueErr why it was not published
	// (the original then waits in flight for Decision.Delay).
	Requeued   uint64
	RequeueErr error
}

// deadLettered reports whether the contact was written off: its dead letter is stored.
func (ev OutcomeEvent) deadLettered() bool {
	return ev.Decision.Action == DeadLetter && ev.LetterErr == nil
}

// OutcomeObserver learns what happened to each contact: the summary's counters, metrics,
// alerts and log lines are observers. ObserveOutcome is called from the contact's goroutine
// (or the sweeper's), after the contact's work is done (claim released, dead letter written,
// copy published) and before its message is acked, nak'ed or terminated; it must not block,
// and is called concurrently for different contacts.
type OutcomeObserver interface {
	ObserveOutcome(ev OutcomeEvent)
}

// outcomeObservers tells every observer, in order.
type outcomeObservers []OutcomeObserver

func (os outcomeObservers) ObserveOutcome(ev OutcomeEvent) {
	for _, o := range os {
		o.ObserveOutcome(ev)
	}
}

// ObserveOutcome counts the event for the summary.
func (s *Stats) ObserveOutcome(ev OutcomeEvent) {
	switch ev.Decision.Action {
	case Ack:
		if ev.AlreadyCompleted {
			s.alreadyCompleted.Add(1)
		}
		s.completed.Add(1)
	case Retry:
		s.retried.Add(1)
	case DeadLetter:
		if ev.deadLettered() {
			s.deadLettered.Add(1)
		}
	case Release:
		s.released.Add(1)
	case HandBack:
		s.handedBack.Add(1)
	}
}

// metricsObserver counts outcomes in Prometheus metrics (nil metrics count nothing). Spend
// is not counted here but where each paid call returns (call.Pipeline.Observer, the same
// metrics): an outcome comes once per delivery, while a contact's spend may have been paid by
// an earlier delivery or another worker (it is read back from the checkpoint), and a contact
// that fails after its LLM step has still paid for it.
type metricsObserver struct{ m *metrics.Metrics }

func (o metricsObserver) ObserveOutcome(ev OutcomeEvent) {
	switch ev.Decision.Action {
	case Ack:
		if ev.AlreadyCompleted {
			o.m.ContactOutcome(metrics.OutcomeAlreadyCompleted)
		} else {
			o.m.ContactOutcome(metrics.OutcomeCompleted)
		}
	case Hold:
		o.m.ContactOutcome(metrics.OutcomeHeld)
	case Retry:
		o.m.ContactOutcome(metrics.OutcomeRetried)
	case DeadLetter:
		if ev.deadLettered() {
			o.m.ContactOutcome(metrics.OutcomeDeadLettered)
			o.m.DeadLettered(ev.Decision.Reason)
		}
	case Release:
		o.m.ContactOutcome(metrics.OutcomeReleased)
	case HandBack:
		o.m.ContactOutcome(metrics.OutcomeHandedBack)
	}
}

// alertObserver raises the alerts of failed contacts: a settings problem's first hold, every
// retry and dead letter, and once per contact a dead letter that could not be written after
// deadLetterTries tries.
type alertObserver struct {
	alerts *alerting
	// stuck remembers the contacts alerted about for a dead letter that cannot be written.
	stuck onceSet
}

func (o *alertObserver) ObserveOutcome(ev OutcomeEvent) {
	d := ev.Decision
	switch {
	case d.Action == Hold && d.Reason != ReasonBreakerOpen && ev.FirstHold:
		// The alert names the cause (the breaker's alert only says it opened); the
		// dispatcher folds a burst of them into one summary.
		o.alerts.failure(ev.Provider, ev.ContactID, d.Reason, false, ev.Detail)
	case d.Action == Retry:
		o.alerts.failure(ev.Provider, ev.ContactID, d.Reason, false, ev.Detail)
	case ev.deadLettered():
		o.stuck.forget(letterKey(ev.Letter.OriginalStream, ev.Letter.StreamSeq))
		o.alerts.failure(ev.Provider, ev.ContactID, d.Reason, true, ev.Detail)
	case d.Action == DeadLetter && ev.Tries >= deadLetterTries:
		if o.stuck.first(letterKey(ev.Letter.OriginalStream, ev.Letter.StreamSeq)) {
			detail := fmt.Sprintf("%d tries, next in %s: %s", ev.Tries, ev.RetryIn, redact.Text(ev.LetterErr.Error()))
			_ = o.alerts.emitter.Emit(alert.DeadLetterFailed(ev.Letter.Provider, ev.Letter.ContactID, ev.Letter.Reason, detail))
		}
	}
}

// logObserver writes the log lines of each outcome.
type logObserver struct {
	log *logrus.Logger
	// steps are the guards whose breaker state a failure's log line reports.
	steps [][]*resilience.Guard
	// deadLetterStream names the dead-letter stream in the lines of letters not written.
	deadLetterStream string
}

func (o logObserver) ObserveOutcome(ev OutcomeEvent) {
	log := o.log.WithField("contact_id", ev.ContactID)
	d, name := ev.Decision, ev.Name
	switch d.Action {
	case Hold:
		if d.Reason == ReasonBreakerOpen {
			log.WithField("service", ev.Provider).Infof("Holding %s until %s recovers", name, ev.Provider)
		} else {
			// A settings problem (retired model, scoped key, format not in the plan): every
			// contact would fail the same way, so it waits for the operator, not the DLQ.
			o.failureLog(log, ev).Errorf("Holding %s: %s refused our settings (%s): %s", name, ev.Provider, d.Reason, ev.Detail)
		}
	case Retry:
		o.failureLog(log, ev).Errorf("Transient error for %s: %s", name, ev.Detail)
		log.Infof("%s goes back to the queue; next try in %s", name, d.Delay.Round(time.Millisecond))
	case DeadLetter:
		o.deadLetter(log, ev)
	case Release:
		log.Infof("Released %s for redelivery (worker stopping)", name)
	case Yield:
		log.Infof("%s is being worked on by another worker (%v); leaving it to its owner", name, ev.Cause)
	case Abandon:
		log.Warnf("Lost the claim on %s to another worker; leaving the contact to it", name)
	case HandBack:
		provider := ev.Provider
		if provider == "" {
			provider = "a provider"
		}
		what := provider + " is down"
		if d.Reason != ReasonBreakerOpen {
			what = provider + " refuses our settings (" + d.Reason + ")"
		}
		log := log.WithField("service", provider)
		if ev.RequeueErr != nil {
			log.Warnf("Could not re-enqueue %s (%v); it waits in flight instead", name, ev.RequeueErr)
			log.Infof("Handing %s back to the queue while %s; next try in %s", name, what, d.Delay.Round(time.Millisecond))
			return
		}
		log.Infof("Handing %s back to the queue while %s; next try in %s at the earliest, once the breaker lets calls through (now message %d)",
			name, what, d.Delay.Round(time.Millisecond), ev.Requeued)
	}
}

// deadLetter logs a dead letter written, or one that could not be written on its tries-th
// try (from the deadLetterTries-th on with the longest redelivery delay and the alert).
func (o logObserver) deadLetter(log *logrus.Entry, ev OutcomeEvent) {
	d, name, dl := ev.Decision, ev.Name, ev.Letter
	if !ev.Swept {
		o.failureLog(log, ev).Errorf("Permanent failure for %s: %s", name, ev.Detail)
		if d.Reason == ReasonBreakerOpen {
			log.Info("Skipping contact.")
		}
	}
	switch {
	case ev.LetterErr != nil && ev.Tries < deadLetterTries:
		log.Errorf("Could not dead-letter %s (try %d); it stays in the queue, next try in %s: %v", name, ev.Tries, ev.RetryIn, ev.LetterErr)
		return
	case ev.LetterErr != nil:
		log.WithField("error_category", dl.Reason).
			Errorf("Could not dead-letter %s after %d tries; it stays in the queue and is tried again every %s until the dead-letter stream %s accepts it: %v",
				name, ev.Tries, ev.RetryIn, o.deadLetterStream, ev.LetterErr)
		return
	}
	if dl.Truncated {
		log.Warnf("%s's payload of %d bytes does not fit in a dead letter: kept its first %d bytes with its length and SHA-256 (%s); it cannot be replayed",
			name, dl.PayloadLength, len(dl.Payload), dl.PayloadSHA256)
	}
	log = log.WithField("error_category", d.Reason)
	if ev.Swept {
		log.Errorf("Contact %s exhausted its %d deliveries without a result; dead-lettered", ev.ContactID, dl.Attempts)
		return
	}
	log.Infof("%s dead-lettered (%s)", name, d.Reason)
}

// failureLog carries the seed's JSON fields for a failed contact.
func (o logObserver) failureLog(log *logrus.Entry, ev OutcomeEvent) *logrus.Entry {
	fields := logrus.Fields{"error_category": ev.Decision.Reason}
	if ev.Provider != "" {
		fields["service"] = ev.Provider
		for _, g := range slices.Concat(o.steps...) {
			if g.Provider() == ev.Provider {
				fields["circuit_state"] = string(g.State())
			}
		}
	}
	var exhausted *resilience.RetriesExhaustedError
	if errors.As(ev.Cause, &exhausted) {
		fields["retry_count"] = exhausted.Attempts
	}
	return log.WithFields(fields)
}
