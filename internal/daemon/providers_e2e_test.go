package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/daemon"
	"github.com/callagent/resilience/internal/logging"
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/provider/providertest"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/testwait"
)

const (
	llmKey = "sk-test-llm-0123456789abcdef"
	elKey  = "el-test-key-9876543210fedcba"
)

// fakes are the provider APIs on loopback that a worker with real clients talks to.
type fakes struct {
	openai *providertest.OpenAI
	eleven *providertest.ElevenLabs
	crm    *providertest.CRM
}

func newFakes(t *testing.T) fakes {
	f := fakes{
		openai: providertest.NewOpenAI(t, providertest.OpenAIOptions{APIKey: llmKey}),
		eleven: providertest.NewElevenLabs(t, providertest.ElevenLabsOptions{APIKey: elKey}),
		crm:    providertest.NewCRM(t, providertest.CRMOptions{}),
	}
	// No key, and no full phone number, may ever reach a provider it does not belong to.
	f.crm.Forbid(llmKey, elKey, "+14155550100")
	f.eleven.Forbid(llmKey, "+14155550100")
	f.openai.Forbid(elKey, "+14155550100")
	return f
}

// realConfig points a worker's real clients at the fakes, with the OpenAI-compatible speech
// endpoint as the TTS fallback.
func realConfig(srv *natsembed.Server, f fakes) config.Config {
	cfg := testConfig(srv, "worker-real")
	cfg.Sim.Scenario = ""
	cfg.LLM.APIKey, cfg.LLM.BaseURL = llmKey, f.openai.BaseURL()
	cfg.ElevenLabs.APIKey, cfg.ElevenLabs.VoiceID, cfg.ElevenLabs.BaseURL = elKey, "voice-1", f.eleven.URL()
	cfg.TTSFallback.Kind, cfg.TTSFallback.OpenAIBaseURL = config.TTSFallbackOpenAI, f.openai.BaseURL()
	cfg.CRM.WebhookURL, cfg.CRM.HealthURL = config.Secret(f.crm.WebhookURL()), f.crm.HealthURL()
	return cfg
}

// startRealWorker runs the worker with the providers built from cfg, logging through the
// project's logger into out with the same redactor the providers get.
func startRealWorker(t *testing.T, cfg config.Config, out *syncBuffer) {
	t.Helper()
	red := redact.New()
	log, closer, err := logging.New(logging.Options{Console: out, Level: "debug", Redactor: red})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Config: cfg, Logger: log, Redactor: red, Version: "test",
			Ready: func(string) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("worker stopped before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("worker not ready after 10s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop")
		}
	})
}

// completedProviders reads which provider served each step of a completed contact.
func completedProviders(t *testing.T, js jetstream.JetStream, cfg config.Config, id string) map[string]string {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), cfg.Topology.CheckpointBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), queue.CompletedKey(id))
	if err != nil {
		t.Fatalf("completed record of %s: %v", id, err)
	}
	var rec call.Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	return rec.Providers
}

func assertNoKeys(t *testing.T, where, text string) {
	t.Helper()
	for _, k := range []string{llmKey, elKey} {
		if strings.Contains(text, k) {
			t.Errorf("%s shows an API key", where)
		}
	}
}

func TestRealClientsHappyPath(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	f := newFakes(t)
	cfg := realConfig(srv, f)
	enqueue(t, js, cfg, 3)
	out := &syncBuffer{}
	startRealWorker(t, cfg, out)
	testwait.Eventually(t, 30*time.Second, "three calls completed", completedAndIdle(t, js, cfg, 3))

	if got := f.openai.Calls(); got != 3 {
		t.Errorf("chat completions called %d times, want 3", got)
	}
	if got := f.eleven.Calls(); got != 3 {
		t.Errorf("ElevenLabs called %d times, want 3", got)
	}
	recorded := f.crm.Recorded()
	if len(recorded) != 3 {
		t.Fatalf("CRM got %d records, want 3", len(recorded))
	}
	for _, r := range recorded {
		if r.Status != "completed" || r.Script == "" || r.AudioRef == "" ||
			r.Providers["llm"] != "LLM" || r.Providers["tts"] != "ElevenLabs" {
			t.Errorf("CRM record %+v", r)
		}
	}
	if p := completedProviders(t, js, cfg, "c-0000"); p["llm"] != "LLM" || p["tts"] != "ElevenLabs" || p["crm"] != "CRM" {
		t.Errorf("completed record providers = %v", p)
	}
	assertNoKeys(t, "the log", out.String())
}

