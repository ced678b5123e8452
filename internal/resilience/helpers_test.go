package resilience

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/fault"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const eleven = "ElevenLabs"

// unavailable is the seed's ElevenLabs 503, as a provider client reports it.
func unavailable() error {
	return fault.Classify(fault.Facts{Provider: eleven, Status: 503, Message: "Service temporarily unavailable"})
}

func kindErr(k fault.Kind) error {
	return &fault.ServiceError{Provider: eleven, Kind: k, Message: k.String() + " from the provider"}
}

// logs captures log entries in order.
type logs struct {
	logger *logrus.Logger
	hook   *logtest.Hook
}

func newLogs() logs {
	l, h := logtest.NewNullLogger()
	l.Level = logrus.DebugLevel
	return logs{logger: l, hook: h}
}

func (l logs) messages() []string {
	var out []string
	for _, e := range l.hook.AllEntries() {
		out = append(out, e.Message)
	}
	return out
}

// find returns the first entry whose message contains s.
func (l logs) find(s string) *logrus.Entry {
	for _, e := range l.hook.AllEntries() {
		if strings.Contains(e.Message, s) {
			return e
		}
	}
	return nil
}

func (l logs) count(s string) int {
	n := 0
	for _, m := range l.messages() {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

// waitClock is a mock clock whose After (used by the retrier's waits only) records each wait;
// instant waits fire at once, otherwise they follow the mock (which tests do not advance).
type waitClock struct {
	*clock.Mock
	instant bool
	mu      sync.Mutex
	waits   []time.Duration
	started chan time.Duration
}

func newWaitClock(instant bool) *waitClock {
	return &waitClock{Mock: clock.NewMock(), instant: instant, started: make(chan time.Duration, 100)}
}

func (c *waitClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	select {
	case c.started <- d:
	default:
	}
	if c.instant {
		ch := make(chan time.Time, 1)
		ch <- c.Mock.Now()
		return ch
	}
	return c.Mock.After(d)
}

func (c *waitClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// script is an op that returns its errors in turn (nil when they run out) and counts calls.
type script struct {
	calls atomic.Int32
	errs  []error
}

func (s *script) op(context.Context) error {
	n := int(s.calls.Add(1))
	if n <= len(s.errs) {
		return s.errs[n-1]
	}
	return nil
}

func always(err error) func(context.Context) error {
	return func(context.Context) error { return err }
}

func ok(context.Context) error { return nil }

// warm makes successful calls until g's bulkhead has left slow start (its window at the
// limit), as a guard that has served for a while.
func warm(t *testing.T, g *Guard) {
	t.Helper()
	for i := 0; g.Bulkhead().Window() < g.Bulkhead().Limit(); i++ {
		if i > 64 {
			t.Fatalf("the window stays at %d of %d after %d successes", g.Bulkhead().Window(), g.Bulkhead().Limit(), i)
		}
		if err := g.Do(context.Background(), ok); err != nil {
			t.Fatal(err)
		}
	}
}

// openGuard fails g's op threshold times so the breaker opens.
func openGuard(t *testing.T, g *Guard) {
	t.Helper()
	for g.State() != StateOpen {
		if err := g.Do(context.Background(), always(unavailable())); errors.Is(err, ErrBreakerOpen) {
			t.Fatal("breaker refused before opening")
		}
	}
}

// listener records transitions.
type listener struct {
	mu     sync.Mutex
	events []transition
	g      *Guard // called back during notification, to prove it cannot deadlock
}

func (l *listener) BreakerStateChanged(provider string, from, to State, at time.Time) {
	if l.g != nil {
		_ = l.g.Ready()
		_ = l.g.RetryAt()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, transition{from: from, to: to, at: at})
}

func (l *listener) got() []transition {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]transition(nil), l.events...)
}

func (g *Guard) flushed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.flushing
}
