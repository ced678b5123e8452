package alerttest

import (
	"context"
	"sync"
	"testing"
)

// Start runs run, a service of the daemon's shape (it works until its context ends, then
// returns), in a goroutine of its own. stop cancels the context, waits for run to return and
// returns its error, the same on every call; the test's cleanup calls it too, so nothing
// outlives the test. A caller checking the error calls stop in a cleanup of its own, which
// runs first.
func Start(t testing.TB, run func(ctx context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { _ = stop() })
	return stop
}
