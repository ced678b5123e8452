package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
)

// claimAttempts bounds the compare-and-swap loop of Claim against concurrent writers.
const claimAttempts = 5

// CheckpointBucketConfig is the KV bucket of per-contact claims and step results.
func CheckpointBucketConfig(t config.Topology) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      t.CheckpointBucket,
		Description: "per-contact claims and step checkpoints, keyed by contact id",
		History:     1,
		TTL:         t.CheckpointTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
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

// Checkpoints implements call.CheckpointStore on a KV bucket and an Object Store bucket.
type Checkpoints struct {
	kv          jetstream.KeyValue
	audio       jetstream.ObjectStore
	audioBucket string
	now         func() time.Time
}

// EnsureCheckpoints creates or updates both buckets.
func EnsureCheckpoints(ctx context.Context, js jetstream.JetStream, t config.Topology) (*Checkpoints, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, CheckpointBucketConfig(t))
	if err != nil {
		return nil, fmt.Errorf("ensure KV bucket %s: %w", t.CheckpointBucket, err)
	}
	obs, err := js.CreateOrUpdateObjectStore(ctx, AudioBucketConfig(t))
	if err != nil {
		return nil, fmt.Errorf("ensure object store %s: %w", t.AudioBucket, err)
	}
	return &Checkpoints{kv: kv, audio: obs, audioBucket: t.AudioBucket, now: time.Now}, nil
}

// Get returns the checkpoint of contactID, or ok false when there is none.
func (s *Checkpoints) Get(ctx context.Context, contactID string) (cp call.Checkpoint, ok bool, err error) {
	e, err := s.kv.Get(ctx, contactID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return cp, false, nil
	}
	if err != nil {
		return cp, false, fmt.Errorf("read checkpoint %q: %w", contactID, err)
	}
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return cp, false, fmt.Errorf("decode checkpoint %q: %w", contactID, err)
	}
	return cp, true, nil
}

// Claim implements call.CheckpointStore. The owner written is worker plus a token unique to
// this claim, so two deliveries of one contact in the same worker (a duplicate enqueued after
// the dedupe window while the first is held) exclude each other as two workers do.
func (s *Checkpoints) Claim(ctx context.Context, contactID, worker string, lease time.Duration) (call.Claim, error) {
	worker = worker + "/" + nuid.Next()
	for range claimAttempts {
		e, err := s.kv.Get(ctx, contactID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			cp := call.Checkpoint{Owner: worker, LeaseUntil: s.now().Add(lease)}
			body, _ := json.Marshal(cp)
			rev, err := s.kv.Create(ctx, contactID, body)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // another worker created it first: look again
			}
			if err != nil {
				return nil, fmt.Errorf("claim %q: %w", contactID, err)
			}
			return &claim{store: s, id: contactID, worker: worker, lease: lease, rev: rev, cp: cp}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("claim %q: read checkpoint: %w", contactID, err)
		}
		var cp call.Checkpoint
		if err := json.Unmarshal(e.Value(), &cp); err != nil {
			// A checkpoint we cannot read must not block the contact forever: start afresh.
			cp = call.Checkpoint{}
		}
		if cp.Owner != "" && s.now().Before(cp.LeaseUntil) {
			return nil, &call.ClaimHeldError{Owner: cp.Owner, Until: cp.LeaseUntil}
		}
		cp.Owner, cp.LeaseUntil = worker, s.now().Add(lease)
		body, _ := json.Marshal(cp)
		rev, err := s.kv.Update(ctx, contactID, body, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("claim %q: %w", contactID, err)
		}
		return &claim{store: s, id: contactID, worker: worker, lease: lease, rev: rev, cp: cp}, nil
	}
	return nil, fmt.Errorf("claim %q: %d concurrent updates in a row: %w", contactID, claimAttempts, call.ErrClaimLost)
}

// PutAudio implements call.CheckpointStore: the audio is stored under the contact id.
func (s *Checkpoints) PutAudio(ctx context.Context, contactID string, a call.Audio) (string, error) {
	meta := jetstream.ObjectMeta{Name: contactID, Description: a.Format}
	if _, err := s.audio.Put(ctx, meta, bytes.NewReader(a.Data)); err != nil {
		return "", fmt.Errorf("store audio of %q: %w", contactID, err)
	}
	return s.audioBucket + "/" + contactID, nil
}

// StoredAudio implements call.CheckpointStore.
func (s *Checkpoints) StoredAudio(ctx context.Context, contactID string) (ref, format string, ok bool, err error) {
	info, err := s.audio.GetInfo(ctx, contactID)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("look up audio of %q: %w", contactID, err)
	}
	return s.audioBucket + "/" + contactID, info.Description, true, nil
}

// claim is a held checkpoint; every write is a compare-and-swap on the revision it last saw.
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
	next := c.cp
	if update != nil {
		update(&next)
	}
	next.Owner, next.LeaseUntil = c.worker, c.store.now().Add(c.lease)
	return c.write(ctx, next)
}

func (c *claim) Renew(ctx context.Context) error { return c.Save(ctx, nil) }

func (c *claim) Release(ctx context.Context, failedAt time.Time) error {
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
	}
	return c.write(ctx, next)
}

// write stores next if nobody wrote since our revision. Caller holds mu.
func (c *claim) write(ctx context.Context, next call.Checkpoint) error {
	body, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("encode checkpoint %q: %w", c.id, err)
	}
	rev, err := c.store.kv.Update(ctx, c.id, body, c.rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("checkpoint %q: %w", c.id, call.ErrClaimLost)
	}
	if err != nil {
		return fmt.Errorf("write checkpoint %q: %w", c.id, err)
	}
	c.rev, c.cp = rev, next
	return nil
}
