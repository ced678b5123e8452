package alert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config/field"
)

// Defaults for Topology.
const (
	DefaultStream        = "ALERTS"
	DefaultSubjectPrefix = "alerts"
	DefaultConsumer      = "alert-dispatcher"
	DefaultBucket        = "alert-incidents"
	DefaultMaxAge        = 7 * 24 * time.Hour
	DefaultMaxBytes      = 256 << 20
	DefaultDuplicates    = 10 * time.Minute
)

// ErrInvalidTopology is wrapped by every error Topology.Validate returns.
var ErrInvalidTopology = errors.New("invalid alert topology")

// Topology names the JetStream objects of alerting. Zero fields take the defaults.
type Topology struct {
	// Stream (ALERTS_STREAM, default ALERTS) holds events and notifications, with Limits
	// retention: messages stay until MaxAge or MaxBytes, whatever the consumers did.
	Stream string
	// SubjectPrefix (ALERTS_SUBJECT_PREFIX, default alerts): events are published on
	// <prefix>.<severity>.<kind>, notifications on <prefix>.notify.<severity>.<kind>.
	SubjectPrefix string
	// Consumer (ALERT_DISPATCHER_CONSUMER, default alert-dispatcher) is the durable consumer
	// of events shared by every worker; each channel has its own, named
	// <Consumer>-<channel slug>.
	Consumer string
	// Bucket (ALERT_INCIDENTS_BUCKET, default alert-incidents) is the KV bucket of incidents
	// and summary windows.
	Bucket string
	// MaxAge (ALERTS_MAX_AGE, default 168h) is how long the stream keeps a message; an
	// alert a channel could not deliver within it is lost.
	MaxAge time.Duration
	// MaxBytes caps the stream's size (default 256 MiB); the oldest messages go first.
	MaxBytes int64
	// Duplicates is the stream's dedupe window for Nats-Msg-Id (default 10m).
	Duplicates time.Duration
	// Replicas is the stream's and bucket's replica count (default 1; 3 in clusters).
	Replicas int
}

// WithDefaults returns t with zero fields set to the defaults.
func (t Topology) WithDefaults() Topology {
	if t.Stream == "" {
		t.Stream = DefaultStream
	}
	if t.SubjectPrefix == "" {
		t.SubjectPrefix = DefaultSubjectPrefix
	}
	if t.Consumer == "" {
		t.Consumer = DefaultConsumer
	}
	if t.Bucket == "" {
		t.Bucket = DefaultBucket
	}
	if t.MaxAge == 0 {
		t.MaxAge = DefaultMaxAge
	}
	if t.MaxBytes == 0 {
		t.MaxBytes = DefaultMaxBytes
	}
	if t.Duplicates == 0 {
		t.Duplicates = DefaultDuplicates
	}
	if t.Replicas == 0 {
		t.Replicas = 1
	}
	return t
}

// Validate reports every invalid field of t (after WithDefaults), each a *field.Error naming
// the field; the error matches ErrInvalidTopology.
func (t Topology) Validate() error {
	var l field.List
	if p := NameProblem("stream", t.Stream); p != "" {
		l.Addf("Stream", "%s", p)
	}
	if !validPrefix(t.SubjectPrefix) {
		l.Addf("SubjectPrefix", "subject prefix %q must be dot-separated tokens without wildcards or spaces (and no token notify)", t.SubjectPrefix)
	}
	if p := NameProblem("consumer", t.Consumer); p != "" {
		l.Addf("Consumer", "%s", p)
	}
	if p := NameProblem("bucket", t.Bucket); p != "" {
		l.Addf("Bucket", "%s", p)
	}
	if t.MaxAge < time.Minute {
		l.Addf("MaxAge", "max age must be at least 1m, got %s", t.MaxAge)
	}
	if t.MaxBytes < 1<<20 {
		l.Addf("MaxBytes", "max bytes must be at least 1 MiB, got %d", t.MaxBytes)
	}
	if t.Duplicates <= 0 || t.Duplicates > t.MaxAge {
		l.Addf("Duplicates", "dedupe window must be positive and at most the max age, got %s", t.Duplicates)
	}
	if t.Replicas < 1 || t.Replicas > 5 {
		l.Addf("Replicas", "replicas must be 1 to 5, got %d", t.Replicas)
	}
	if err := l.Err(); err != nil {
		return invalidTopology{err}
	}
	return nil
}

// invalidTopology is Validate's error: the joined field errors, matching ErrInvalidTopology.
// Each problem names what is wrong in words ("stream name ..."), so the message reads
// without the Go field names.
type invalidTopology struct{ err error }

func (e invalidTopology) Error() string {
	fields, _ := field.Errors(e.err)
	problems := make([]string, len(fields))
	for i, f := range fields {
		problems[i] = f.Problem
	}
	return ErrInvalidTopology.Error() + ": " + strings.Join(problems, "; ")
}

func (e invalidTopology) Is(target error) bool { return target == ErrInvalidTopology }
func (e invalidTopology) Unwrap() []error      { return []error{e.err} }

