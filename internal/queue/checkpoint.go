package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
)

// claimAttempts bounds the compare-and-swap loops (Claim, KeepResult, a claim's write)
// against concurrent writers.
const claimAttempts = 5

// A contact has one record in the checkpoint bucket at a time, under one of two keys:
//
//   - p.<id>, its progress while it is worked on: the claim (owner, lease), what its paid
//     steps produced, its failures. Every write carries a per-message TTL (CHECKPOINT_TTL),
//     so a contact that never completes is forgotten that long after its last write.
//   - d.<id>, its completed record, written once and kept: "never call twice" reads it.
//
// Both live in one bucket so that taking a claim is one write that checks both: a publish to
// p.<id> expecting no message on "*.<id>" (Nats-Expected-Last-Subject-Sequence 0 with
// Nats-Expected-Last-Subject-Sequence-Subject) fails when the contact is completed or
// claimed, and on a first delivery it is the only thing the worker sends before the LLM.
const (
	progressPrefix  = "p."
	completedPrefix = "d."
	// cancelledPrefix keys x.<id>, an operator's cancellation (publisher cancel): kept, and
	// like a completed record it makes every claim of the contact fail.
	cancelledPrefix = "x."
	// expectedLastSubjectSubject names the subject (here a wildcard over both keys) the
	// expected last subject sequence is checked on; nats.go has no constant for it.
	expectedLastSubjectSubject = "Nats-Expected-Last-Subject-Sequence-Subject"
	// msgTTLHeader is JetStream's per-message TTL (ADR-43).
	msgTTLHeader = "Nats-TTL"
	// kvOperationHeader marks a key-value delete or purge (nats.go's layout).
	kvOperationHeader = "KV-Operation"
)

// ProgressKey is the key of id's progress record.
func ProgressKey(id string) string { return progressPrefix + id }

// CompletedKey is the key of id's completed record.
func CompletedKey(id string) string { return completedPrefix + id }

// CancelledKey is the key of id's cancellation record.
func CancelledKey(id string) string { return cancelledPrefix + id }

// ErrCancelled means an operator cancelled the contact; it wraps call.ErrCompleted, so a
// worker skips the contact as it skips a completed one.
var ErrCancelled = fmt.Errorf("%w: cancelled by an operator", call.ErrCompleted)

// CheckpointStreamConfig is the stream behind the checkpoint bucket: nats.go's key-value
// layout (so KeyValue reads, lists and watches it) with per-message TTLs allowed and no
// bucket-wide age limit, which nats.go's KeyValueConfig cannot express (it allows per-key
// TTLs only with delete markers, which would make an expired progress record look taken).
func CheckpointStreamConfig(t config.Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "KV_" + t.CheckpointBucket,
		Description:       "per-contact records: p.<id> progress (expires CHECKPOINT_TTL after its last write), d.<id> completed (kept)",
		Subjects:          []string{"$KV." + t.CheckpointBucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          max(t.Replicas, 1),
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        2 * time.Minute,
		AllowDirect:       true,
		Discard:           jetstream.DiscardNew,
		AllowMsgTTL:       true,
	}
}

// AudioBucketConfig is the Object Store bucket of synthesized audio.
func AudioBucketConfig(t config.Topology) jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket:      t.AudioBucket,
		Description: "synthesized call audio, named by contact id",
		TTL:         t.CheckpointTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}
}

// Checkpoints implements call.CheckpointStore on the checkpoint bucket (progress and
// completed records, see ProgressKey) and the audio Object Store bucket.
type Checkpoints struct {
	js          jetstream.JetStream
	stream      jetstream.Stream
	kv          jetstream.KeyValue
	audio       *AudioStore
	audioBucket string
	subject     string // "$KV.<bucket>.", the prefix of every key's subject
	ttl         string // the Nats-TTL of progress records; "" for none
	now         func() time.Time
}

