package queue

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
)

// Operator controls over the queue: pause and resume the shared consumer, find where a
// contact is, cancel contacts and purge what no worker has taken yet.

// PauseForever is the pause deadline of a pause without --until: JetStream pauses until a
// time, so "until resumed" is a time no campaign reaches.
var PauseForever = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Pause pauses the shared consumer until until: workers finish the contacts they hold and
// receive no new ones; acks, naks and in-progress heartbeats keep working.
func Pause(ctx context.Context, js jetstream.JetStream, t config.Topology, until time.Time) (time.Time, error) {
	r, err := js.PauseConsumer(ctx, t.ContactsStream, t.Consumer, until)
	if err != nil {
		return time.Time{}, fmt.Errorf("pause consumer %s on stream %s: %w", t.Consumer, t.ContactsStream, err)
	}
	return r.PauseUntil, nil
}

// Resume resumes the shared consumer.
func Resume(ctx context.Context, js jetstream.JetStream, t config.Topology) error {
	if _, err := js.ResumeConsumer(ctx, t.ContactsStream, t.Consumer); err != nil {
		return fmt.Errorf("resume consumer %s on stream %s: %w", t.Consumer, t.ContactsStream, err)
	}
	return nil
}

// Queued is a contact's message in the contacts stream.
type Queued struct {
	Seq      uint64    `json:"stream_seq"`
	Enqueued time.Time `json:"enqueued"`
	MsgID    string    `json:"msg_id,omitempty"`
	// Delivered is true when the consumer has handed it to a worker (it is worked on, or
	// waits for its redelivery); false when no worker has taken it yet.
	Delivered bool `json:"delivered"`
}

// FindQueued returns the messages of the contacts stream whose contact id is in ids. It reads
// the stream message by message (a WorkQueue stream allows no second consumer), so it costs
// one request per queued contact.
func FindQueued(ctx context.Context, js jetstream.JetStream, t config.Topology, ids map[string]bool) (map[string][]Queued, error) {
	found := map[string][]Queued{}
	stream, err := js.Stream(ctx, t.ContactsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return found, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", t.ContactsStream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", t.ContactsStream, err)
	}
	delivered := uint64(0)
	if c, err := stream.Consumer(ctx, t.Consumer); err == nil {
		delivered = c.CachedInfo().Delivered.Stream
	}
	if info.State.Msgs == 0 {
		return found, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // acked, deleted or never stored
		}
		if err != nil {
			return nil, fmt.Errorf("read stream %s at %d: %w", t.ContactsStream, seq, err)
		}
		if m.Subject != t.ContactsSubject {
			continue // another subject of a stream someone else shares with us
		}
		var c struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Data, &c) != nil || !ids[c.ID] {
			continue
		}
		found[c.ID] = append(found[c.ID], Queued{Seq: seq, Enqueued: m.Time, MsgID: m.Header.Get(jetstream.MsgIDHeader), Delivered: seq <= delivered})
	}
	return found, nil
}

// ContactState is everything the server knows about one contact.
type ContactState struct {
	ID string `json:"id"`
	// State is one of: pending, in_progress, retrying, completed, cancelled, dead_lettered,
	// unknown.
	State       string           `json:"state"`
	Queued      []Queued         `json:"queued,omitempty"`
	Progress    *call.Checkpoint `json:"progress,omitempty"`
	Completed   *call.Record     `json:"completed,omitempty"`
	DeadLetters []DeadLetter     `json:"dead_letters,omitempty"`
}

// StatusCancelled is the completed record's status of a contact an operator cancelled.
const StatusCancelled = "cancelled"

