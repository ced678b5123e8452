package alert

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/resilience"
	"github.com/callagent/resilience/internal/testwait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.IgnoreLibraryLeaks()...) }

// jsFor starts an in-process JetStream server and connects to it.
func jsFor(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	return js
}

// logBuffer is a logger whose lines the test can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) count(substr string) int { return strings.Count(b.String(), substr) }

func newLogger() (*logrus.Logger, *logBuffer) {
	b := &logBuffer{}
	l := logrus.New()
	l.SetOutput(b)
	l.SetLevel(logrus.DebugLevel)
	l.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true, DisableColors: true})
	return l, b
}

// recorder is a Notifier that keeps what it was sent and fails on demand.
type recorder struct {
	mu    sync.Mutex
	sent  []Notification
	calls int
	fail  func(n Notification) (bool, error) // nil: accept
}

func (r *recorder) Notify(ctx context.Context, n Notification) (bool, error) {
	r.mu.Lock()
	r.calls++
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		if retry, err := fail(n); err != nil {
			return retry, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, n)
	return false, nil
}

func (r *recorder) setFail(f func(n Notification) (bool, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = f
}

func (r *recorder) notifications() []Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Notification(nil), r.sent...)
}

func (r *recorder) ofType(t NotificationType) []Notification {
	var out []Notification
	for _, n := range r.notifications() {
		if n.Type == t {
			out = append(out, n)
		}
	}
	return out
}

func down503(channel string) (bool, error) {
	return true, fault.Classify(fault.Facts{Provider: channel, Status: 503, Message: channel + " answered HTTP 503"})
}

// advanceUntil moves the mock clock forward by step until cond holds (each step gives the
// dispatcher's maintenance loop a moment to run), failing after 10s of real time.
func advanceUntil(t *testing.T, mock *clock.Mock, step time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		mock.Add(step)
		time.Sleep(5 * time.Millisecond)
	}
}

// testDispatcher runs a dispatcher until the test ends.
type testDispatcher struct {
	*Dispatcher
	stop func()
}

// fastOptions are dispatcher options with short delays for tests.
func fastOptions(mock *clock.Mock, log *logrus.Logger, channels ...Channel) DispatcherOptions {
	return DispatcherOptions{
		Channels:       channels,
		SummaryWindow:  time.Minute,
		ReporterTTL:    15 * time.Minute,
		Retry:          resilience.RetryPolicy{MaxAttempts: 2, InitialDelay: 10 * time.Millisecond, Multiplier: 2, RetryAfterCap: 50 * time.Millisecond},
		Breaker:        resilience.BreakerSettings{FailureThreshold: 3, SuccessThreshold: 1, OpenTimeout: 200 * time.Millisecond},
		AttemptTimeout: 2 * time.Second,
		RedeliverMin:   50 * time.Millisecond,
		RedeliverMax:   200 * time.Millisecond,
		Clock:          mock,
		Logger:         log,
	}
}

func startDispatcher(t *testing.T, js jetstream.JetStream, o DispatcherOptions) *testDispatcher {
	t.Helper()
	d, err := NewDispatcher(js, o)
	if err != nil {
		t.Fatalf("NewDispatcher: %v", err)
	}
	run := alerttest.Start(t, d.Run)
	stop := sync.OnceFunc(func() {
		if err := run(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(stop)
	// Run ensures the consumers first; wait until they exist so no notification is missed
	// by a channel consumer that starts with new messages.
	testwait.True(t, 10*time.Second, "the dispatcher's consumers", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, name := range append([]string{o.Topology.WithDefaults().Consumer}, channelConsumers(o)...) {
			if _, err := js.Consumer(ctx, o.Topology.WithDefaults().Stream, name); err != nil {
				return false
			}
		}
		return true
	})
	return &testDispatcher{Dispatcher: d, stop: stop}
}

func channelConsumers(o DispatcherOptions) []string {
	var out []string
	for _, ch := range o.Channels {
		out = append(out, o.Topology.WithDefaults().channelConsumerName(ch.Name))
	}
	return out
}

// newEmitter returns an emitter running until the test ends.
func newEmitter(t *testing.T, js jetstream.JetStream, source string, c clock.Clock, log *logrus.Logger) *Emitter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Ensure(ctx, js, Topology{}); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	e := NewEmitter(js, EmitterOptions{Source: source, Clock: c, Logger: log})
	stop := alerttest.Start(t, e.Run)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return e
}

func mustEmit(t *testing.T, e *Emitter, ev Event) {
	t.Helper()
	if err := e.Emit(ev); err != nil {
		t.Fatalf("Emit(%s): %v", ev.Kind, err)
	}
}

func newMock() *clock.Mock {
	m := clock.NewMock()
	m.Set(time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC))
	return m
}

func describe(ns []Notification) string {
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintf(&b, "\n  %s %s %q", n.Type, n.Kind, n.Title)
	}
	return b.String()
}
