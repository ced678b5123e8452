package resilience

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/testwait"
)

func TestBulkheadCap(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1, 3, 8} {
		b := NewBulkhead(limit)
		var inside, maxInside atomic.Int32
		gate := make(chan struct{})
		var wg sync.WaitGroup
		const n = 50
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := b.Acquire(context.Background()); err != nil {
					t.Errorf("Acquire = %v", err)
					return
				}
				v := inside.Add(1)
				for {
					m := maxInside.Load()
					if v <= m || maxInside.CompareAndSwap(m, v) {
						break
					}
				}
				<-gate
				inside.Add(-1)
				b.Release()
			}()
		}
		testwait.True(t, 5*time.Second, "the bulkhead to fill", func() bool { return b.InUse() == limit && b.waiting() == n-limit })
		close(gate)
		wg.Wait()
		if maxInside.Load() != int32(limit) || b.InUse() != 0 || b.waiting() != 0 {
			t.Fatalf("limit %d: max inside %d, in use %d, waiting %d", limit, maxInside.Load(), b.InUse(), b.waiting())
		}
	}
}

func TestBulkheadResize(t *testing.T) {
	t.Parallel()
	b := NewBulkhead(1)
	if err := b.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	acquired := make(chan struct{}, 10)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Acquire(context.Background()); err == nil {
				acquired <- struct{}{}
			}
		}()
	}
	testwait.True(t, 5*time.Second, "four waiters", func() bool { return b.waiting() == 4 })

	b.SetLimit(3) // growing wakes waiters at once
	<-acquired
	<-acquired
	if b.InUse() != 3 || b.waiting() != 2 || b.Limit() != 3 {
		t.Fatalf("after growing: in use %d, waiting %d, limit %d", b.InUse(), b.waiting(), b.Limit())
	}

	b.SetLimit(1) // shrinking revokes nothing
	if b.InUse() != 3 {
		t.Fatalf("shrinking revoked slots: in use %d", b.InUse())
	}
	b.Release()
	b.Release()
	if b.InUse() != 1 || b.waiting() != 2 {
		t.Fatalf("admitted above the new limit: in use %d, waiting %d", b.InUse(), b.waiting())
	}
	b.Release() // below the limit now: the next waiter gets in
	<-acquired
	b.Release()
	<-acquired // nobody is stranded
	b.Release()
	wg.Wait()
	if b.InUse() != 0 || b.waiting() != 0 {
		t.Fatalf("in use %d, waiting %d", b.InUse(), b.waiting())
	}

	b.SetLimit(0)
	if b.Limit() != 1 || NewBulkhead(-5).Limit() != 1 {
		t.Fatal("a limit below 1 was kept")
	}
}

func TestBulkheadAcquireHonoursContext(t *testing.T) {
	t.Parallel()
	b := NewBulkhead(1)
	if !b.TryAcquire() {
		t.Fatal("TryAcquire on an empty bulkhead failed")
	}
	if b.TryAcquire() {
		t.Fatal("TryAcquire over the limit succeeded")
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Acquire(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire(cancelled) = %v", err)
	}

	ctx, cancel2 := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Acquire(ctx) }()
	testwait.True(t, 5*time.Second, "a waiter", func() bool { return b.waiting() == 1 })
	cancel2()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire = %v after cancel", err)
	}
	if b.waiting() != 0 || b.InUse() != 1 {
		t.Fatalf("a cancelled waiter left state behind: waiting %d, in use %d", b.waiting(), b.InUse())
	}
	b.Release()
	if !b.TryAcquire() {
		t.Fatal("the slot was lost")
	}
	b.Release()

	defer func() {
		if recover() == nil {
			t.Fatal("Release without Acquire did not panic")
		}
	}()
	b.Release()
}

