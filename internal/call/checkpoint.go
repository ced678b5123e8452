package call

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"
)

// Checkpoint is a contact's saved progress: what its paid steps already produced, and its
// failure history. A redelivered or replayed contact resumes from it.
type Checkpoint struct {
	Script      *Script           `json:"script,omitempty"`
	AudioRef    string            `json:"audio_ref,omitempty"`
	AudioFormat string            `json:"audio_format,omitempty"`
	Providers   map[string]string `json:"providers,omitempty"`
	StepMillis  map[string]int64  `json:"step_ms,omitempty"`
	// Spend is what each paid step cost, by step.
	Spend map[string]Spend `json:"spend,omitempty"`
	// FirstFailure and LastFailure bound the contact's failed deliveries; Failures counts them.
	FirstFailure time.Time `json:"first_failure,omitzero"`
	LastFailure  time.Time `json:"last_failure,omitzero"`
	Failures     int       `json:"failures,omitempty"`
	// LastError is the last failure's error, redacted (publisher inspect shows it).
	LastError string `json:"last_error,omitempty"`
	// Owner holds the claim until LeaseUntil; empty when nobody works on the contact.
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

// TakeResults copies into cp each step result of from that cp lacks (the script; the audio
// reference and format), with that step's provider, duration and spend. A step result cp
// already has is kept. It reports whether cp changed. Owner, lease and failure counters are
// never touched, and maps cp shares with another Checkpoint are copied, not written to.
func (cp *Checkpoint) TakeResults(from Checkpoint) bool {
	changed := false
	if cp.Script == nil && from.Script != nil {
		cp.Script = from.Script
		cp.takeStep(from, StepLLM)
		changed = true
	}
	if cp.AudioRef == "" && from.AudioRef != "" {
		cp.AudioRef, cp.AudioFormat = from.AudioRef, from.AudioFormat
		cp.takeStep(from, StepTTS)
		changed = true
	}
	return changed
}

// takeStep copies step's provider, duration and spend entries of from into cp.
func (cp *Checkpoint) takeStep(from Checkpoint, step string) {
	if v, ok := from.Providers[step]; ok {
		cp.Providers = withEntry(cp.Providers, step, v)
	}
	if v, ok := from.StepMillis[step]; ok {
		cp.StepMillis = withEntry(cp.StepMillis, step, v)
	}
	if v, ok := from.Spend[step]; ok {
		cp.Spend = withEntry(cp.Spend, step, v)
	}
}

// withEntry returns a copy of m with k set to v: a checkpoint's maps may be shared with the
// copies Claim.Checkpoint handed out (and a heartbeat may be encoding them), so they are
// replaced, never written to.
func withEntry[V any](m map[string]V, k string, v V) map[string]V {
	m = maps.Clone(m)
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

// Claim is one worker's exclusive hold on a contact's checkpoint, taken with a
// compare-and-swap. A Claim is safe for concurrent use (the heartbeat renews it while the
// steps save into it).
//
// The only other writer of a held checkpoint is CheckpointStore.KeepResult: a worker that
// lost the contact keeping a result it paid for. That does not take the claim away: a write
// of the claim that finds such a change merges it (the results it lacks are taken in, see
// Checkpoint.TakeResults) and writes again; only a different owner means ErrClaimLost.
type Claim interface {
	// Checkpoint returns the progress as last saved or refreshed.
	Checkpoint() Checkpoint
	// Save applies update to the checkpoint and writes it; ErrClaimLost if another worker took
	// the contact meanwhile. Results another worker kept meanwhile are merged in, so read
	// Checkpoint after it.
	Save(ctx context.Context, update func(*Checkpoint)) error
	// Refresh re-reads the checkpoint, taking in the step results another worker kept there
	// since this claim last read or wrote it, and returns it; ErrClaimLost as Save. A caller
	// about to pay for a step it took the claim for a while ago refreshes first.
	Refresh(ctx context.Context) (Checkpoint, error)
	// Renew extends the lease; ErrClaimLost as Save.
	Renew(ctx context.Context) error
	// Release gives the contact up (Owner cleared), recording a failure at failedAt (with its
	// redacted error) if it is
	// not zero.
	Release(ctx context.Context, failedAt time.Time, lastError string) error
	// Complete records the contact as completed with rec and ends the claim. A completed
	// contact is never claimed again (Claim returns ErrCompleted); completing twice is not an
	// error (the first record stays).
	Complete(ctx context.Context, rec Record) error
}

// CheckpointStore keeps claims, step checkpoints and audio.
type CheckpointStore interface {
	// Claim takes contactID for worker for lease and returns its saved progress;
	// ErrCompleted when the contact was completed, a *ClaimHeldError when another worker
	// holds a live claim.
	Claim(ctx context.Context, contactID, worker string, lease time.Duration) (Claim, error)
	// PutAudio stores the audio of contactID with its step's provider, duration and spend
	// (taken from step, see TakeResults), and returns its reference. replace is false when
	// no audio can be stored for it yet (its first run past the LLM), so nothing needs to be
	// looked up first.
	PutAudio(ctx context.Context, contactID string, a Audio, step Checkpoint, replace bool) (ref string, err error)
	// StoredAudio returns the audio result stored for contactID by PutAudio (AudioRef,
	// AudioFormat and the step's provider, duration and spend): a run that stored it but did
	// not complete. ok is false when there is none.
	StoredAudio(ctx context.Context, contactID string) (result Checkpoint, ok bool, err error)
	// KeepResult writes a step result that was paid for into contactID's checkpoint whoever
	// holds the claim now (it is for a worker whose Save failed with ErrClaimLost): update is
	// applied to the current checkpoint (an empty one when there is none, which is then
	// created) and must only add the result, returning false when the checkpoint has that
	// step's result already (the result there wins: kept is false and nothing is written).
	// Owner, lease and failure counters stay the holder's. The holder's claim merges the
	// result in on its next write (see Claim), and its delivery uses it instead of paying again.
	KeepResult(ctx context.Context, contactID string, update func(*Checkpoint) bool) (kept bool, err error)
}

// ErrCompleted means the contact is recorded as completed: nothing is left to do.
var ErrCompleted = errors.New("contact already completed")

// ErrClaimLost means another worker took over the contact (our lease had expired): this
// worker must stop working on it and leave its message alone.
var ErrClaimLost = errors.New("claim lost to another worker")

// ClaimHeldError means another worker holds a live claim on the contact.
type ClaimHeldError struct {
	Owner string
	Until time.Time
}

func (e *ClaimHeldError) Error() string {
	return fmt.Sprintf("contact is claimed by worker %s until %s", e.Owner, e.Until.UTC().Format(time.RFC3339))
}
