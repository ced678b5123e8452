// Package testwait waits, in tests, for a condition that something running in the background
// makes true: a worker completing contacts, a breaker opening, a listener seeing an event.
// Tests wait on conditions with it instead of sleeping.
package testwait

import (
	"testing"
	"time"
)

// First and longest pause between two checks of a condition: checks start 1ms apart and
// double up to 20ms, so a condition that holds at once costs nothing and a slow one does not
// keep a core busy.
const (
	firstPause = time.Millisecond
	maxPause   = 20 * time.Millisecond
)

// Eventually checks cond until it reports ok, or fails the test with t.Fatalf once timeout
// has passed. The failure names what was awaited and the detail cond returned last (for
// example the queue's counts), so a timeout says how far things got. cond runs on the
// caller's goroutine and is checked one last time at the deadline. Like t.Fatalf, Eventually
// must be called from the goroutine running the test.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, detail string)) {
	t.Helper()
	var detail string
	if Until(timeout, maxPause, func() (ok bool) { ok, detail = cond(); return ok }) {
		return
	}
	if detail == "" {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	} else {
		t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, detail)
	}
}

// True is Eventually for a condition without detail to report.
func True(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	Eventually(t, timeout, what, func() (bool, string) { return cond(), "" })
}

// Until checks cond until it holds or timeout has passed, and reports whether it held; cond
// is checked one last time at the deadline. It is for a caller that decides itself what a
// timeout means, such as a harness that fails with a process's output. Checks start 1ms
// apart and double up to longest (at least 1ms), which a condition costing a round trip to a
// server can set above Eventually's 20ms.
func Until(timeout, longest time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	longest = max(longest, firstPause)
	for pause := firstPause; !cond(); pause = min(2*pause, longest) {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(pause, left))
	}
	return true
}
