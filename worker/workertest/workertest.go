// Package workertest runs the call worker inside a test, against an in-process JetStream
// server, the way riverqueue's rivertest lets a user's tests run River: start a Harness,
// enqueue contacts, wait until the worker is idle, then check what completed and what was
// dead-lettered.
//
//	h := workertest.Start(t, workertest.Options{})
//	h.Enqueue(workertest.Contact{ID: "c-1", Phone: "+14155550100"})
//	h.WaitIdle()
//	if !h.Completed("c-1") { t.Error("c-1 did not complete") }
//
// The steps are plain functions of Options (nil ones are simulated providers that always
// answer), so a test decides what the LLM and the text-to-speech say, and makes them fail
// with ProviderError. Everything a Harness starts (server, connection, worker) stops when the
// test ends; a package that checks for leaked goroutines with goleak passes LeakOptions.
package workertest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/daemon"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/provider/sim"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/testwait"
)

// Provider names the worker gives the two steps in its logs, alerts and dead letters.
const (
	LLM = "LLM"
	TTS = "TTS"
)

// Contact is a contact to call: ID identifies it (the message id and checkpoint key), Phone
// is the E.164 number, Name is optional.
type Contact struct {
	ID    string
	Name  string
	Phone string
}

// Options configure a Harness. The zero value runs a worker with simulated providers that
// always answer.
type Options struct {
	// WriteScript is the LLM step: the script said to the contact. Nil uses a simulated LLM.
	WriteScript func(ctx context.Context, c Contact) (script string, err error)
	// Synthesize is the text-to-speech step: the audio of the script. Nil uses a simulated
	// text-to-speech.
	Synthesize func(ctx context.Context, c Contact, script string) (audio []byte, err error)
	// Concurrency is how many contacts the worker handles at once; 0 means 4.
	Concurrency int
	// MaxDeliveries is how many times a contact is delivered before it is dead-lettered; 0
	// keeps the worker's default (5).
	MaxDeliveries int
	// Logs receives the worker's log lines; nil discards them.
	Logs io.Writer
	// Timeout bounds WaitIdle and the worker's start and stop; 0 means 30s.
	Timeout time.Duration
}

// DeadLetter is a contact the worker wrote off.
type DeadLetter struct {
	ContactID string
	// Reason is the error category: a fault kind such as quota_exceeded, or max_deliveries,
	// invalid_payload.
	Reason    string
	Provider  string
	LastError string
	Attempts  int
}

// ProviderError is the error of a provider that answered with the HTTP status, as the
// worker classifies it: 429 and 5xx are transient (retried, and they open the provider's
// breaker), 402 is an exhausted quota and 400 a bad request (dead-lettered at once).
func ProviderError(provider string, status int) error {
	return fault.Classify(fault.Facts{Provider: provider, Status: status, Message: fmt.Sprintf("HTTP %d", status)})
}

// LeakOptions are the goleak options for goroutines the NATS client library can leave
// behind after a connection closes; pass them to goleak.VerifyTestMain in a package that
// uses a Harness.
func LeakOptions() []goleak.Option { return natstest.IgnoreLibraryLeaks() }

