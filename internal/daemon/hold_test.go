package daemon_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/testwait"
)

// Issue #11: a held contact kept its message in flight, and with it a MAX_ACK_PENDING slot,
// for as long as the breaker stayed open. Held past the hold limit (by default the longer of
// 2 × ACK_WAIT and the open timeout: 2s here) it is handed back to JetStream without a failure
// and completes once the provider recovers.
func TestContactHeldPastTheHoldLimitIsHandedBackWithoutAFailure(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	cfg.Topology.AckWait = time.Second
	cfg.Topology.MaxDeliver = 1 // a single counted failure would dead-letter the contact
	cfg.Breaker.FailureThreshold = 1
	enqueue(t, js, cfg, 1)

	var mu sync.Mutex
	down := true
	isDown := func() error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return unavailable503()
		}
		return nil
	}
	tts := &scriptedTTS{respond: func(int) error { return isDown() }, probe: isDown}
	var llm calls
	out := &syncBuffer{}
	startWorker(t, cfg, withTTS(&llm, tts), out)

	testwait.Eventually(t, 30*time.Second, "the contact handed back", func() (bool, string) {
		return strings.Contains(out.String(), "Handing Contact 0 back to the queue while ElevenLabs is down; next try in"), tail(out.String(), 2000)
	})
	ctx := context.Background()
	cons, err := queue.EnsureConsumer(ctx, js, cfg.Topology)
	if err != nil {
		t.Fatal(err)
	}
	// While the provider is down the message waits in the stream, not in the worker.
	testwait.Eventually(t, 10*time.Second, "no message in flight while the provider is down", func() (bool, string) {
		info, err := cons.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		return info.NumAckPending == 0 && info.NumPending == 1, fmt.Sprintf("%+v", info)
	})
	checkpoints, err := queue.EnsureCheckpoints(ctx, js, cfg.Topology)
	if err != nil {
		t.Fatal(err)
	}
	cp, ok, err := checkpoints.Get(ctx, "c-0000")
	if err != nil || !ok {
		t.Fatalf("checkpoint: %v, found %v", err, ok)
	}
	if cp.Failures != 0 || cp.Owner != "" || cp.Script == nil {
		t.Fatalf("checkpoint after the hand-back: %d failures, owner %q, script %v; want no failure, no owner, the script kept",
			cp.Failures, cp.Owner, cp.Script != nil)
	}
	if st := statusOf(t, js, cfg); st.DeadLettered != 0 {
		t.Fatalf("dead-lettered while the provider is down: %+v", st)
	}

	mu.Lock()
	down = false
	mu.Unlock()
	testwait.Eventually(t, 30*time.Second, "the contact completed after recovery", completedAndIdle(t, js, cfg, 1))
	if st := statusOf(t, js, cfg); st.DeadLettered != 0 {
		t.Fatalf("status %+v", st)
	}
	if got := llm.get("c-0000"); got != 1 {
		t.Fatalf("LLM called %d times; the handed-back contact must resume from its checkpoint", got)
	}
}
