package alert

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/resilience"
	"github.com/callagent/resilience/internal/testwait"
)

// sink collects events.
type sink struct {
	mu  sync.Mutex
	evs []Event
	err error
}

func (s *sink) Emit(ev Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, ev)
	return s.err
}

func (s *sink) kinds() []Kind {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Kind
	for _, e := range s.evs {
		out = append(out, e.Kind)
	}
	return out
}

func (s *sink) last() Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evs[len(s.evs)-1]
}

func sameKinds(a, b []Kind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBreakerAlertsTransitions(t *testing.T) {
	t.Parallel()
	mock := newMock()
	s := &sink{}
	b := NewBreakerAlerts(s, BreakerAlertsOptions{ServiceDownAfter: 5 * time.Minute, Clock: mock})
	defer b.Close()
	const p = "ElevenLabs"
	at := mock.Now()

	b.BreakerStateChanged(p, resilience.StateClosed, resilience.StateOpen, at)
	b.BreakerStateChanged(p, resilience.StateOpen, resilience.StateOpen, at) // the hook fired twice
	if got := s.kinds(); !sameKinds(got, []Kind{KindBreakerOpened}) {
		t.Fatalf("after open, open again: %v", got)
	}
	mock.Add(30 * time.Second)
	b.BreakerStateChanged(p, resilience.StateOpen, resilience.StateHalfOpen, mock.Now())
	b.BreakerStateChanged(p, resilience.StateHalfOpen, resilience.StateOpen, mock.Now())
	if got := s.kinds(); !sameKinds(got, []Kind{KindBreakerOpened, KindBreakerOpened}) {
		t.Fatalf("after a failed probe: %v", got)
	}
	if !strings.Contains(s.last().Message, "again for ElevenLabs after a failed probe (down for 30s)") {
		t.Errorf("re-open message: %q", s.last().Message)
	}

	mock.Add(4*time.Minute + 29*time.Second)
	if len(s.kinds()) != 2 {
		t.Fatalf("service_down before its time: %v", s.kinds())
	}
	mock.Add(time.Second) // 5m after the first OPEN, though it re-opened since
	if got := s.kinds(); !sameKinds(got, []Kind{KindBreakerOpened, KindBreakerOpened, KindServiceDown}) {
		t.Fatalf("after 5m open: %v", got)
	}
	if ev := s.last(); ev.Provider != p || !strings.Contains(ev.Message, "down for 5m0s") {
		t.Errorf("service_down event: %+v", ev)
	}
	mock.Add(time.Hour)
	if len(s.kinds()) != 3 {
		t.Fatalf("service_down repeated: %v", s.kinds())
	}

	b.BreakerStateChanged(p, resilience.StateOpen, resilience.StateClosed, mock.Now())
	b.BreakerStateChanged(p, resilience.StateOpen, resilience.StateClosed, mock.Now()) // twice
	if got := s.kinds(); len(got) != 4 || got[3] != KindBreakerClosed {
		t.Fatalf("after close: %v", got)
	}
	if !strings.Contains(s.last().Message, "after 1h5m0s") {
		t.Errorf("closed message: %q", s.last().Message)
	}

	// A new outage that ends before the threshold sends no service_down, even later.
	b.BreakerStateChanged(p, resilience.StateClosed, resilience.StateOpen, mock.Now())
	mock.Add(time.Minute)
	b.BreakerStateChanged(p, resilience.StateOpen, resilience.StateClosed, mock.Now())
	mock.Add(time.Hour)
	if got := s.kinds(); !sameKinds(got[4:], []Kind{KindBreakerOpened, KindBreakerClosed}) {
		t.Fatalf("short outage: %v", got)
	}
	// CLOSED→HALF_OPEN (a Reset racing the open timer) is no outage.
	b.BreakerStateChanged(p, resilience.StateClosed, resilience.StateHalfOpen, mock.Now())
	if len(s.kinds()) != 6 {
		t.Fatalf("closed→half-open emitted: %v", s.kinds())
	}
}

func TestBreakerAlertsCloseStopsTimers(t *testing.T) {
	t.Parallel()
	mock := newMock()
	s := &sink{}
	b := NewBreakerAlerts(s, BreakerAlertsOptions{ServiceDownAfter: time.Minute, Clock: mock})
	b.BreakerStateChanged("LLM", resilience.StateClosed, resilience.StateOpen, mock.Now())
	b.Close()
	b.Close()
	mock.Add(time.Hour)
	b.BreakerStateChanged("LLM", resilience.StateOpen, resilience.StateClosed, mock.Now())
	if got := s.kinds(); !sameKinds(got, []Kind{KindBreakerOpened}) {
		t.Fatalf("after Close: %v", got)
	}
}

func TestBreakerAlertsDisabledServiceDownAndSinkErrors(t *testing.T) {
	t.Parallel()
	mock := newMock()
	s := &sink{err: ErrQueueFull}
	log, logs := newLogger()
	b := NewBreakerAlerts(s, BreakerAlertsOptions{ServiceDownAfter: -1, Clock: mock, Logger: log})
	defer b.Close()
	b.BreakerStateChanged("LLM", resilience.StateClosed, resilience.StateOpen, mock.Now())
	mock.Add(24 * time.Hour)
	if got := s.kinds(); !sameKinds(got, []Kind{KindBreakerOpened}) {
		t.Fatalf("with service_down disabled: %v", got)
	}
	if logs.count("Could not emit breaker_opened alert") != 1 {
		t.Errorf("a refused event was not logged: %s", logs.String())
	}
}

// TestBreakerAlertsFromRealGuard wires the listener to a real Guard: three 503s open it
// (one breaker_opened), a Reset closes it (one breaker_closed).
func TestBreakerAlertsFromRealGuard(t *testing.T) {
	t.Parallel()
	mock := newMock()
	s := &sink{}
	b := NewBreakerAlerts(s, BreakerAlertsOptions{Clock: mock})
	defer b.Close()
	g := resilience.NewGuard("ElevenLabs", resilience.GuardOptions{Clock: mock, Listener: b})
	fail := func(ctx context.Context) error {
		return fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 503, Message: "Service temporarily unavailable"})
	}
	for range 5 {
		err := g.Do(context.Background(), fail)
		if err == nil {
			t.Fatal("Do succeeded")
		}
		if errors.Is(err, resilience.ErrBreakerOpen) {
			continue
		}
	}
	testwait.True(t, 10*time.Second, "breaker_opened", func() bool { return sameKinds(s.kinds(), []Kind{KindBreakerOpened}) })
	g.Reset()
	testwait.True(t, 10*time.Second, "breaker_closed", func() bool {
		return sameKinds(s.kinds(), []Kind{KindBreakerOpened, KindBreakerClosed})
	})
}

func TestFallbackAlerts(t *testing.T) {
	t.Parallel()
	s := &sink{}
	f := NewFallbackAlerts(s, nil)
	f.StepProviderChanged("tts", "ElevenLabs", "Backup TTS", "ElevenLabs: circuit OPEN")
	f.StepProviderChanged("tts", "", "Backup TTS", "ElevenLabs: bulkhead full")
	f.StepProviderChanged("tts", "Backup TTS", "Third TTS", "ElevenLabs: circuit OPEN; Backup TTS: quota_exceeded")
	f.StepProviderChanged("tts", "Third TTS", "ElevenLabs", "recovered")
	if got := s.kinds(); !sameKinds(got, []Kind{KindFallbackActivated, KindFallbackActivated, KindFallbackActivated}) {
		t.Fatalf("kinds: %v", got)
	}
	for _, ev := range s.evs {
		if ev.Provider != "ElevenLabs" {
			t.Errorf("primary = %q, want ElevenLabs: %+v", ev.Provider, ev)
		}
	}
	if want := "Third TTS took over from ElevenLabs: step tts (ElevenLabs: circuit OPEN; Backup TTS: quota_exceeded)"; s.last().Message != want {
		t.Errorf("message %q, want %q", s.last().Message, want)
	}
}
