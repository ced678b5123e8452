package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/contact"
)

// EnqueueStats counts what the stream did with the published contacts.
type EnqueueStats struct {
	// Enqueued is the number of contacts the stream stored.
	Enqueued int
	// Duplicates is the number the stream dropped because a message with the same contact id
	// was stored within the dedupe window.
	Duplicates int
}

// PublishError names the contact whose publish could not be confirmed.
type PublishError struct {
	ContactID string
	Err       error
}

func (e *PublishError) Error() string {
	return fmt.Sprintf("publish contact %q: %v", e.ContactID, e.Err)
}

func (e *PublishError) Unwrap() error { return e.Err }

// Enqueuer publishes contacts asynchronously with at most Window publishes awaiting their
// ack, so a large file costs one round trip per window rather than per contact. Each message
// carries Nats-Msg-Id = contact id: the stream's dedupe window drops a second enqueue.
// An Enqueuer is not safe for concurrent use.
type Enqueuer struct {
	js      jetstream.JetStream
	subject string
	window  int
	pending []inflight
	stats   EnqueueStats
}

type inflight struct {
	id     string
	future jetstream.PubAckFuture
}

// retryPublishAttempts bounds the synchronous re-publish of a message whose async ack failed.
// Re-publishing is safe: the same Nats-Msg-Id makes the stream store it at most once.
const retryPublishAttempts = 3

// NewEnqueuer returns an Enqueuer publishing to subject. js should be created with
// jetstream.WithPublishAsyncMaxPending(window) or larger.
func NewEnqueuer(js jetstream.JetStream, subject string, window int) *Enqueuer {
	if window < 1 {
		window = 1
	}
	return &Enqueuer{js: js, subject: subject, window: window}
}

// NewContactMsg is the message for one contact: its JSON as the payload and its id as
// Nats-Msg-Id.
func NewContactMsg(subject, msgID string, c contact.Contact) (*nats.Msg, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode contact %q: %w", c.ID, err)
	}
	m := nats.NewMsg(subject)
	m.Data = payload
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	return m, nil
}

// Add publishes c, first waiting for the oldest outstanding ack when the window is full.
func (e *Enqueuer) Add(ctx context.Context, c contact.Contact) error {
	for len(e.pending) >= e.window {
		if err := e.settleOldest(ctx); err != nil {
			return err
		}
	}
	m, err := NewContactMsg(e.subject, c.ID, c)
	if err != nil {
		return err
	}
	f, err := e.js.PublishMsgAsync(m)
	if err != nil {
		// The async queue refused it (stalled or closed): publish synchronously instead.
		return e.publishSync(ctx, c.ID, m)
	}
	e.pending = append(e.pending, inflight{id: c.ID, future: f})
	return nil
}

// Flush waits for every outstanding ack and returns the totals.
func (e *Enqueuer) Flush(ctx context.Context) (EnqueueStats, error) {
	for len(e.pending) > 0 {
		if err := e.settleOldest(ctx); err != nil {
			return e.stats, err
		}
	}
	return e.stats, nil
}

func (e *Enqueuer) settleOldest(ctx context.Context) error {
	p := e.pending[0]
	e.pending = e.pending[1:]
	select {
	case ack := <-p.future.Ok():
		e.count(ack)
		return nil
	case err := <-p.future.Err():
		if errors.Is(err, nats.ErrConnectionClosed) {
			return &PublishError{ContactID: p.id, Err: err}
		}
		return e.publishSync(ctx, p.id, p.future.Msg())
	case <-ctx.Done():
		return &PublishError{ContactID: p.id, Err: ctx.Err()}
	}
}

func (e *Enqueuer) publishSync(ctx context.Context, id string, m *nats.Msg) error {
	ack, err := e.js.PublishMsg(ctx, m,
		jetstream.WithRetryAttempts(retryPublishAttempts),
		jetstream.WithRetryWait(250*time.Millisecond))
	if err != nil {
		return &PublishError{ContactID: id, Err: err}
	}
	e.count(ack)
	return nil
}

func (e *Enqueuer) count(ack *jetstream.PubAck) {
	if ack.Duplicate {
		e.stats.Duplicates++
	} else {
		e.stats.Enqueued++
	}
}
