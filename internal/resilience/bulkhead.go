package resilience

import (
	"context"
	"sync"
)

// Bulkhead is a resizable semaphore: at most Window calls hold a slot at once, and waiters
// are served first come, first served. The zero value is not usable; use NewBulkhead. Safe
// for concurrent use.
//
// It has two limits. Limit is the ceiling: the configured concurrency, or a provider's plan
// limit (SetLimit, and a Guard lowers it when the provider refuses a call for concurrency).
// Window is the adaptive limit in force, between 1 and Limit: a bulkhead made by NewBulkhead
// keeps it at Limit, while a Guard's bulkhead runs a slow start. The window starts at the
// breaker's failure threshold (when the Guard starts, and when its breaker closes after an
// outage: as many calls as it takes to open the breaker again), drops to 1 when the provider
// fails, and each success doubles it, up to Limit. So a provider that is down sees only the
// calls that open its breaker, one that has just failed is tested by one call while the
// others wait here, and a healthy one is at full concurrency after two or three rounds.
//
// Lowering a limit never revokes slots already held: InUse may exceed Window until enough
// calls Release, and waiters are admitted again as soon as InUse drops below it. Raising it
// admits waiters at once.
//
// While its Guard's breaker is open the bulkhead refuses: waiters wake at once and Acquire
// fails fast, both with ErrBreakerOpen.
type Bulkhead struct {
	mu     sync.Mutex
	limit  int  // the ceiling
	window int  // the adaptive limit in force: 1 ≤ window ≤ limit
	start  int  // the window of a slow start (0: the bulkhead is not a Guard's)
	inUse  int  // slots held
	refuse bool // the guard's breaker is open: no slot is granted
	// waiters is FIFO; a waiter's channel receives true when it is granted a slot, false
	// when it is refused (the breaker opened).
	waiters []chan bool
}

// NewBulkhead returns a bulkhead of limit slots; a limit below 1 is taken as 1.
func NewBulkhead(limit int) *Bulkhead {
	limit = max(limit, 1)
	return &Bulkhead{limit: limit, window: limit}
}

// outcome is how a call that held a slot went, for the adaptive window.
type outcome uint8

const (
	neutral outcome = iota // nothing learnt about the provider (cancelled, refused, panicked)
	success                // the provider answered: the window doubles, up to the limit
	failure                // a counted failure: the window drops to 1
)

// Acquire takes a slot, waiting in line until one is free or ctx ends. It returns ctx's
// error (and holds no slot) when ctx ends first, and ErrBreakerOpen when its Guard's breaker
// is open or opens while it waits. Every successful Acquire needs one Release.
func (b *Bulkhead) Acquire(ctx context.Context) error {
	b.mu.Lock()
	if b.refuse {
		b.mu.Unlock()
		return ErrBreakerOpen
	}
	if len(b.waiters) == 0 && b.inUse < b.window {
		b.inUse++
		b.mu.Unlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		b.mu.Unlock()
		return err
	}
	w := make(chan bool, 1)
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()

	select {
	case granted := <-w:
		if !granted {
			return ErrBreakerOpen
		}
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	select {
	case granted := <-w:
		if granted {
			// Granted while ctx ended: hand the slot on rather than leak it.
			b.inUse--
			b.grantLocked()
		}
	default:
		for i, x := range b.waiters {
			if x == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				break
			}
		}
	}
	b.mu.Unlock()
	return ctx.Err()
}

// TryAcquire takes a slot if one is free now and nobody is waiting; it never blocks.
func (b *Bulkhead) TryAcquire() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.refuse && len(b.waiters) == 0 && b.inUse < b.window {
		b.inUse++
		return true
	}
	return false
}

// Release returns a slot taken by Acquire or TryAcquire and admits the next waiter if the
// window allows. Releasing more than was acquired panics.
func (b *Bulkhead) Release() { b.release(neutral) }

// release is Release that also adapts the window to how the call went.
func (b *Bulkhead) release(o outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inUse <= 0 {
		panic("resilience: Bulkhead.Release without a matching Acquire")
	}
	b.inUse--
	switch o {
	case success:
		if b.window < b.limit && !b.refuse { // a late success does not grow it while open
			b.window = min(2*b.window, b.limit)
		}
	case failure:
		b.window = 1
	}
	b.grantLocked()
}

// SetLimit changes the ceiling (below 1 is taken as 1), e.g. to ElevenLabs'
// maximum-concurrent-requests. A window at the old ceiling follows the new one; a window in
// slow start keeps growing from where it is, never above the ceiling. Growing admits waiters
// at once; shrinking lets calls in flight finish.
func (b *Bulkhead) SetLimit(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = max(n, 1)
	if b.window >= b.limit {
		b.window = n
	}
	b.limit = n
	b.window = min(b.window, n)
	b.grantLocked()
}

// lower sets the ceiling to n (at least 1) only if that is below the current one, and
// reports the ceiling before and whether it changed.
func (b *Bulkhead) lower(n int) (before int, changed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	before = b.limit
	n = max(n, 1)
	if n >= b.limit {
		return before, false
	}
	b.limit = n
	b.window = min(b.window, n)
	return before, true
}

// slowStart sets the window to its slow start's (a Guard's breaker closing after an outage)
// and stops refusing.
func (b *Bulkhead) slowStart() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.window = min(max(b.start, 1), b.limit)
	b.refuse = false
	b.grantLocked()
}

// refuseAll is called when the Guard's breaker opens: every waiter is woken with
// ErrBreakerOpen, Acquire refuses until admit, and the window drops to 1.
func (b *Bulkhead) refuseAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refuse = true
	b.window = 1
	for i, w := range b.waiters {
		w <- false
		b.waiters[i] = nil
	}
	b.waiters = b.waiters[:0]
}

// admit ends refuseAll (the breaker went half-open), the window kept at 1.
func (b *Bulkhead) admit() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refuse = false
	b.grantLocked()
}

// Limit returns the ceiling: the most slots the window may grow to.
func (b *Bulkhead) Limit() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit
}

// Window returns the number of slots in force now: Limit, or less while the bulkhead's
// Guard is in slow start after a failure.
func (b *Bulkhead) Window() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.window
}

// InUse returns the number of slots held now.
func (b *Bulkhead) InUse() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inUse
}

// waiting returns the number of callers waiting in Acquire (for tests).
func (b *Bulkhead) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiters)
}

func (b *Bulkhead) grantLocked() {
	for !b.refuse && len(b.waiters) > 0 && b.inUse < b.window {
		w := b.waiters[0]
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		b.inUse++
		w <- true
	}
}