// InspectContact looks id up in the records bucket, the contacts stream and the dead letters.
func InspectContact(ctx context.Context, js jetstream.JetStream, t config.Topology, id string) (ContactState, error) {
	st := ContactState{ID: id, State: "unknown"}
	rec, cp, _, err := readRecords(ctx, js, t, id)
	if err != nil {
		return st, err
	}
	st.Completed, st.Progress = rec, cp
	queued, err := FindQueued(ctx, js, t, map[string]bool{id: true})
	if err != nil {
		return st, err
	}
	st.Queued = queued[id]
	err = EachDeadLetter(ctx, js, t, DeadLetterFilter{Unreadable: func(uint64, error) {}}, func(dl DeadLetter) error {
		if dl.ContactID == id {
			st.DeadLetters = append(st.DeadLetters, dl)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	switch {
	case rec != nil && rec.Status == StatusCancelled:
		st.State = StatusCancelled
	case rec != nil:
		st.State = "completed"
	case cp != nil && cp.Owner != "" && time.Now().Before(cp.LeaseUntil):
		st.State = "in_progress"
	case len(st.Queued) > 0 && st.Queued[0].Delivered:
		st.State = "retrying"
	case len(st.Queued) > 0:
		st.State = "pending"
	case len(st.DeadLetters) > 0:
		st.State = "dead_lettered"
	}
	return st, nil
}

// readRecords reads id's completed and progress records, and the sequence of the newest
// message on either key (0 when it has none), which a write expecting no change uses.
func readRecords(ctx context.Context, js jetstream.JetStream, t config.Topology, id string) (*call.Record, *call.Checkpoint, uint64, error) {
	stream, err := js.Stream(ctx, "KV_"+t.CheckpointBucket)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, 0, nil
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("read KV bucket %s: %w", t.CheckpointBucket, err)
	}
	prefix := "$KV." + t.CheckpointBucket + "."
	var rec *call.Record
	var cp *call.Checkpoint
	var last uint64
	for _, key := range []string{CompletedKey(id), CancelledKey(id), ProgressKey(id)} {
		m, err := stream.GetLastMsgForSubject(ctx, prefix+key)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, 0, fmt.Errorf("read record %s of %q: %w", key, id, err)
		}
		last = max(last, m.Sequence)
		if op := m.Header.Get(kvOperationHeader); op == "DEL" || op == "PURGE" {
			continue
		}
		if key == CompletedKey(id) || key == CancelledKey(id) {
			rec = &call.Record{}
			if err := json.Unmarshal(m.Data, rec); err != nil {
				return nil, nil, 0, fmt.Errorf("decode completed record of %q: %w", id, err)
			}
			continue
		}
		cp = &call.Checkpoint{}
		_ = json.Unmarshal(m.Data, cp) // an unreadable progress record counts as empty, as Claim reads it
	}
	return rec, cp, last, nil
}

// CancelResult is what Cancel did with one contact.
type CancelResult struct {
	ID string `json:"id"`
	// Cancelled is true when the contact will not be called: its record now says cancelled.
	Cancelled bool `json:"cancelled"`
	// Removed counts its messages deleted from the contacts stream.
	Removed int `json:"removed"`
	// Reason says why it was not cancelled: already completed, in progress on a worker.
	Reason string `json:"reason,omitempty"`
}

// Cancel cancels each id that no worker is working on: it writes the contact's cancellation
// record x.<id> (so any worker that receives it skips it, as it skips a completed contact:
// the claim refuses) and deletes its messages from the contacts stream. A
// contact a worker holds a live claim on is not cancelled: its call may be under way.
func Cancel(ctx context.Context, js jetstream.JetStream, t config.Topology, ids []string) ([]CancelResult, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	queued, err := FindQueued(ctx, js, t, want)
	if err != nil {
		return nil, err
	}
	contacts, err := js.Stream(ctx, t.ContactsStream)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("read stream %s: %w", t.ContactsStream, err)
	}
	cps, err := EnsureCheckpoints(ctx, js, t)
	if err != nil {
		return nil, err
	}
	results := make([]CancelResult, 0, len(ids))
	for _, id := range ids {
		r, err := cancelOne(ctx, js, t, cps, id)
		if err != nil {
			return results, err
		}
		if r.Cancelled && contacts != nil {
			for _, q := range queued[id] {
				err := contacts.DeleteMsg(ctx, q.Seq)
				if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) && !isAlreadyGone(err) {
					return results, fmt.Errorf("delete %q (sequence %d) from stream %s: %w", id, q.Seq, t.ContactsStream, err)
				}
				r.Removed++
			}
		}
		results = append(results, r)
	}
	return results, nil
}

func cancelOne(ctx context.Context, js jetstream.JetStream, t config.Topology, cps *Checkpoints, id string) (CancelResult, error) {
	r := CancelResult{ID: id}
	for range claimAttempts {
		rec, cp, last, err := readRecords(ctx, js, t, id)
		if err != nil {
			return r, err
		}
		if rec != nil {
			r.Reason = "already " + rec.Status
			if rec.Status == "" {
				r.Reason = "already completed"
			}
			return r, nil
		}
		if cp != nil && cp.Owner != "" && time.Now().Before(cp.LeaseUntil) {
			r.Reason = fmt.Sprintf("in progress on %s (claim until %s): its call may be under way", workerOf(cp.Owner), cp.LeaseUntil.UTC().Format(time.RFC3339))
			return r, nil
		}
		body, err := json.Marshal(call.Record{ContactID: id, Status: StatusCancelled, Worker: "publisher", CompletedAt: time.Now().UTC()})
		if err != nil {
			return r, err
		}
		// Expecting the newest message on either key: refused if a worker claimed it since.
		_, err = cps.put(ctx, CancelledKey(id), body, last, anyRecordOf(id))
		if errors.Is(err, errRevisionMoved) {
			continue
		}
		if err != nil {
			return r, fmt.Errorf("cancel %q: %w", id, err)
		}
		r.Cancelled = true
		return r, nil
	}
	r.Reason = "its record kept changing: a worker is taking it"
	return r, nil
}

// workerOf strips the per-claim token from a claim owner ("worker/token").
func workerOf(owner string) string {
	for i := len(owner) - 1; i >= 0; i-- {
		if owner[i] == '/' {
			return owner[:i]
		}
	}
	return owner
}

