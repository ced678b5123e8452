package daemon

import (
	"context"
	"errors"
	"fmt"
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
	// observers learn every outcome: the stats, metrics, log lines and alerts.
	observers outcomeObservers
	// listeners learn every breaker transition: the gate above, metrics, the fleet report.
	listeners resilience.Listeners
}

// deadLetterTries is how many failed tries to write one contact's dead letter (counted by
// the message's deliveries, or the MAX_DELIVERIES advisory's) raise an alert; from then on
// the contact waits the longest redelivery delay between tries instead of the schedule.
const deadLetterTries = 5

// consume pulls contacts while ctx lives, never more than the free pool slots, and pauses
// while a breaker is open (policy hold). When ctx ends it waits for in-flight contacts up to
// the shutdown grace, then cancels them so they are released to JetStream.
func (w *worker) consume(ctx context.Context) error {
	// Work outlives ctx by the grace period: in-flight contacts finish instead of being cut.
	// Once the grace is over the work context is cancelled with errGraceOver, which handle
	// and Decide read as "release the contact".
	workCtx, cancelWork := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelWork(nil)
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
		// consume owns every contact's goroutine: it waits for all of them before it returns.
		got, err := w.fetch(ctx, n, func(msg jetstream.Msg) {
			inflight.Go(func() {
				defer func() { <-slots }()
				w.handle(ctx, workCtx, msg)
			})
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
	go func() { // ends with the last contact, which the grace's end cancels
		inflight.Wait()
		close(done)
	}()
	grace := time.NewTimer(w.cfg.Worker.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		w.log.Warnf("Shutdown grace of %s is over: releasing unfinished contacts for redelivery", w.cfg.Worker.ShutdownGrace)
		cancelWork(errGraceOver)
		<-done
	}
	return loopErr
}

// errGraceOver is the cause of the work context's end when the shutdown grace is over: the
// contacts still in flight are released to JetStream for redelivery.
var errGraceOver = errors.New("shutdown grace is over")

// graceOver reports whether ctx (the work context or one derived from it) ended because the
// shutdown grace is over.
func graceOver(ctx context.Context) bool { return errors.Is(context.Cause(ctx), errGraceOver) }

// waitForBreakers blocks while a breaker is open (policy hold): the worker stops pulling
// contacts that would only wait, so an outage neither floods the dead-letter stream nor burns
// deliveries. With policy deadletter it never waits: contacts fail fast, as in the seed.
func (w *worker) waitForBreakers(ctx context.Context) error {
	if w.policy.OnBreakerOpen == DeadLetterOnOpen {
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
// runCtx ends when shutdown starts; ctx (the work context) lasts the grace period longer and
// then ends with errGraceOver, which releases the contact. A contact held for an open breaker
// cannot progress, so it is released as soon as runCtx ends.
func (w *worker) handle(runCtx, ctx context.Context, msg jetstream.Msg) {
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
			c.ID = shortID(invalid.ID)
		}
		w.apply(msg, nil, w.event(c, w.policy.Decide(err, delivered, false), err))
		return
	}
	log := w.log.WithField("contact_id", c.ID)
	log.Infof("Processing contact: %s", c.DisplayName())

	var heldSince time.Time // when the contact was first held, for the hold limit
	for {
		outcome, err := w.pipeline.Process(mctx, c, prog)
		if errors.Is(context.Cause(mctx), call.ErrClaimLost) {
			err = call.ErrClaimLost
		}
		ev := w.event(c, w.policy.Decide(err, failedAttempt(prog, delivered), graceOver(ctx)), err)
		if ev.Decision.Action != Hold {
			ev.AlreadyCompleted = ev.Decision.Action == Ack && outcome == call.AlreadyCompleted
			w.apply(msg, prog.Claim(), ev)
			return
		}
		ev.FirstHold = heldSince.IsZero()
		if ev.FirstHold {
			heldSince = time.Now()
		}
		w.observers.ObserveOutcome(ev)
		d := ev.Decision
		// Held until the breakers let the step through, the hold limit, or shutdown.
		holdCtx, cancelHold := context.WithDeadlineCause(mctx, heldSince.Add(w.holdLimit()), errHoldLimit)
		stopHold := context.AfterFunc(runCtx, cancelHold)
		waitErr := w.watch.waitAvailable(holdCtx, w.steps)
		expired := errors.Is(context.Cause(holdCtx), errHoldLimit)
		stopHold()
		cancelHold()
		if waitErr == nil {
			continue
		}
		if expired && runCtx.Err() == nil && mctx.Err() == nil {
			// A long outage: give the message (and its MAX_ACK_PENDING slot) back until the
			// breaker may pass again. No failure is counted; the claim is released.
			herr := &HoldExpiredError{Reason: d.Reason, Held: time.Since(heldSince), RetryAt: blockedRetryAt(w.steps), Err: err}
			w.apply(msg, prog.Claim(), w.event(c, w.policy.Decide(herr, failedAttempt(prog, delivered), false), herr))
			return
		}
		err = waitErr
		if errors.Is(context.Cause(mctx), call.ErrClaimLost) {
			err = call.ErrClaimLost
		}
		w.apply(msg, prog.Claim(), w.event(c, w.policy.Decide(err, failedAttempt(prog, delivered), true), err))
		return
	}
}

// errHoldLimit ends the wait of a contact held longer than the hold limit.
var errHoldLimit = errors.New("held longer than the hold limit")

// holdLimit is Policy.HoldLimit, or by default the longer of 2 × ACK_WAIT and the breaker's
// open timeout: a held contact sees at least one half-open probe before it is handed back.
func (w *worker) holdLimit() time.Duration {
	if w.policy.HoldLimit > 0 {
		return w.policy.HoldLimit
	}
	if d := max(2*w.cfg.Topology.AckWait, w.cfg.Breaker.OpenTimeout); d > 0 {
		return d
	}
	return time.Minute
}

// blockedRetryAt is the earliest time a breaker of a blocked step may let a call through
// again (zero when none says).
func blockedRetryAt(steps [][]*resilience.Guard) time.Time {
	var blocked []*resilience.Guard
	for _, guards := range steps {
		if stepBlocked(guards) {
			blocked = append(blocked, guards...)
		}
	}
	return earliestRetryAt(blocked)
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

// event is the outcome of decision d on contact c, taken on cause.
func (w *worker) event(c contact.Contact, d Decision, cause error) OutcomeEvent {
	ev := OutcomeEvent{ContactID: c.ID, Name: c.DisplayName(), Decision: d, Cause: cause}
	if c.ID == "" {
		ev.Name = "message" // a poison message without a readable id
	}
	if cause != nil {
		ev.Provider, ev.Detail = call.ProviderOf(cause), failureMessage(cause)
	}
	return ev
}

// apply carries out a decision on the message: it does the contact's part of the action
// (release the claim, write the dead letter, publish the copy handed back), tells the
// observers (stats, metrics, logs, alerts), and then acks, naks or terminates the message.
//
// A dead letter is published and acked by its stream before the original is terminated; if
// that publish fails the original is nak'ed, never lost: it is tried again on the redelivery
// schedule and, once deadLetterTries deliveries failed to write it, at the longest
// redelivery delay, with one alert. A contact is never terminated without its dead letter:
// one that cannot be written waits in the stream, at a cost of one try per RETRY_MAX_DELAY,
// until an operator repairs the dead-letter stream; after the consumer's delivery limit the
// MAX_DELIVERIES sweeper carries on the same way.
//
// A contact held past the hold limit (HandBack) is given back without a failure: a copy of
// its message is published to the contacts stream and the original acked (see
// queue.DeadLetterer.Requeue: a nak'ed message would keep its MAX_ACK_PENDING slot until
// redelivered). The copy waits in the stream: this worker pulls nothing while the breaker is
// open, and a replica whose breakers are closed may take it. If the copy cannot be
// published, the original is nak'ed until the breaker may pass again (d.Delay): it keeps its
// slot that long, but nothing is lost.
func (w *worker) apply(msg jetstream.Msg, claim call.Claim, ev OutcomeEvent) {
	log := w.log.WithField("contact_id", ev.ContactID)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := ev.Decision
	nakAfter := func(delay time.Duration) func() error { return func() error { return msg.NakWithDelay(delay) } }
	var settle func() error
	switch d.Action {
	case Ack:
		// A plain ack, not one waited for: the completed record is already written, so an ack
		// lost on its way only means a redelivery that finds the record and acks again.
		settle = msg.Ack
	case Retry:
		w.release(ctx, log, claim, time.Now(), ev.Cause)
		settle = nakAfter(d.Delay)
	case DeadLetter:
		now := time.Now()
		cp := w.release(ctx, log, claim, now, ev.Cause)
		ev.Letter, ev.LetterErr = w.deadLetter(ctx, msg, ev, cp, now)
		settle = func() error { return msg.TermWithReason(d.Reason) }
		if ev.LetterErr != nil {
			ev.Tries = 1
			if md, err := msg.Metadata(); err == nil {
				ev.Tries = md.NumDelivered
			}
			ev.RetryIn = w.policy.deadLetterRetry(ev.Tries)
			settle = nakAfter(ev.RetryIn)
		}
	case Release:
		w.release(ctx, log, claim, time.Time{}, nil)
		settle = msg.Nak
	case Yield:
		settle = nakAfter(d.Delay)
	case Abandon:
		// The message belongs to the other worker's delivery: touch nothing.
	case HandBack:
		w.release(ctx, log, claim, time.Time{}, nil) // no failure: the provider is down, not the contact
		ev.Requeued, ev.RequeueErr = w.dlq.Requeue(ctx, msg, ev.ContactID)
		settle = func() error { return msg.DoubleAck(ctx) }
		if ev.RequeueErr != nil {
			settle = nakAfter(d.Delay)
		}
	}
	w.observers.ObserveOutcome(ev)
	if settle == nil {
		return
	}
	if err := settle(); err != nil {
		// The message stays in the stream: JetStream redelivers it after AckWait.
		log.Warnf("Could not %s %s; JetStream will redeliver it: %v", d.Action, ev.Name, err)
	}
}

// maxLastError bounds the error a progress record keeps, in characters.
const maxLastError = 500

// release gives up the claim, recording a failure when failedAt is set, and returns the
// checkpoint as released (for the dead letter's failure times).
func (w *worker) release(ctx context.Context, log logrus.FieldLogger, claim call.Claim, failedAt time.Time, cause error) call.Checkpoint {
	if claim == nil {
		return call.Checkpoint{FirstFailure: failedAt, LastFailure: failedAt}
	}
	lastError := ""
	if cause != nil && !failedAt.IsZero() {
		lastError = redact.Text(cause.Error())
		if r := []rune(lastError); len(r) > maxLastError {
			lastError = string(r[:maxLastError-1]) + "…"
		}
	}
	if err := claim.Release(ctx, failedAt, lastError); err != nil {
		log.Warnf("Could not release the claim; it expires with its lease: %v", err)
	}
	cp := claim.Checkpoint()
	if cp.FirstFailure.IsZero() {
		cp.FirstFailure, cp.LastFailure = failedAt, failedAt
	}
	return cp
}

// deadLetter writes the contact's dead letter and returns it as stored (or as it would have
// been, on error).
func (w *worker) deadLetter(ctx context.Context, msg jetstream.Msg, ev OutcomeEvent, cp call.Checkpoint, now time.Time) (queue.DeadLetter, error) {
	dl := queue.DeadLetter{
		ContactID:       ev.ContactID,
		Reason:          ev.Decision.Reason,
		Provider:        ev.Provider,
		LastError:       redact.Text(ev.Cause.Error()),
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
	return w.dlq.Write(ctx, dl)
}

// shortID is id, or when it is longer than any contact id can be (the id of a poison
// message, perhaps the problem itself), its beginning and "…", for logs and dead letters.
func shortID(id string) string {
	if len(id) <= contact.MaxIDLen {
		return id
	}
	return strings.ToValidUTF8(id[:contact.MaxIDLen], "") + "…"
}

// letterKey names a contact message for stuckLetters.
func letterKey(stream string, seq uint64) string { return fmt.Sprintf("%s/%d", stream, seq) }

// onceSet is a set of keys that reports the first time it sees each. The zero value is
// ready; it forgets everything past maxOnceKeys keys (one more alert at worst).
type onceSet struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

const maxOnceKeys = 4096

// first adds key and reports whether it was new.
func (s *onceSet) first(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[key]; ok {
		return false
	}
	if s.seen == nil || len(s.seen) >= maxOnceKeys {
		s.seen = map[string]struct{}{}
	}
	s.seen[key] = struct{}{}
	return true
}

// forget removes key.
func (s *onceSet) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.seen, key)
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
// contact's work through cancel. Its goroutine belongs to the contact's handle: the returned
// func stops it and waits for it to return.
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
	completed, alreadyCompleted, retried, deadLettered, released, handedBack atomic.Int64
}

// StatsSnapshot is a copy of Stats. HandedBack counts contacts held past the hold limit and
// given back to the queue while their provider was down.
type StatsSnapshot struct {
	Completed, AlreadyCompleted, Retried, DeadLettered, Released, HandedBack int64
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{
		Completed:        s.completed.Load() - s.alreadyCompleted.Load(),
		AlreadyCompleted: s.alreadyCompleted.Load(),
		Retried:          s.retried.Load(),
		DeadLettered:     s.deadLettered.Load(),
		Released:         s.released.Load(),
		HandedBack:       s.handedBack.Load(),
	}
}
