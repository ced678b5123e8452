package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
)

// claimAttempts bounds the compare-and-swap loops (Claim, KeepResult, a claim's write)
// against concurrent writers.
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

// KeepResult implements call.CheckpointStore: a compare-and-swap on the current revision
// (whoever wrote it), retried on conflict; a missing checkpoint is created with the result
// alone. An unreadable checkpoint counts as empty, as Claim treats it.
func (s *Checkpoints) KeepResult(ctx context.Context, contactID string, update func(*call.Checkpoint) bool) (bool, error) {
	for range claimAttempts {
		e, err := s.kv.Get(ctx, contactID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			var cp call.Checkpoint
			if !update(&cp) {
				return false, nil
			}
			body, err := json.Marshal(cp)
			if err != nil {
				return false, fmt.Errorf("encode checkpoint %q: %w", contactID, err)
			}
			_, err = s.kv.Create(ctx, contactID, body)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // written meanwhile: merge into that
			}
			if err != nil {
				return false, fmt.Errorf("keep result in checkpoint %q: %w", contactID, err)
			}
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("keep result in checkpoint %q: read: %w", contactID, err)
		}
		var cp call.Checkpoint
		if err := json.Unmarshal(e.Value(), &cp); err != nil {
			cp = call.Checkpoint{}
		}
		if !update(&cp) {
			return false, nil
		}
		body, err := json.Marshal(cp)
		if err != nil {
			return false, fmt.Errorf("encode checkpoint %q: %w", contactID, err)
		}
		_, err = s.kv.Update(ctx, contactID, body, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("keep result in checkpoint %q: %w", contactID, err)
		}
		return true, nil
	}
	return false, fmt.Errorf("keep result in checkpoint %q: %d concurrent updates in a row", contactID, claimAttempts)
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
	next := cloneCheckpoint(c.cp) // update may write to the maps; c.cp's are shared with readers
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

// write stores next if nobody wrote since our revision, or if only KeepResult did (then the
// results it kept that next lacks are merged in; next's own are not replaced). Caller holds mu.
func (c *claim) write(ctx context.Context, next call.Checkpoint) error {
	rev := c.rev
	for range claimAttempts {
		body, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("encode checkpoint %q: %w", c.id, err)
		}
		newRev, err := c.store.kv.Update(ctx, c.id, body, rev)
		if err == nil {
			c.rev, c.cp = newRev, next
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyNotFound) {
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
	e, err := c.store.kv.Get(ctx, c.id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return call.Checkpoint{}, 0, fmt.Errorf("checkpoint %q is gone: %w", c.id, call.ErrClaimLost)
	}
	if err != nil {
		return call.Checkpoint{}, 0, fmt.Errorf("read checkpoint %q: %w", c.id, err)
	}
	var cur call.Checkpoint
	if err := json.Unmarshal(e.Value(), &cur); err != nil || cur.Owner != c.worker {
		return call.Checkpoint{}, 0, fmt.Errorf("checkpoint %q: %w", c.id, call.ErrClaimLost)
	}
	return cur, e.Revision(), nil
}

// cloneCheckpoint copies cp with maps of its own.
func cloneCheckpoint(cp call.Checkpoint) call.Checkpoint {
	cp.Providers = maps.Clone(cp.Providers)
	cp.StepMillis = maps.Clone(cp.StepMillis)
	cp.Spend = maps.Clone(cp.Spend)
	return cp
}
