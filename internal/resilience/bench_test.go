package resilience

import (
	"context"
	"testing"
)

// sink keeps the compiler from optimising the bare call away.
var sink error

//go:noinline
func providerCall(context.Context) error { return nil }

// BenchmarkBareCall is the baseline: the provider call without protection.
func BenchmarkBareCall(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		sink = providerCall(ctx)
	}
}

// BenchmarkGuardDo is one successful attempt through breaker and bulkhead.
func BenchmarkGuardDo(b *testing.B) {
	g := NewGuard(eleven, GuardOptions{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		sink = g.Do(ctx, providerCall)
	}
}

// BenchmarkGuardDoParallel is BenchmarkGuardDo from every P at once (within the bulkhead).
func BenchmarkGuardDoParallel(b *testing.B) {
	g := NewGuard(eleven, GuardOptions{MaxConcurrency: 1 << 20})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = g.Do(ctx, providerCall)
		}
	})
}

// BenchmarkRetrierRun is a whole retry loop (retry-go) whose first attempt succeeds.
func BenchmarkRetrierRun(b *testing.B) {
	g := NewGuard(eleven, GuardOptions{})
	r := NewRetrier(RetryPolicy{}, nil, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		sink = r.Run(ctx, nil, g, providerCall)
	}
}
