package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config"
)

// Dead-letter headers: a dead letter is the original payload plus these.
//
// The last three are set only on a dead letter whose payload was cut to fit the server's
// max payload (see DeadLetterer.Write): "true", the original payload's length in bytes and
// the lower-case hex SHA-256 of the original payload.
const (
	HeaderReason           = "Dlq-Reason"
	HeaderProvider         = "Dlq-Provider"
	HeaderError            = "Dlq-Error"
	HeaderAttempts         = "Dlq-Attempts"
	HeaderFirstFailure     = "Dlq-First-Failure"
	HeaderLastFailure      = "Dlq-Last-Failure"
	HeaderWorker           = "Dlq-Worker"
	HeaderContactID        = "Dlq-Contact-Id"
	HeaderOriginalSubject  = "Dlq-Original-Subject"
	HeaderOriginalStream   = "Dlq-Original-Stream"
	HeaderStreamSeq        = "Dlq-Stream-Seq"
	HeaderMsgID            = "Dlq-Msg-Id"
	HeaderPayloadTruncated = "Dlq-Payload-Truncated"
	HeaderPayloadLength    = "Dlq-Payload-Length"
	HeaderPayloadSHA256    = "Dlq-Payload-Sha256"
)

// Bounds of a dead letter's headers, so that the headers alone always fit in a message:
// the payload of a poison message may be anything, its id (and its Nats-Msg-Id) included.
const (
	// maxErrorHeader bounds the last-error text kept in a dead letter.
	maxErrorHeader = 1024
	// maxIDHeader bounds the contact id and the original message id kept in a dead letter.
	maxIDHeader = 256
)

// PayloadHeadroom is what a cut payload leaves free below the server's max payload, beside
// the headers counted exactly: a margin for anything that adds to the message on its way.
const PayloadHeadroom = 1024

// DefaultMaxPayload is the max payload assumed when the connection does not tell (the NATS
// server's default, 1 MiB).
const DefaultMaxPayload = 1 << 20

// ReasonUnknown is the reason Write stores for a dead letter given none: ParseDeadLetter
// refuses a dead letter without a reason, so a blank one would make it unreadable.
const ReasonUnknown = "unknown"

// ErrPayloadTruncated is returned (wrapped) by Replay for a dead letter whose payload was cut
// to fit the server's max payload: replaying it would enqueue a contact that is not the
// original.
var ErrPayloadTruncated = errors.New("the dead letter keeps only the beginning of its payload")

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
	// Payload is the original message body, as received; or, when Truncated, its beginning.
	Payload []byte
	// Truncated is set when the original payload and the dead letter's headers did not fit in
	// the server's max payload: Payload then keeps only the beginning of the original, whose
	// length and SHA-256 (lower-case hex) are PayloadLength and PayloadSHA256. Such a dead
	// letter records the contact (reason, error, original stream and sequence) but cannot be
	// replayed (Replay refuses it with ErrPayloadTruncated): the original message left the
	// contacts stream when it was dead-lettered. PayloadLength and PayloadSHA256 are zero
	// when Truncated is false.
	Truncated     bool
	PayloadLength int
	PayloadSHA256 string

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

// EnsureDeadLetterStream returns the dead-letter stream, creating it when missing.
func EnsureDeadLetterStream(ctx context.Context, js jetstream.JetStream, t config.Topology) (jetstream.Stream, error) {
	return ensureStream(ctx, js, DeadLetterStreamConfig(t))
}

// DeadLetterer publishes dead letters and waits for their ack.
type DeadLetterer struct {
	js      jetstream.JetStream
	subject string
}

// NewDeadLetterer publishes to the topology's dead-letter subject. The max payload a dead
// letter must fit in is read from js's connection at each publish (it is the server's, and
// may change with a reconnect).
func NewDeadLetterer(js jetstream.JetStream, t config.Topology) *DeadLetterer {
	return &DeadLetterer{js: js, subject: t.DeadLetterSubject}
}

// Publish is Write without the dead letter as stored.
func (d *DeadLetterer) Publish(ctx context.Context, dl DeadLetter) error {
	_, err := d.Write(ctx, dl)
	return err
}

