package sim_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/sim"
)

// fakeClock is a settable clock for the outage window.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var ada = contact.Contact{ID: "c1", Name: "Ada", Phone: "+14155550101", Variables: map[string]string{"topic": "your renewal"}}

func TestLLMWritesAPersonalScript(t *testing.T) {
	s, err := sim.NewLLM(sim.Options{Scenario: sim.Healthy}).WriteScript(context.Background(), ada)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.Text, "Ada") || !strings.Contains(s.Text, "your renewal") || s.CompletionTokens == 0 {
		t.Fatalf("script = %+v", s)
	}
	if strings.Contains(s.Text, ada.Phone) {
		t.Fatal("the script contains the phone number")
	}
}

func TestTTS503OutageStartsAtTheFirstCallAndEnds(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tts := sim.NewTTS(sim.Options{Scenario: sim.TTS503, Outage: 10 * time.Second, Now: clock.Now})
	ctx := context.Background()

	if err := tts.Probe(ctx); err != nil {
		t.Fatalf("probe before any call: %v (the outage starts with the first call)", err)
	}
	for i := 1; i <= 3; i++ {
		_, err := tts.Synthesize(ctx, ada, "hello")
		var se *fault.ServiceError
		if !errors.As(err, &se) || se.Status != 503 || se.Kind != fault.KindUnavailable || se.Provider != "ElevenLabs" ||
			se.Error() != "Service temporarily unavailable" || !fault.IsTransient(err) {
			t.Fatalf("call %d during the outage: %v", i, err)
		}
		clock.Add(time.Second)
	}
	if err := tts.Probe(ctx); fault.KindOf(err) != fault.KindUnavailable {
		t.Fatalf("probe during the outage: %v", err)
	}
	clock.Add(10 * time.Second)
	if err := tts.Probe(ctx); err != nil {
		t.Fatalf("probe after the outage: %v", err)
	}
	a, err := tts.Synthesize(ctx, ada, "hello there")
	if err != nil || len(a.Data) == 0 || a.Format == "" {
		t.Fatalf("call after the outage: %+v, %v", a, err)
	}
}

func TestHealthyScenarioNeverFails(t *testing.T) {
	tts := sim.NewTTS(sim.Options{Scenario: sim.Healthy})
	for range 5 {
		if _, err := tts.Synthesize(context.Background(), ada, "hi"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLatencyHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	llm := sim.NewLLM(sim.Options{Scenario: sim.Healthy, Latency: time.Hour})
	if _, err := llm.WriteScript(ctx, ada); !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteScript with a cancelled context = %v", err)
	}
	tts := sim.NewTTS(sim.Options{Scenario: sim.Healthy, Latency: time.Hour})
	if _, err := tts.Synthesize(ctx, ada, "hi"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Synthesize with a cancelled context = %v", err)
	}
}
