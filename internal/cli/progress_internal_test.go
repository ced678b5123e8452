package cli

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/queue"
)

func TestMeasureProgress(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	sample := func(at time.Duration, pending, inProgress, completed, dead uint64) progressSample {
		return progressSample{at: t0.Add(at), st: queue.Status{Pending: pending, InProgress: inProgress, Completed: completed, DeadLettered: dead}}
	}
	first := sample(0, 900, 16, 100, 4)
	for _, tc := range []struct {
		name     string
		prev     *progressSample
		cur      progressSample
		want     progress
		describe []string
	}{
		{"first refresh", nil, first, progress{Left: 916}, []string{"Rate: measuring", "; 916 left (pending + in progress)"}},
		{"completing", &first, sample(2*time.Second, 880, 16, 118, 6), progress{Elapsed: 2 * time.Second, CompletionRate: 9, DeadLetterRate: 1, Left: 896, ETA: 90 * time.Second, HasETA: true},
			[]string{"Rate: 9.0 contacts/s completed over the last 2s (and 1.0/s dead-lettered)", "; 896 left (pending + in progress), ETA 1m30s (about 08:01:32)"}},
		{"stalled", &first, sample(2*time.Second, 900, 16, 100, 4), progress{Elapsed: 2 * time.Second, Left: 916},
			[]string{"Rate: 0 contacts/s completed over the last 2s;", "ETA unknown: none finished in the last 2s"}},
		{"a purge is no negative rate", &first, sample(time.Second, 900, 16, 101, 0), progress{Elapsed: time.Second, CompletionRate: 1, Left: 916, ETA: 916 * time.Second, HasETA: true},
			[]string{"Rate: 1.0 contacts/s completed over the last 1s; 916 left", "ETA 15m16s"}},
		{"almost done", &first, sample(time.Second, 0, 1, 1100, 4), progress{Elapsed: time.Second, CompletionRate: 1000, Left: 1, ETA: time.Second, HasETA: true},
			[]string{"Rate: 1000 contacts/s", "1 left (pending + in progress), ETA 1s"}},
		{"done", &first, sample(time.Second, 0, 0, 1016, 4), progress{Elapsed: time.Second, CompletionRate: 916, Left: 0, HasETA: true},
			[]string{"Rate: 916 contacts/s", "; nothing left: no contact pending or in progress"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := measure(tc.prev, tc.cur)
			if got != tc.want {
				t.Errorf("measure = %+v, want %+v", got, tc.want)
			}
			line := got.describe(tc.cur.at)
			for _, w := range tc.describe {
				if !strings.Contains(line, w) {
					t.Errorf("%q lacks %q", line, w)
				}
			}
		})
	}
}

func TestWrapWords(t *testing.T) {
	got := wrapWords("a bb ccc dddd eeeee averyveryverylongword f", 8)
	want := []string{"a bb ccc", "dddd", "eeeee", "averyveryverylongword", "f"}
	if !slices.Equal(got, want) {
		t.Fatalf("wrapWords = %q, want %q", got, want)
	}
}

func TestDeadLetterReasonsIncludeEveryKindAndTheWorkersOwn(t *testing.T) {
	reasons := deadLetterReasons()
	for _, r := range []string{"quota_exceeded", "service_unavailable", "authentication", "timeout", "permission_denied",
		"invalid_payload", "max_deliveries", "circuit_open", "internal", "unknown"} {
		if !slices.Contains(reasons, r) {
			t.Errorf("%q missing from %v", r, reasons)
		}
	}
	if !slices.IsSorted(reasons) || len(slices.Compact(slices.Clone(reasons))) != len(reasons) {
		t.Errorf("not sorted or with repeats: %v", reasons)
	}
}
