package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/channels"
	"github.com/callagent/resilience/internal/alert/email"
	"github.com/callagent/resilience/internal/alert/pagerduty"
	"github.com/callagent/resilience/internal/alert/slack"
	"github.com/callagent/resilience/internal/alert/webhook"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/resilience"
	"github.com/callagent/resilience/internal/secret"
)

// Credentials of the fleet test. Every one must stay out of every payload.
const (
	smtpPassword  = "smtp-pa55word-for-the-fleet"
	botToken      = "987654321:AAFleetTestTokenNeverInAPayload_xyz"
	webhookSecret = "whsec_ZmxlZXQtdGVzdC13ZWJob29rLWtleS0zMi1ieXRlcw=="
	slackPath     = "/services/TFLEET/BFLEET/slackSecretPathPart"
	routingKey    = "FLEETROUTINGKEY0123456789ABCDEFG"
	providerKey   = "sk_live_ElevenLabsKeyThatLeaksInErrors"
	phone         = "+14155550123"
)

// fakes are the five services on loopback.
type fakes struct {
	smtp      *alerttest.SMTPServer
	telegram  *alerttest.Recorder
	webhook   *alerttest.Recorder
	slack     *alerttest.Recorder
	pagerduty *alerttest.Recorder
	client    *httpx.Client

	mu          sync.Mutex
	badWebhooks int
}

func startFakes(t *testing.T) *fakes {
	f := &fakes{
		smtp:      alerttest.StartSMTP(t, alerttest.SMTPOptions{User: "alerts@example.com", Password: smtpPassword}),
		telegram:  alerttest.NewRecorder(t),
		webhook:   alerttest.NewRecorder(t),
		slack:     alerttest.NewRecorder(t),
		pagerduty: alerttest.NewRecorder(t),
	}
	f.client = alerttest.HTTPClient(t)
	f.telegram.Respond(func(r alerttest.Request) alerttest.Reply {
		if r.Path != "/bot"+botToken+"/sendMessage" {
			return alerttest.Reply{Status: 404, Body: `{"ok":false,"error_code":404,"description":"Not Found"}`}
		}
		return alerttest.Reply{Body: `{"ok":true,"result":{"message_id":1}}`}
	})
	f.webhook.Respond(func(r alerttest.Request) alerttest.Reply {
		if err := webhook.Verify(webhookSecret, r.Header, r.Body, time.Now(), 0); err != nil {
			f.mu.Lock()
			f.badWebhooks++
			f.mu.Unlock()
			return alerttest.Reply{Status: 401, Body: err.Error()}
		}
		return alerttest.Reply{Status: 204}
	})
	f.pagerduty.Respond(func(alerttest.Request) alerttest.Reply {
		return alerttest.Reply{Status: 202, Body: `{"status":"success","message":"Event processed"}`}
	})
	return f
}

func (f *fakes) settings() channels.Settings {
	return channels.Settings{
		Client:   f.client,
		Email:    channels.Email{Enabled: true, Options: emailOptions(f.smtp)},
		Telegram: channels.Telegram{Enabled: true, BotToken: botToken, ChatID: "-1001", APIURL: f.telegram.URL},
		Webhook:  channels.Webhook{Enabled: true, URL: f.webhook.URL + "/alerts", Secret: webhookSecret},
		Slack:    channels.Slack{Enabled: true, WebhookURL: secret.Secret(f.slack.URL + slackPath)},
		PagerDuty: channels.PagerDuty{Enabled: true, RoutingKey: routingKey, URL: f.pagerduty.URL + "/v2/enqueue",
			Source: "callagent-test"},
	}
}

// webhookNotification returns the notification a webhook event carries (zero if the body is
// not one).
func webhookNotification(body []byte) alert.Notification {
	var ev webhook.Event
	_ = json.Unmarshal(body, &ev)
	return ev.Data
}

