package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config"
)

// Dead-letter headers: a dead letter is the original payload plus these.
const (
	HeaderReason          = "Dlq-Reason"
	HeaderProvider        = "Dlq-Provider"
	HeaderError           = "Dlq-Error"
	HeaderAttempts        = "Dlq-Attempts"
	HeaderFirstFailure    = "Dlq-First-Failure"
	HeaderLastFailure     = "Dlq-Last-Failure"
	HeaderWorker          = "Dlq-Worker"
	HeaderContactID       = "Dlq-Contact-Id"
	HeaderOriginalSubject = "Dlq-Original-Subject"
	HeaderOriginalStream  = "Dlq-Original-Stream"
	HeaderStreamSeq       = "Dlq-Stream-Seq"
	HeaderMsgID           = "Dlq-Msg-Id"
)

// maxErrorHeader bounds the last-error text kept in a dead letter.
const maxErrorHeader = 1024

// DeadLetter is a written-off contact with everything needed to understand and replay it.
type DeadLetter struct {
	ContactID string
	// Reason is the error category (a fault kind such as quota_exceeded, or max_deliveries,
	// invalid_payload, circuit_open).
	Reason   string
	Provider string
	// LastError is the last error, already redacted by the caller.
	LastError    string
	Attempts     int
	FirstFailure time.Time
	LastFailure  time.Time
	Worker       string
	// Where the original message was.
	OriginalSubject string
	OriginalStream  string
	StreamSeq       uint64
	MsgID           string
	// Payload is the original message body, as received.
	Payload []byte

	// Seq and Stored are set when a dead letter is read back from its stream.
	Seq    uint64
	Stored time.Time
}

// DeadLetterStreamConfig is the dead-letter stream: Limits retention (so inspection tools
// may add consumers), kept for DeadLetterMaxAge.
func DeadLetterStreamConfig(t config.Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        t.DeadLetterStream,
		Description: "written-off contacts with their reason; replay with `publisher dlq replay`",
		Subjects:    []string{t.DeadLetterSubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		MaxAge:      t.DeadLetterMaxAge,
		Duplicates:  min(t.DedupeWindow, t.DeadLetterMaxAge),
	}
}

// EnsureDeadLetterStream creates or updates the dead-letter stream.
func EnsureDeadLetterStream(ctx context.Context, js jetstream.JetStream, t config.Topology) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, DeadLetterStreamConfig(t))
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", t.DeadLetterStream, err)
	}
	return s, nil
}

// DeadLetterer publishes dead letters and waits for their ack.
type DeadLetterer struct {
	js      jetstream.JetStream
	subject string
}

// NewDeadLetterer publishes to the topology's dead-letter subject.
func NewDeadLetterer(js jetstream.JetStream, t config.Topology) *DeadLetterer {
	return &DeadLetterer{js: js, subject: t.DeadLetterSubject}
}

// Publish stores dl and returns once the stream has acked it. Its message id is derived from
// the original stream, sequence and message id, so publishing the same dead letter twice (a
// worker that died between this ack and terminating the original) stores it once, while a
// recreated contacts stream, whose sequences start again, cannot collide with an old one.
func (d *DeadLetterer) Publish(ctx context.Context, dl DeadLetter) error {
	m := nats.NewMsg(d.subject)
	m.Data = dl.Payload
	h := m.Header
	h.Set(HeaderReason, dl.Reason)
	setIf(h, HeaderProvider, dl.Provider)
	setIf(h, HeaderError, truncate(dl.LastError, maxErrorHeader))
	h.Set(HeaderAttempts, strconv.Itoa(dl.Attempts))
	setTime(h, HeaderFirstFailure, dl.FirstFailure)
	setTime(h, HeaderLastFailure, dl.LastFailure)
	setIf(h, HeaderWorker, dl.Worker)
	setIf(h, HeaderContactID, dl.ContactID)
	setIf(h, HeaderOriginalSubject, dl.OriginalSubject)
	setIf(h, HeaderOriginalStream, dl.OriginalStream)
	if dl.StreamSeq > 0 {
		h.Set(HeaderStreamSeq, strconv.FormatUint(dl.StreamSeq, 10))
		h.Set(jetstream.MsgIDHeader, fmt.Sprintf("dlq.%s.%d.%s", dl.OriginalStream, dl.StreamSeq, dl.MsgID))
	}
	setIf(h, HeaderMsgID, dl.MsgID)
	if _, err := d.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish dead letter for contact %q to %s: %w", dl.ContactID, d.subject, err)
	}
	return nil
}

// ParseDeadLetter reads a dead letter back from a stored message.
func ParseDeadLetter(m *jetstream.RawStreamMsg) (DeadLetter, error) {
	if m == nil {
		return DeadLetter{}, errors.New("no message")
	}
	h := m.Header
	dl := DeadLetter{
		ContactID:       h.Get(HeaderContactID),
		Reason:          h.Get(HeaderReason),
		Provider:        h.Get(HeaderProvider),
		LastError:       h.Get(HeaderError),
		Worker:          h.Get(HeaderWorker),
		OriginalSubject: h.Get(HeaderOriginalSubject),
		OriginalStream:  h.Get(HeaderOriginalStream),
		MsgID:           h.Get(HeaderMsgID),
		Payload:         m.Data,
		Seq:             m.Sequence,
		Stored:          m.Time,
	}
	if dl.Reason == "" {
		return dl, fmt.Errorf("message %d in the dead-letter stream has no %s header", m.Sequence, HeaderReason)
	}
	var err error
	if v := h.Get(HeaderAttempts); v != "" {
		if dl.Attempts, err = strconv.Atoi(v); err != nil {
			return dl, fmt.Errorf("dead letter %d: %s %q: %w", m.Sequence, HeaderAttempts, v, err)
		}
	}
	if v := h.Get(HeaderStreamSeq); v != "" {
		if dl.StreamSeq, err = strconv.ParseUint(v, 10, 64); err != nil {
			return dl, fmt.Errorf("dead letter %d: %s %q: %w", m.Sequence, HeaderStreamSeq, v, err)
		}
	}
	if dl.FirstFailure, err = parseTime(h, HeaderFirstFailure); err != nil {
		return dl, fmt.Errorf("dead letter %d: %w", m.Sequence, err)
	}
	if dl.LastFailure, err = parseTime(h, HeaderLastFailure); err != nil {
		return dl, fmt.Errorf("dead letter %d: %w", m.Sequence, err)
	}
	return dl, nil
}

func setIf(h nats.Header, k, v string) {
	if v != "" {
		h.Set(k, v)
	}
}

func setTime(h nats.Header, k string, t time.Time) {
	if !t.IsZero() {
		h.Set(k, t.UTC().Format(time.RFC3339Nano))
	}
}

func parseTime(h nats.Header, k string) (time.Time, error) {
	v := h.Get(k)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: %w", k, v, err)
	}
	return t, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