// EnsureCheckpoints opens both buckets, creating them when missing (never changing them).
func EnsureCheckpoints(ctx context.Context, js jetstream.JetStream, t config.Topology) (*Checkpoints, error) {
	stream, err := ensureStream(ctx, js, CheckpointStreamConfig(t))
	if err != nil {
		return nil, fmt.Errorf("KV bucket %s: %w", t.CheckpointBucket, err)
	}
	kv, err := js.KeyValue(ctx, t.CheckpointBucket)
	if err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", t.CheckpointBucket, err)
	}
	obs, err := ensureObjectStore(ctx, js, AudioBucketConfig(t))
	if err != nil {
		return nil, err
	}
	s := &Checkpoints{
		js: js, stream: stream, kv: kv, audio: NewAudioStore(js, obs, t.AudioBucket), audioBucket: t.AudioBucket,
		subject: "$KV." + t.CheckpointBucket + ".", now: time.Now,
	}
	if t.CheckpointTTL > 0 {
		// The server counts whole seconds, at least one.
		s.ttl = strconv.FormatInt(int64(max(t.CheckpointTTL, time.Second)/time.Second), 10)
	}
	return s, nil
}

// errRevisionMoved is a compare-and-swap write refused: the record is not at the revision
// (or, for a claim, the contact has a record at all) the writer expected.
var errRevisionMoved = errors.New("the record changed")

// put writes body under key if the last message on check (a subject relative to the bucket;
// key when empty) has sequence expect (0: none); progress records carry the TTL. It returns
// the new revision.
func (s *Checkpoints) put(ctx context.Context, key string, body []byte, expect uint64, check string) (uint64, error) {
	msg := &nats.Msg{Subject: s.subject + key, Data: body, Header: make(nats.Header, 3)}
	msg.Header[jetstream.ExpectedLastSubjSeqHeader] = []string{strconv.FormatUint(expect, 10)}
	if check != "" {
		msg.Header[expectedLastSubjectSubject] = []string{s.subject + check}
	}
	if s.ttl != "" && strings.HasPrefix(key, progressPrefix) {
		msg.Header[msgTTLHeader] = []string{s.ttl}
	}
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, errRevisionMoved
		}
		return 0, err
	}
	return ack.Sequence, nil
}

// anyRecordOf is the subject pattern (relative to the bucket) of both of id's keys.
func anyRecordOf(id string) string { return "*." + id }

// Get returns the progress checkpoint of contactID, or ok false when there is none.
func (s *Checkpoints) Get(ctx context.Context, contactID string) (cp call.Checkpoint, ok bool, err error) {
	cp, _, ok, err = s.progress(ctx, contactID)
	return cp, ok, err
}

// progress reads contactID's progress record and its revision; ok false when there is none.
// A deleted record (a delete marker) is none, but its revision is returned: the next write
// must expect it. An unreadable record counts as empty: it must not block the contact for
// ever.
func (s *Checkpoints) progress(ctx context.Context, contactID string) (cp call.Checkpoint, rev uint64, ok bool, err error) {
	m, err := s.stream.GetLastMsgForSubject(ctx, s.subject+ProgressKey(contactID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return cp, 0, false, nil
	}
	if err != nil {
		return cp, 0, false, fmt.Errorf("read checkpoint %q: %w", contactID, err)
	}
	if op := m.Header.Get(kvOperationHeader); op == "DEL" || op == "PURGE" {
		return cp, m.Sequence, false, nil
	}
	if err := json.Unmarshal(m.Data, &cp); err != nil {
		cp = call.Checkpoint{}
	}
	return cp, m.Sequence, true, nil
}

// IsCompleted reports whether contactID has a completed record.
func (s *Checkpoints) IsCompleted(ctx context.Context, contactID string) (bool, error) {
	_, err := s.kv.Get(ctx, CompletedKey(contactID))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("read completed record %q: %w", contactID, err)
	}
}