// received returns, per channel, one line per notification received: "<type>|<title>".
func (f *fakes) received(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range f.smtp.Mails() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatalf("a mail does not parse: %v", err)
		}
		out["email"] = append(out["email"], msg.Header.Get("Subject"))
	}
	for _, r := range f.telegram.Requests() {
		if !r.Accepted() {
			continue
		}
		var body struct{ Text string }
		_ = json.Unmarshal(r.Body, &body)
		out["telegram"] = append(out["telegram"], strings.SplitN(body.Text, "\n", 2)[0])
	}
	for _, r := range f.webhook.Requests() {
		if !r.Accepted() {
			continue
		}
		n := webhookNotification(r.Body)
		out["webhook"] = append(out["webhook"], string(n.Type)+"|"+n.Title)
	}
	for _, r := range f.slack.Requests() {
		if !r.Accepted() {
			continue
		}
		var m slack.Message
		_ = json.Unmarshal(r.Body, &m)
		if len(m.Blocks) > 0 && m.Blocks[0].Text != nil {
			out["slack"] = append(out["slack"], m.Blocks[0].Text.Text)
		}
	}
	for _, r := range f.pagerduty.Requests() {
		if !r.Accepted() {
			continue
		}
		var ev pagerduty.Event
		_ = json.Unmarshal(r.Body, &ev)
		line := ev.EventAction + "|" + ev.DedupKey
		if ev.Payload != nil {
			line += "|" + ev.Payload.Summary
		}
		out["pagerduty"] = append(out["pagerduty"], line)
	}
	return out
}

func countContaining(lines []string, sub string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

func emailOptions(s *alerttest.SMTPServer) (o email.Options) {
	o.Host, o.Port, o.RootCAs, o.Timeout = s.Host, s.Port, s.RootCAs, 5*time.Second
	o.From, o.To, o.Password = "alerts@example.com", []string{"oncall@example.com"}, smtpPassword
	return o
}

// worker is one replica's alert wiring: its emitter, breaker listener, guard, dispatcher.
type worker struct {
	id       string
	emitter  *alert.Emitter
	breakers *alert.BreakerAlerts
	guard    *resilience.Guard
}

type fleet struct {
	js      jetstream.JetStream
	clock   *clock.Mock
	fakes   *fakes
	workers []*worker
	red     *redact.Redactor
}

func startFleet(t *testing.T, replicas int) *fleet {
	t.Helper()
	srv := natstest.Start(t)
	mock := clock.NewMock()
	mock.Set(time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC))
	fl := &fleet{clock: mock, fakes: startFakes(t)}
	log := logrus.New()
	log.SetOutput(&bytes.Buffer{})
	for i := range replicas {
		_, js := natstest.Connect(t, srv) // one connection per replica, as in production
		if i == 0 {
			fl.js = js
		}
		id := fmt.Sprintf("worker-%d", i+1)
		// What the worker does at start-up: a redactor that knows the provider key, the
		// channels (which add their secrets to it), the topology, then the pieces.
		red := redact.New(providerKey)
		chans, err := channels.Build(fl.fakes.settings(), red)
		if err != nil {
			t.Fatalf("channels.Build: %v", err)
		}
		fl.red = red
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := alert.Ensure(ctx, js, alert.Topology{}); err != nil {
			t.Fatal(err)
		}
		cancel()
		em := alert.NewEmitter(js, alert.EmitterOptions{Source: id, Redactor: red, Clock: mock, Logger: log})
		ba := alert.NewBreakerAlerts(em, alert.BreakerAlertsOptions{ServiceDownAfter: 10 * time.Minute, Clock: mock, Logger: log})
		g := resilience.NewGuard("ElevenLabs", resilience.GuardOptions{Clock: mock, Listener: ba, Logger: log,
			Breaker: resilience.BreakerSettings{FailureThreshold: 3, OpenTimeout: 30 * time.Second}})
		d, err := alert.NewDispatcher(js, alert.DispatcherOptions{
			Channels:       chans,
			SummaryWindow:  time.Minute,
			Retry:          resilience.RetryPolicy{MaxAttempts: 2, InitialDelay: 10 * time.Millisecond, RetryAfterCap: 50 * time.Millisecond},
			Breaker:        resilience.BreakerSettings{FailureThreshold: 5, OpenTimeout: 200 * time.Millisecond},
			AttemptTimeout: 5 * time.Second,
			RedeliverMin:   50 * time.Millisecond,
			RedeliverMax:   200 * time.Millisecond,
			Clock:          mock,
			Logger:         log,
		})
		if err != nil {
			t.Fatal(err)
		}
		stopEmitter := alerttest.Start(t, em.Run)
		stopDispatcher := alerttest.Start(t, d.Run)
		t.Cleanup(func() {
			if err := stopDispatcher(); err != nil {
				t.Errorf("%s dispatcher: %v", id, err)
			}
			ba.Close()
			if err := stopEmitter(); err != nil {
				t.Errorf("%s emitter: %v", id, err)
			}
		})
		fl.workers = append(fl.workers, &worker{id: id, emitter: em, breakers: ba, guard: g})
	}
	// Wait for every consumer, so no notification is published before its channel listens.
	alerttest.Eventually(t, "the alert consumers", func() (struct{}, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, name := range []string{"alert-dispatcher", "alert-dispatcher-email", "alert-dispatcher-telegram",
			"alert-dispatcher-webhook", "alert-dispatcher-slack", "alert-dispatcher-pagerduty"} {
			if _, err := fl.js.Consumer(ctx, alert.DefaultStream, name); err != nil {
				return struct{}{}, false
			}
		}
		return struct{}{}, true
	})
	return fl
}

