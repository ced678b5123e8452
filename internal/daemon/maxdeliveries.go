package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/queue"
)

// exhaustedSweeper dead-letters contacts that reached the delivery limit without any worker
// writing them off (every worker that took one died on it, or none could write the dead
// letter), from the stored MAX_DELIVERIES advisories. Such a contact is still in the stream
// but would never be delivered again.
//
// An advisory whose contact cannot be dealt with yet is tried again later, never dropped:
// while another worker holds the contact's claim, once its lease ends; after an error (the
// dead letter could not be written, NATS failed), on the redelivery schedule counted by the
// advisory's deliveries and, from the deadLetterTries-th on, at the longest redelivery delay
// with one alert (as the worker does, see worker.apply). So a dead letter that
// cannot be written costs one try per RETRY_MAX_DELAY, not one every few seconds.
type exhaustedSweeper struct {
	w           *worker
	advisories  jetstream.Consumer
	contacts    jetstream.Stream
	checkpoints *queue.Checkpoints
}

// run processes advisories until ctx ends; it returns nil (failures are logged and retried).
func (s *exhaustedSweeper) run(ctx context.Context) error {
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err := s.advisories.Fetch(8, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			if ctx.Err() == nil {
				s.w.log.Warnf("Reading MAX_DELIVERIES advisories failed; trying again: %v", err)
				sleepCtx(ctx, time.Second)
			}
			continue
		}
		for msg := range batch.Messages() {
			if err := s.handle(ctx, msg); err != nil {
				_ = msg.NakWithDelay(s.retryDelay(msg, err))
				continue
			}
			_ = msg.Ack()
		}
		cancel()
	}
	return nil
}

// retryDelay logs why an advisory could not be dealt with and returns when to look again.
func (s *exhaustedSweeper) retryDelay(msg jetstream.Msg, err error) time.Duration {
	var claimed *stillClaimedError
	if errors.As(err, &claimed) {
		return claimed.wait // logged by handle
	}
	tries := uint64(1)
	if md, mdErr := msg.Metadata(); mdErr == nil {
		tries = md.NumDelivered
	}
	var failed *letterError
	if !errors.As(err, &failed) {
		delay := s.w.policy.redeliveryDelay(tries)
		s.w.log.Warnf("Could not deal with an exhausted contact; trying again in %s: %v", delay, err)
		return delay
	}
	ev := sweptEvent(failed.dl)
	ev.Name = "Contact " + failed.dl.ContactID + " (exhausted its deliveries)"
	if failed.dl.ContactID == "" {
		ev.Name = "message (exhausted its deliveries)"
	}
	ev.LetterErr, ev.Tries, ev.RetryIn = failed.err, tries, s.w.policy.deadLetterRetry(tries)
	s.w.observers.ObserveOutcome(ev)
	return ev.RetryIn
}

// sweptEvent is the outcome of an exhausted contact's dead letter dl.
func sweptEvent(dl queue.DeadLetter) OutcomeEvent {
	return OutcomeEvent{ContactID: dl.ContactID, Decision: Decision{Action: DeadLetter, Reason: ReasonDeliveriesExceeded},
		Detail: dl.LastError, Swept: true, Letter: dl}
}

// letterError is a dead letter the sweeper could not write.
type letterError struct {
	dl  queue.DeadLetter
	err error
}

func (e *letterError) Error() string { return e.err.Error() }
func (e *letterError) Unwrap() error { return e.err }

func (s *exhaustedSweeper) handle(ctx context.Context, msg jetstream.Msg) error {
	adv, err := queue.ParseMaxDeliveries(msg.Data())
	if err != nil {
		s.w.log.Warnf("Ignoring a malformed MAX_DELIVERIES advisory: %v", err)
		return nil
	}
	raw, err := s.contacts.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // already acked or terminated
	}
	if err != nil {
		return fmt.Errorf("read contact at sequence %d: %w", adv.StreamSeq, err)
	}
	var head struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw.Data, &head) // best effort: the payload may be anything
	head.ID = shortID(head.ID)          // a poison message's id may be anything
	log := s.w.log.WithField("contact_id", head.ID)

	// Only a usable id can have a completed record or a claim: looking up anything else
	// would fail for ever (an invalid key) and keep the contact from its dead letter.
	if lookupID(head.ID) {
		done, err := s.checkpoints.IsCompleted(ctx, head.ID)
		if err != nil {
			return err
		}
		if done { // completed, but its ack was lost with the worker
			return s.contacts.DeleteMsg(ctx, adv.StreamSeq)
		}
	}
	now := time.Now()
	var cp call.Checkpoint
	if lookupID(head.ID) {
		var ok bool
		if cp, ok, err = s.checkpoints.Get(ctx, head.ID); err != nil {
			return err
		}
		// A worker cut off from NATS past AckWait may still hold the claim and finish the
		// contact: look again once its lease has lapsed.
		if ok && cp.Owner != "" && now.Before(cp.LeaseUntil) {
			wait := cp.LeaseUntil.Sub(now) + time.Second
			log.Infof("Contact %s used its deliveries but is still claimed by %s; looking again in %s",
				head.ID, cp.Owner, wait.Round(time.Second))
			return &stillClaimedError{wait: wait}
		}
	}
	dl := queue.DeadLetter{
		ContactID:       head.ID,
		Reason:          ReasonDeliveriesExceeded,
		LastError:       fmt.Sprintf("delivery limit (%d) reached without a result: the workers that took the contact stopped before finishing it", adv.Deliveries),
		Attempts:        int(adv.Deliveries),
		FirstFailure:    now,
		LastFailure:     now,
		Worker:          s.w.cfg.Worker.ID,
		OriginalSubject: raw.Subject,
		OriginalStream:  s.w.cfg.Topology.ContactsStream,
		StreamSeq:       adv.StreamSeq,
		MsgID:           raw.Header.Get(jetstream.MsgIDHeader),
		Payload:         raw.Data,
	}
	if !cp.FirstFailure.IsZero() {
		dl.FirstFailure = cp.FirstFailure
	}
	if adv.Stream != "" {
		dl.OriginalStream = adv.Stream
	}
	stored, err := s.w.dlq.Write(ctx, dl)
	if err != nil {
		return &letterError{dl: stored, err: err}
	}
	if err := s.contacts.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("remove dead-lettered contact at sequence %d: %w", adv.StreamSeq, err)
	}
	ev := sweptEvent(stored)
	ev.ContactID, ev.Name = head.ID, "Contact "+head.ID
	if head.ID == "" {
		ev.Name = "A message"
	}
	s.w.observers.ObserveOutcome(ev)
	return nil
}

// lookupID reports whether id can be a key of the completed and checkpoints buckets, as
// every contact id a worker processed is (contact ids are at most contact.MaxIDLen of
// A–Z a–z 0–9 . _ - =, which are valid keys).
func lookupID(id string) bool {
	if id == "" || len(id) > contact.MaxIDLen || id[0] == '.' || id[len(id)-1] == '.' || strings.Contains(id, "..") {
		return false
	}
	for i := range len(id) {
		switch b := id[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '-', b == '_', b == '=', b == '.', b == '/':
		default:
			return false
		}
	}
	return true
}

// stillClaimedError: the exhausted contact's claim is live; its advisory waits for the lease.
type stillClaimedError struct{ wait time.Duration }

func (e *stillClaimedError) Error() string {
	return fmt.Sprintf("the contact is still claimed; looking again in %s", e.wait)
}