// Harness is a running worker and its JetStream server. Its methods must be called from
// the test's goroutine.
type Harness struct {
	t       testing.TB
	srv     *natsembed.Server
	js      jetstream.JetStream
	cfg     config.Config
	timeout time.Duration
	ids     map[string]bool

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// Start starts a JetStream server on a free loopback port with its store in a temporary
// directory, and a worker consuming from it; it returns once the worker consumes, and
// stops both when the test ends.
func Start(t testing.TB, opts Options) *Harness {
	t.Helper()
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Logs == nil {
		opts.Logs = io.Discard
	}
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	h := &Harness{t: t, srv: srv, js: js, cfg: testConfig(srv, opts), timeout: opts.Timeout,
		ids: map[string]bool{}, done: make(chan error, 1)}

	log := logrus.New()
	log.Out = opts.Logs
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	ready := make(chan struct{})
	go func() {
		h.done <- daemon.Run(ctx, daemon.Options{Config: h.cfg, Logger: log, Providers: providers(opts),
			Ready: func(string) { close(ready) }})
	}()
	t.Cleanup(h.Stop)
	select {
	case <-ready:
	case err := <-h.done:
		h.stopOnce.Do(cancel)
		t.Fatalf("workertest: the worker stopped before it was ready: %v", err)
	case <-time.After(opts.Timeout):
		t.Fatalf("workertest: the worker is not ready after %s", opts.Timeout)
	}
	return h
}

// testConfig is the worker's default configuration against srv, with the timings shortened
// so that retries and breakers play out within a test.
func testConfig(srv *natsembed.Server, opts Options) config.Config {
	cfg := config.Defaults()
	cfg.NATS.URL = srv.ClientURL()
	cfg.Worker.ID = "workertest"
	cfg.Worker.Concurrency = 4
	if opts.Concurrency > 0 {
		cfg.Worker.Concurrency = opts.Concurrency
	}
	if opts.MaxDeliveries > 0 {
		cfg.Topology.MaxDeliver = opts.MaxDeliveries
	}
	cfg.Worker.ShutdownGrace = 5 * time.Second
	cfg.Topology.AckWait = 5 * time.Second
	cfg.Retry.InitialDelay = 5 * time.Millisecond
	cfg.Breaker.OpenTimeout = 200 * time.Millisecond
	cfg.Health.Interval = 50 * time.Millisecond
	cfg.Health.Timeout = 50 * time.Millisecond
	cfg.Log.File = ""
	cfg.Metrics.Addr = "" // no fixed port: tests run in parallel
	return cfg
}

// providers are the worker's steps: the functions of opts, or simulated providers.
func providers(opts Options) *daemon.Providers {
	o := sim.Options{Scenario: sim.Healthy}
	var llm call.ScriptWriter = sim.NewLLM(o)
	if opts.WriteScript != nil {
		llm = scriptFunc(opts.WriteScript)
	}
	var tts call.Synthesizer = sim.NewTTS(o)
	if opts.Synthesize != nil {
		tts = synthFunc(opts.Synthesize)
	}
	return &daemon.Providers{
		LLM: []daemon.Provider[call.ScriptWriter]{{Name: LLM, Impl: llm, Probe: alwaysUp{}}},
		TTS: []daemon.Provider[call.Synthesizer]{{Name: TTS, Impl: tts, Probe: alwaysUp{}}},
	}
}

type scriptFunc func(context.Context, Contact) (string, error)

func (f scriptFunc) WriteScript(ctx context.Context, c contact.Contact) (call.Script, error) {
	text, err := f(ctx, Contact{ID: c.ID, Name: c.Name, Phone: c.Phone})
	return call.Script{Text: text}, err
}

type synthFunc func(context.Context, Contact, string) ([]byte, error)

func (f synthFunc) Synthesize(ctx context.Context, c contact.Contact, script string) (call.Audio, error) {
	data, err := f(ctx, Contact{ID: c.ID, Name: c.Name, Phone: c.Phone}, script)
	return call.Audio{Data: data, Format: "mp3"}, err
}

// alwaysUp is the health probe of a step given as a function: the breaker closes again as
// soon as its open timeout has passed and a call succeeds.
type alwaysUp struct{}

func (alwaysUp) Probe(context.Context) error { return nil }

// URL is the NATS client URL of the server, for a test that publishes or reads itself.
func (h *Harness) URL() string { return h.srv.ClientURL() }

// Enqueue publishes the contacts to the worker's stream, as the publisher does.
func (h *Harness) Enqueue(contacts ...Contact) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	if _, err := queue.EnsureContactsStream(ctx, h.js, h.cfg.Topology); err != nil {
		h.t.Fatalf("workertest: contacts stream: %v", err)
	}
	enq := queue.NewEnqueuer(h.js, h.cfg.Topology.ContactsSubject, 64)
	for _, c := range contacts {
		if err := enq.Add(ctx, contact.Contact{ID: c.ID, Name: c.Name, Phone: c.Phone}); err != nil {
			h.t.Fatalf("workertest: enqueue %s: %v", c.ID, err)
		}
		h.ids[c.ID] = true
	}
	if _, err := enq.Flush(ctx); err != nil {
		h.t.Fatalf("workertest: enqueue: %v", err)
	}
}

// WaitIdle waits until every enqueued contact completed or was dead-lettered and nothing is
// waiting or in progress; it fails the test after Options.Timeout.
func (h *Harness) WaitIdle() {
	h.t.Helper()
	testwait.Eventually(h.t, h.timeout, "the worker to settle every contact", func() (bool, string) {
		st, err := h.status()
		if err != nil {
			return false, err.Error()
		}
		return st.Idle() && st.Completed+st.DeadLettered >= uint64(len(h.ids)), fmt.Sprintf("%+v", st)
	})
}

func (h *Harness) status() (queue.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	return queue.ReadStatus(ctx, h.js, h.cfg.Topology)
}

// Completed reports whether the worker recorded the contact as completed.
func (h *Harness) Completed(id string) bool {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	cps, err := queue.EnsureCheckpoints(ctx, h.js, h.cfg.Topology)
	if err != nil {
		h.t.Fatalf("workertest: checkpoints: %v", err)
	}
	done, err := cps.IsCompleted(ctx, id)
	if err != nil {
		h.t.Fatalf("workertest: completion of %s: %v", id, err)
	}
	return done
}

// DeadLetters are the contacts written off so far, oldest first.
func (h *Harness) DeadLetters() []DeadLetter {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	var dls []DeadLetter
	err := queue.EachDeadLetter(ctx, h.js, h.cfg.Topology, queue.DeadLetterFilter{}, func(dl queue.DeadLetter) error {
		dls = append(dls, DeadLetter{ContactID: dl.ContactID, Reason: dl.Reason, Provider: dl.Provider,
			LastError: dl.LastError, Attempts: dl.Attempts})
		return nil
	})
	if err != nil {
		h.t.Fatalf("workertest: dead letters: %v", err)
	}
	return dls
}

// Stop stops the worker gracefully and waits for it; the test fails if the worker stopped
// with an error. Start arranges the call when the test ends; calling it earlier (to check
// what a stop leaves behind) is allowed, and later calls do nothing.
func (h *Harness) Stop() {
	h.stopOnce.Do(func() {
		h.cancel()
		select {
		case err := <-h.done:
			if err != nil {
				h.t.Errorf("workertest: the worker stopped with an error: %v", err)
			}
		case <-time.After(h.timeout):
			h.t.Errorf("workertest: the worker did not stop within %s", h.timeout)
		}
	})
}
