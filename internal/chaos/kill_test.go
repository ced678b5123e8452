package chaos

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestWorkerSIGKILLs kills a random worker every 1–3 s while contacts flow, restarting it
// each time. Contacts of a killed worker come back after AckWait and resume from their
// checkpoints; only the provider calls in flight at a kill may be paid again.
func TestWorkerSIGKILLs(t *testing.T) {
	workers, kills, batch := pick(2, 3), pick(3, 20), pick(20, 60)
	s := NewScenario(t, "worker-sigkill", binaries(t), workers)
	keepCallsInFlight(s)
	s.StartWorkers()
	s.Enqueue(s.NewContacts(batch))
	for range kills {
		time.Sleep(time.Second + rand.N(2*time.Second))
		// Keep the queue busy so that every kill finds work in flight.
		if p, err := s.Pending(); err == nil && p < uint64(batch/2) {
			s.Enqueue(s.NewContacts(batch))
		}
		s.KillWorker(s.Workers[rand.N(len(s.Workers))])
	}
	s.FaultEnded(time.Now())
	s.WaitDrained(pick(60*time.Second, 120*time.Second))
	s.Finish()
}

// keepCallsInFlight slows the providers down, so that kills land in the middle of calls.
func keepCallsInFlight(s *Scenario) {
	s.Faults[StepLLM].SetLatency(150*time.Millisecond, 400*time.Millisecond)
	s.Faults[StepTTS].SetLatency(200*time.Millisecond, 500*time.Millisecond)
	s.Faults[StepCRM].SetLatency(20*time.Millisecond, 100*time.Millisecond)
}
