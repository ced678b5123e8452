package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Completions is the completed-contacts KV bucket: one key per contact id, written once.
type Completions struct {
	kv jetstream.KeyValue
}

// NewCompletions wraps the bucket returned by EnsureCompletedBucket.
func NewCompletions(kv jetstream.KeyValue) *Completions { return &Completions{kv: kv} }

// IsCompleted reports whether id has a completed record.
func (c *Completions) IsCompleted(ctx context.Context, id string) (bool, error) {
	_, err := c.kv.Get(ctx, id)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("read completed record %q: %w", id, err)
	}
}

// MarkCompleted stores record as id's completed record. The write is a create, so the first
// completion wins and a second one (a redelivery after a lost ack) is not an error.
func (c *Completions) MarkCompleted(ctx context.Context, id string, record any) error {
	body, err := json.Marshal(record)
	if err != nil {
		return fmt.Errorf("encode completed record %q: %w", id, err)
	}
	_, err = c.kv.Create(ctx, id, body)
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("write completed record %q: %w", id, err)
	}
	return nil
}