// Write stores dl and returns once the stream has acked it, with the dead letter as stored
// (Truncated, PayloadLength, PayloadSHA256 and Payload tell whether the payload was cut).
//
// Its message id is derived from the original stream, sequence and message id, so
// publishing the same dead letter twice (a worker that died between this ack and
// terminating the original) stores it once, while a recreated contacts stream, whose
// sequences start again, cannot collide with an old one.
//
// A dead letter is the original payload plus about a dozen headers, so the dead letter of a
// message close to the server's max payload (1 MiB by default) would not fit, and a worker
// would try to write it for ever. Such a payload is cut instead: the dead letter keeps as
// much of its beginning as fits below the max payload (headers included) less
// PayloadHeadroom, and says so with Dlq-Payload-Truncated: true, Dlq-Payload-Length and
// Dlq-Payload-Sha256 (of the original payload), beside the original stream and sequence
// that every dead letter carries. Only the payload is ever cut; the headers are bounded
// (last error 1 KiB, ids 256 bytes) so that they always fit. A blank Reason is stored as
// ReasonUnknown.
func (d *DeadLetterer) Write(ctx context.Context, dl DeadLetter) (DeadLetter, error) {
	m, stored := deadLetterMsg(d.subject, dl, d.maxPayload())
	if _, err := d.js.PublishMsg(ctx, m); err != nil {
		what := ""
		if stored.Truncated {
			what = fmt.Sprintf(" (payload cut from %d to %d bytes)", stored.PayloadLength, len(stored.Payload))
		}
		return stored, fmt.Errorf("publish dead letter for contact %q to %s%s: %w", stored.ContactID, d.subject, what, err)
	}
	return stored, nil
}

// maxPayload is the connection's max payload, as the server announced it.
func (d *DeadLetterer) maxPayload() int {
	if nc := d.js.Conn(); nc != nil {
		if n := nc.MaxPayload(); n > 0 {
			return int(min(n, int64(^uint(0)>>1)))
		}
	}
	return DefaultMaxPayload
}

// deadLetterMsg builds the message of dl for a server whose max payload is maxPayload, and
// returns it with the dead letter as it will be stored: ids bounded, and the payload cut
// when the whole would not fit (see Write).
func deadLetterMsg(subject string, dl DeadLetter, maxPayload int) (*nats.Msg, DeadLetter) {
	dl.ContactID = truncate(dl.ContactID, maxIDHeader)
	dl.MsgID = truncate(dl.MsgID, maxIDHeader)
	dl.LastError = truncate(dl.LastError, maxErrorHeader)
	if strings.TrimSpace(dl.Reason) == "" {
		dl.Reason = ReasonUnknown
	}
	dl.Truncated, dl.PayloadLength, dl.PayloadSHA256 = false, 0, ""
	m := nats.NewMsg(subject)
	h := m.Header
	h.Set(HeaderReason, dl.Reason)
	setIf(h, HeaderProvider, dl.Provider)
	setIf(h, HeaderError, dl.LastError)
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
	if HeaderSize(h)+len(dl.Payload)+PayloadHeadroom > maxPayload {
		sum := sha256.Sum256(dl.Payload)
		dl.Truncated, dl.PayloadLength, dl.PayloadSHA256 = true, len(dl.Payload), hex.EncodeToString(sum[:])
		h.Set(HeaderPayloadTruncated, "true")
		h.Set(HeaderPayloadLength, strconv.Itoa(dl.PayloadLength))
		h.Set(HeaderPayloadSHA256, dl.PayloadSHA256)
		keep := min(max(maxPayload-HeaderSize(h)-PayloadHeadroom, 0), len(dl.Payload))
		dl.Payload = dl.Payload[:keep:keep]
	}
	m.Data = dl.Payload
	return m, dl
}

// HeaderSize is the size of h on the wire, as nats.go encodes it and the server counts it
// against the max payload: "NATS/1.0\r\n", one "Key: value\r\n" per value (trimmed), and
// a closing "\r\n". No headers take no bytes.
func HeaderSize(h nats.Header) int {
	if len(h) == 0 {
		return 0
	}
	n := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(textproto.TrimString(v)) + len("\r\n")
		}
	}
	return n
}

// HeaderHandedBackFrom marks a contact message that a worker re-published when it handed the
// contact back (see Requeue) with the original message's stream sequence, for tracing.
const HeaderHandedBackFrom = "Handed-Back-From"

