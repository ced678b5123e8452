package daemon_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/webhook"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/testwait"
)

const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// TestOutageOnThreeWorkersPagesOnceAndResolvesOnce: a 100-contact ElevenLabs outage seen by
// three worker replicas, each with its own breaker, gives every channel exactly one "opened"
// and one "resolved" notification, not one per worker or per contact.
func TestOutageOnThreeWorkersPagesOnceAndResolvesOnce(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	hook, slack := alerttest.NewRecorder(t), alerttest.NewRecorder(t)

	var mu sync.Mutex
	down := true
	tts := &scriptedTTS{
		respond: func(int) error {
			mu.Lock()
			defer mu.Unlock()
			if down {
				return unavailable503()
			}
			return nil
		},
	}
	tts.probe = func() error { return tts.respond(0) }
	const n = 100
	configFor := func(id string) config.Config {
		cfg := testConfig(srv, id)
		cfg.Worker.Concurrency = 4
		cfg.Alerts.WebhookEnabled, cfg.Alerts.WebhookURL, cfg.Alerts.WebhookSecret = true, hook.URL+"/alerts", webhookSecret
		cfg.Alerts.SlackEnabled, cfg.Alerts.SlackWebhookURL = true, config.Secret(slack.URL+"/services/T000/B000/XXXX")
		cfg.Alerts.SummaryWindow = 200 * time.Millisecond
		return cfg
	}
	cfg := configFor("worker-1")
	enqueue(t, js, cfg, n)
	outs := map[string]*syncBuffer{}
	for _, id := range []string{"worker-1", "worker-2", "worker-3"} {
		var llm calls
		outs[id] = &syncBuffer{}
		startWorker(t, configFor(id), withTTS(&llm, tts), outs[id])
	}
	testwait.Eventually(t, 30*time.Second, "every worker's breaker open", func() (bool, string) {
		for id, out := range outs {
			if !strings.Contains(out.String(), "Circuit breaker OPENED for ElevenLabs") {
				return false, id + " not open yet"
			}
		}
		return true, ""
	})
	mu.Lock()
	down = false
	mu.Unlock()
	testwait.Eventually(t, 60*time.Second, "every contact completed", completedAndIdle(t, js, cfg, n))

	// count tells opened from resolved: the webhook by its JSON "type", Slack by its text.
	count := func(rec *alerttest.Recorder, isWebhook bool) func() (bool, string) {
		return func() (bool, string) {
			opened, resolved := 0, 0
			for _, r := range rec.Requests() {
				if !r.Accepted() {
					continue
				}
				if isWebhook {
					var ev struct {
						Data struct{ Type, Kind, Provider string } `json:"data"`
					}
					n := &ev.Data
					if err := json.Unmarshal(r.Body, &ev); err != nil || n.Kind != "breaker_opened" || n.Provider != "ElevenLabs" {
						continue
					}
					opened += b2i(n.Type == "opened")
					resolved += b2i(n.Type == "resolved")
					continue
				}
				var m struct{ Text string }
				if err := json.Unmarshal(r.Body, &m); err != nil {
					continue
				}
				opened += b2i(strings.HasPrefix(m.Text, "[CRITICAL] Circuit breaker OPENED for ElevenLabs"))
				resolved += b2i(strings.HasPrefix(m.Text, "[CRITICAL] RESOLVED: Circuit breaker OPENED for ElevenLabs"))
			}
			return opened == 1 && resolved == 1, fmt.Sprintf("opened %d, resolved %d", opened, resolved)
		}
	}
	types := func(rec *alerttest.Recorder) func() (bool, string) { return count(rec, rec == hook) }
	testwait.Eventually(t, 30*time.Second, "one opened and one resolved webhook", types(hook))
	testwait.Eventually(t, 30*time.Second, "one opened and one resolved Slack message", types(slack))

	// Hold the count for a moment longer than the summary window: still one of each.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		for name, rec := range map[string]*alerttest.Recorder{"webhook": hook, "slack": slack} {
			if ok, state := types(rec)(); !ok {
				t.Fatalf("%s: %s after settling", name, state)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, r := range hook.Requests() {
		if err := webhook.Verify(webhookSecret, r.Header, r.Body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Errorf("webhook body is not JSON: %q", r.Body)
		}
		alerttest.AssertNoSecrets(t, "webhook body", r.Body, webhookSecret, "+14155550100")
	}
	for _, r := range slack.Requests() {
		alerttest.AssertNoSecrets(t, "Slack body", r.Body, webhookSecret, "+14155550100")
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
