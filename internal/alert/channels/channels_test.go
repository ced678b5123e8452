package channels_test

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/channels"
	"github.com/callagent/resilience/internal/alert/email"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEverythingDisabledByDefault(t *testing.T) {
	t.Parallel()
	chans, err := channels.Build(channels.Settings{}, nil)
	if err != nil || len(chans) != 0 {
		t.Fatalf("Build(zero settings) = %v, %v", chans, err)
	}
}

func TestBuildEnabledChannels(t *testing.T) {
	t.Parallel()
	red := redact.New()
	s := channels.Settings{
		Email: channels.Email{Enabled: true, Options: email.Options{Host: "smtp.example.com", Password: "mail-secret-1",
			From: "a@example.com", To: []string{"b@example.com"}}},
		Telegram:  channels.Telegram{Enabled: true, BotToken: "111:telegram-secret-2", ChatID: "1", MinSeverity: alert.SeverityWarning},
		Webhook:   channels.Webhook{Enabled: true, URL: "https://example.com/hook", Secret: "whsec_d2ViaG9vay1zZWNyZXQtMy0zMmJ5dGVz"},
		Slack:     channels.Slack{Enabled: true, WebhookURL: "https://hooks.slack.com/services/slack-secret-4"},
		PagerDuty: channels.PagerDuty{Enabled: true, RoutingKey: "pagerduty-secret-5"},
	}
	chans, err := channels.Build(s, red)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range chans {
		got = append(got, c.Name+"/"+string(c.MinSeverity))
	}
	if want := "Email/info Telegram/warning Webhook/info Slack/info PagerDuty/critical"; strings.Join(got, " ") != want {
		t.Errorf("channels %v, want %s", got, want)
	}
	text := red.Text("mail-secret-1 111:telegram-secret-2 whsec_d2ViaG9vay1zZWNyZXQtMy0zMmJ5dGVz https://hooks.slack.com/services/slack-secret-4 pagerduty-secret-5")
	for _, secret := range []string{"mail-secret", "telegram-secret", "d2ViaG9v", "slack-secret", "pagerduty-secret"} {
		if strings.Contains(text, secret) {
			t.Errorf("the redactor does not know %s: %q", secret, text)
		}
	}
}

func TestBuildReportsEveryProblem(t *testing.T) {
	t.Parallel()
	s := channels.Settings{
		Email:     channels.Email{Enabled: true},
		Telegram:  channels.Telegram{Enabled: true, BotToken: "x:y"},
		Webhook:   channels.Webhook{Enabled: true, URL: "https://example.com", Secret: "plain"},
		Slack:     channels.Slack{Enabled: true, WebhookURL: "https://hooks.slack.com/x", MinSeverity: "loud"},
		PagerDuty: channels.PagerDuty{Enabled: true},
	}
	_, err := channels.Build(s, nil)
	if err == nil {
		t.Fatal("Build accepted broken settings")
	}
	for _, want := range []string{
		"Email alerts: Host is required",
		"Telegram alerts: ChatID is required",
		"Webhook alerts: Secret must be whsec_",
		`Slack alerts: unknown minimum severity "loud"`,
		"PagerDuty alerts: RoutingKey is required",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestHTTPChannelsShareTheClient: every HTTP channel sends through Settings.Client (its
// User-Agent shows), so none follows a redirect or reads an unbounded body.
func TestHTTPChannelsShareTheClient(t *testing.T) {
	t.Parallel()
	srv := alerttest.NewRecorder(t)
	srv.Respond(func(r alerttest.Request) alerttest.Reply {
		if strings.HasPrefix(r.Path, "/bot") {
			return alerttest.Reply{Body: `{"ok":true,"result":{}}`}
		}
		return alerttest.Reply{Status: 202, Body: `{"status":"success"}`}
	})
	client := alerttest.HTTPClient(t)
	chans, err := channels.Build(channels.Settings{
		Client:    client,
		Telegram:  channels.Telegram{Enabled: true, BotToken: "111:telegram-secret-2", ChatID: "1", APIURL: srv.URL},
		Webhook:   channels.Webhook{Enabled: true, URL: srv.URL + "/hook", Secret: "whsec_d2ViaG9vay1zZWNyZXQtMy0zMmJ5dGVz"},
		Slack:     channels.Slack{Enabled: true, WebhookURL: secret.Secret(srv.URL + "/services/slack-secret-4")},
		PagerDuty: channels.PagerDuty{Enabled: true, RoutingKey: "pagerduty-secret-5", URL: srv.URL + "/v2/enqueue"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := alert.Notification{ID: "evt_1-opened", Type: alert.TypeOpened, Kind: alert.KindBreakerOpened, Severity: alert.SeverityCritical,
		DedupKey: "x.down", Title: "t", Message: "m"}
	for _, c := range chans {
		if retry, err := c.Notifier.Notify(context.Background(), n); err != nil {
			t.Errorf("%s: Notify = %v, %v", c.Name, retry, err)
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want one per HTTP channel", len(reqs))
	}
	for _, r := range reqs {
		if ua := r.Header.Get("User-Agent"); ua != client.UserAgent() {
			t.Errorf("%s sent User-Agent %q, want the shared client's %q", r.Path, ua, client.UserAgent())
		}
	}
}