// isAlreadyGone reports whether a delete failed because the message is not there (acked or
// deleted meanwhile); the server answers that with a 500 "no message found".
func isAlreadyGone(err error) bool {
	// nats.go flattens the server's error into the text of ErrMsgDeleteUnsuccessful.
	return errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) && strings.Contains(err.Error(), "no message found")
}

// purgePause bounds the pause PurgePending takes: should the publisher die mid-purge, the
// workers resume by themselves.
const purgePause = 10 * time.Minute

// PurgePending deletes every contact no worker has taken yet and returns how many. It pauses
// the consumer meanwhile (unless it is paused already) so no worker takes one of them while
// they are deleted; contacts being worked on or waiting for a redelivery stay, and so do
// messages on other subjects of the stream.
func PurgePending(ctx context.Context, js jetstream.JetStream, t config.Topology) (n uint64, err error) {
	cons, err := js.Consumer(ctx, t.ContactsStream, t.Consumer)
	if err != nil {
		return 0, fmt.Errorf("read consumer %s: %w", t.Consumer, err)
	}
	if !cons.CachedInfo().Paused {
		if _, err := Pause(ctx, js, t, time.Now().Add(purgePause)); err != nil {
			return 0, err
		}
		defer func() {
			if rerr := Resume(context.WithoutCancel(ctx), js, t); rerr != nil && err == nil {
				err = fmt.Errorf("%w; the workers resume by themselves within %s", rerr, purgePause)
			}
		}()
	}
	// On a cluster the pause is answered before the consumer's leader applies it: read the
	// bound once the consumer says it is paused and its delivered sequence stands still.
	var delivered uint64
	settled := false
	for range 50 {
		info, err := cons.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("read consumer %s: %w", t.Consumer, err)
		}
		if info.Paused && settled && info.Delivered.Stream == delivered {
			break
		}
		settled, delivered = info.Paused, info.Delivered.Stream
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	stream, err := js.Stream(ctx, t.ContactsStream)
	if err != nil {
		return 0, fmt.Errorf("read stream %s: %w", t.ContactsStream, err)
	}
	last := stream.CachedInfo().State.LastSeq
	for seq := delivered + 1; seq <= last; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("read sequence %d of stream %s: %w", seq, t.ContactsStream, err)
		}
		if m.Subject != t.ContactsSubject {
			continue
		}
		err = stream.DeleteMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) || isAlreadyGone(err) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("delete sequence %d from stream %s: %w", seq, t.ContactsStream, err)
		}
		n++
	}
	return n, nil
}

// ConsumerState is the shared consumer's pause state.
type ConsumerState struct {
	Paused     bool      `json:"paused"`
	PauseUntil time.Time `json:"pause_until,omitzero"`
}

// ReadConsumerState reads whether the shared consumer is paused and until when.
func ReadConsumerState(ctx context.Context, js jetstream.JetStream, t config.Topology) (ConsumerState, error) {
	c, err := js.Consumer(ctx, t.ContactsStream, t.Consumer)
	if err != nil {
		return ConsumerState{}, fmt.Errorf("read consumer %s: %w", t.Consumer, err)
	}
	info := c.CachedInfo()
	st := ConsumerState{Paused: info.Paused}
	if info.Paused && info.Config.PauseUntil != nil {
		st.PauseUntil = *info.Config.PauseUntil
	}
	return st, nil
}

// completedLookupBatch is how many completed records one batched direct get asks for; the
// server answers at most 1024 messages a request.
const completedLookupBatch = 256 // two keys an id

// CompletedAmong returns which of ids have a completed or a cancellation record, with the
// record's status. It asks the server in batches: one batched direct get a
// completedLookupBatch ids.
func CompletedAmong(ctx context.Context, js jetstream.JetStream, t config.Topology, ids []string) (map[string]string, error) {
	done := map[string]string{}
	stream := "KV_" + t.CheckpointBucket
	prefix := "$KV." + t.CheckpointBucket + "."
	for start := 0; start < len(ids); start += completedLookupBatch {
		part := ids[start:min(start+completedLookupBatch, len(ids))]
		subjects := make([]string, 0, 2*len(part))
		for _, id := range part {
			subjects = append(subjects, prefix+CompletedKey(id), prefix+CancelledKey(id))
		}
		// Batched direct gets need server 2.11, as the records bucket's per-message TTLs do.
		msgs, err := jetstreamext.GetLastMsgsFor(ctx, js, stream, subjects)
		if err != nil {
			return nil, fmt.Errorf("look up completed records in %s: %w", t.CheckpointBucket, err)
		}
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("look up completed records in %s: %w", t.CheckpointBucket, err)
			}
			addCompleted(done, m, prefix)
		}
	}
	return done, nil
}

func addCompleted(done map[string]string, m *jetstream.RawStreamMsg, prefix string) {
	if op := m.Header.Get(kvOperationHeader); op == "DEL" || op == "PURGE" {
		return
	}
	var rec struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(m.Data, &rec)
	key := strings.TrimPrefix(m.Subject, prefix)
	id := strings.TrimPrefix(strings.TrimPrefix(key, completedPrefix), cancelledPrefix)
	done[id] = cmp.Or(rec.Status, "completed")
}