// waitProcessed waits until the dispatchers have processed every event published so far,
// before the test moves the clock (the summary window follows the dispatcher's clock).
func (fl *fleet) waitProcessed(t *testing.T) {
	t.Helper()
	alerttest.Eventually(t, "every event processed", func() (struct{}, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := fl.js.Consumer(ctx, alert.DefaultStream, alert.DefaultConsumer)
		if err != nil {
			return struct{}{}, false
		}
		info, err := c.Info(ctx)
		return struct{}{}, err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

func (fl *fleet) published() int64 {
	var n int64
	for _, w := range fl.workers {
		n += w.emitter.Stats().Published
	}
	return n
}

func (fl *fleet) waitPublished(t *testing.T, n int64) {
	t.Helper()
	alerttest.Eventually(t, fmt.Sprintf("%d events published", n), func() (int64, bool) {
		p := fl.published()
		return p, p >= n
	})
}

// sentinel emits a last critical event and waits until every channel has it: channels
// deliver in order, so everything before it has been delivered too.
func (fl *fleet) sentinel(t *testing.T) map[string][]string {
	t.Helper()
	if err := fl.workers[0].emitter.Emit(alert.AuthFailed("CRM", "", "sentinel")); err != nil {
		t.Fatal(err)
	}
	return alerttest.Eventually(t, "the sentinel on every channel", func() (map[string][]string, bool) {
		got := fl.fakes.received(t)
		for _, ch := range []string{"email", "telegram", "webhook", "slack", "pagerduty"} {
			if countContaining(got[ch], "CRM authentication failed") == 0 {
				return got, false
			}
		}
		return got, true
	})
}

var fail503 = func(context.Context) error {
	return fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 503, Message: "Service temporarily unavailable"})
}

// TestOutageOnThreeWorkers is the scenario: ElevenLabs goes down during a 100-contact
// campaign run by three workers. Each replica's breaker opens (one flaps: a failed probe
// re-opens it), every contact's call fails, then ElevenLabs recovers and every breaker
// closes. Every channel gets exactly one "opened" and one "resolved" for the outage, the
// first call failure on its own and one summary of the rest — and no payload carries a
// secret or a full phone number.
func TestOutageOnThreeWorkers(t *testing.T) {
	t.Parallel()
	fl := startFleet(t, 3)
	ctx := context.Background()
	events := int64(0)

	for c := 1; c <= 100; c++ {
		w := fl.workers[c%3]
		err := w.guard.Do(ctx, fail503)
		reason := fault.KindOf(err).String()
		if errors.Is(err, resilience.ErrBreakerOpen) {
			reason = "circuit_open"
		}
		detail := "Service temporarily unavailable"
		if c == 1 {
			// A provider error that echoes our key and the callee's number, and a log
			// line that picked up the SMTP password: all must be redacted.
			detail += " (xi-api-key: " + providerKey + ", to " + phone + ", smtp " + smtpPassword + ")"
		}
		for _, ev := range alert.FailureEvents("ElevenLabs", fmt.Sprint(c), reason, false, detail) {
			if err := w.emitter.Emit(ev); err != nil {
				t.Fatal(err)
			}
			events++
		}
		if c == 1 {
			fl.waitPublished(t, 1) // the first failure of the window is the one sent on its own
		}
	}
	events += 3 // each breaker opened once
	fl.waitPublished(t, events)
	fl.waitProcessed(t)

	// Worker 1 flaps: after the open timeout its probe fails and it opens again.
	fl.clock.Add(31 * time.Second)
	if err := fl.workers[1].guard.Do(ctx, fail503); err == nil {
		t.Fatal("the probe succeeded")
	}
	alerttest.Eventually(t, "the re-open", func() (int64, bool) { return fl.published(), fl.published() > events })
	events = fl.published()

	// ElevenLabs recovers: each worker's health checker resets its breaker.
	for _, w := range fl.workers {
		w.guard.Reset()
	}
	fl.waitPublished(t, events+3)
	fl.waitProcessed(t)

	// The summary window (1m) ends.
	alerttest.Eventually(t, "the call-failure summary", func() (struct{}, bool) {
		fl.clock.Add(5 * time.Second)
		time.Sleep(5 * time.Millisecond)
		return struct{}{}, countContaining(fl.fakes.received(t)["webhook"], "summary|") == 1
	})
	got := fl.sentinel(t)

	for _, ch := range []string{"email", "telegram", "webhook", "slack"} {
		lines := got[ch]
		opened := countContaining(lines, "Circuit breaker OPENED for ElevenLabs") - countContaining(lines, "RESOLVED: Circuit breaker OPENED for ElevenLabs")
		resolved := countContaining(lines, "RESOLVED: Circuit breaker OPENED for ElevenLabs")
		single := countContaining(lines, "Call Failed for Contact 1")
		summary := countContaining(lines, "100 calls failed (ElevenLabs) in 1m0s")
		if opened != 1 || resolved != 1 || single != 1 || summary != 1 || len(lines) != 5 {
			t.Errorf("%s received %d notifications (want opened, call failed, resolved, summary, sentinel):\n  %s",
				ch, len(lines), strings.Join(lines, "\n  "))
		}
	}
	pd := got["pagerduty"]
	if len(pd) != 3 || countContaining(pd, "trigger|elevenlabs.down|Circuit breaker OPENED for ElevenLabs") != 1 ||
		countContaining(pd, "resolve|elevenlabs.down") != 1 {
		t.Errorf("pagerduty (critical only) received:\n  %s", strings.Join(pd, "\n  "))
	}

	// The resolution carries the incident's numbers.
	var resolved alert.Notification
	for _, r := range fl.fakes.webhook.Requests() {
		n := webhookNotification(r.Body)
		if n.Type == alert.TypeResolved && n.Provider == "ElevenLabs" {
			resolved = n
		}
	}
	if resolved.Count < 4 || resolved.Suppressed != resolved.Count-1 || resolved.Duration() != 31*time.Second ||
		strings.Join(resolved.Reporters, ",") != "worker-1,worker-2,worker-3" {
		t.Errorf("resolved: count %d, suppressed %d, duration %s, reporters %v",
			resolved.Count, resolved.Suppressed, resolved.Duration(), resolved.Reporters)
	}
	fl.fakes.mu.Lock()
	if fl.fakes.badWebhooks != 0 {
		t.Errorf("%d webhooks failed signature verification", fl.fakes.badWebhooks)
	}
	fl.fakes.mu.Unlock()

	fl.assertNoSecrets(t)
	incidents, err := alert.OpenIncidents(ctx, fl.js, alert.DefaultBucket)
	if err != nil || len(incidents) != 1 || incidents[0].Key != "crm.auth" {
		t.Errorf("open incidents: %+v, %v (want only the sentinel's)", incidents, err)
	}
}

// assertNoSecrets scans every captured request body and header, and every mail, for every
// configured secret and the full phone number. A channel's own credential is allowed only
// where it must be (PagerDuty's routing_key field; the Telegram token in the URL path).
func (fl *fleet) assertNoSecrets(t *testing.T) {
	t.Helper()
	secrets := []string{smtpPassword, botToken, strings.TrimPrefix(webhookSecret, "whsec_"), webhookSecret,
		"slackSecretPathPart", routingKey, providerKey, phone, "4155550123"}
	for _, m := range fl.fakes.smtp.Mails() {
		alerttest.AssertNoSecrets(t, "mail", m.Data, secrets...)
	}
	for name, rec := range map[string]*alerttest.Recorder{"telegram": fl.fakes.telegram, "webhook": fl.fakes.webhook,
		"slack": fl.fakes.slack, "pagerduty": fl.fakes.pagerduty} {
		for _, r := range rec.Requests() {
			body := r.Body
			if name == "pagerduty" {
				body = bytes.Replace(body, []byte(`"routing_key":"`+routingKey+`"`), nil, 1)
			}
			alerttest.AssertNoSecrets(t, name+" body", body, secrets...)
			alerttest.AssertNoSecretsInHeader(t, name, r.Header, secrets...)
			alerttest.AssertNoSecrets(t, name+" query", []byte(r.Query), secrets...)
		}
	}
	for _, r := range fl.fakes.webhook.Requests() {
		n := webhookNotification(r.Body)
		if strings.Contains(n.Message, "xi-api-key") &&
			!strings.Contains(n.Message, "xi-api-key: "+redact.Placeholder+", to +14*******23, smtp "+redact.Placeholder) {
			t.Errorf("the failure detail was not redacted as expected: %q", n.Message)
		}
	}
}

// TestChannelDownThenBackUp: the webhook endpoint and the SMTP server fail while an incident
// opens; the other channels are not held back; once they recover, the alert arrives late,
// not lost, exactly once.
func TestChannelDownThenBackUp(t *testing.T) {
	t.Parallel()
	fl := startFleet(t, 2)
	fl.fakes.webhook.Respond(func(alerttest.Request) alerttest.Reply { return alerttest.Reply{Status: 503, Body: "maintenance"} })
	fl.fakes.smtp.Fail(451)

	fl.workers[0].breakers.BreakerStateChanged("LLM", resilience.StateClosed, resilience.StateOpen, fl.clock.Now())
	alerttest.Eventually(t, "the other channels", func() (struct{}, bool) {
		got := fl.fakes.received(t)
		return struct{}{}, len(got["telegram"]) == 1 && len(got["slack"]) == 1 && len(got["pagerduty"]) == 1
	})
	alerttest.Eventually(t, "repeated failed deliveries", func() (struct{}, bool) {
		return struct{}{}, len(fl.fakes.webhook.Requests()) >= 4 && fl.fakes.smtp.Attempts() >= 4
	})
	if got := fl.fakes.received(t); len(got["email"]) != 0 {
		t.Fatalf("mail accepted while failing: %v", got["email"])
	}

	// Both come back.
	fl.fakes.webhook.Respond(func(r alerttest.Request) alerttest.Reply {
		if err := webhook.Verify(webhookSecret, r.Header, r.Body, time.Now(), 0); err != nil {
			return alerttest.Reply{Status: 401}
		}
		return alerttest.Reply{Status: 204}
	})
	fl.fakes.smtp.Fail(0)
	got := fl.sentinel(t)
	if countContaining(got["webhook"], "opened|Circuit breaker OPENED for LLM") != 1 ||
		countContaining(got["email"], "[CRITICAL] Circuit breaker OPENED for LLM") != 1 {
		t.Errorf("late deliveries:\n  webhook %v\n  email %v", got["webhook"], got["email"])
	}
	// Every failed try carried the same webhook-id: the receiver can tell it is one alert.
	ids := map[string]bool{}
	for _, r := range fl.fakes.webhook.Requests() {
		n := webhookNotification(r.Body)
		if n.Provider == "LLM" {
			ids[r.Header.Get(webhook.HeaderID)] = true
		}
	}
	if len(ids) != 1 {
		t.Errorf("the LLM alert was tried under %d webhook ids, want 1", len(ids))
	}
	fl.assertNoSecrets(t)
}
