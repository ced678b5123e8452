// Package queue owns everything the project keeps in JetStream: the contacts stream and its
// durable pull consumer, the per-contact records, publishing with dedupe, and status.
//
// Every other package sees JetStream through the small functions here, so stream and consumer
// settings live in one place and follow design.md: a WorkQueue stream (a contact leaves it only
// when acked or terminated), explicit acks, small pull batches, MaxAckPending sized to the
// fleet's pool, and AckWait kept alive with InProgress heartbeats.
//
// Ownership: the Ensure functions create what is missing and never change what exists. A
// difference between the configuration and the server is Drift, reported by Inspect (status,
// worker start) and changed only by ApplyDrift (`publisher setup --apply`), so a laptop's
// settings can never silently rewrite a production stream.
package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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

// EnsureContactsStream returns the contacts stream, creating it when it does not exist. It
// never changes an existing stream (see Drift).
func EnsureContactsStream(ctx context.Context, js jetstream.JetStream, t config.Topology) (jetstream.Stream, error) {
	return ensureStream(ctx, js, ContactsStreamConfig(t))
}

// EnsureConsumer returns the shared durable consumer, creating it when it does not exist. It
// never changes an existing consumer: a paused consumer stays paused, and one worker's
// settings do not become the fleet's.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, t config.Topology) (jetstream.Consumer, error) {
	return ensureConsumer(ctx, js, t.ContactsStream, ConsumerConfig(t))
}

// ensureStream returns the stream named by want, creating it with want when missing.
func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (jetstream.Stream, error) {
	for range 2 { // a second round when another process created it between our look and create
		s, err := js.Stream(ctx, want.Name)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("read stream %s: %w", want.Name, err)
		}
		s, err = js.CreateStream(ctx, want)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("create stream %s: %w", want.Name, err)
		}
	}
	return nil, fmt.Errorf("create stream %s: created and deleted concurrently", want.Name)
}

// ensureConsumer returns stream's durable consumer named by want, creating it when missing.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, want jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	for range 2 {
		c, err := js.Consumer(ctx, stream, want.Durable)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("read consumer %s on stream %s: %w", want.Durable, stream, err)
		}
		c, err = js.CreateConsumer(ctx, stream, want)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, jetstream.ErrConsumerExists) {
			return nil, fmt.Errorf("create consumer %s on stream %s: %w", want.Durable, stream, err)
		}
	}
	return nil, fmt.Errorf("create consumer %s on stream %s: created and deleted concurrently", want.Durable, stream)
}

// Setup creates every stream, bucket and consumer of t that is missing and returns what
// differs between t and the server for the ones that exist. It changes nothing that exists.
func Setup(ctx context.Context, js jetstream.JetStream, t config.Topology) (Plan, error) {
	var created []string
	for _, r := range resources(t) {
		existed, err := r.ensure(ctx, js)
		if err != nil {
			return Plan{}, err
		}
		if !existed {
			created = append(created, r.name)
		}
	}
	p, err := Inspect(ctx, js, t)
	p.Created = created
	return p, err
}

// Plan is the difference between a topology and the server.
type Plan struct {
	// Created names what Setup created (empty from Inspect).
	Created []string `json:"created,omitempty"`
	// Missing names what does not exist on the server (Inspect only; Setup creates it).
	Missing []string `json:"missing,omitempty"`
	// Drift lists every setting whose server value differs from the configuration.
	Drift []Drift `json:"drift,omitempty"`
}

// Incompatible returns the drift the worker cannot run with.
func (p Plan) Incompatible() []Drift {
	var out []Drift
	for _, d := range p.Drift {
		if d.Incompatible {
			out = append(out, d)
		}
	}
	return out
}

// Drift is one setting whose server value differs from the configured one.
type Drift struct {
	// Resource is what holds it, e.g. "stream CONTACTS" or "consumer CONTACTS/call-workers".
	Resource string `json:"resource"`
	// Field is JetStream's name of the setting, e.g. "duplicate_window".
	Field string `json:"field"`
	// Setting is the configuration setting that decides it, e.g. "DEDUPE_WINDOW".
	Setting string `json:"setting,omitempty"`
	// Configured and Server are the two values.
	Configured string `json:"configured"`
	Server     string `json:"server"`
	// Incompatible means the worker cannot run with the server's value; otherwise it runs
	// with the server's value and the difference is only reported.
	Incompatible bool `json:"incompatible,omitempty"`
	// Fixed is false when JetStream cannot change the value in place: the stream or
	// consumer must be recreated (after draining it) for the configured value to apply.
	Fixable bool `json:"fixable"`
}

