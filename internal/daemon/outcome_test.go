package daemon_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/daemon"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/provider/sim"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/testwait"
)

// scriptedTTS answers each call with respond(call number, counting from 1) and its probe with
// probe(); it records when each call happened.
type scriptedTTS struct {
	mu      sync.Mutex
	n       int
	at      []time.Time
	respond func(n int) error
	probe   func() error
}

func (s *scriptedTTS) Synthesize(ctx context.Context, c contact.Contact, script string) (call.Audio, error) {
	s.mu.Lock()
	s.n++
	n := s.n
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
	if err := s.respond(n); err != nil {
		return call.Audio{}, err
	}
	return call.Audio{Data: []byte("audio:" + c.ID), Format: "mp3_44100_128"}, nil
}

func (s *scriptedTTS) Probe(context.Context) error {
	if s.probe == nil {
		return nil
	}
	return s.probe()
}

func (s *scriptedTTS) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *scriptedTTS) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.at...)
}

func withTTS(llmCalls *calls, tts *scriptedTTS) *daemon.Providers {
	llm := sim.NewLLM(sim.Options{Scenario: sim.Healthy})
	return &daemon.Providers{
		LLM: []daemon.Provider[call.ScriptWriter]{{Name: "LLM", Impl: countingLLM{llm, llmCalls}, Probe: llm}},
		TTS: []daemon.Provider[call.Synthesizer]{{Name: "ElevenLabs", Impl: tts, Probe: tts}},
	}
}

func unavailable503() error {
	return fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 503, Message: "Service temporarily unavailable"})
}

func deadLetters(t *testing.T, js jetstream.JetStream, cfg config.Config) []queue.DeadLetter {
	t.Helper()
	var out []queue.DeadLetter
	err := queue.EachDeadLetter(context.Background(), js, cfg.Topology, queue.DeadLetterFilter{}, func(dl queue.DeadLetter) error {
		out = append(out, dl)
		return nil
	})
	if err != nil {
		t.Fatalf("read dead letters: %v", err)
	}
	return out
}

// settled is "nothing pending or in flight, and every contact either completed or dead".
func settled(t *testing.T, js jetstream.JetStream, cfg config.Config, n int) func() (bool, string) {
	return func() (bool, string) {
		st := statusOf(t, js, cfg)
		return st.Idle() && st.Completed+st.DeadLettered == uint64(n), fmt.Sprintf("%+v", st)
	}
}

func TestPermanentErrorIsDeadLetteredAtOnceWithItsReason(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	enqueue(t, js, cfg, 1)
	var llm calls
	tts := &scriptedTTS{respond: func(int) error {
		return fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 402, Code: "insufficient_credits", Message: "Insufficient credits"})
	}}
	startWorker(t, cfg, withTTS(&llm, tts), io.Discard)
	testwait.Eventually(t, 30*time.Second, "the contact dead-lettered", settled(t, js, cfg, 1))

	dls := deadLetters(t, js, cfg)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	dl := dls[0]
	if dl.ContactID != "c-0000" || dl.Reason != "quota_exceeded" || dl.Provider != "ElevenLabs" || dl.Attempts != 1 ||
		dl.Worker != "worker-a" || dl.OriginalStream != "CONTACTS" || dl.OriginalSubject != cfg.Topology.ContactsSubject ||
		dl.StreamSeq != 1 || dl.MsgID != "c-0000" || dl.FirstFailure.IsZero() || dl.LastFailure.IsZero() ||
		!strings.Contains(dl.LastError, "Insufficient credits") {
		t.Fatalf("dead letter lacks its reason record: %+v", dl)
	}
	if c, err := contact.Decode(dl.Payload); err != nil || c.ID != "c-0000" {
		t.Fatalf("dead letter payload is not the original contact: %q (%v)", dl.Payload, err)
	}
	if got := tts.calls(); got != 1 {
		t.Fatalf("TTS called %d times: a permanent error must not be retried", got)
	}
}