func TestBulkheadStressWithCancellation(t *testing.T) {
	t.Parallel()
	b := NewBulkhead(3)
	var inside, over atomic.Int32
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(200))*time.Microsecond)
			defer cancel()
			if i%7 == 0 {
				b.SetLimit(2 + i%3)
			}
			if err := b.Acquire(ctx); err != nil {
				return
			}
			if inside.Add(1) > 4 {
				over.Add(1)
			}
			inside.Add(-1)
			b.Release()
		}()
	}
	wg.Wait()
	if over.Load() != 0 || b.InUse() != 0 || b.waiting() != 0 {
		t.Fatalf("over the largest limit %d times; in use %d, waiting %d", over.Load(), b.InUse(), b.waiting())
	}
}

// While its guard's breaker is open the bulkhead refuses: waiters wake with ErrBreakerOpen,
// Acquire and TryAcquire fail fast; admit lets calls in again at a window of 1, slowStart
// likewise, and SetLimit moves a full window with the ceiling but not one in slow start.
func TestBulkheadRefusesWhileOpenAndWindow(t *testing.T) {
	t.Parallel()
	b := NewBulkhead(4)
	if b.Window() != 4 {
		t.Fatalf("a bare bulkhead's window is %d, want its limit 4", b.Window())
	}
	for range 4 {
		if err := b.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- b.Acquire(context.Background()) }()
	}
	testwait.True(t, 5*time.Second, "three waiters", func() bool { return b.waiting() == 3 })
	b.refuseAll()
	for range 3 {
		if err := <-errs; !errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("waiter woke with %v, want ErrBreakerOpen", err)
		}
	}
	if err := b.Acquire(context.Background()); !errors.Is(err, ErrBreakerOpen) || b.TryAcquire() {
		t.Fatalf("Acquire while refusing = %v (or TryAcquire succeeded)", err)
	}
	for range 4 {
		b.release(success) // the calls in flight end; nobody is admitted, the window stays
	}
	if b.InUse() != 0 || b.Window() != 1 {
		t.Fatalf("in use %d, window %d while refusing; want 0, 1", b.InUse(), b.Window())
	}
	b.admit() // HALF_OPEN: one probe
	if !b.TryAcquire() || b.TryAcquire() {
		t.Fatal("after admit, want exactly one slot (window 1)")
	}
	b.release(success)
	if b.Window() != 2 {
		t.Fatalf("window %d after a success, want 2", b.Window())
	}
	b.refuseAll()
	b.slowStart() // CLOSED after the outage
	if b.Window() != 1 || !b.TryAcquire() {
		t.Fatalf("after slowStart: window %d, or no slot", b.Window())
	}
	b.Release() // neutral: no growth
	b.SetLimit(8)
	if b.Limit() != 8 || b.Window() != 1 {
		t.Fatalf("SetLimit in slow start: limit %d, window %d; want 8, 1", b.Limit(), b.Window())
	}
	for range 3 {
		if !b.TryAcquire() {
			t.Fatal("no slot")
		}
		b.release(success)
	}
	if b.Window() != 8 {
		t.Fatalf("window %d after three successes, want 8", b.Window())
	}
	b.SetLimit(3) // a full window follows the ceiling, down and up
	b.SetLimit(6)
	if b.Window() != 6 {
		t.Fatalf("window %d, want the ceiling 6", b.Window())
	}
}

// Waiters granted, refused and cancelled at random, the window moving: no slot leaks, none
// is granted over the ceiling, and nobody is stranded.
func TestBulkheadStressWithWindowAndRefusals(t *testing.T) {
	t.Parallel()
	const ceiling = 6
	b := NewBulkhead(ceiling)
	var inside, over atomic.Int32
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(300))*time.Microsecond)
			defer cancel()
			switch i % 50 {
			case 0:
				b.refuseAll()
			case 10:
				b.admit()
			case 20:
				b.slowStart()
			}
			if err := b.Acquire(ctx); err != nil {
				if !errors.Is(err, ErrBreakerOpen) && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Acquire = %v", err)
				}
				return
			}
			if inside.Add(1) > ceiling {
				over.Add(1)
			}
			inside.Add(-1)
			b.release(outcome(i % 3))
		}()
	}
	wg.Wait()
	if over.Load() != 0 || b.InUse() != 0 || b.waiting() != 0 {
		t.Fatalf("over the ceiling %d times; in use %d, waiting %d", over.Load(), b.InUse(), b.waiting())
	}
}