// Completed returns contactID's completed record, ok false when it has none.
func (s *Checkpoints) Completed(ctx context.Context, contactID string) (rec call.Record, ok bool, err error) {
	e, err := s.kv.Get(ctx, CompletedKey(contactID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("read completed record %q: %w", contactID, err)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return rec, true, fmt.Errorf("decode completed record %q: %w", contactID, err)
	}
	return rec, true, nil
}

// MarkCompleted writes contactID's completed record. The first completion wins; a second
// (a redelivery whose first run completed but whose ack was lost) is not an error.
func (s *Checkpoints) MarkCompleted(ctx context.Context, contactID string, rec call.Record) error {
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode completed record %q: %w", contactID, err)
	}
	if _, err := s.put(ctx, CompletedKey(contactID), body, 0, ""); err != nil && !errors.Is(err, errRevisionMoved) {
		return fmt.Errorf("write completed record %q: %w", contactID, err)
	}
	return nil
}

// Claim implements call.CheckpointStore. The owner written is worker plus a token unique to
// this claim, so two deliveries of one contact in the same worker (a duplicate enqueued after
// the dedupe window while the first is held) exclude each other as two workers do.
//
// A contact with no record (a first delivery) costs one write and no read. Otherwise the
// completed record is looked up first (call.ErrCompleted), then the progress record: a live
// claim is a *call.ClaimHeldError; an expired or released one is taken over with a write that
// also fails if the contact was completed meanwhile.
func (s *Checkpoints) Claim(ctx context.Context, contactID, worker string, lease time.Duration) (call.Claim, error) {
	worker = worker + "/" + nuid.Next()
	fresh := call.Checkpoint{Owner: worker, LeaseUntil: s.now().Add(lease)}
	body, err := json.Marshal(fresh)
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint %q: %w", contactID, err)
	}
	rev, err := s.put(ctx, ProgressKey(contactID), body, 0, anyRecordOf(contactID))
	if err == nil {
		return &claim{store: s, id: contactID, worker: worker, lease: lease, rev: rev, cp: fresh}, nil
	}
	if !errors.Is(err, errRevisionMoved) {
		return nil, fmt.Errorf("claim %q: %w", contactID, err)
	}
	for range claimAttempts {
		done, err := s.IsCompleted(ctx, contactID)
		if err != nil {
			return nil, fmt.Errorf("claim %q: %w", contactID, err)
		}
		if done {
			return nil, call.ErrCompleted
		}
		if _, err := s.kv.Get(ctx, CancelledKey(contactID)); err == nil {
			return nil, ErrCancelled
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("claim %q: %w", contactID, err)
		}
		cp, rev, _, err := s.progress(ctx, contactID)
		if err != nil {
			return nil, fmt.Errorf("claim %q: %w", contactID, err)
		}
		if cp.Owner != "" && s.now().Before(cp.LeaseUntil) {
			return nil, &call.ClaimHeldError{Owner: cp.Owner, Until: cp.LeaseUntil}
		}
		cp.Owner, cp.LeaseUntil = worker, s.now().Add(lease)
		body, err := json.Marshal(cp)
		if err != nil {
			return nil, fmt.Errorf("encode checkpoint %q: %w", contactID, err)
		}
		// Expecting the progress record's revision on both keys: refused if it moved, or if
		// the contact was completed after the look-up above.
		newRev, err := s.put(ctx, ProgressKey(contactID), body, rev, anyRecordOf(contactID))
		if errors.Is(err, errRevisionMoved) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("claim %q: %w", contactID, err)
		}
		return &claim{store: s, id: contactID, worker: worker, lease: lease, rev: newRev, cp: cp}, nil
	}
	return nil, fmt.Errorf("claim %q: %d concurrent updates in a row: %w", contactID, claimAttempts, call.ErrClaimLost)
}

