// Package queue owns everything the project keeps in JetStream: the contacts stream and its
// durable pull consumer, the completed-contacts record, publishing with dedupe, and status.
//
// Every other package sees JetStream through the small functions here, so stream and consumer
// settings live in one place and follow design.md: a WorkQueue stream (a contact leaves it only
// when acked or terminated), explicit acks, small pull batches, MaxAckPending sized to the
// fleet's pool, and AckWait kept alive with InProgress heartbeats.
package queue

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config"
)

// ContactsStreamConfig is the contacts stream as this project wants it.
func ContactsStreamConfig(t config.Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        t.ContactsStream,
		Description: "contacts waiting for a call; a contact leaves only when completed or dead-lettered",
		Subjects:    []string{t.ContactsSubject},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		Duplicates:  t.DedupeWindow,
		Discard:     jetstream.DiscardOld,
	}
}

// DeliveryBackstop multiplies MAX_DELIVER into the consumer's own delivery limit. MAX_DELIVER
// counts failed deliveries (recorded in the contact's checkpoint); deliveries that failed
// nothing (a shutdown releasing a held contact, a claim held by another worker) must not use
// up the contact. The consumer's limit only catches contacts whose workers keep dying on them
// and so never record a failure: those are dead-lettered as max_deliveries.
const DeliveryBackstop = 3

// ConsumerConfig is the durable pull consumer every worker replica shares.
func ConsumerConfig(t config.Topology) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       t.Consumer,
		Description:   "call workers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       t.AckWait,
		MaxDeliver:    t.MaxDeliver * DeliveryBackstop,
		MaxAckPending: t.MaxAckPending,
		FilterSubject: t.ContactsSubject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      t.Replicas,
	}
}

// EnsureContactsStream creates the contacts stream or updates it to the wanted settings.
func EnsureContactsStream(ctx context.Context, js jetstream.JetStream, t config.Topology) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, ContactsStreamConfig(t))
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", t.ContactsStream, err)
	}
	return s, nil
}

// EnsureConsumer creates the shared durable consumer or updates it to the wanted settings.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, t config.Topology) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, t.ContactsStream, ConsumerConfig(t))
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on stream %s: %w", t.Consumer, t.ContactsStream, err)
	}
	return c, nil
}
