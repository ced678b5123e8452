package resilience

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
		waitFor(t, "the bulkhead to fill", func() bool { return b.InUse() == limit && b.waiting() == n-limit })
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
	waitFor(t, "four waiters", func() bool { return b.waiting() == 4 })

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
	waitFor(t, "a waiter", func() bool { return b.waiting() == 1 })
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
