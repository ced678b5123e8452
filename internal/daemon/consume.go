package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/metrics"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/resilience"
)

// fetchWait bounds one pull request, so the loop notices shutdown and open breakers promptly.
const fetchWait = 2 * time.Second

type worker struct {
	cfg      config.Config
	log      *logrus.Logger
	cons     jetstream.Consumer
	pipeline *call.Pipeline
	// steps lists each step's guards: a step can run while one of its providers is closed.
	steps  [][]*resilience.Guard
	policy Policy
	watch  *breakerWatch
	stats  *Stats
	dlq    *queue.DeadLetterer
	// metrics may be nil (its methods then do nothing).
	metrics *metrics.Metrics
	alerts  *alerting
	// listeners learn every breaker transition: the gate above, metrics, the fleet report.
	listeners resilience.Listeners
}

// consume pulls contacts while ctx lives, never more than the free pool slots, and pauses
// while a breaker is open (policy hold). When ctx ends it waits for in-flight contacts up to
// the shutdown grace, then cancels them so they are released to JetStream.
func (w *worker) consume(ctx context.Context) error {
	// Work outlives ctx by the grace period: in-flight contacts finish instead of being cut.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var stopping atomic.Bool
	slots := make(chan struct{}, w.cfg.Worker.Concurrency)
	var inflight sync.WaitGroup

	var loopErr error
	for ctx.Err() == nil {
		// Wait for one free slot, then take as many more as are free, up to the pull batch.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		// Only then look at the breakers, so no contact is fetched while one is open.
		if err := w.waitForBreakers(ctx); err != nil {
			<-slots
			break
		}
		n := 1
		for n < w.cfg.Worker.PullBatch {
			select {
			case slots <- struct{}{}:
				n++
				continue
			default:
			}
			break
		}
		got, err := w.fetch(ctx, n, func(msg jetstream.Msg) {
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				defer func() { <-slots }()
				w.handle(ctx, workCtx, msg, &stopping)
			}()
		})
		for range n - got {
			<-slots
		}
		if err != nil && ctx.Err() == nil {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				loopErr = fmt.Errorf("consumer %s is gone: %w", w.cfg.Topology.Consumer, err)
				break
			}
			w.log.Warnf("Fetching contacts failed; trying again: %v", err)
			sleepCtx(ctx, time.Second)
		}
	}

	w.log.Infof("Shutting down: no new contacts; waiting up to %s for %d in flight", w.cfg.Worker.ShutdownGrace, len(slots))
	done := make(chan struct{})
	go func() {
		inflight.Wait()
		close(done)
	}()
	grace := time.NewTimer(w.cfg.Worker.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		w.log.Warnf("Shutdown grace of %s is over: releasing unfinished contacts for redelivery", w.cfg.Worker.ShutdownGrace)
		stopping.Store(true)
		cancelWork()
		<-done
	}
	return loopErr
}

// waitForBreakers blocks while a breaker is open (policy hold): the worker stops pulling
// contacts that would only wait, so an outage neither floods the dead-letter stream nor burns
// deliveries. With policy deadletter it never waits: contacts fail fast, as in the seed.
func (w *worker) waitForBreakers(ctx context.Context) error {
	if w.cfg.Worker.OnBreakerOpen == policyDeadLetter {
		return nil
	}
	open := blockedSteps(w.steps)
	if len(open) == 0 {
		return nil
	}
	w.log.Infof("Circuit breaker is OPEN for %s: not taking new contacts until it recovers", strings.Join(open, ", "))
	if err := w.watch.waitAvailable(ctx, w.steps); err != nil {
		return err
	}
	w.log.Info("Circuit breakers closed: taking contacts again")
	return nil
}

// fetch pulls up to n messages and hands each to start; it returns how many it started.
func (w *worker) fetch(ctx context.Context, n int, start func(jetstream.Msg)) (int, error) {
	fctx, cancel := context.WithTimeout(ctx, fetchWait)
	defer cancel()
	batch, err := w.cons.Fetch(n, jetstream.FetchContext(fctx))
	if err != nil {
		return 0, err
	}
	got := 0
	for msg := range batch.Messages() {
		got++
		start(msg)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, jetstream.ErrNoMessages) {
		return got, err
	}
	return got, nil
}