func TestRetriesExhaustedGoBackToTheQueueUntilTheDeliveryLimit(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	cfg.Retry.MaxAttempts = 2
	cfg.Topology.MaxDeliver = 3
	cfg.Breaker.FailureThreshold = 1000 // keep the breaker out of this row
	enqueue(t, js, cfg, 1)
	var llm calls
	tts := &scriptedTTS{respond: func(int) error { return unavailable503() }}
	startWorker(t, cfg, withTTS(&llm, tts), io.Discard)
	testwait.Eventually(t, 30*time.Second, "the contact dead-lettered after its deliveries", settled(t, js, cfg, 1))

	if got := tts.calls(); got != 6 {
		t.Fatalf("TTS called %d times, want 2 attempts x 3 deliveries = 6", got)
	}
	if got := llm.sum(); got != 1 {
		t.Fatalf("LLM called %d times: redeliveries must resume from the script checkpoint", got)
	}
	dls := deadLetters(t, js, cfg)
	if len(dls) != 1 || dls[0].Reason != "service_unavailable" || dls[0].Attempts != 3 || !dls[0].FirstFailure.Before(dls[0].LastFailure) {
		t.Fatalf("dead letters = %+v, want one service_unavailable after 3 deliveries with first < last failure", dls)
	}
}

func TestOpenBreakerHoldsContactsAndLosesNone(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	cfg.Worker.Concurrency = 4
	const n = 12
	enqueue(t, js, cfg, n)
	var mu sync.Mutex
	recovered := false
	// Every call fails until the provider recovers: with calls in parallel, failing only the
	// first few would let a success land between them and keep the breaker closed.
	tts := &scriptedTTS{
		respond: func(int) error {
			mu.Lock()
			defer mu.Unlock()
			if !recovered {
				return unavailable503()
			}
			return nil
		},
		probe: func() error {
			mu.Lock()
			defer mu.Unlock()
			if !recovered {
				return unavailable503()
			}
			return nil
		},
	}
	var llm calls
	out := &syncBuffer{}
	startWorker(t, cfg, withTTS(&llm, tts), out)
	testwait.Eventually(t, 30*time.Second, "the breaker to open", func() (bool, string) {
		return strings.Contains(out.String(), "Circuit breaker OPENED for ElevenLabs"), ""
	})
	// While open, nothing completes and nothing is dead-lettered.
	if st := statusOf(t, js, cfg); st.DeadLettered != 0 {
		t.Fatalf("dead letters while the breaker is open: %+v", st)
	}
	mu.Lock()
	recovered = true
	mu.Unlock()
	testwait.Eventually(t, 30*time.Second, "every contact completed after recovery", completedAndIdle(t, js, cfg, n))
	if st := statusOf(t, js, cfg); st.DeadLettered != 0 {
		t.Fatalf("contacts dead-lettered by an outage: %+v", st)
	}
	if got := llm.sum(); got != n {
		t.Fatalf("LLM called %d times for %d contacts: held contacts must not pay again", got, n)
	}
}

func TestOpenBreakerDeadLetterPolicySkipsContacts(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	cfg.Worker.OnBreakerOpen = config.OnBreakerOpenDeadLetter
	cfg.Worker.Concurrency = 1
	cfg.Retry.MaxAttempts = 1
	cfg.Topology.MaxDeliver = 1
	cfg.Breaker.FailureThreshold = 1
	cfg.Breaker.OpenTimeout = time.Hour
	const n = 4
	enqueue(t, js, cfg, n)
	var llm calls
	tts := &scriptedTTS{respond: func(int) error { return unavailable503() }, probe: func() error { return unavailable503() }}
	startWorker(t, cfg, withTTS(&llm, tts), io.Discard)
	testwait.Eventually(t, 30*time.Second, "every contact dead-lettered", settled(t, js, cfg, n))
	reasons := map[string]int{}
	for _, dl := range deadLetters(t, js, cfg) {
		reasons[dl.Reason]++
	}
	if reasons["service_unavailable"] != 1 || reasons["circuit_open"] != n-1 {
		t.Fatalf("dead-letter reasons = %v, want 1 service_unavailable and %d circuit_open", reasons, n-1)
	}
	if got := tts.calls(); got != 1 {
		t.Fatalf("TTS called %d times; an open breaker must fail fast", got)
	}
}

