package daemon

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/callagent/resilience/internal/resilience"
)

// breakerWatch learns of every breaker transition (it is the guards' StateListener) and wakes
// whoever waits for the breakers to close: the fetch loop that stops pulling contacts while a
// breaker is open, and contacts held in flight.
type breakerWatch struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every transition
}

func newBreakerWatch() *breakerWatch {
	return &breakerWatch{changed: make(chan struct{})}
}

// BreakerStateChanged implements resilience.StateListener.
func (w *breakerWatch) BreakerStateChanged(provider string, from, to resilience.State, at time.Time) {
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

func (w *breakerWatch) signal() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// waitAvailable blocks until every step has a provider whose breaker is closed (or half-open
// waiting for a real call, see resilience.Guard.SettingsOpen), or ctx
// ends. It also wakes at the earliest RetryAt, in case a breaker moved to half-open without a
// transition being reported.
func (w *breakerWatch) waitAvailable(ctx context.Context, steps [][]*resilience.Guard) error {
	for {
		changed := w.signal()
		if len(blockedSteps(steps)) == 0 {
			return nil
		}
		earliest := earliestRetryAt(slices.Concat(steps...))
		// Half-open reports RetryAt = now: a floor keeps a long half-open (a probe whose error
		// the breaker ignores) from turning this into a busy loop.
		wake := time.Second
		if !earliest.IsZero() {
			wake = max(time.Until(earliest), 250*time.Millisecond)
		}
		t := time.NewTimer(wake)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// blockedSteps names the providers of every step none of whose breakers is closed.
func blockedSteps(steps [][]*resilience.Guard) []string {
	var names []string
	for _, guards := range steps {
		if stepBlocked(guards) {
			for _, g := range guards {
				names = append(names, g.Provider())
			}
		}
	}
	return names
}

// stepBlocked reports whether none of a step's breakers is closed (or half-open and ready
// for a call).
func stepBlocked(guards []*resilience.Guard) bool {
	return !slices.ContainsFunc(guards, func(g *resilience.Guard) bool {
		return g.State() == resilience.StateClosed || g.Ready()
	})
}

// earliestRetryAt is the earliest time one of guards' breakers may let a call through again
// (zero when none says).
func earliestRetryAt(guards []*resilience.Guard) time.Time {
	var earliest time.Time
	for _, g := range guards {
		if at := g.RetryAt(); !at.IsZero() && (earliest.IsZero() || at.Before(earliest)) {
			earliest = at
		}
	}
	return earliest
}