// handle processes one message to its end: decode, process (holding while a breaker is
// open), and apply the outcome. Meanwhile a heartbeat keeps the message and the claim alive.
//
// runCtx ends when shutdown starts; ctx (the work context) lasts the grace period longer. A
// contact held for an open breaker cannot progress, so it is released as soon as runCtx ends.
func (w *worker) handle(runCtx, ctx context.Context, msg jetstream.Msg, stopping *atomic.Bool) {
	// A lost claim cancels this contact's work, and only this contact's.
	mctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer w.metrics.TrackInFlight()()
	prog := &call.Progress{}
	stopBeat := w.heartbeat(mctx, msg, prog, cancel)
	defer stopBeat()

	delivered := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	c, err := contact.Decode(msg.Data())
	if err != nil {
		// A poison message: dead-lettered at once, under its id when it has a readable one.
		var invalid *contact.InvalidError
		if errors.As(err, &invalid) {
			c.ID = invalid.ID
		}
		w.apply(msg, c, nil, w.policy.Decide(err, delivered, false), err)
		return
	}
	log := w.log.WithField("contact_id", c.ID)
	log.Infof("Processing contact: %s", c.DisplayName())

	for {
		outcome, err := w.pipeline.Process(mctx, c, prog)
		if errors.Is(context.Cause(mctx), call.ErrClaimLost) {
			err = call.ErrClaimLost
		}
		d := w.policy.Decide(err, failedAttempt(prog, delivered), stopping.Load() || ctx.Err() != nil)
		if d.Action == Ack && outcome == call.AlreadyCompleted {
			w.stats.alreadyCompleted.Add(1)
			w.metrics.ContactOutcome(metrics.OutcomeAlreadyCompleted)
		} else if d.Action == Ack {
			w.metrics.ContactOutcome(metrics.OutcomeCompleted)
		}
		if d.Action != Hold {
			w.apply(msg, c, prog.Claim(), d, err)
			return
		}
		provider := call.ProviderOf(err)
		w.metrics.ContactOutcome(metrics.OutcomeHeld)
		if d.Reason == ReasonBreakerOpen {
			log.WithField("service", provider).Infof("Holding %s until %s recovers", c.DisplayName(), provider)
		} else {
			// A settings problem (retired model, scoped key, format not in the plan): every
			// contact would fail the same way, so it waits for the operator, not the DLQ.
			w.failureLog(log, err, d).Errorf("Holding %s: %s refused our settings (%s): %s", c.DisplayName(), provider, d.Reason, failureMessage(err))
		}
		holdCtx, cancelHold := context.WithCancel(mctx)
		stopHold := context.AfterFunc(runCtx, cancelHold)
		err = w.watch.waitAvailable(holdCtx, w.steps)
		stopHold()
		cancelHold()
		if err != nil {
			if errors.Is(context.Cause(mctx), call.ErrClaimLost) {
				err = call.ErrClaimLost
			}
			w.apply(msg, c, prog.Claim(), w.policy.Decide(err, failedAttempt(prog, delivered), true), err)
			return
		}
	}
}

// failedAttempt is the number this failure would be: the failures the contact's checkpoint
// recorded, plus one. Before a claim there is no checkpoint to read, so the delivery count
// stands in for it.
func failedAttempt(prog *call.Progress, delivered uint64) uint64 {
	if claim := prog.Claim(); claim != nil {
		return uint64(claim.Checkpoint().Failures) + 1
	}
	return delivered
}

