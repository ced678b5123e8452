package daemon

import (
	"context"
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
	next    resilience.StateListener
}

func newBreakerWatch(next resilience.StateListener) *breakerWatch {
	return &breakerWatch{changed: make(chan struct{}), next: next}
}

// BreakerStateChanged implements resilience.StateListener.
func (w *breakerWatch) BreakerStateChanged(provider string, from, to resilience.State, at time.Time) {
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
	if w.next != nil {
		w.next.BreakerStateChanged(provider, from, to, at)
	}
}

func (w *breakerWatch) signal() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// waitClosed blocks until every guard's breaker is closed or ctx ends. It also wakes at the
// earliest RetryAt, in case a breaker moved to half-open without a transition being reported.
func (w *breakerWatch) waitClosed(ctx context.Context, guards []*resilience.Guard) error {
	for {
		changed := w.signal()
		var earliest time.Time
		open := false
		for _, g := range guards {
			if g.State() == resilience.StateClosed {
				continue
			}
			open = true
			if at := g.RetryAt(); !at.IsZero() && (earliest.IsZero() || at.Before(earliest)) {
				earliest = at
			}
		}
		if !open {
			return nil
		}
		wake := time.Second
		if !earliest.IsZero() {
			wake = max(time.Until(earliest), 10*time.Millisecond)
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

// openGuards lists the providers whose breaker is not closed, for logs.
func openGuards(guards []*resilience.Guard) []string {
	var names []string
	for _, g := range guards {
		if g.State() != resilience.StateClosed {
			names = append(names, g.Provider())
		}
	}
	return names
}