func (d Drift) String() string {
	setting := ""
	if d.Setting != "" {
		setting = " (" + d.Setting + ")"
	}
	var note string
	switch {
	case d.Incompatible && !d.Fixable:
		note = "; the worker cannot run with it and JetStream cannot change it in place: recreate it"
	case d.Incompatible:
		note = "; the worker cannot run with it: `publisher setup --apply` changes it"
	case !d.Fixable:
		note = "; JetStream cannot change it in place"
	}
	return fmt.Sprintf("%s %s: configured %s%s, server has %s%s", d.Resource, d.Field, d.Configured, setting, d.Server, note)
}

// Inspect compares t with the server and changes nothing.
func Inspect(ctx context.Context, js jetstream.JetStream, t config.Topology) (Plan, error) {
	var p Plan
	for _, r := range resources(t) {
		drift, found, err := r.inspect(ctx, js)
		if err != nil {
			return p, err
		}
		if !found {
			p.Missing = append(p.Missing, r.name)
		}
		p.Drift = append(p.Drift, drift...)
	}
	return p, nil
}

// ApplyDrift changes on the server every fixable drifted setting of t to its configured value
// and returns the drift it could not fix. Only the drifted fields change; everything else of
// the server's configuration (a consumer's pause, subjects added by hand) is kept.
func ApplyDrift(ctx context.Context, js jetstream.JetStream, t config.Topology) ([]Drift, error) {
	var left []Drift
	for _, r := range resources(t) {
		rest, err := r.apply(ctx, js)
		if err != nil {
			return left, err
		}
		left = append(left, rest...)
	}
	return left, nil
}

// resource is one stream (with an optional durable consumer on it) the project owns, with the
// fields it compares.
type resource struct {
	name   string // "stream X" or "consumer X/Y"
	stream *jetstream.StreamConfig
	fields []check[jetstream.StreamConfig]
	// create makes the stream when missing; nil uses CreateStream(stream).
	create func(ctx context.Context, js jetstream.JetStream) error

	consumerOf string // set for a consumer: its stream
	consumer   *jetstream.ConsumerConfig
	cfields    []check[jetstream.ConsumerConfig]
}

// check compares one field of a configuration C.
type check[C any] struct {
	field, setting string
	show           func(*C) string
	// same overrides equality of show's results (e.g. "the subjects include ours").
	same         func(want, have *C) bool
	set          func(dst, src *C) // nil: JetStream cannot change it in place
	incompatible bool
}

func (c check[C]) differs(want, have *C) bool {
	if c.same != nil {
		return !c.same(want, have)
	}
	return c.show(want) != c.show(have)
}

func (c check[C]) drift(resource string, want, have *C) Drift {
	return Drift{Resource: resource, Field: c.field, Setting: c.setting, Configured: c.show(want),
		Server: c.show(have), Incompatible: c.incompatible, Fixable: c.set != nil}
}

func compare[C any](resource string, checks []check[C], want, have *C) []Drift {
	var out []Drift
	for _, c := range checks {
		if c.differs(want, have) {
			out = append(out, c.drift(resource, want, have))
		}
	}
	return out
}

func (r resource) ensure(ctx context.Context, js jetstream.JetStream) (existed bool, err error) {
	if r.consumer != nil {
		if _, err := js.Consumer(ctx, r.consumerOf, r.consumer.Durable); err == nil {
			return true, nil
		}
		_, err := ensureConsumer(ctx, js, r.consumerOf, *r.consumer)
		return false, err
	}
	if _, err := js.Stream(ctx, r.stream.Name); err == nil {
		return true, nil
	}
	if r.create != nil {
		return false, r.create(ctx, js)
	}
	_, err = ensureStream(ctx, js, *r.stream)
	return false, err
}

func (r resource) inspect(ctx context.Context, js jetstream.JetStream) (drift []Drift, found bool, err error) {
	if r.consumer != nil {
		c, err := js.Consumer(ctx, r.consumerOf, r.consumer.Durable)
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("read %s: %w", r.name, err)
		}
		have := c.CachedInfo().Config
		return compare(r.name, r.cfields, r.consumer, &have), true, nil
	}
	s, err := js.Stream(ctx, r.stream.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", r.name, err)
	}
	have := s.CachedInfo().Config
	return compare(r.name, r.fields, r.stream, &have), true, nil
}

