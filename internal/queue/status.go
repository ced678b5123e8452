package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config"
)

// Status is the campaign's state as JetStream sees it, for the whole fleet.
type Status struct {
	// Pending contacts wait in the stream for a worker.
	Pending uint64 `json:"pending"`
	// InProgress contacts were delivered to a worker and are not yet acked (including those
	// waiting for a delayed redelivery).
	InProgress uint64 `json:"in_progress"`
	// Completed counts unique contacts recorded as completed.
	Completed uint64 `json:"completed"`
	// Cancelled counts contacts an operator cancelled (publisher cancel).
	Cancelled uint64 `json:"cancelled"`
	// DeadLettered counts contacts written off with a reason.
	DeadLettered uint64 `json:"dead_lettered"`
	// Paused is set while the shared consumer is paused (`publisher pause`), until PauseUntil.
	Paused     bool      `json:"paused"`
	PauseUntil time.Time `json:"pause_until,omitzero"`
	// OldestPending is when the oldest contact still in the stream was enqueued (zero when
	// the stream is empty).
	OldestPending time.Time `json:"oldest_pending,omitzero"`
}

// Idle reports whether no contact is waiting or being worked on.
func (s Status) Idle() bool { return s.Pending == 0 && s.InProgress == 0 }

// ErrNotSetUp means the contacts stream does not exist yet: nothing was enqueued and no
// worker has started against this server.
var ErrNotSetUp = errors.New("the contacts stream does not exist yet (enqueue contacts or start a worker first)")

// ReadStatus reads the counts from the stream, the consumer, the checkpoint bucket and the
// dead-letter stream.
func ReadStatus(ctx context.Context, js jetstream.JetStream, t config.Topology) (Status, error) {
	var st Status
	stream, err := js.Stream(ctx, t.ContactsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return st, fmt.Errorf("stream %s: %w", t.ContactsStream, ErrNotSetUp)
	}
	if err != nil {
		return st, fmt.Errorf("read stream %s: %w", t.ContactsStream, err)
	}
	cons, err := stream.Consumer(ctx, t.Consumer)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		info, err := stream.Info(ctx)
		if err != nil {
			return st, fmt.Errorf("read stream %s: %w", t.ContactsStream, err)
		}
		st.Pending = info.State.Msgs
	case err != nil:
		return st, fmt.Errorf("read consumer %s: %w", t.Consumer, err)
	default:
		info, err := cons.Info(ctx)
		if err != nil {
			return st, fmt.Errorf("read consumer %s: %w", t.Consumer, err)
		}
		st.Pending = info.NumPending
		st.InProgress = uint64(info.NumAckPending)
		if st.Paused = info.Paused; st.Paused && info.Config.PauseUntil != nil {
			st.PauseUntil = *info.Config.PauseUntil
		}
	}
	if first, err := stream.Info(ctx); err == nil && first.State.Msgs > 0 {
		st.OldestPending = first.State.FirstTime
	}
	if st.Completed, err = CountCompleted(ctx, js, t); err != nil {
		return st, err
	}
	if st.Cancelled, err = countKeys(ctx, js, t, cancelledPrefix); err != nil {
		return st, err
	}
	dlq, err := js.Stream(ctx, t.DeadLetterStream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil:
		return st, fmt.Errorf("read stream %s: %w", t.DeadLetterStream, err)
	default:
		info, err := dlq.Info(ctx)
		if err != nil {
			return st, fmt.Errorf("read stream %s: %w", t.DeadLetterStream, err)
		}
		st.DeadLettered = info.State.Msgs
	}
	return st, nil
}

// CountCompleted counts the contacts with a completed record (0 when the bucket does not
// exist yet). The server counts them: a short-lived consumer over the completed keys, one
// message per key, whose pending count is the answer; nothing is read.
func CountCompleted(ctx context.Context, js jetstream.JetStream, t config.Topology) (uint64, error) {
	return countKeys(ctx, js, t, completedPrefix)
}

// countKeys counts the keys of the records bucket that start with prefix.
func countKeys(ctx context.Context, js jetstream.JetStream, t config.Topology, prefix string) (uint64, error) {
	stream, err := js.Stream(ctx, "KV_"+t.CheckpointBucket)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read KV bucket %s: %w", t.CheckpointBucket, err)
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     "$KV." + t.CheckpointBucket + "." + prefix + ">",
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return 0, fmt.Errorf("count %s* keys in KV bucket %s: %w", prefix, t.CheckpointBucket, err)
	}
	n := cons.CachedInfo().NumPending
	// An error here leaves a consumer that the server removes after InactiveThreshold.
	_ = stream.DeleteConsumer(context.WithoutCancel(ctx), cons.CachedInfo().Name)
	return n, nil
}
