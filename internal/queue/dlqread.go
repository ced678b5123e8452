package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config"
)

// HeaderReplayedFrom marks a contact re-published by a replay with the dead letter's
// sequence, for tracing.
const HeaderReplayedFrom = "Dlq-Replayed-From"

// DeadLetterFilter selects dead letters; zero fields match everything.
type DeadLetterFilter struct {
	Reason   string    // exact error category, e.g. quota_exceeded
	Provider string    // case-insensitive provider name, e.g. elevenlabs
	Since    time.Time // dead-lettered at or after
	Limit    int       // at most this many; 0 = no limit
	// Unreadable, when set, is told of every message of the dead-letter stream that is not
	// a readable dead letter (ParseDeadLetter refused it: no reason, a bad header), with
	// its stream sequence and why; EachDeadLetter skips such messages either way. When it
	// is nil, EachDeadLetter returns an *UnreadableDeadLettersError after the others.
	Unreadable func(seq uint64, err error)
}

// UnreadableDeadLettersError is what EachDeadLetter returns, once every readable dead letter
// was handed to its fn, when it skipped messages it could not read and the filter has no
// Unreadable callback.
type UnreadableDeadLettersError struct {
	// Count is how many messages were skipped.
	Count int
	// First is why the first one could not be read.
	First error
}

// Error says how many were skipped and why the first was.
func (e *UnreadableDeadLettersError) Error() string {
	return fmt.Sprintf("skipped %d unreadable dead letter(s); the first: %v", e.Count, e.First)
}

// Unwrap returns why the first skipped message could not be read.
func (e *UnreadableDeadLettersError) Unwrap() error { return e.First }

// Match reports whether dl passes the filter (Limit aside).
func (f DeadLetterFilter) Match(dl DeadLetter) bool {
	if f.Reason != "" && dl.Reason != f.Reason {
		return false
	}
	if f.Provider != "" && !strings.EqualFold(dl.Provider, f.Provider) {
		return false
	}
	if !f.Since.IsZero() && dl.Stored.Before(f.Since) {
		return false
	}
	return true
}

// dlqBatch is how many dead letters one read fetches.
const dlqBatch = 256

// EachDeadLetter calls fn for every dead letter matching f, oldest first, reading the stream
// with an ordered consumer (no state left on the server). It stops at fn's first error.
//
// A message it cannot read as a dead letter does not stop it, so that one bad message does
// not block listing or replaying every other: it is skipped and reported to f.Unreadable,
// or, without one, counted in the *UnreadableDeadLettersError returned at the end.
func EachDeadLetter(ctx context.Context, js jetstream.JetStream, t config.Topology, f DeadLetterFilter, fn func(DeadLetter) error) (err error) {
	stream, err := js.Stream(ctx, t.DeadLetterStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read stream %s: %w", t.DeadLetterStream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", t.DeadLetterStream, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if !f.Since.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		since := f.Since
		cfg.OptStartTime = &since
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", t.DeadLetterStream, err)
	}
	matched := 0
	var unreadable *UnreadableDeadLettersError
	defer func() {
		if err == nil && unreadable != nil {
			err = unreadable
		}
	}()
	skip := func(seq uint64, perr error) {
		if f.Unreadable != nil {
			f.Unreadable(seq, perr)
			return
		}
		if unreadable == nil {
			unreadable = &UnreadableDeadLettersError{First: perr}
		}
		unreadable.Count++
	}
	// Ask for no more than what is left, so a fetch never waits for messages that do not exist.
	pending := info.State.Msgs
	for {
		batch, err := cons.Fetch(int(min(pending, dlqBatch)), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("read stream %s: %w", t.DeadLetterStream, err)
		}
		got, last := 0, false
		for msg := range batch.Messages() {
			got++
			md, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("read stream %s: %w", t.DeadLetterStream, err)
			}
			pending = md.NumPending
			last = pending == 0 || md.Sequence.Stream >= info.State.LastSeq
			dl, err := ParseDeadLetter(&jetstream.RawStreamMsg{
				Subject: msg.Subject(), Sequence: md.Sequence.Stream, Header: msg.Headers(),
				Data: msg.Data(), Time: md.Timestamp,
			})
			if err != nil {
				skip(md.Sequence.Stream, err)
				continue
			}
			if !f.Match(dl) {
				continue
			}
			if err := fn(dl); err != nil {
				return err
			}
			if matched++; f.Limit > 0 && matched >= f.Limit {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("read stream %s: %w", t.DeadLetterStream, err)
		}
		if last || got == 0 {
			return nil
		}
	}
}

// ReplayMsgID is the message id of a replayed dead letter: new (the original id would be
// dropped by the contacts stream's dedupe window) but fixed per dead letter, so a replay
// that is interrupted after publishing and rerun is dropped as a duplicate, not enqueued twice.
func ReplayMsgID(t config.Topology, dl DeadLetter) string {
	return fmt.Sprintf("%s.replay.%s.%d", dl.ContactID, t.DeadLetterStream, dl.Seq)
}

// Replay re-publishes dl's payload to the contacts subject and, once the stream acked it,
// removes dl from the dead-letter stream. It reports whether the publish was a duplicate
// (an earlier, interrupted replay had already enqueued it).
//
// A dead letter whose payload was cut to fit the server's max payload (dl.Truncated) is not
// replayed: Replay returns an error wrapping ErrPayloadTruncated, publishes nothing and
// leaves the dead letter in place.
func Replay(ctx context.Context, js jetstream.JetStream, t config.Topology, dl DeadLetter) (duplicate bool, err error) {
	if err := CheckReplayable(dl); err != nil {
		return false, err
	}
	m := nats.NewMsg(t.ContactsSubject)
	m.Data = dl.Payload
	m.Header.Set(jetstream.MsgIDHeader, ReplayMsgID(t, dl))
	m.Header.Set(HeaderReplayedFrom, fmt.Sprint(dl.Seq))
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		return false, fmt.Errorf("replay dead letter %d (contact %q): %w", dl.Seq, dl.ContactID, err)
	}
	if err := DeleteDeadLetter(ctx, js, t, dl.Seq); err != nil {
		return ack.Duplicate, err
	}
	return ack.Duplicate, nil
}

// CheckReplayable returns nil when dl can be replayed, and otherwise the reason, wrapping
// ErrPayloadTruncated: its payload was cut to fit the server's max payload, so replaying it
// would enqueue the beginning of a message, not the message.
func CheckReplayable(dl DeadLetter) error {
	if !dl.Truncated {
		return nil
	}
	return fmt.Errorf("cannot replay dead letter %d (contact %q): %w: %d of its %d bytes kept (sha256 %s; it was message %d of stream %s)",
		dl.Seq, dl.ContactID, ErrPayloadTruncated, len(dl.Payload), dl.PayloadLength, dl.PayloadSHA256, dl.StreamSeq, dl.OriginalStream)
}

// DeleteDeadLetter removes one dead letter; one already gone is not an error.
func DeleteDeadLetter(ctx context.Context, js jetstream.JetStream, t config.Topology, seq uint64) error {
	stream, err := js.Stream(ctx, t.DeadLetterStream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", t.DeadLetterStream, err)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("delete dead letter %d: %w", seq, err)
	}
	return nil
}