func (r resource) apply(ctx context.Context, js jetstream.JetStream) (left []Drift, err error) {
	if r.consumer != nil {
		c, err := js.Consumer(ctx, r.consumerOf, r.consumer.Durable)
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, nil // missing: Setup creates it
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", r.name, err)
		}
		have := c.CachedInfo().Config
		next, left, changed := fix(r.name, r.cfields, r.consumer, have)
		if changed {
			if _, err := js.UpdateConsumer(ctx, r.consumerOf, next); err != nil {
				return left, fmt.Errorf("update %s: %w", r.name, err)
			}
		}
		return left, nil
	}
	s, err := js.Stream(ctx, r.stream.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.name, err)
	}
	next, left, changed := fix(r.name, r.fields, r.stream, s.CachedInfo().Config)
	if changed {
		if _, err := js.UpdateStream(ctx, next); err != nil {
			return left, fmt.Errorf("update %s: %w", r.name, err)
		}
	}
	return left, nil
}

// fix returns have with every fixable drifted field set from want, the drift it cannot fix,
// and whether anything changed.
func fix[C any](resource string, checks []check[C], want *C, have C) (next C, left []Drift, changed bool) {
	next = have
	for _, c := range checks {
		if !c.differs(want, &have) {
			continue
		}
		if c.set == nil {
			left = append(left, c.drift(resource, want, &have))
			continue
		}
		c.set(&next, want)
		changed = true
	}
	return next, left, changed
}

// resources lists everything the worker needs in JetStream, in creation order.
func resources(t config.Topology) []resource {
	contacts := ContactsStreamConfig(t)
	consumer := ConsumerConfig(t)
	dead := DeadLetterStreamConfig(t)
	records := CheckpointStreamConfig(t)
	audio := jetstream.StreamConfig{Name: "OBJ_" + t.AudioBucket, Replicas: t.Replicas, MaxAge: t.CheckpointTTL}
	advisories := AdvisoryStreamConfig(t)
	advConsumer := AdvisoryConsumerConfig(t)
	return []resource{
		{name: "stream " + contacts.Name, stream: &contacts, fields: []check[jetstream.StreamConfig]{
			subjectsInclude("CONTACTS_SUBJECT"),
			retention, storage, replicas, duplicates("DEDUPE_WINDOW"),
		}},
		{name: "consumer " + contacts.Name + "/" + consumer.Durable, consumerOf: contacts.Name, consumer: &consumer,
			cfields: consumerChecks},
		{name: "stream " + dead.Name, stream: &dead, fields: []check[jetstream.StreamConfig]{
			subjectsInclude("DEAD_LETTER_SUBJECT"), replicas, maxAge("DEAD_LETTER_MAX_AGE"), duplicates("DEDUPE_WINDOW, DEAD_LETTER_MAX_AGE"),
		}},
		{name: "KV bucket " + t.CheckpointBucket + " (stream " + records.Name + ")", stream: &records, fields: []check[jetstream.StreamConfig]{
			subjectsInclude("CHECKPOINT_BUCKET"), allowMsgTTL, replicas,
		}},
		{name: "object store " + t.AudioBucket + " (stream " + audio.Name + ")", stream: &audio,
			fields: []check[jetstream.StreamConfig]{replicas, maxAge("CHECKPOINT_TTL")},
			create: func(ctx context.Context, js jetstream.JetStream) error {
				_, err := ensureObjectStore(ctx, js, AudioBucketConfig(t))
				return err
			}},
		{name: "stream " + advisories.Name, stream: &advisories, fields: []check[jetstream.StreamConfig]{
			subjectsInclude("CONTACTS_STREAM, CONSUMER_NAME"), replicas, maxAge("DEAD_LETTER_MAX_AGE"),
		}},
		{name: "consumer " + advisories.Name + "/" + advConsumer.Durable, consumerOf: advisories.Name, consumer: &advConsumer,
			cfields: []check[jetstream.ConsumerConfig]{ackPolicy}},
	}
}

// ensureObjectStore returns the object store of cfg, creating it when missing.
func ensureObjectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	obs, err := js.ObjectStore(ctx, cfg.Bucket)
	if err == nil {
		return obs, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("open object store %s: %w", cfg.Bucket, err)
	}
	obs, err = js.CreateObjectStore(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return js.ObjectStore(ctx, cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("create object store %s: %w", cfg.Bucket, err)
	}
	return obs, nil
}

