package chaos

import (
	"testing"
	"time"

	"github.com/callagent/resilience/internal/testwait"
)

// TestTTSOutage takes text-to-speech down (503 to calls and health probes) while contacts
// flow. Breakers open, contacts wait with their scripts checkpointed, and when the provider
// returns the queue drains without paying the LLM again.
func TestTTSOutage(t *testing.T) {
	workers, n, outage := pick(2, 3), pick(30, 300), pick(5*time.Second, 30*time.Second)
	s := NewScenario(t, "tts-outage", binaries(t), workers)
	s.Faults[StepLLM].SetLatency(50*time.Millisecond, 150*time.Millisecond)
	s.Faults[StepTTS].SetLatency(100*time.Millisecond, 300*time.Millisecond)
	s.StartWorkers()
	s.Enqueue(s.NewContacts(n))
	if !testwait.Until(time.Minute, 100*time.Millisecond, func() bool { return s.Completed() >= n/5 }) {
		t.Fatalf("only %d contacts completed before the outage", s.Completed())
	}
	s.Faults[StepTTS].SetOutage(Outage(StepTTS))
	time.Sleep(outage)
	s.Faults[StepTTS].ClearOutage()
	s.FaultEnded(time.Now())
	s.WaitDrained(pick(60*time.Second, 120*time.Second))
	s.Finish()
}
