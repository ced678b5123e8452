package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/daemon"
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/provider/sim"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/testwait"
)

// testConfig is the default configuration against srv, with timings shortened for tests.
func testConfig(srv *natsembed.Server, workerID string) config.Config {
	return testConfigAt(srv.ClientURL(), workerID)
}

// testConfigAt is testConfig against the server at url (which may not be up yet).
func testConfigAt(url, workerID string) config.Config {
	cfg := config.Defaults()
	cfg.NATS.URL = url
	cfg.Worker.ID = workerID
	cfg.Worker.ShutdownGrace = 5 * time.Second
	cfg.Topology.AckWait = 5 * time.Second
	cfg.Retry.InitialDelay = 5 * time.Millisecond
	cfg.Breaker.OpenTimeout = 200 * time.Millisecond
	cfg.Health.Interval = 50 * time.Millisecond
	cfg.Health.Timeout = 50 * time.Millisecond
	cfg.Log.File = ""
	cfg.Metrics.Addr = "" // parallel workers in one test process: no fixed port
	return cfg
}

// calls counts provider calls per contact id, so tests can prove nothing ran twice.
type calls struct {
	mu    sync.Mutex
	count map[string]int
	total int
}

func (c *calls) add(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count == nil {
		c.count = map[string]int{}
	}
	c.count[id]++
	c.total++
}

func (c *calls) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count[id]
}

func (c *calls) sum() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

type countingLLM struct {
	inner call.ScriptWriter
	calls *calls
}

func (l countingLLM) WriteScript(ctx context.Context, c contact.Contact) (call.Script, error) {
	s, err := l.inner.WriteScript(ctx, c)
	if err == nil {
		l.calls.add(c.ID)
	}
	return s, err
}

type countingTTS struct {
	inner call.Synthesizer
	calls *calls
}

func (t countingTTS) Synthesize(ctx context.Context, c contact.Contact, script string) (call.Audio, error) {
	a, err := t.inner.Synthesize(ctx, c, script)
	if err == nil {
		t.calls.add(c.ID)
	}
	return a, err
}

func simProviders(o sim.Options, llmCalls, ttsCalls *calls) *daemon.Providers {
	llm, tts := sim.NewLLM(o), sim.NewTTS(o)
	return &daemon.Providers{
		LLM: []daemon.Provider[call.ScriptWriter]{{Name: "LLM", Impl: countingLLM{llm, llmCalls}, Probe: llm}},
		TTS: []daemon.Provider[call.Synthesizer]{{Name: sim.Provider, Impl: countingTTS{tts, ttsCalls}, Probe: tts}},
	}
}

func quietLogger(w io.Writer) *logrus.Logger {
	l := logrus.New()
	l.Out = w
	l.Level = logrus.InfoLevel
	return l
}

// syncBuffer is a bytes.Buffer safe for a logger writing from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is a worker started in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func startWorker(t *testing.T, cfg config.Config, p *daemon.Providers, out io.Writer) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		r.done <- daemon.Run(ctx, daemon.Options{Config: cfg, Logger: quietLogger(out), Providers: p,
			Ready: func(string) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-r.done:
		t.Fatalf("worker %s stopped before it was ready: %v", cfg.Worker.ID, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("worker %s not ready after 10s", cfg.Worker.ID)
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the worker and waits for Run to return; it fails the test if Run failed.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("worker stopped with error: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop within 30s")
	}
}

