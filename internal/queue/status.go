package queue

import (
	"context"
	"errors"
	"fmt"

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
	// DeadLettered counts contacts written off with a reason.
	DeadLettered uint64 `json:"dead_lettered"`
}

// Idle reports whether no contact is waiting or being worked on.
func (s Status) Idle() bool { return s.Pending == 0 && s.InProgress == 0 }

// ErrNotSetUp means the contacts stream does not exist yet: nothing was enqueued and no
// worker has started against this server.
var ErrNotSetUp = errors.New("the contacts stream does not exist yet (enqueue contacts or start a worker first)")

// ReadStatus reads the counts from the stream, the consumer and the completed bucket.
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
	}
	kv, err := js.KeyValue(ctx, t.CompletedBucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
	case err != nil:
		return st, fmt.Errorf("read KV bucket %s: %w", t.CompletedBucket, err)
	default:
		kvs, err := kv.Status(ctx)
		if err != nil {
			return st, fmt.Errorf("read KV bucket %s: %w", t.CompletedBucket, err)
		}
		st.Completed = kvs.Values()
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
