package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config"
)

// MaxDeliveriesAdvisory is JetStream's notice that a message reached the consumer's delivery
// limit without being acked or terminated: the message is still in the stream but will never
// be delivered again. It happens when every worker that took the contact died on it.
type MaxDeliveriesAdvisory struct {
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries uint64    `json:"deliveries"`
	Time       time.Time `json:"timestamp"`
}

// AdvisorySubject is where the server announces contacts that exhausted their deliveries.
func AdvisorySubject(t config.Topology) string {
	return fmt.Sprintf("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s", t.ContactsStream, t.Consumer)
}

// AdvisoryStreamName is the stream that keeps those advisories until a worker has
// dead-lettered their contact: a core NATS advisory is lost if no worker listens at that
// moment, a stored one is not.
func AdvisoryStreamName(t config.Topology) string { return t.ContactsStream + "_MAX_DELIVERIES" }

// AdvisoryStreamConfig is the stream keeping MAX_DELIVERIES advisories until a worker has
// dead-lettered their contact.
func AdvisoryStreamConfig(t config.Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        AdvisoryStreamName(t),
		Description: "MAX_DELIVERIES advisories of the contacts consumer, until their contact is dead-lettered",
		Subjects:    []string{AdvisorySubject(t)},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		MaxAge:      t.DeadLetterMaxAge,
	}
}

// AdvisoryConsumerConfig is the durable consumer the workers share to process advisories.
func AdvisoryConsumerConfig(t config.Topology) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:     t.Consumer + "_dead_letters",
		Description: "workers dead-lettering contacts that exhausted their deliveries",
		AckPolicy:   jetstream.AckExplicitPolicy,
		AckWait:     30 * time.Second,
		Replicas:    t.Replicas,
	}
}

// EnsureAdvisoryConsumer returns the advisory stream's shared consumer, creating the stream
// and the consumer when missing (never changing them).
func EnsureAdvisoryConsumer(ctx context.Context, js jetstream.JetStream, t config.Topology) (jetstream.Consumer, error) {
	if _, err := ensureStream(ctx, js, AdvisoryStreamConfig(t)); err != nil {
		return nil, err
	}
	return ensureConsumer(ctx, js, AdvisoryStreamName(t), AdvisoryConsumerConfig(t))
}

// ParseMaxDeliveries decodes an advisory.
func ParseMaxDeliveries(data []byte) (MaxDeliveriesAdvisory, error) {
	var a MaxDeliveriesAdvisory
	if err := json.Unmarshal(data, &a); err != nil {
		return a, fmt.Errorf("decode MAX_DELIVERIES advisory: %w", err)
	}
	if a.StreamSeq == 0 {
		return a, errors.New("MAX_DELIVERIES advisory without stream_seq")
	}
	return a, nil
}
