// Package fleet shares every worker's circuit breaker states through a JetStream KV bucket, so
// one command (`publisher status`) shows the whole fleet, not one process's memory.
//
// Each worker runs a Reporter: it is the guards' resilience.StateListener, writes a Report on
// every transition, and rewrites all of its reports every refresh interval. The bucket has a
// TTL (FLEET_TTL, default 30s): a worker that dies stops refreshing and its reports vanish
// within the TTL; a worker that stops cleanly deletes them at once. Read collects the reports
// and aggregates them per provider: the worst state across workers, which workers are OPEN,
// and every open incident.
//
// Keys are "<worker>.<provider>", each part reduced to letters, digits, '-' and '_' (the
// value carries the names as given).
package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/resilience"
)

// Defaults of the bucket and the reporter.
const (
	// DefaultBucket is the KV bucket's name (FLEET_BUCKET).
	DefaultBucket = "fleet"
	// DefaultTTL is how long a report lives without a refresh (FLEET_TTL).
	DefaultTTL = 30 * time.Second
)

// Report is one worker's view of one provider's breaker: the value stored under
// "<worker>.<provider>".
type Report struct {
	// Worker is the worker's id (WORKER_ID).
	Worker string `json:"worker"`
	// Provider is the provider's display name ("ElevenLabs").
	Provider string `json:"provider"`
	// State is CLOSED, HALF_OPEN or OPEN.
	State resilience.State `json:"state"`
	// Since is when the breaker entered State (or when the worker started, for a breaker
	// closed since then).
	Since time.Time `json:"since"`
	// RetryAt is when an OPEN breaker lets a call through again; absent otherwise.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// UpdatedAt is when the worker wrote the report.
	UpdatedAt time.Time `json:"updated_at"`
}

// Key is the report's key in the bucket.
func (r Report) Key() string { return Key(r.Worker, r.Provider) }

// Key is the bucket key of worker's report on provider: both slugged and joined with a dot.
func Key(worker, provider string) string { return slug(worker) + "." + slug(provider) }

// slug keeps ASCII letters, digits, '-' and '_' and replaces anything else with '-', so the
// key is valid and has exactly one dot.
func slug(s string) string {
	if s == "" {
		return "-"
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

// BucketConfig describes the fleet bucket.
type BucketConfig struct {
	// Name is the bucket (default DefaultBucket): letters, digits, '-' and '_'.
	Name string
	// TTL is how long a report lives without a refresh (default DefaultTTL). It must exceed
	// the reporters' refresh interval.
	TTL time.Duration
	// Replicas is the bucket's replica count (default 1; use the streams' count).
	Replicas int
}

// WithDefaults fills the zero fields.
func (c BucketConfig) WithDefaults() BucketConfig {
	if c.Name == "" {
		c.Name = DefaultBucket
	}
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	return c
}

// KeyValueConfig is the bucket as JetStream wants it: one value per key, on file (so the
// bucket survives a server restart; a memory bucket would vanish with it and every write would
// fail), and keys expiring TTL after their last write.
func (c BucketConfig) KeyValueConfig() jetstream.KeyValueConfig {
	c = c.WithDefaults()
	return jetstream.KeyValueConfig{
		Bucket:      c.Name,
		Description: "circuit breaker states of every worker, keyed by <worker>.<provider>; expire when not refreshed",
		History:     1,
		TTL:         c.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	}
}

// EnsureBucket opens the fleet bucket, creating it with cfg when missing. It never changes an
// existing bucket: the fleet's settings are not the last-started worker's.
func EnsureBucket(ctx context.Context, js jetstream.KeyValueManager, cfg BucketConfig) (jetstream.KeyValue, error) {
	kvc := cfg.KeyValueConfig()
	kv, err := js.KeyValue(ctx, kvc.Bucket)
	if errorsIsBucketNotFound(err) {
		kv, err = js.CreateKeyValue(ctx, kvc)
		if errors.Is(err, jetstream.ErrBucketExists) { // another worker created it meanwhile
			kv, err = js.KeyValue(ctx, kvc.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("fleet KV bucket %s: %w", kvc.Bucket, err)
	}
	return kv, nil
}

// ErrNoReports means the fleet bucket does not exist: no worker with fleet reporting has
// started against this server (or FLEET_BUCKET differs). It wraps jetstream.ErrBucketNotFound.
var ErrNoReports = fmt.Errorf("no worker has reported its breakers yet: %w", jetstream.ErrBucketNotFound)

// errorsIsBucketNotFound reports whether err says the bucket does not exist.
func errorsIsBucketNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
}