func TestRealClientsInsufficientQuotaIsDeadLetteredWithoutRetries(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	f := newFakes(t)
	cfg := realConfig(srv, f)
	quota := providertest.OpenAIError(429, "insufficient_quota", "insufficient_quota",
		"You exceeded your current quota, please check your plan and billing details.")
	quota.Header.Set("X-Request-Id", "req_quota42")
	f.openai.Enqueue(quota)
	enqueue(t, js, cfg, 1)
	out := &syncBuffer{}
	startRealWorker(t, cfg, out)
	testwait.Eventually(t, 30*time.Second, "the contact dead-lettered", settled(t, js, cfg, 1))

	dls := deadLetters(t, js, cfg)
	if len(dls) != 1 || dls[0].Reason != "quota_exceeded" || dls[0].Provider != "LLM" || dls[0].Attempts != 1 {
		t.Fatalf("dead letters = %+v", dls)
	}
	if got := f.openai.Calls(); got != 1 {
		t.Fatalf("chat completions called %d times: insufficient_quota must never be retried", got)
	}
	if f.eleven.Calls() != 0 || len(f.crm.Recorded()) != 0 {
		t.Fatal("later steps ran for a contact whose first step failed")
	}
	assertNoKeys(t, "the log", out.String())
	assertNoKeys(t, "the dead letter", dls[0].LastError)
	if !strings.Contains(dls[0].LastError, "request_id req_quota42") {
		t.Errorf("the dead letter lacks the provider's request id (support tickets need it): %q", dls[0].LastError)
	}
}

func TestRealClientsFallBackDuringAnOutageAndReturnAfterRecovery(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	f := newFakes(t)
	cfg := realConfig(srv, f)
	cfg.Worker.Concurrency = 1
	// ElevenLabs answers 503 to everything, health probes included.
	f.eleven.SetFault(providertest.ElevenLabsError(503, "service_unavailable", "Service temporarily unavailable"))
	enqueue(t, js, cfg, 4)
	out := &syncBuffer{}
	startRealWorker(t, cfg, out)
	testwait.Eventually(t, 30*time.Second, "the outage batch completed", completedAndIdle(t, js, cfg, 4))

	if !strings.Contains(out.String(), "Circuit breaker OPENED for ElevenLabs") {
		t.Fatal("the 503 burst did not open ElevenLabs' breaker")
	}
	for i := range 4 {
		id := fmt.Sprintf("c-%04d", i)
		if p := completedProviders(t, js, cfg, id); p["tts"] != "OpenAI TTS" {
			t.Errorf("%s: TTS served by %q during the outage, want the fallback", id, p["tts"])
		}
	}
	if st := statusOf(t, js, cfg); st.DeadLettered != 0 {
		t.Fatalf("the outage dead-lettered contacts although a fallback was there: %+v", st)
	}
	if !strings.Contains(out.String(), "Step tts now served by OpenAI TTS") {
		t.Error("the switch to the fallback was not logged")
	}

	// ElevenLabs recovers: the health check closes its breaker and traffic returns.
	f.eleven.ClearFault()
	testwait.Eventually(t, 30*time.Second, "ElevenLabs' breaker closed by the health check", func() (bool, string) {
		return strings.Contains(out.String(), "Circuit breaker CLOSED for ElevenLabs"), ""
	})
	before := f.eleven.Calls()
	ctx := context.Background()
	for i := 4; i < 6; i++ {
		m, err := newContactMsg(cfg, fmt.Sprintf("c-%04d", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Eventually(t, 30*time.Second, "the recovery batch completed", completedAndIdle(t, js, cfg, 6))
	for _, id := range []string{"c-0004", "c-0005"} {
		if p := completedProviders(t, js, cfg, id); p["tts"] != "ElevenLabs" {
			t.Errorf("%s: TTS served by %q after recovery, want ElevenLabs", id, p["tts"])
		}
	}
	if f.eleven.Calls() <= before {
		t.Error("ElevenLabs got no traffic after it recovered")
	}
	assertNoKeys(t, "the log", out.String())
}