func enqueue(t *testing.T, js jetstream.JetStream, cfg config.Config, n int) {
	t.Helper()
	ctx := context.Background()
	if _, err := queue.EnsureContactsStream(ctx, js, cfg.Topology); err != nil {
		t.Fatal(err)
	}
	enq := queue.NewEnqueuer(js, cfg.Topology.ContactsSubject, 64)
	for i := range n {
		c := contact.Contact{ID: fmt.Sprintf("c-%04d", i), Name: fmt.Sprintf("Contact %d", i), Phone: "+14155550100"}
		if err := enq.Add(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	stats, err := enq.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Enqueued != n {
		t.Fatalf("enqueued %d, want %d", stats.Enqueued, n)
	}
}

func statusOf(t *testing.T, js jetstream.JetStream, cfg config.Config) queue.Status {
	t.Helper()
	st, err := queue.ReadStatus(context.Background(), js, cfg.Topology)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return st
}

func completedAndIdle(t *testing.T, js jetstream.JetStream, cfg config.Config, n int) func() (bool, string) {
	return func() (bool, string) {
		st := statusOf(t, js, cfg)
		return st.Completed == uint64(n) && st.Idle(), fmt.Sprintf("%+v", st)
	}
}

func TestTwoWorkersShareTheStreamAndCompleteEachContactOnce(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	const n = 200
	cfgA, cfgB := testConfig(srv, "worker-a"), testConfig(srv, "worker-b")
	cfgA.Worker.Concurrency, cfgB.Worker.Concurrency = 4, 4
	enqueue(t, js, cfgA, n)

	var tts, llmA, llmB calls
	o := sim.Options{Scenario: sim.Healthy, Latency: time.Millisecond}
	pa, pb := simProviders(o, &llmA, &tts), simProviders(o, &llmB, &tts)
	startWorker(t, cfgA, pa, io.Discard)
	startWorker(t, cfgB, pb, io.Discard)

	testwait.Eventually(t, 60*time.Second, "every contact completed", completedAndIdle(t, js, cfgA, n))
	for i := range n {
		id := fmt.Sprintf("c-%04d", i)
		if got := llmA.get(id) + llmB.get(id); got != 1 {
			t.Errorf("%s: LLM called %d times, want 1", id, got)
		}
		if got := tts.get(id); got != 1 {
			t.Errorf("%s: TTS called %d times, want 1", id, got)
		}
	}
	if llmA.sum() == 0 || llmB.sum() == 0 {
		t.Errorf("work was not shared: worker-a did %d, worker-b did %d", llmA.sum(), llmB.sum())
	}
}

func TestShutdownMidRunLosesNothing(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	const n = 60
	cfg := testConfig(srv, "worker-a")
	cfg.Worker.Concurrency = 4
	cfg.Worker.ShutdownGrace = 0 // release in-flight contacts at once
	enqueue(t, js, cfg, n)

	var llm, tts calls
	slow := sim.Options{Scenario: sim.Healthy, Latency: 30 * time.Millisecond}
	a := startWorker(t, cfg, simProviders(slow, &llm, &tts), io.Discard)
	testwait.Eventually(t, 30*time.Second, "some contacts completed", func() (bool, string) {
		st := statusOf(t, js, cfg)
		return st.Completed >= 5, fmt.Sprintf("%+v", st)
	})
	a.stop(t)
	mid := statusOf(t, js, cfg)
	if mid.Completed == n {
		t.Fatalf("worker finished everything before the stop; the test proves nothing: %+v", mid)
	}
	if mid.Pending+mid.InProgress+mid.Completed < n {
		t.Fatalf("contacts lost at shutdown: %+v, want %d in all", mid, n)
	}

	cfgB := testConfig(srv, "worker-b")
	startWorker(t, cfgB, simProviders(sim.Options{Scenario: sim.Healthy}, &llm, &tts), io.Discard)
	testwait.Eventually(t, 60*time.Second, "every contact completed after restart", completedAndIdle(t, js, cfg, n))
	for i := range n {
		if id := fmt.Sprintf("c-%04d", i); tts.get(id) < 1 {
			t.Errorf("%s never completed TTS", id)
		}
	}
}

func TestPoisonMessageIsTerminatedAndTheWorkerCarriesOn(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	enqueue(t, js, cfg, 3)
	for i, body := range []string{`not json`, `{"id":"x1"}`, `{"id":"x2","phone":"+14155550100","extra":1}`} {
		m := nats.NewMsg(cfg.Topology.ContactsSubject)
		m.Data = []byte(body)
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("poison-%d", i))
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	_ = nc
	var llm, tts calls
	out := &syncBuffer{}
	startWorker(t, cfg, simProviders(sim.Options{Scenario: sim.Healthy}, &llm, &tts), out)
	testwait.Eventually(t, 30*time.Second, "valid contacts completed and poison dead-lettered", settled(t, js, cfg, 6))
	if llm.sum() != 3 {
		t.Errorf("LLM calls = %d, want 3 (poison must never reach a provider)", llm.sum())
	}
	dls := deadLetters(t, js, cfg)
	if len(dls) != 3 {
		t.Fatalf("%d dead letters, want the 3 poison messages", len(dls))
	}
	byID := map[string]queue.DeadLetter{}
	for _, dl := range dls {
		if dl.Reason != "invalid_payload" || len(dl.Payload) == 0 || dl.LastError == "" {
			t.Errorf("poison dead letter = %+v", dl)
		}
		byID[dl.MsgID] = dl
	}
	if dl := byID["poison-1"]; !strings.Contains(dl.LastError, "phone") || dl.ContactID != "x1" {
		t.Errorf("the dead letter of a contact without phone does not say so or lacks its id: %+v", dl)
	}
	if dl := byID["poison-0"]; string(dl.Payload) != "not json" {
		t.Errorf("the dead letter does not keep the original payload: %q", dl.Payload)
	}
}

// newContactMsg is the message of a contact with the given id, as the publisher sends it.
func newContactMsg(cfg config.Config, id string) (*nats.Msg, error) {
	return queue.NewContactMsg(cfg.Topology.ContactsSubject, id, contact.Contact{ID: id, Name: "Contact " + id, Phone: "+14155550100"})
}