// RequeueMsgID is the message id of the copy Requeue publishes for the contact contactID
// delivered from stream at sequence seq: new, so the contacts stream's dedupe window does not
// drop it, but fixed per original, so a worker that dies between publishing the copy and
// acking the original, and hands the redelivered original back again, enqueues one copy.
func RequeueMsgID(contactID, stream string, seq uint64) string {
	return fmt.Sprintf("%s.handback.%s.%d", truncate(contactID, maxIDHeader), stream, seq)
}

// Requeue publishes a copy of msg (a contact message delivered by the contacts consumer) to
// its subject, under RequeueMsgID, and returns the copy's stream sequence once the stream
// acked it. The caller then acks msg.
//
// This is how a worker hands a contact back to the queue for good: JetStream keeps a nak'ed
// message among the consumer's ack-pending ones until it is redelivered, so NakWithDelay
// does not give back its MAX_ACK_PENDING slot, which every replica shares; a copy waiting in
// the stream takes none. The copy keeps the payload and the headers other than the Nats-
// ones (its Nats-Msg-Id is new), adds Handed-Back-From, and starts a fresh delivery count;
// the contact's failures are counted in its checkpoint, which the copy shares.
func (d *DeadLetterer) Requeue(ctx context.Context, msg jetstream.Msg, contactID string) (uint64, error) {
	md, err := msg.Metadata()
	if err != nil {
		return 0, fmt.Errorf("requeue contact %q: %w", contactID, err)
	}
	m := nats.NewMsg(msg.Subject())
	m.Data = msg.Data()
	for k, vs := range msg.Headers() {
		if len(k) >= 5 && strings.EqualFold(k[:5], "Nats-") {
			continue
		}
		m.Header[k] = append([]string(nil), vs...)
	}
	m.Header.Set(jetstream.MsgIDHeader, RequeueMsgID(contactID, md.Stream, md.Sequence.Stream))
	m.Header.Set(HeaderHandedBackFrom, strconv.FormatUint(md.Sequence.Stream, 10))
	ack, err := d.js.PublishMsg(ctx, m)
	if err != nil {
		return 0, fmt.Errorf("requeue contact %q to %s: %w", contactID, msg.Subject(), err)
	}
	return ack.Sequence, nil
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
		Truncated:       h.Get(HeaderPayloadTruncated) == "true",
		Seq:             m.Sequence,
		Stored:          m.Time,
	}
	if dl.Reason == "" {
		return dl, fmt.Errorf("message %d in the dead-letter stream has no %s header", m.Sequence, HeaderReason)
	}
	var err error
	if v := h.Get(HeaderAttempts); v != "" {
		if dl.Attempts, err = strconv.Atoi(v); err != nil {
			return dl, badHeader(m.Sequence, HeaderAttempts, v, err)
		}
	}
	if v := h.Get(HeaderStreamSeq); v != "" {
		if dl.StreamSeq, err = strconv.ParseUint(v, 10, 64); err != nil {
			return dl, badHeader(m.Sequence, HeaderStreamSeq, v, err)
		}
	}
	if dl.Truncated {
		dl.PayloadSHA256 = h.Get(HeaderPayloadSHA256)
		v := h.Get(HeaderPayloadLength)
		if dl.PayloadLength, err = strconv.Atoi(v); err != nil {
			return dl, badHeader(m.Sequence, HeaderPayloadLength, v, err)
		}
	}
	if dl.FirstFailure, err = parseTime(h, HeaderFirstFailure); err != nil {
		return dl, badHeader(m.Sequence, HeaderFirstFailure, h.Get(HeaderFirstFailure), err)
	}
	if dl.LastFailure, err = parseTime(h, HeaderLastFailure); err != nil {
		return dl, badHeader(m.Sequence, HeaderLastFailure, h.Get(HeaderLastFailure), err)
	}
	return dl, nil
}

// maxQuotedValue bounds the part of a bad header value an error quotes.
const maxQuotedValue = 100

// errNotATime is what a time header that is not RFC 3339 wraps.
var errNotATime = errors.New("not an RFC 3339 time")

// badHeader reports the header k of dead letter seq whose value v could not be read: the
// value is quoted once, cut to maxQuotedValue bytes, and the cause is wrapped without the
// value it would quote again (strconv.ErrSyntax, strconv.ErrRange, errNotATime).
func badHeader(seq uint64, k, v string, err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		err = ne.Err
	}
	return fmt.Errorf("dead letter %d: %s %q: %w", seq, k, truncate(v, maxQuotedValue), err)
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
		return time.Time{}, errNotATime // the caller names the header and quotes the value
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
