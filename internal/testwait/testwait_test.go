package testwait_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/testwait"
)

// fakeT records a failure and stops its goroutine like a real testing.T does.
type fakeT struct {
	testing.TB // unused methods panic on the nil interface
	failed     string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn with a fake T on its own goroutine and returns the failure message, if any.
func run(fn func(t testing.TB)) string {
	f := &fakeT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.failed
}

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	var checks atomic.Int32
	msg := run(func(ft testing.TB) {
		testwait.Eventually(ft, 5*time.Second, "the third check", func() (bool, string) {
			n := checks.Add(1)
			return n >= 3, fmt.Sprintf("check %d", n)
		})
	})
	if msg != "" {
		t.Fatalf("failed although the condition held: %s", msg)
	}
	if got := checks.Load(); got != 3 {
		t.Errorf("condition checked %d times, want 3 (stop at the first ok)", got)
	}
}

func TestEventuallyFailsWithWhatAndTheLastDetail(t *testing.T) {
	t.Parallel()
	var checks atomic.Int32
	start := time.Now()
	msg := run(func(ft testing.TB) {
		testwait.Eventually(ft, 50*time.Millisecond, "the queue to drain", func() (bool, string) {
			return false, fmt.Sprintf("pending=%d", checks.Add(1))
		})
		panic("Eventually returned after a timeout")
	})
	if elapsed := time.Since(start); elapsed < 50*time.Millisecond {
		t.Errorf("gave up after %s, before the 50ms timeout", elapsed)
	}
	want := fmt.Sprintf("timed out after 50ms waiting for the queue to drain; last state: pending=%d", checks.Load())
	if msg != want {
		t.Errorf("failure = %q, want %q", msg, want)
	}
	if checks.Load() < 2 {
		t.Errorf("condition checked %d times, want it polled", checks.Load())
	}
}

func TestTrueFailsWithoutDetail(t *testing.T) {
	t.Parallel()
	msg := run(func(ft testing.TB) {
		testwait.True(ft, 10*time.Millisecond, "never", func() bool { return false })
	})
	if msg != "timed out after 10ms waiting for never" {
		t.Errorf("failure = %q", msg)
	}
	if strings.Contains(msg, "last state") {
		t.Errorf("failure mentions a state that was never given: %q", msg)
	}
}

func TestTrueChecksAnExpiredConditionOnce(t *testing.T) {
	t.Parallel()
	msg := run(func(ft testing.TB) {
		testwait.True(ft, 0, "already true", func() bool { return true })
	})
	if msg != "" {
		t.Errorf("a condition true at once failed with a zero timeout: %s", msg)
	}
}

func TestUntilReportsWhetherTheConditionHeld(t *testing.T) {
	t.Parallel()
	checks := 0
	if !testwait.Until(5*time.Second, time.Second, func() bool { checks++; return checks >= 3 }) {
		t.Fatal("Until = false although the condition held at the third check")
	}
	if checks != 3 {
		t.Errorf("condition checked %d times, want 3 (stop at the first true)", checks)
	}
	start := time.Now()
	if testwait.Until(50*time.Millisecond, time.Second, func() bool { return false }) {
		t.Fatal("Until = true for a condition that never held")
	}
	if elapsed := time.Since(start); elapsed < 50*time.Millisecond {
		t.Errorf("gave up after %s, before the 50ms timeout", elapsed)
	}
}

func TestUntilPausesUpToItsLongest(t *testing.T) {
	t.Parallel()
	// Pauses of 1, 2, 4, 8, 16, 32 and then 100ms make at most 10 checks in 300ms (fewer on a
	// busy machine); Eventually's 20ms would make about 20.
	checks := 0
	testwait.Until(300*time.Millisecond, 100*time.Millisecond, func() bool { checks++; return false })
	if checks < 2 || checks > 10 {
		t.Errorf("condition checked %d times in 300ms, want 2 (the first and the last) to 10", checks)
	}
}
