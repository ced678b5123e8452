package httpx

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// budget is a Client's in-flight byte budget (Options.MaxInFlightBytes): the 2xx body bytes
// its calls may hold while reading. It is a weighted semaphore (golang.org/x/sync/semaphore):
// a waiting Acquire ends with its context, and waiters are served in order, so a large
// reservation is not starved by a stream of small ones. The other side of that order: while
// a call waits, TryAcquire fails, so bodies growing chunk by chunk fail rather than overtake
// it. That only happens once the budget is nearly used up, which normal calls never do.
type budget struct {
	sem   *semaphore.Weighted
	size  int64
	inUse atomic.Int64 // what calls hold now; never above size
	peak  atomic.Int64 // the most ever held at once, for tests
}

func newBudget(size int64) *budget {
	return &budget{sem: semaphore.NewWeighted(size), size: size}
}

// reservation is one call's share of the budget. A nil *reservation reserves nothing (error
// bodies are not counted).
type reservation struct {
	b    *budget
	held int64
}

// reserve adds n bytes to r, or returns a *BudgetError, or ctx's error when ctx had already
// ended or was cancelled while waiting.
//
// Only the call's first reservation waits for room (until ctx ends): the call holds nothing
// then, so its wait cannot block anyone. Later ones, for a body growing chunk by chunk, do not
// wait: two calls each holding part of the budget and waiting for the other's part would
// stand still until their deadlines.
func (r *reservation) reserve(ctx context.Context, n int64) error {
	if r == nil || n <= 0 {
		return nil
	}
	b := r.b
	if r.held+n > b.size {
		return &BudgetError{Need: r.held + n, Budget: b.size}
	}
	if r.held == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.sem.Acquire(ctx, n); err != nil {
			if ctx.Err() == context.Canceled {
				return err // the caller gave up: not a budget failure
			}
			return &BudgetError{Need: n, Budget: b.size, Waited: true}
		}
	} else if !b.sem.TryAcquire(n) {
		return &BudgetError{Need: r.held + n, Budget: b.size}
	}
	r.held += n
	now := b.inUse.Add(n)
	for p := b.peak.Load(); now > p && !b.peak.CompareAndSwap(p, now); p = b.peak.Load() {
	}
	return nil
}

// give returns n of the bytes r holds.
func (r *reservation) give(n int64) {
	if r == nil || n <= 0 {
		return
	}
	r.held -= n
	r.b.inUse.Add(-n) // before the semaphore, so inUse never exceeds size
	r.b.sem.Release(n)
}

// release returns everything r holds.
func (r *reservation) release() { r.give(r.held) }