// KeepResult implements call.CheckpointStore: a compare-and-swap on the current revision
// (whoever wrote it), retried on conflict; a missing checkpoint is created with the result
// alone. An unreadable checkpoint counts as empty, as Claim treats it.
func (s *Checkpoints) KeepResult(ctx context.Context, contactID string, update func(*call.Checkpoint) bool) (bool, error) {
	for range claimAttempts {
		cp, rev, _, err := s.progress(ctx, contactID)
		if err != nil {
			return false, fmt.Errorf("keep result in checkpoint %q: %w", contactID, err)
		}
		if !update(&cp) {
			return false, nil
		}
		body, err := json.Marshal(cp)
		if err != nil {
			return false, fmt.Errorf("encode checkpoint %q: %w", contactID, err)
		}
		_, err = s.put(ctx, ProgressKey(contactID), body, rev, "")
		if errors.Is(err, errRevisionMoved) {
			continue // written meanwhile: merge into that
		}
		if err != nil {
			return false, fmt.Errorf("keep result in checkpoint %q: %w", contactID, err)
		}
		return true, nil
	}
	return false, fmt.Errorf("keep result in checkpoint %q: %d concurrent updates in a row", contactID, claimAttempts)
}

// audioStepKey is the audio object's metadata entry that keeps the TTS step's provider,
// duration and spend with the audio, so a run that stored the audio and died before
// completing loses neither the audio nor what it cost.
const audioStepKey = "callagent-step"

// audioStep is the audio object's record of its step.
type audioStep struct {
	Provider string     `json:"provider,omitempty"`
	Millis   int64      `json:"step_ms,omitempty"`
	Spend    call.Spend `json:"spend"`
}

// PutAudio implements call.CheckpointStore: the audio is stored under the contact id, with
// its step's provider, duration and spend in the object's metadata.
func (s *Checkpoints) PutAudio(ctx context.Context, contactID string, a call.Audio, step call.Checkpoint, replace bool) (string, error) {
	var metadata map[string]string
	if provider, ok := step.Providers[call.StepTTS]; ok {
		rec, err := json.Marshal(audioStep{Provider: provider, Millis: step.StepMillis[call.StepTTS], Spend: step.Spend[call.StepTTS]})
		if err != nil {
			return "", fmt.Errorf("encode the audio step of %q: %w", contactID, err)
		}
		metadata = map[string]string{audioStepKey: string(rec)}
	}
	if err := s.audio.PutWithMetadata(ctx, contactID, a.Format, metadata, a.Data, replace); err != nil {
		return "", fmt.Errorf("store audio of %q: %w", contactID, err)
	}
	return s.AudioRef(contactID), nil
}

// AudioRef is where PutAudio stores contactID's audio.
func (s *Checkpoints) AudioRef(contactID string) string { return s.audioBucket + "/" + contactID }

// StoredAudio implements call.CheckpointStore. Audio stored without its step (an older
// object) comes back with the reference and format alone.
func (s *Checkpoints) StoredAudio(ctx context.Context, contactID string) (call.Checkpoint, bool, error) {
	format, metadata, ok, err := s.audio.InfoWithMetadata(ctx, contactID)
	if err != nil {
		return call.Checkpoint{}, false, fmt.Errorf("look up audio of %q: %w", contactID, err)
	}
	if !ok {
		return call.Checkpoint{}, false, nil
	}
	result := call.Checkpoint{AudioRef: s.AudioRef(contactID), AudioFormat: format}
	var step audioStep
	if raw, ok := metadata[audioStepKey]; ok && json.Unmarshal([]byte(raw), &step) == nil && step.Provider != "" {
		result.Providers = map[string]string{call.StepTTS: step.Provider}
		result.StepMillis = map[string]int64{call.StepTTS: step.Millis}
		result.Spend = map[string]call.Spend{call.StepTTS: step.Spend}
	}
	return result, true, nil
}

// claim is a held checkpoint; every write is a compare-and-swap on the revision it last saw.
// When that revision moved, the record is read again: if it still names this claim's owner
// (KeepResult writes without taking the claim, adding a result; or a write of ours landed
// but its reply was lost), the results it has and the write lacks are merged in and the write
// retried on the new revision; any other owner, or no record, is ErrClaimLost.
type claim struct {
	store  *Checkpoints
	id     string
	worker string
	lease  time.Duration

	mu       sync.Mutex
	rev      uint64
	cp       call.Checkpoint
	released bool // after Release, Save and Renew do nothing: a late heartbeat must not re-take it
}

func (c *claim) Checkpoint() call.Checkpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cp
}