func TestRetryAfterBeyondTheCapGoesBackToTheQueueForThatLong(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	cfg.Retry.RetryAfterCap = 50 * time.Millisecond
	const wait = 600 * time.Millisecond
	enqueue(t, js, cfg, 1)
	var llm calls
	tts := &scriptedTTS{respond: func(k int) error {
		if k == 1 {
			return fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 429, Code: "system_busy", RetryAfter: wait, Message: "busy"})
		}
		return nil
	}}
	startWorker(t, cfg, withTTS(&llm, tts), io.Discard)
	testwait.Eventually(t, 30*time.Second, "the contact completed", completedAndIdle(t, js, cfg, 1))
	at := tts.times()
	if len(at) != 2 {
		t.Fatalf("TTS called %d times, want 2", len(at))
	}
	if gap := at[1].Sub(at[0]); gap < wait {
		t.Fatalf("second call %s after the first; the provider asked for %s", gap, wait)
	}
}

func TestDeadLetterPublishFailureKeepsTheOriginal(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	enqueue(t, js, cfg, 1)
	var llm calls
	var mu sync.Mutex
	failing := true
	tts := &scriptedTTS{respond: func(int) error {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 401, Code: "invalid_api_key"})
		}
		return nil
	}}
	out := &syncBuffer{}
	ctx := context.Background()
	// The worker creates the dead-letter stream; remove it once the worker is up, so the
	// dead-letter publish finds no stream.
	startWorker(t, cfg, withTTS(&llm, tts), out)
	if err := js.DeleteStream(ctx, cfg.Topology.DeadLetterStream); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 30*time.Second, "a failed dead-letter publish", func() (bool, string) {
		return strings.Contains(out.String(), "Could not dead-letter"), ""
	})
	if st := statusOf(t, js, cfg); st.Pending+st.InProgress != 1 {
		t.Fatalf("the original was not kept after the dead-letter publish failed: %+v", st)
	}
	if _, err := queue.EnsureDeadLetterStream(ctx, js, cfg.Topology); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 30*time.Second, "the contact dead-lettered once the stream is back", settled(t, js, cfg, 1))
	if dls := deadLetters(t, js, cfg); len(dls) != 1 || dls[0].Reason != "authentication" {
		t.Fatalf("dead letters = %+v", dls)
	}
}

func TestContactNobodyWroteOffIsDeadLetteredFromTheAdvisory(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	cfg.Topology.MaxDeliver = 1
	cfg.Topology.AckWait = time.Second
	// Workers take the contact and die on every delivery the consumer allows.
	exhaustDeliveries(t, js, cfg)
	var llm calls
	tts := &scriptedTTS{respond: func(int) error { return nil }}
	startWorker(t, cfg, withTTS(&llm, tts), io.Discard)
	testwait.Eventually(t, 30*time.Second, "the exhausted contact dead-lettered", settled(t, js, cfg, 1))
	dls := deadLetters(t, js, cfg)
	if len(dls) != 1 || dls[0].Reason != "max_deliveries" || dls[0].ContactID != "c-0000" || dls[0].StreamSeq != 1 ||
		dls[0].Attempts != cfg.Topology.MaxDeliver*queue.DeliveryBackstop {
		t.Fatalf("dead letters = %+v, want one max_deliveries for c-0000", dls)
	}
	if llm.sum() != 0 || tts.calls() != 0 {
		t.Fatalf("providers were called for a contact past its delivery limit")
	}
}

