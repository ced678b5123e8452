package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/metrics"
	"github.com/callagent/resilience/internal/queue"
)

// exhaustedSweeper dead-letters contacts that reached the delivery limit without any worker
// writing them off (every worker that took one died on it), from the stored MAX_DELIVERIES
// advisories. Such a contact is still in the stream but would never be delivered again.
type exhaustedSweeper struct {
	w           *worker
	advisories  jetstream.Consumer
	contacts    jetstream.Stream
	completions *queue.Completions
	checkpoints *queue.Checkpoints
}

// run processes advisories until ctx ends.
func (s *exhaustedSweeper) run(ctx context.Context) {
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
				s.w.log.Warnf("Could not dead-letter an exhausted contact; will try again: %v", err)
				_ = msg.NakWithDelay(5 * time.Second)
				continue
			}
			_ = msg.Ack()
		}
		cancel()
	}
}

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
	log := s.w.log.WithField("contact_id", head.ID)

	if head.ID != "" {
		done, err := s.completions.IsCompleted(ctx, head.ID)
		if err != nil {
			return err
		}
		if done { // completed, but its ack was lost with the worker
			return s.contacts.DeleteMsg(ctx, adv.StreamSeq)
		}
	}
	now := time.Now()
	var cp call.Checkpoint
	if head.ID != "" {
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
	if err := s.w.dlq.Publish(ctx, dl); err != nil {
		return err
	}
	if err := s.contacts.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("remove dead-lettered contact at sequence %d: %w", adv.StreamSeq, err)
	}
	s.w.stats.deadLettered.Add(1)
	s.w.metrics.ContactOutcome(metrics.OutcomeDeadLettered)
	s.w.metrics.DeadLettered(ReasonDeliveriesExceeded)
	s.w.alerts.failure("", head.ID, ReasonDeliveriesExceeded, true, dl.LastError)
	log.WithField("error_category", ReasonDeliveriesExceeded).
		Errorf("Contact %s exhausted its %d deliveries without a result; dead-lettered", head.ID, adv.Deliveries)
	return nil
}

// stillClaimedError: the exhausted contact's claim is live; its advisory waits for the lease.
type stillClaimedError struct{ wait time.Duration }

func (e *stillClaimedError) Error() string {
	return fmt.Sprintf("the contact is still claimed; looking again in %s", e.wait)
}
