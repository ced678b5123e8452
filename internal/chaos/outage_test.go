package chaos

import (
	"fmt"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/testwait"
)

// TestTTSOutage takes text-to-speech down (503 to calls and health probes) while contacts
// flow. Breakers open, contacts wait with their scripts checkpointed, and when the provider
// returns the queue drains without paying the LLM again. The fleet shares one breaker per
// provider: the calls sent into the outage all start at its onset, before the first trip
// opens the fleet (at most a bulkhead's window and one more a worker), one probe a probe
// interval runs fleet-wide, and every
// worker resumes within about one probe interval of the recovery. The full suite runs it
// with 1 and 3 workers, side by side.
func TestTTSOutage(t *testing.T) {
	for _, workers := range pick([]int{2}, []int{1, 3}) {
		t.Run(fmt.Sprintf("%d-workers", workers), func(t *testing.T) { ttsOutage(t, workers) })
	}
}

// Chaos workers' settings (see workerEnv and the defaults): WORKER_CONCURRENCY, and the probe
// interval while open (HEALTH_CHECK_OPEN_INTERVAL, capped by BREAKER_OPEN_TIMEOUT).
const (
	workerConcurrency = 4
	openProbeEvery    = time.Second
)

func ttsOutage(t *testing.T, workers int) {
	n, outage := pick(30, 300), pick(5*time.Second, 30*time.Second)
	s := NewScenario(t, fmt.Sprintf("tts-outage-%d-workers", workers), binaries(t), workers)
	s.Faults[StepLLM].SetLatency(50*time.Millisecond, 150*time.Millisecond)
	s.Faults[StepTTS].SetLatency(100*time.Millisecond, 300*time.Millisecond)
	s.StartWorkers()
	s.Enqueue(s.NewContacts(n))
	if !testwait.Until(time.Minute, 100*time.Millisecond, func() bool { return s.Completed() >= n/5 }) {
		t.Fatalf("only %d contacts completed before the outage", s.Completed())
	}
	down := time.Now()
	s.Faults[StepTTS].SetOutage(Outage(StepTTS))
	time.Sleep(outage) // the fault's duration: the scenario is that long an outage
	s.Faults[StepTTS].ClearOutage()
	up := time.Now()
	s.FaultEnded(up)
	s.WaitDrained(pick(60*time.Second, 120*time.Second))

	calls, probes := s.Ledger.During(StepTTS, down, up)
	late, _ := s.Ledger.During(StepTTS, down.Add(2*time.Second), up)
	resumed := s.Ledger.FirstOKAfter(StepTTS, up)
	var slowest time.Duration
	for _, at := range resumed {
		slowest = max(slowest, at.Sub(up))
	}
	s.Note("%d worker(s), %s TTS outage: %d TTS calls (%d of them after its first 2s) and %d health probes sent into it fleet-wide; %d of %d workers resumed, the last %s after the recovery",
		workers, outage, calls, late, probes, len(resumed), workers, slowest.Round(10*time.Millisecond))
	// Replicas count failures on their own (sharing counts would be a KV write per failure):
	// at the onset each may have as many calls in flight as its bulkhead's window (at most
	// WORKER_CONCURRENCY after healthy traffic) and start one more before its third failure
	// trips it or the fleet's open reaches it; after that, none.
	if limit := (workerConcurrency + 1) * workers; calls > limit {
		t.Errorf("%d TTS calls sent into the outage; want at most %d (a bulkhead's window and one more a worker)", calls, limit)
	}
	if late > 0 {
		t.Errorf("%d TTS calls sent into the outage after its first 2s; want none: the fleet's breaker was open", late)
	}
	// One probe a probe interval fleet-wide; the lease's expiry is whole seconds, so allow
	// one interval of slack at each end.
	if limit := int(outage/openProbeEvery) + 2; probes > limit {
		t.Errorf("%d health probes during a %s outage; want at most %d (one a %s fleet-wide)", probes, outage, limit, openProbeEvery)
	}
	if len(resumed) != workers {
		t.Errorf("%d of %d workers made a TTS call after the recovery", len(resumed), workers)
	}
	s.Finish()
}