func TestDuplicateOfACompletedContactCallsNothing(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	enqueue(t, js, cfg, 1)
	var llm calls
	tts := &scriptedTTS{respond: func(int) error { return nil }}
	startWorker(t, cfg, withTTS(&llm, tts), io.Discard)
	testwait.Eventually(t, 30*time.Second, "the contact completed", completedAndIdle(t, js, cfg, 1))

	// The same contact again after the dedupe window: a different message id gets through.
	m, err := queue.NewContactMsg(cfg.Topology.ContactsSubject, "c-0000.after-window",
		contact.Contact{ID: "c-0000", Name: "Contact 0", Phone: "+14155550100"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 30*time.Second, "the duplicate acked", func() (bool, string) {
		st := statusOf(t, js, cfg)
		return st.Idle(), fmt.Sprintf("%+v", st)
	})
	if llm.sum() != 1 || tts.calls() != 1 {
		t.Fatalf("a completed contact paid again: LLM %d, TTS %d calls", llm.sum(), tts.calls())
	}
}

func TestReplayAfterATTSFailureResumesWithoutCallingTheLLMAgain(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	enqueue(t, js, cfg, 2)
	var mu sync.Mutex
	keyRevoked := true
	tts := &scriptedTTS{respond: func(int) error {
		mu.Lock()
		defer mu.Unlock()
		if keyRevoked {
			return fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 401, Code: "invalid_api_key", Message: "Invalid API key"})
		}
		return nil
	}}
	var llm calls
	startWorker(t, cfg, withTTS(&llm, tts), io.Discard)
	testwait.Eventually(t, 30*time.Second, "both contacts dead-lettered", settled(t, js, cfg, 2))

	mu.Lock()
	keyRevoked = false // the operator fixed the key
	mu.Unlock()
	for _, dl := range deadLetters(t, js, cfg) {
		if _, err := queue.Replay(context.Background(), js, cfg.Topology, dl); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Eventually(t, 30*time.Second, "replayed contacts completed", func() (bool, string) {
		st := statusOf(t, js, cfg)
		return st.Completed == 2 && st.DeadLettered == 0 && st.Idle(), fmt.Sprintf("%+v", st)
	})
	for _, id := range []string{"c-0000", "c-0001"} {
		if got := llm.get(id); got != 1 {
			t.Errorf("%s: LLM called %d times; the replay must resume from the script checkpoint", id, got)
		}
	}
}

func TestShutdownReleasesDoNotUseUpAContact(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	cfg.Topology.MaxDeliver = 1 // one failure allowed: releases must not count as failures
	cfg.Worker.ShutdownGrace = 0
	enqueue(t, js, cfg, 1)
	slow := sim.Options{Scenario: sim.Healthy, Latency: time.Hour}
	for i := range 2 { // two workers in a row are stopped in the middle of the call
		var llm, tts calls
		out := &syncBuffer{}
		w := startWorker(t, cfg, simProviders(slow, &llm, &tts), out)
		testwait.Eventually(t, 30*time.Second, "the worker inside the LLM call", func() (bool, string) {
			return strings.Contains(out.String(), "Step 1: Generating response with LLM"), out.String()
		})
		w.stop(t)
		if !strings.Contains(out.String(), "Released Contact 0 for redelivery") {
			t.Fatalf("stop %d did not release the contact:\n%s", i+1, out.String())
		}
	}
	var llm, tts calls
	startWorker(t, cfg, simProviders(sim.Options{Scenario: sim.Healthy}, &llm, &tts), io.Discard)
	testwait.Eventually(t, 30*time.Second, "the contact completed", completedAndIdle(t, js, cfg, 1))
	if st := statusOf(t, js, cfg); st.DeadLettered != 0 {
		t.Fatalf("releases at shutdown dead-lettered the contact: %+v", st)
	}
}

