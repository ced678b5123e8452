package fleet

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/resilience"
)

// Status is the fleet's breakers, aggregated per provider.
type Status struct {
	// Providers has one row per provider any worker reports, by name.
	Providers []ProviderStatus `json:"providers"`
	// Incidents lists every breaker not CLOSED on any worker, oldest first.
	Incidents []Report `json:"incidents"`
	// Workers lists the workers reporting, by id.
	Workers []string `json:"workers"`
	// Invalid counts values in the bucket that are not reports (skipped).
	Invalid int `json:"invalid,omitempty"`
}

// ProviderStatus is one provider's breaker across the fleet.
type ProviderStatus struct {
	// Provider is the display name.
	Provider string `json:"provider"`
	// State is the worst state on any worker: OPEN over HALF_OPEN over CLOSED.
	State resilience.State `json:"state"`
	// Workers is how many workers report this provider.
	Workers int `json:"workers"`
	// Open lists the workers whose breaker is OPEN.
	Open []string `json:"open"`
	// HalfOpen lists the workers whose breaker is HALF_OPEN.
	HalfOpen []string `json:"half_open"`
	// Since is when the oldest breaker not CLOSED left CLOSED (absent when all are closed).
	Since time.Time `json:"since,omitzero"`
	// RetryAt is the earliest time an OPEN breaker lets a call through (absent when none is
	// OPEN).
	RetryAt time.Time `json:"retry_at,omitzero"`
}

// Read reads the fleet bucket and aggregates it. It returns ErrNoReports when the bucket does
// not exist.
func Read(ctx context.Context, js jetstream.KeyValueManager, bucket string) (Status, error) {
	if bucket == "" {
		bucket = DefaultBucket
	}
	kv, err := js.KeyValue(ctx, bucket)
	if errorsIsBucketNotFound(err) {
		return Status{}, fmt.Errorf("fleet KV bucket %s: %w", bucket, ErrNoReports)
	}
	if err != nil {
		return Status{}, fmt.Errorf("open fleet KV bucket %s: %w", bucket, err)
	}
	return ReadKV(ctx, kv)
}

// Watcher reads every current value of a bucket; jetstream.KeyValue satisfies it.
type Watcher interface {
	WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
	Bucket() string
}

// ReadKV reads every current report from kv and aggregates them.
func ReadKV(ctx context.Context, kv Watcher) (Status, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return Status{}, fmt.Errorf("read fleet KV bucket %s: %w", kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	var (
		reports []Report
		invalid int
	)
	for {
		select {
		case <-ctx.Done():
			return Status{}, fmt.Errorf("read fleet KV bucket %s: %w", kv.Bucket(), ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return Status{}, fmt.Errorf("read fleet KV bucket %s: the watcher stopped early", kv.Bucket())
			}
			if e == nil { // every current value has been delivered
				st := Aggregate(reports)
				st.Invalid = invalid
				return st, nil
			}
			var r Report
			if err := json.Unmarshal(e.Value(), &r); err != nil || r.Worker == "" || r.Provider == "" || !validState(r.State) {
				invalid++
				continue
			}
			reports = append(reports, r)
		}
	}
}

func validState(s resilience.State) bool {
	return s == resilience.StateClosed || s == resilience.StateHalfOpen || s == resilience.StateOpen
}

// severity orders states from best to worst.
func severity(s resilience.State) int {
	switch s {
	case resilience.StateOpen:
		return 2
	case resilience.StateHalfOpen:
		return 1
	}
	return 0
}

// Aggregate groups reports per provider.
func Aggregate(reports []Report) Status {
	st := Status{Providers: []ProviderStatus{}, Incidents: []Report{}, Workers: []string{}}
	byProvider := map[string]*ProviderStatus{}
	workers := map[string]bool{}
	for _, r := range reports {
		if !workers[r.Worker] {
			workers[r.Worker] = true
			st.Workers = append(st.Workers, r.Worker)
		}
		p := byProvider[r.Provider]
		if p == nil {
			p = &ProviderStatus{Provider: r.Provider, State: resilience.StateClosed, Open: []string{}, HalfOpen: []string{}}
			byProvider[r.Provider] = p
		}
		p.Workers++
		if severity(r.State) > severity(p.State) {
			p.State = r.State
		}
		switch r.State {
		case resilience.StateOpen:
			p.Open = append(p.Open, r.Worker)
			if !r.RetryAt.IsZero() && (p.RetryAt.IsZero() || r.RetryAt.Before(p.RetryAt)) {
				p.RetryAt = r.RetryAt
			}
		case resilience.StateHalfOpen:
			p.HalfOpen = append(p.HalfOpen, r.Worker)
		}
		if r.State != resilience.StateClosed {
			st.Incidents = append(st.Incidents, r)
			if p.Since.IsZero() || r.Since.Before(p.Since) {
				p.Since = r.Since
			}
		}
	}
	for _, p := range byProvider {
		slices.Sort(p.Open)
		slices.Sort(p.HalfOpen)
		st.Providers = append(st.Providers, *p)
	}
	slices.SortFunc(st.Providers, func(a, b ProviderStatus) int { return cmp.Compare(a.Provider, b.Provider) })
	slices.SortFunc(st.Incidents, func(a, b Report) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Worker, b.Worker))
	})
	slices.Sort(st.Workers)
	return st
}

// WriteTable prints the status for people: one line per provider, then the open incidents.
func (s Status) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Circuit breakers (%d %s reporting)\n", len(s.Workers), plural(len(s.Workers), "worker", "workers"))
	if len(s.Providers) == 0 {
		fmt.Fprintln(tw, "  no breaker reported")
	} else {
		fmt.Fprintln(tw, "  PROVIDER\tSTATE\tOPEN/WORKERS\tSINCE\tRETRY AT")
		for _, p := range s.Providers {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", p.Provider, p.State,
				fmt.Sprintf("%d/%d", len(p.Open), p.Workers), stamp(p.Since), stamp(p.RetryAt))
		}
	}
	if len(s.Incidents) == 0 {
		fmt.Fprintln(tw, "Open incidents: none")
	} else {
		fmt.Fprintf(tw, "Open incidents (%d)\n", len(s.Incidents))
		fmt.Fprintln(tw, "  WORKER\tPROVIDER\tSTATE\tSINCE\tRETRY AT")
		for _, r := range s.Incidents {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.Worker, r.Provider, r.State, stamp(r.Since), stamp(r.RetryAt))
		}
	}
	if s.Invalid > 0 {
		fmt.Fprintf(tw, "(%d unreadable %s skipped)\n", s.Invalid, plural(s.Invalid, "entry", "entries"))
	}
	return tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
