package resilience

import (
	"context"
	"sync"
)

// Bulkhead is a resizable semaphore: at most Limit calls hold a slot at once, and waiters
// are served first come, first served. The zero value is not usable; use NewBulkhead. Safe
// for concurrent use.
//
// Lowering the limit never revokes slots already held: InUse may exceed Limit until enough
// calls Release, and waiters are admitted again as soon as InUse drops below the new limit.
// Raising it admits waiters at once.
type Bulkhead struct {
	mu      sync.Mutex
	limit   int
	inUse   int
	waiters []chan struct{} // FIFO; a waiter's channel is closed when it is granted a slot
}

// NewBulkhead returns a bulkhead of limit slots; a limit below 1 is taken as 1.
func NewBulkhead(limit int) *Bulkhead {
	return &Bulkhead{limit: max(limit, 1)}
}

// Acquire takes a slot, waiting in line until one is free or ctx ends. It returns ctx's
// error (and holds no slot) when ctx ends first. Every successful Acquire needs one Release.
func (b *Bulkhead) Acquire(ctx context.Context) error {
	b.mu.Lock()
	if len(b.waiters) == 0 && b.inUse < b.limit {
		b.inUse++
		b.mu.Unlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		b.mu.Unlock()
		return err
	}
	w := make(chan struct{})
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()

	select {
	case <-w:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	select {
	case <-w:
		// Granted while ctx ended: hand the slot on rather than leak it.
		b.inUse--
		b.grantLocked()
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
	if len(b.waiters) == 0 && b.inUse < b.limit {
		b.inUse++
		return true
	}
	return false
}

// Release returns a slot taken by Acquire or TryAcquire and admits the next waiter if the
// limit allows. Releasing more than was acquired panics.
func (b *Bulkhead) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inUse <= 0 {
		panic("resilience: Bulkhead.Release without a matching Acquire")
	}
	b.inUse--
	b.grantLocked()
}

// SetLimit changes the number of slots (below 1 is taken as 1), e.g. to ElevenLabs'
// maximum-concurrent-requests. Growing admits waiters at once; shrinking lets calls in
// flight finish.
func (b *Bulkhead) SetLimit(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.limit = max(n, 1)
	b.grantLocked()
}

// lower sets the limit to n (at least 1) only if that is below the current limit, and
// reports the limit before and whether it changed.
func (b *Bulkhead) lower(n int) (before int, changed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	before = b.limit
	n = max(n, 1)
	if n >= b.limit {
		return before, false
	}
	b.limit = n
	return before, true
}

// Limit returns the current number of slots.
func (b *Bulkhead) Limit() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit
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
	for len(b.waiters) > 0 && b.inUse < b.limit {
		w := b.waiters[0]
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		b.inUse++
		close(w)
	}
}