func TestTheSweeperWaitsForALiveClaimAndSeesTheContactComplete(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	cfg.Topology.MaxDeliver = 1
	cfg.Topology.AckWait = time.Second
	ctx := context.Background()
	// A worker cut off from NATS held the contact while its deliveries ran out, and holds it still.
	exhaustDeliveries(t, js, cfg)
	checkpoints, err := queue.EnsureCheckpoints(ctx, js, cfg.Topology)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoints.Claim(ctx, "c-0000", "cut-off-worker", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	var llm calls
	out := &syncBuffer{}
	startWorker(t, cfg, withTTS(&llm, &scriptedTTS{respond: func(int) error { return nil }}), out)
	testwait.Eventually(t, 30*time.Second, "the sweeper deferring to the live claim", func() (bool, string) {
		return strings.Contains(out.String(), "used its deliveries but is still claimed"), out.String()
	})
	if st := statusOf(t, js, cfg); st.DeadLettered != 0 {
		t.Fatalf("dead-lettered while another worker held the claim: %+v", st)
	}
	// The cut-off worker reconnects and completes the contact; the sweeper then removes it.
	if err := checkpoints.MarkCompleted(ctx, "c-0000", call.Record{ContactID: "c-0000", Status: "completed"}); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, cfg.Topology.ContactsStream)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 30*time.Second, "the completed contact removed from the stream", func() (bool, string) {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Msgs == 0, fmt.Sprintf("%+v", info)
	})
	if st := statusOf(t, js, cfg); st.DeadLettered != 0 || st.Completed != 1 {
		t.Fatalf("status %+v, want completed 1 and no dead letter", st)
	}
	if llm.sum() != 0 {
		t.Fatal("a provider was called for a contact past its delivery limit")
	}
}

func TestACallLongerThanAckWaitIsNotRedelivered(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfgA, cfgB := testConfig(srv, "worker-a"), testConfig(srv, "worker-b")
	cfgA.Topology.AckWait, cfgB.Topology.AckWait = time.Second, time.Second
	enqueue(t, js, cfgA, 1)
	var llm, tts calls
	slow := sim.Options{Scenario: sim.Healthy, Latency: 2500 * time.Millisecond} // 2.5 x AckWait per step
	outA, outB := &syncBuffer{}, &syncBuffer{}
	startWorker(t, cfgA, simProviders(slow, &llm, &tts), outA)
	startWorker(t, cfgB, simProviders(slow, &llm, &tts), outB)
	testwait.Eventually(t, 60*time.Second, "the slow contact completed", completedAndIdle(t, js, cfgA, 1))
	deliveries := strings.Count(outA.String(), "Processing contact") + strings.Count(outB.String(), "Processing contact")
	if deliveries != 1 {
		t.Fatalf("the contact was delivered %d times: InProgress heartbeats must keep a slow call's message", deliveries)
	}
	if llm.sum() != 1 || tts.sum() != 1 {
		t.Fatalf("LLM %d, TTS %d calls, want 1 each", llm.sum(), tts.sum())
	}
}

// exhaustDeliveries enqueues one contact and takes it on every delivery the consumer allows
// without ever answering, as workers that die on it would: no failure is recorded, and the
// server announces the contact with a MAX_DELIVERIES advisory, kept by the advisory stream.
func exhaustDeliveries(t *testing.T, js jetstream.JetStream, cfg config.Config) {
	t.Helper()
	ctx := context.Background()
	if _, err := queue.EnsureAdvisoryConsumer(ctx, js, cfg.Topology); err != nil {
		t.Fatal(err)
	}
	enqueue(t, js, cfg, 1)
	cons, err := queue.EnsureConsumer(ctx, js, cfg.Topology)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Topology.MaxDeliver * queue.DeliveryBackstop {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for range batch.Messages() {
			got++
		}
		if got != 1 {
			t.Fatalf("delivery %d: fetched %d messages, want 1", i+1, got)
		}
	}
}
