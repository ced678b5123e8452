package call

import (
	"context"
	"errors"
	"fmt"
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
	// Owner holds the claim until LeaseUntil; empty when nobody works on the contact.
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

// Claim is one worker's exclusive hold on a contact's checkpoint, taken with a
// compare-and-swap. A Claim is safe for concurrent use (the heartbeat renews it while the
// steps save into it).
type Claim interface {
	// Checkpoint returns the progress as last saved.
	Checkpoint() Checkpoint
	// Save applies update to the checkpoint and writes it; ErrClaimLost if another worker took
	// the contact meanwhile.
	Save(ctx context.Context, update func(*Checkpoint)) error
	// Renew extends the lease; ErrClaimLost as Save.
	Renew(ctx context.Context) error
	// Release gives the contact up (Owner cleared), recording a failure at failedAt if it is
	// not zero.
	Release(ctx context.Context, failedAt time.Time) error
}

// CheckpointStore keeps claims, step checkpoints and audio.
type CheckpointStore interface {
	// Claim takes contactID for worker for lease and returns its saved progress; a
	// *ClaimHeldError when another worker holds a live claim.
	Claim(ctx context.Context, contactID, worker string, lease time.Duration) (Claim, error)
	// PutAudio stores the audio of contactID and returns its reference.
	PutAudio(ctx context.Context, contactID string, a Audio) (ref string, err error)
	// StoredAudio returns the reference and format of audio already stored for contactID (a
	// run that stored it but could not record it in the checkpoint), ok false when none.
	StoredAudio(ctx context.Context, contactID string) (ref, format string, ok bool, err error)
}

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