// apply carries out a decision on the message and logs it once. A dead letter is published
// and acked by its stream before the original is terminated; if that publish fails the
// original is nak'ed, never lost.
func (w *worker) apply(msg jetstream.Msg, c contact.Contact, claim call.Claim, d Decision, cause error) {
	log := w.log.WithField("contact_id", c.ID)
	name := c.DisplayName()
	if c.ID == "" {
		name = "message" // a poison message without a readable id
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now()
	var err error
	switch d.Action {
	case Ack:
		err = msg.DoubleAck(ctx)
		if err == nil {
			w.stats.completed.Add(1)
		}
	case Retry:
		w.stats.retried.Add(1)
		w.metrics.ContactOutcome(metrics.OutcomeRetried)
		w.release(ctx, log, claim, now)
		w.failureLog(log, cause, d).Errorf("Transient error for %s: %s", name, failureMessage(cause))
		w.alerts.failure(call.ProviderOf(cause), c.ID, d.Reason, false, failureMessage(cause))
		log.Infof("%s goes back to the queue; next try in %s", name, d.Delay.Round(time.Millisecond))
		err = msg.NakWithDelay(d.Delay)
	case DeadLetter:
		cp := w.release(ctx, log, claim, now)
		w.failureLog(log, cause, d).Errorf("Permanent failure for %s: %s", name, failureMessage(cause))
		if d.Reason == ReasonBreakerOpen {
			log.Info("Skipping contact.")
		}
		if err = w.deadLetter(ctx, msg, c, cp, d, cause, now); err != nil {
			log.Errorf("Could not dead-letter %s; it stays in the queue: %v", name, err)
			err = msg.NakWithDelay(w.policy.redeliveryDelay(1))
			break
		}
		w.stats.deadLettered.Add(1)
		w.metrics.ContactOutcome(metrics.OutcomeDeadLettered)
		w.metrics.DeadLettered(d.Reason)
		w.alerts.failure(call.ProviderOf(cause), c.ID, d.Reason, true, failureMessage(cause))
		log.WithField("error_category", d.Reason).Infof("%s dead-lettered (%s)", name, d.Reason)
		err = msg.TermWithReason(d.Reason)
	case Release:
		w.stats.released.Add(1)
		w.metrics.ContactOutcome(metrics.OutcomeReleased)
		w.release(ctx, log, claim, time.Time{})
		log.Infof("Released %s for redelivery (worker stopping)", name)
		err = msg.Nak()
	case Yield:
		log.Infof("%s is being worked on by another worker (%v); leaving it to its owner", name, cause)
		err = msg.NakWithDelay(d.Delay)
	case Abandon:
		log.Warnf("Lost the claim on %s to another worker; leaving the contact to it", name)
	}
	if err != nil {
		// The message stays in the stream: JetStream redelivers it after AckWait.
		log.Warnf("Could not %s %s; JetStream will redeliver it: %v", d.Action, name, err)
	}
}

// release gives up the claim, recording a failure when failedAt is set, and returns the
// checkpoint as released (for the dead letter's failure times).
func (w *worker) release(ctx context.Context, log logrus.FieldLogger, claim call.Claim, failedAt time.Time) call.Checkpoint {
	if claim == nil {
		return call.Checkpoint{FirstFailure: failedAt, LastFailure: failedAt}
	}
	if err := claim.Release(ctx, failedAt); err != nil {
		log.Warnf("Could not release the claim; it expires with its lease: %v", err)
	}
	cp := claim.Checkpoint()
	if cp.FirstFailure.IsZero() {
		cp.FirstFailure, cp.LastFailure = failedAt, failedAt
	}
	return cp
}

func (w *worker) deadLetter(ctx context.Context, msg jetstream.Msg, c contact.Contact, cp call.Checkpoint, d Decision, cause error, now time.Time) error {
	dl := queue.DeadLetter{
		ContactID:       c.ID,
		Reason:          d.Reason,
		Provider:        call.ProviderOf(cause),
		LastError:       redact.Text(cause.Error()),
		Attempts:        1,
		FirstFailure:    cp.FirstFailure,
		LastFailure:     now,
		Worker:          w.cfg.Worker.ID,
		OriginalSubject: msg.Subject(),
		OriginalStream:  w.cfg.Topology.ContactsStream,
		MsgID:           msg.Headers().Get(jetstream.MsgIDHeader),
		Payload:         msg.Data(),
	}
	if md, err := msg.Metadata(); err == nil {
		dl.Attempts = int(md.NumDelivered)
		dl.StreamSeq = md.Sequence.Stream
		dl.OriginalStream = md.Stream
	}
	if cp.Failures > 0 { // failed deliveries, not those a shutdown or a held claim used
		dl.Attempts = cp.Failures
	}
	if dl.FirstFailure.IsZero() {
		dl.FirstFailure = now
	}
	return w.dlq.Publish(ctx, dl)
}

// failureLog carries the seed's JSON fields for a failed contact.
func (w *worker) failureLog(log *logrus.Entry, cause error, d Decision) *logrus.Entry {
	fields := logrus.Fields{"error_category": d.Reason}
	if provider := call.ProviderOf(cause); provider != "" {
		fields["service"] = provider
		for _, g := range slices.Concat(w.steps...) {
			if g.Provider() == provider {
				fields["circuit_state"] = string(g.State())
			}
		}
	}
	var exhausted *resilience.RetriesExhaustedError
	if errors.As(cause, &exhausted) {
		fields["retry_count"] = exhausted.Attempts
	}
	return log.WithFields(fields)
}

// failureMessage is the provider's own message when there is one ("Service temporarily
// unavailable", as the seed prints), else the error; redacted either way.
func failureMessage(err error) string {
	var svc *fault.ServiceError
	if errors.As(err, &svc) {
		return redact.Text(svc.Error())
	}
	return redact.Text(err.Error())
}

// heartbeat sends InProgress every AckWait/3 so a slow call or a held contact is not
// redelivered to another worker, and renews the contact's claim; a lost claim cancels the
// contact's work through cancel. The returned func stops it.
func (w *worker) heartbeat(ctx context.Context, msg jetstream.Msg, prog *call.Progress, cancel context.CancelCauseFunc) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	every := max(w.cfg.Topology.AckWait/3, 100*time.Millisecond)
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		failing := false // log the first failure of a streak, not every tick
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				err := msg.InProgress()
				if claim := prog.Claim(); claim != nil {
					renewErr := claim.Renew(ctx)
					if errors.Is(renewErr, call.ErrClaimLost) {
						cancel(call.ErrClaimLost)
						return
					}
					err = errors.Join(err, renewErr)
				}
				if err != nil && !failing {
					w.log.WithField("contact_id", contactIDOf(msg)).
						Warnf("Could not keep the contact alive (it may be redelivered to another worker): %v", err)
				}
				failing = err != nil
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

// contactIDOf is the message's dedupe id, which the publisher sets to the contact id.
func contactIDOf(msg jetstream.Msg) string {
	return msg.Headers().Get(jetstream.MsgIDHeader)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Stats counts what this worker did, for the summary printed at shutdown.
type Stats struct {
	completed, alreadyCompleted, retried, deadLettered, released atomic.Int64
}

// StatsSnapshot is a copy of Stats.
type StatsSnapshot struct {
	Completed, AlreadyCompleted, Retried, DeadLettered, Released int64
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{
		Completed:        s.completed.Load() - s.alreadyCompleted.Load(),
		AlreadyCompleted: s.alreadyCompleted.Load(),
		Retried:          s.retried.Load(),
		DeadLettered:     s.deadLettered.Load(),
		Released:         s.released.Load(),
	}
}

const policyDeadLetter = "deadletter"