// NameProblem is the rule for the alert stream's, consumer's and bucket's names, "" when
// name follows it: kind names which ("stream"). The configuration checks ALERTS_STREAM,
// ALERT_DISPATCHER_CONSUMER and ALERT_INCIDENTS_BUCKET with it, so each has this one rule.
func NameProblem(kind, name string) string {
	if validName(name) {
		return ""
	}
	return fmt.Sprintf("%s name %q must be letters, digits, '_' or '-' (at most 64)", kind, name)
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

func validPrefix(s string) bool {
	if s == "" {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "notify" || strings.ContainsAny(tok, "*> \t\r\n") {
			return false
		}
	}
	return true
}

// notifySubject is where the dispatcher publishes notifications.
func (t Topology) notifySubject(n Notification) string {
	return t.SubjectPrefix + ".notify." + string(n.Severity) + "." + string(n.Kind)
}

// eventFilters match events only (three tokens after nothing else), not notifications.
func (t Topology) eventFilters() []string {
	out := make([]string, 0, len(Severities))
	for _, s := range Severities {
		out = append(out, t.SubjectPrefix+"."+string(s)+".*")
	}
	return out
}

// StreamConfig is the alerts stream: events and notifications, Limits retention.
func (t Topology) StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        t.Stream,
		Description: "alert events (<prefix>.<severity>.<kind>) and the notifications made of them (<prefix>.notify.>)",
		Subjects:    []string{t.SubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      t.MaxAge,
		MaxBytes:    t.MaxBytes,
		Discard:     jetstream.DiscardOld,
		Duplicates:  t.Duplicates,
		Replicas:    t.Replicas,
	}
}

// BucketConfig is the incidents bucket: one key per incident and per summary window.
func (t Topology) BucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      t.Bucket,
		Description: "alert incidents (incident.<provider>.<condition>) and summary windows (window.<provider>.<kind>)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}
}

// eventsConsumerConfig is the one durable consumer of events shared by every replica.
// MaxAckPending 1 makes the fleet process events one at a time, in stream order, so
// incidents open before they resolve and notifications are published in order.
func (t Topology) eventsConsumerConfig(ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        t.Consumer,
		Description:    "alert dispatcher: turns events into incidents, summaries and notifications",
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        ackWait,
		MaxDeliver:     -1,
		MaxAckPending:  1,
		FilterSubjects: t.eventFilters(),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		Replicas:       t.Replicas,
	}
}

// channelConsumerName is the durable consumer of one channel.
func (t Topology) channelConsumerName(channel string) string {
	return t.Consumer + "-" + Slug(channel)
}

// channelConsumerConfig is one channel's durable consumer of notifications, shared by every
// replica. MaxAckPending 1 delivers in order; a notification the channel refused stays
// pending (NakWithDelay) and holds the later ones back until it is delivered. New channels
// start with new notifications, not with the stream's history.
func (t Topology) channelConsumerConfig(channel string, ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       t.channelConsumerName(channel),
		Description:   "alert channel " + channel,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: 1,
		FilterSubject: t.SubjectPrefix + ".notify.>",
		DeliverPolicy: jetstream.DeliverNewPolicy,
		Replicas:      t.Replicas,
	}
}

// Ensure creates the alerts stream and the incidents bucket when they are missing. Workers
// call it at start-up before emitting; Dispatcher.Run calls it too. t's zero fields take the
// defaults. An existing stream is never changed (one worker's settings must not become the
// fleet's; see queue.Setup): Drift reports how it differs from t.
func Ensure(ctx context.Context, js jetstream.JetStream, t Topology) error {
	t = t.WithDefaults()
	if err := t.Validate(); err != nil {
		return err
	}
	want := t.StreamConfig()
	_, err := js.Stream(ctx, t.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil // another replica created it just now
		}
	}
	if err != nil {
		return fmt.Errorf("ensure alerts stream %s: %w", t.Stream, err)
	}
	_, err = js.KeyValue(ctx, t.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		_, err = js.CreateKeyValue(ctx, t.BucketConfig())
		if errors.Is(err, jetstream.ErrBucketExists) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("ensure alert incidents bucket %s: %w", t.Bucket, err)
	}
	return nil
}

// Drift lists how the existing alerts stream differs from t, one "field: configured X,
// server has Y" line each (none when it matches or does not exist).
func Drift(ctx context.Context, js jetstream.JetStream, t Topology) ([]string, error) {
	t = t.WithDefaults()
	s, err := js.Stream(ctx, t.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read alerts stream %s: %w", t.Stream, err)
	}
	have, want := s.CachedInfo().Config, t.StreamConfig()
	var out []string
	add := func(field string, w, h any) {
		if fmt.Sprint(w) != fmt.Sprint(h) {
			out = append(out, fmt.Sprintf("stream %s %s: configured %v, server has %v", t.Stream, field, w, h))
		}
	}
	add("subjects", want.Subjects, have.Subjects)
	add("max_age", want.MaxAge, have.MaxAge)
	add("max_bytes", want.MaxBytes, have.MaxBytes)
	add("num_replicas", max(want.Replicas, 1), max(have.Replicas, 1))
	add("duplicate_window", want.Duplicates, have.Duplicates)
	return out, nil
}
