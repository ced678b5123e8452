package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"
)

// Key prefixes in the incidents bucket.
const (
	incidentPrefix = "incident."
	windowPrefix   = "window."
)

// Incident is one open (or last resolved) incident as kept in the incidents bucket under
// incident.<dedup key>: what an operator sees in `publisher status`.
type Incident struct {
	// Key is the dedup key, "<provider slug>.<condition>" (e.g. "elevenlabs.down").
	Key string `json:"key"`
	// Kind is the kind of the event that opened it.
	Kind Kind `json:"kind"`
	// Severity is the highest severity seen.
	Severity Severity `json:"severity"`
	// Provider is the provider's display name.
	Provider string `json:"provider,omitempty"`
	// Title is the title of the opened notification.
	Title string `json:"title"`
	// Message is the opening event's message.
	Message string `json:"message"`
	// Open is false once resolved.
	Open bool `json:"open"`
	// OpenedAt is the opening event's time; ResolvedAt the resolving one's.
	OpenedAt   time.Time `json:"opened_at"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// LastSeen is the time of the latest event folded in.
	LastSeen time.Time `json:"last_seen"`
	// Count is how many events the incident holds, the opening one included.
	Count int `json:"count"`
	// Suppressed is how many of them were not sent.
	Suppressed int `json:"suppressed"`
	// Escalated is set once service_down was sent for it.
	Escalated bool `json:"escalated,omitempty"`
	// Reporters maps each worker that currently reports the condition to its latest report.
	// The incident resolves when the last one withdraws (its breaker closed) or goes silent
	// for the reporter TTL.
	Reporters map[string]time.Time `json:"reporters,omitempty"`
	// SeenBy lists every worker that reported it (at most 20).
	SeenBy []string `json:"seen_by,omitempty"`
	// FirstEventID is the opening event's id; notification ids derive from it.
	FirstEventID string `json:"first_event_id"`
}

// Duration is how long the incident has lasted: until now if open, else until ResolvedAt.
func (i Incident) Duration(now time.Time) time.Duration {
	if i.Open {
		return now.Sub(i.OpenedAt)
	}
	return i.ResolvedAt.Sub(i.OpenedAt)
}

// condition is the part of the key after the provider slug.
func (i Incident) condition() string { return i.Key[strings.LastIndexByte(i.Key, '.')+1:] }

// providerSlug is the part of the key before the condition.
func (i Incident) providerSlug() string { return i.Key[:strings.LastIndexByte(i.Key, '.')] }

// reporters lists Reporters' names, sorted.
func (i Incident) reporters() []string {
	out := make([]string, 0, len(i.Reporters))
	for r := range i.Reporters {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// incidentRecord is the stored form: the incident and what makes processing an event twice
// harmless (the last event applied and the notification it produced, re-published with the
// same id on a redelivery so the stream drops the duplicate).
type incidentRecord struct {
	Incident
	LastEventID      string        `json:"last_event_id"`
	LastNotification *Notification `json:"last_notification,omitempty"`
}

// windowRecord is a summary window of call_failed or dead_lettered events, under
// window.<dedup key>. Its first event was sent on its own; the rest are summarised when the
// window ends.
type windowRecord struct {
	Key              string         `json:"key"`
	Kind             Kind           `json:"kind"`
	Provider         string         `json:"provider,omitempty"`
	Severity         Severity       `json:"severity"`
	Start            time.Time      `json:"start"`
	Count            int            `json:"count"`
	FirstEventID     string         `json:"first_event_id"`
	Reasons          map[string]int `json:"reasons,omitempty"`
	ContactIDs       []string       `json:"contact_ids,omitempty"`
	Sources          []string       `json:"sources,omitempty"`
	LastEventID      string         `json:"last_event_id"`
	LastNotification *Notification  `json:"last_notification,omitempty"`
}

// Bounds of the samples kept in records.
const (
	maxSampleContacts = 20
	maxSeenBy         = 20
)

func appendBounded(list []string, v string, n int) []string {
	if v == "" || len(list) >= n {
		return list
	}
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

// errConflict means a compare-and-swap lost to another writer: load and try again.
var errConflict = errors.New("incident record changed concurrently")

// errCorrupt marks a record that exists but does not decode.
var errCorrupt = errors.New("unreadable record")

// load reads the record under key; rev is 0 when the key is absent (or deleted). A record
// that does not decode comes back as the zero T with its revision and an error wrapping
// errCorrupt, so the caller can replace it.
func load[T any](ctx context.Context, kv jetstream.KeyValue, key string) (T, uint64, error) {
	var v T
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return v, 0, nil
	}
	if err != nil {
		return v, 0, fmt.Errorf("read %s from the incidents bucket: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		var zero T
		return zero, e.Revision(), fmt.Errorf("%w %s in the incidents bucket: %v", errCorrupt, key, err)
	}
	return v, e.Revision(), nil
}

// store writes v under key if the key is still at rev (0: still absent), else errConflict.
func store(ctx context.Context, kv jetstream.KeyValue, key string, v any, rev uint64) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if rev == 0 {
		_, err = kv.Create(ctx, key, data)
	} else {
		_, err = kv.Update(ctx, key, data, rev)
	}
	if isConflict(err) {
		return errConflict
	}
	if err != nil {
		return fmt.Errorf("write %s to the incidents bucket: %w", key, err)
	}
	return nil
}

// isConflict recognises a lost compare-and-swap: ErrKeyExists on Create, a revision
// mismatch on Update or Delete (codes 10071 and, on replicated streams, 10164).
func isConflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// maxCASAttempts bounds the load–modify–store loops.
const maxCASAttempts = 16

// casLoop runs fn until it does not return errConflict, at most maxCASAttempts times.
func casLoop(key string, fn func() error) error {
	for range maxCASAttempts {
		err := fn()
		if !errors.Is(err, errConflict) {
			return err
		}
	}
	return fmt.Errorf("update %s: %w %d times in a row", key, errConflict, maxCASAttempts)
}

// OpenIncidents lists the open incidents in bucket (the ALERT_INCIDENTS_BUCKET), oldest
// first, for `publisher status`. A bucket that does not exist yet holds none.
func OpenIncidents(ctx context.Context, js jetstream.JetStream, bucket string) ([]Incident, error) {
	if bucket == "" {
		bucket = DefaultBucket
	}
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open alert incidents bucket %s: %w", bucket, err)
	}
	keys, err := listKeys(ctx, kv)
	if err != nil {
		return nil, err
	}
	var out []Incident
	for _, k := range keys {
		if !strings.HasPrefix(k, incidentPrefix) {
			continue
		}
		rec, rev, err := load[incidentRecord](ctx, kv, k)
		if errors.Is(err, errCorrupt) {
			continue // the dispatcher replaces it; nothing to show
		}
		if err != nil {
			return nil, err
		}
		if rev != 0 && rec.Open {
			out = append(out, rec.Incident)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OpenedAt.Before(out[j].OpenedAt) })
	return out, nil
}

// listKeys returns every key in kv (none when empty).
func listKeys(ctx context.Context, kv jetstream.KeyValue) ([]string, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("list the incidents bucket: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}

// loggerOrDiscard returns l, or a logger that writes nowhere.
func loggerOrDiscard(l *logrus.Logger) *logrus.Logger {
	if l != nil {
		return l
	}
	d := logrus.New()
	d.Out = io.Discard
	d.Level = logrus.PanicLevel
	return d
}