func (c *claim) Save(ctx context.Context, update func(*call.Checkpoint)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return nil
	}
	// No copy of the maps: every writer of a checkpoint's maps replaces them (see
	// call.Checkpoint.TakeResults), so c.cp's, shared with readers, are never written to.
	next := c.cp
	if update != nil {
		update(&next)
	}
	next.Owner, next.LeaseUntil = c.worker, c.store.now().Add(c.lease)
	return c.write(ctx, next)
}

func (c *claim) Refresh(ctx context.Context) (call.Checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return c.cp, nil
	}
	cur, rev, err := c.current(ctx)
	if err != nil {
		return c.cp, err
	}
	if rev != c.rev {
		next := c.cp
		next.TakeResults(cur)
		// Still ours: what was written since is results KeepResult added (or a write of ours
		// whose reply was lost), which next now has; its revision is the one to write on.
		c.cp, c.rev = next, rev
	}
	return c.cp, nil
}

func (c *claim) Renew(ctx context.Context) error { return c.Save(ctx, nil) }

// Complete writes the completed record and ends the claim without touching the progress
// record: the completed record is what every later claim finds first, and the progress
// record expires with its TTL. One write instead of two on every contact's happy path.
func (c *claim) Complete(ctx context.Context, rec call.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.store.MarkCompleted(ctx, c.id, rec); err != nil {
		return err
	}
	c.released = true
	return nil
}

func (c *claim) Release(ctx context.Context, failedAt time.Time, lastError string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return nil
	}
	c.released = true
	next := c.cp
	next.Owner, next.LeaseUntil = "", time.Time{}
	if !failedAt.IsZero() {
		if next.FirstFailure.IsZero() {
			next.FirstFailure = failedAt
		}
		next.LastFailure = failedAt
		next.Failures++
		next.LastError = lastError
	}
	return c.write(ctx, next)
}

// write stores next if nobody wrote since our revision, or if only KeepResult did (then the
// results it kept that next lacks are merged in; next's own are not replaced). Caller holds mu.
func (c *claim) write(ctx context.Context, next call.Checkpoint) error {
	rev := c.rev
	for range claimAttempts {
		body, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("encode checkpoint %q: %w", c.id, err)
		}
		// Checked on both keys: refused once the contact is cancelled (x.<id>) or completed
		// by another delivery, which current then reports as a lost claim.
		newRev, err := c.store.put(ctx, ProgressKey(c.id), body, rev, anyRecordOf(c.id))
		if err == nil {
			c.rev, c.cp = newRev, next
			return nil
		}
		if !errors.Is(err, errRevisionMoved) {
			return fmt.Errorf("write checkpoint %q: %w", c.id, err)
		}
		cur, curRev, err := c.current(ctx)
		if err != nil {
			return err
		}
		next.TakeResults(cur)
		rev = curRev
	}
	return fmt.Errorf("write checkpoint %q: %d concurrent updates in a row", c.id, claimAttempts)
}

// current reads the record and its revision; ErrClaimLost unless it is still this claim's.
func (c *claim) current(ctx context.Context) (call.Checkpoint, uint64, error) {
	cur, rev, ok, err := c.store.progress(ctx, c.id)
	if err != nil {
		return call.Checkpoint{}, 0, err
	}
	if !ok {
		return call.Checkpoint{}, 0, fmt.Errorf("checkpoint %q is gone: %w", c.id, call.ErrClaimLost)
	}
	if cur.Owner != c.worker { // another owner, or an unreadable record (read as empty)
		return call.Checkpoint{}, 0, fmt.Errorf("checkpoint %q: %w", c.id, call.ErrClaimLost)
	}
	for _, key := range []string{CancelledKey(c.id), CompletedKey(c.id)} {
		if _, err := c.store.kv.Get(ctx, key); err == nil {
			return call.Checkpoint{}, 0, fmt.Errorf("checkpoint %q: %s exists: %w", c.id, key, call.ErrClaimLost)
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return call.Checkpoint{}, 0, fmt.Errorf("read %s: %w", key, err)
		}
	}
	return cur, rev, nil
}
