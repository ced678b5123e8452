package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/provider/providertest"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/testwait"
)

// completedRecord reads a completed contact's record.
func completedRecord(t *testing.T, kvGet func(string) ([]byte, error), id string) call.Record {
	t.Helper()
	b, err := kvGet(id)
	if err != nil {
		t.Fatalf("completed record of %s: %v", id, err)
	}
	var rec call.Record
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// gpt-5 and the o-series refuse max_tokens. When the primary endpoint answers with that
// configuration error, the contact is not at fault: every contact completes on the
// fallback, none is dead-lettered, and the operator gets one alert, not one per contact.
func TestPrimaryLLMConfigurationErrorHandsOverToTheFallback(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	f := newFakes(t)
	fallback := providertest.NewOpenAI(t, providertest.OpenAIOptions{APIKey: llmKey})
	fallback.Forbid(elKey, "+14155550100")
	slack := alerttest.NewRecorder(t)
	cfg := realConfig(srv, f)
	cfg.LLM.FallbackBaseURL = fallback.BaseURL()
	cfg.TTSFallback.Kind = config.TTSFallbackNone // the primary's fake serves only chat here
	cfg.Worker.Concurrency = 1                    // contacts in turn: the first refusal opens the breaker for the rest
	cfg.Breaker.OpenTimeout = time.Minute         // no half-open call during the test
	cfg.Alerts.SlackEnabled, cfg.Alerts.SlackWebhookURL = true, config.Secret(slack.URL+"/services/T000/B000/XXXX")
	cfg.Alerts.SummaryWindow = 200 * time.Millisecond
	const n = 6
	// Every chat call is refused; the primary's health probe (GET /models) still works, as
	// it does for a real key.
	for range 4 * n {
		f.openai.Enqueue(providertest.OpenAIParamError(400, "unsupported_parameter", "invalid_request_error", "max_tokens",
			"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."))
	}
	enqueue(t, js, cfg, n)
	out := &syncBuffer{}
	startRealWorker(t, cfg, out)
	testwait.Eventually(t, 30*time.Second, "every contact completed", completedAndIdle(t, js, cfg, n))

	if st := statusOf(t, js, cfg); st.DeadLettered != 0 {
		t.Fatalf("a configuration error of the primary dead-lettered contacts: %+v", st)
	}
	kv, err := js.KeyValue(context.Background(), cfg.Topology.CheckpointBucket)
	if err != nil {
		t.Fatal(err)
	}
	get := func(id string) ([]byte, error) {
		e, err := kv.Get(context.Background(), queue.CompletedKey(id))
		if err != nil {
			return nil, err
		}
		return e.Value(), nil
	}
	for i := range n {
		id := fmt.Sprintf("c-%04d", i)
		if p := completedRecord(t, get, id).Providers["llm"]; p != "LLM (fallback)" {
			t.Errorf("%s: script written by %q, want the fallback", id, p)
		}
	}
	if got := fallback.Calls(); got != n {
		t.Errorf("fallback called %d times for %d contacts: a script was paid twice or not at all", got, n)
	}
	// The first refusal (not billed) opens the primary's breaker at once: one call, not one
	// per contact, and no retries of a configuration error.
	if got := f.openai.Calls(); got != 1 {
		t.Errorf("primary called %d times for %d contacts, want 1", got, n)
	}

	fallbackAlerts := func() (int, string) {
		n := 0
		for _, r := range slack.Requests() {
			var m struct{ Text string }
			if json.Unmarshal(r.Body, &m) == nil && strings.Contains(m.Text, "LLM (fallback) took over from LLM") {
				n++
			}
		}
		return n, fmt.Sprintf("%d fallback alerts", n)
	}
	testwait.Eventually(t, 30*time.Second, "the fallback alert", func() (bool, string) {
		got, state := fallbackAlerts()
		return got >= 1, state
	})
	if got, _ := fallbackAlerts(); got != 1 {
		t.Errorf("%d fallback alerts for one configuration error, want 1", got)
	}
	// The primary's breaker opened on the first refusal and stays open: healthy probes of a
	// misconfigured provider (every 50 ms here) must not close it and page again.
	breakerAlerts := func() (opened, resolved int) {
		for _, r := range slack.Requests() {
			var m struct{ Text string }
			if json.Unmarshal(r.Body, &m) != nil {
				continue
			}
			opened += b2i(strings.Contains(m.Text, "Circuit breaker OPENED for LLM") && !strings.Contains(m.Text, "RESOLVED"))
			resolved += b2i(strings.Contains(m.Text, "RESOLVED: Circuit breaker OPENED for LLM"))
		}
		return opened, resolved
	}
	testwait.Eventually(t, 30*time.Second, "the primary's breaker alert", func() (bool, string) {
		o, r := breakerAlerts()
		return o >= 1, fmt.Sprintf("opened %d, resolved %d", o, r)
	})
	if o, r := breakerAlerts(); o != 1 || r != 0 {
		t.Errorf("the primary's breaker alert flapped: %d opened, %d resolved", o, r)
	}
	if !strings.Contains(out.String(), "unsupported_parameter") && !strings.Contains(out.String(), "configuration") {
		t.Error("the log does not say the primary refused our settings")
	}
	assertNoKeys(t, "the log", out.String())
}

// An ElevenLabs key scoped to text-to-speech (no models_read) is refused by the health probe
// with 401 missing_permissions. That answer proves ElevenLabs is up: after an outage the
// breaker must close again and every contact complete, with one warning in the log.
func TestScopedElevenLabsKeyRecoversAfterAnOutage(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	f := newFakes(t)
	f.eleven = providertest.NewElevenLabs(t, providertest.ElevenLabsOptions{APIKey: elKey, Permissions: []string{"text_to_speech"}})
	f.eleven.Forbid(llmKey, "+14155550100")
	cfg := realConfig(srv, f)
	cfg.TTSFallback.Kind = config.TTSFallbackNone
	cfg.Worker.Concurrency = 2
	f.eleven.SetFault(providertest.ElevenLabsError(503, "service_unavailable", "Service temporarily unavailable"))
	const n = 4
	enqueue(t, js, cfg, n)
	out := &syncBuffer{}
	startRealWorker(t, cfg, out)
	testwait.Eventually(t, 30*time.Second, "ElevenLabs' breaker opened by the outage", func() (bool, string) {
		return strings.Contains(out.String(), "Circuit breaker OPENED for ElevenLabs"), ""
	})
	outageEnds := time.Now().Add(5 * time.Second)
	for time.Now().Before(outageEnds) {
		if st := statusOf(t, js, cfg); st.DeadLettered != 0 {
			t.Fatalf("the outage dead-lettered contacts: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.eleven.ClearFault()
	testwait.Eventually(t, 30*time.Second, "every contact completed", completedAndIdle(t, js, cfg, n))

	if st := statusOf(t, js, cfg); st.DeadLettered != 0 {
		t.Fatalf("dead letters after recovery: %+v", st)
	}
	if !strings.Contains(out.String(), "Circuit breaker CLOSED for ElevenLabs") {
		t.Error("the breaker did not close after recovery")
	}
	if got := strings.Count(out.String(), "lacks the permission of the probe endpoint"); got != 1 {
		t.Errorf("scoped-key warning logged %d times, want once", got)
	}
	assertNoKeys(t, "the log", out.String())
}

// Without a fallback, a retired model holds the contacts instead of dead-lettering them: the
// settings are wrong, not the contacts. The breaker opens at the first refusal, one real call
// per open timeout tests the settings, and once the provider accepts them every contact
// completes, each script paid once.
func TestConfigurationErrorWithoutFallbackHoldsTheContacts(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	f := newFakes(t)
	cfg := realConfig(srv, f)
	cfg.TTSFallback.Kind = config.TTSFallbackNone
	const n, refusals = 5, 4
	for range refusals {
		f.openai.Enqueue(providertest.OpenAIError(400, "model_decommissioned", "invalid_request_error",
			"The model `llama3-70b-8192` has been decommissioned and is no longer supported."))
	}
	enqueue(t, js, cfg, n)
	out := &syncBuffer{}
	startRealWorker(t, cfg, out)
	testwait.Eventually(t, 30*time.Second, "every contact completed", completedAndIdle(t, js, cfg, n))

	if st := statusOf(t, js, cfg); st.DeadLettered != 0 {
		t.Fatalf("a configuration error dead-lettered contacts: %+v", st)
	}
	if got := f.openai.Calls(); got != refusals+n {
		t.Errorf("chat called %d times, want %d refusals + %d scripts", got, refusals, n)
	}
	if strings.Count(out.String(), "Circuit breaker CLOSED for LLM") != 1 {
		t.Errorf("the LLM breaker closed %d times, want once (after the settings were accepted)",
			strings.Count(out.String(), "Circuit breaker CLOSED for LLM"))
	}
	if !strings.Contains(out.String(), "refused our settings (configuration)") {
		t.Error("the log does not say the provider refused our settings")
	}
	assertNoKeys(t, "the log", out.String())
}