func subjectsInclude(setting string) check[jetstream.StreamConfig] {
	return check[jetstream.StreamConfig]{
		field: "subjects", setting: setting, incompatible: true,
		show: func(c *jetstream.StreamConfig) string { return strings.Join(c.Subjects, ",") },
		same: func(want, have *jetstream.StreamConfig) bool {
			for _, s := range want.Subjects {
				if !slices.Contains(have.Subjects, s) {
					return false
				}
			}
			return true
		},
		set: func(dst, src *jetstream.StreamConfig) {
			for _, s := range src.Subjects {
				if !slices.Contains(dst.Subjects, s) {
					dst.Subjects = append(dst.Subjects, s)
				}
			}
		},
	}
}

var (
	retention = check[jetstream.StreamConfig]{field: "retention", incompatible: true,
		show: func(c *jetstream.StreamConfig) string { return c.Retention.String() }}
	storage = check[jetstream.StreamConfig]{field: "storage",
		show: func(c *jetstream.StreamConfig) string { return c.Storage.String() }}
	replicas = check[jetstream.StreamConfig]{field: "num_replicas", setting: "STREAM_REPLICAS",
		show: func(c *jetstream.StreamConfig) string { return fmt.Sprint(max(c.Replicas, 1)) },
		set:  func(dst, src *jetstream.StreamConfig) { dst.Replicas = src.Replicas }}
	allowMsgTTL = check[jetstream.StreamConfig]{field: "allow_msg_ttl", incompatible: true,
		show: func(c *jetstream.StreamConfig) string { return fmt.Sprint(c.AllowMsgTTL) },
		set:  func(dst, src *jetstream.StreamConfig) { dst.AllowMsgTTL = src.AllowMsgTTL }}
)

func duplicates(setting string) check[jetstream.StreamConfig] {
	return check[jetstream.StreamConfig]{field: "duplicate_window", setting: setting,
		show: func(c *jetstream.StreamConfig) string { return showDuration(c.Duplicates) },
		set:  func(dst, src *jetstream.StreamConfig) { dst.Duplicates = src.Duplicates }}
}

func maxAge(setting string) check[jetstream.StreamConfig] {
	return check[jetstream.StreamConfig]{field: "max_age", setting: setting,
		show: func(c *jetstream.StreamConfig) string { return showDuration(c.MaxAge) },
		set:  func(dst, src *jetstream.StreamConfig) { dst.MaxAge = src.MaxAge }}
}

var ackPolicy = check[jetstream.ConsumerConfig]{field: "ack_policy", incompatible: true,
	show: func(c *jetstream.ConsumerConfig) string { return c.AckPolicy.String() }}

var consumerChecks = []check[jetstream.ConsumerConfig]{
	ackPolicy,
	{field: "filter_subject", setting: "CONTACTS_SUBJECT", incompatible: true,
		show: func(c *jetstream.ConsumerConfig) string { return c.FilterSubject },
		set:  func(dst, src *jetstream.ConsumerConfig) { dst.FilterSubject = src.FilterSubject }},
	{field: "ack_wait", setting: "ACK_WAIT",
		show: func(c *jetstream.ConsumerConfig) string { return showDuration(c.AckWait) },
		set:  func(dst, src *jetstream.ConsumerConfig) { dst.AckWait = src.AckWait }},
	{field: "max_deliver", setting: fmt.Sprintf("MAX_DELIVER × %d", DeliveryBackstop),
		show: func(c *jetstream.ConsumerConfig) string { return fmt.Sprint(c.MaxDeliver) },
		set:  func(dst, src *jetstream.ConsumerConfig) { dst.MaxDeliver = src.MaxDeliver }},
	{field: "max_ack_pending", setting: "MAX_ACK_PENDING",
		show: func(c *jetstream.ConsumerConfig) string { return fmt.Sprint(c.MaxAckPending) },
		set:  func(dst, src *jetstream.ConsumerConfig) { dst.MaxAckPending = src.MaxAckPending }},
	{field: "num_replicas", setting: "STREAM_REPLICAS",
		// 0 is "as the stream"; the project always sets it, so compare what the server keeps.
		show: func(c *jetstream.ConsumerConfig) string { return fmt.Sprint(c.Replicas) },
		same: func(want, have *jetstream.ConsumerConfig) bool {
			return have.Replicas == 0 || have.Replicas == want.Replicas
		},
		set: func(dst, src *jetstream.ConsumerConfig) { dst.Replicas = src.Replicas }},
}

func showDuration(d time.Duration) string {
	if d == 0 {
		return "0 (unlimited)"
	}
	return d.String()
}
