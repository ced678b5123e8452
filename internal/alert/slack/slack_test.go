package slack_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/slack"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/fault"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const hookPath = "/services/T0000/B0000/XXXXsecretXXXX"

func newNotifier(t *testing.T) (*slack.Notifier, *alerttest.Recorder) {
	t.Helper()
	srv := alerttest.NewRecorder(t)
	s, err := slack.New(slack.Options{WebhookURL: config.Secret(srv.URL + hookPath), Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return s, srv
}

func TestNotifyPostsBlocks(t *testing.T) {
	s, srv := newNotifier(t)
	n := alert.Notification{ID: "evt_1-resolved", Type: alert.TypeResolved, Kind: alert.KindBreakerOpened,
		Severity: alert.SeverityCritical, Provider: "ElevenLabs", DedupKey: "elevenlabs.down",
		Title: "RESOLVED: Circuit breaker OPENED for ElevenLabs after 2m0s", Message: "ElevenLabs recovered <b> & done",
		Time: time.Unix(1700000000, 0), OpenedAt: time.Unix(1699999880, 0), ResolvedAt: time.Unix(1700000000, 0),
		DurationSeconds: 120, Count: 7, Suppressed: 5}
	if retry, err := s.Notify(context.Background(), n); err != nil {
		t.Fatalf("Notify = %v, %v", retry, err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Path != hookPath {
		t.Fatalf("requests: %+v", reqs)
	}
	var msg slack.Message
	if err := json.Unmarshal(reqs[0].Body, &msg); err != nil {
		t.Fatal(err)
	}
	if len(msg.Blocks) != 3 || msg.Blocks[0].Type != "header" || msg.Blocks[0].Text.Text != n.Title ||
		msg.Blocks[1].Text.Type != "mrkdwn" || msg.Blocks[1].Text.Text != "ElevenLabs recovered &lt;b&gt; &amp; done" {
		t.Errorf("blocks: %s", reqs[0].Body)
	}
	ctx := msg.Blocks[2].Elements[0].Text
	for _, want := range []string{"Duration: 2m0s", "Events: 7", "Repeats suppressed: 5", "Incident: elevenlabs.down"} {
		if !strings.Contains(ctx, want) {
			t.Errorf("context %q lacks %q", ctx, want)
		}
	}
	if !strings.HasPrefix(msg.Text, "[CRITICAL] RESOLVED") {
		t.Errorf("fallback text: %q", msg.Text)
	}
	alerttest.AssertNoSecrets(t, "slack body", reqs[0].Body, "XXXXsecretXXXX")
}

func TestFormatBounds(t *testing.T) {
	msg := slack.Format(alert.Notification{Title: strings.Repeat("t", 500), Message: strings.Repeat("<", 5000), Severity: alert.SeverityInfo})
	if n := utf8.RuneCountInString(msg.Blocks[0].Text.Text); n > 150 {
		t.Errorf("header of %d characters", n)
	}
	if n := utf8.RuneCountInString(msg.Blocks[1].Text.Text); n > 3000 {
		t.Errorf("section of %d characters", n)
	}
	if n := utf8.RuneCountInString(msg.Text); n > 3000 {
		t.Errorf("text of %d characters", n)
	}
}

func TestNotifyRetryTable(t *testing.T) {
	s, srv := newNotifier(t)
	for _, c := range alerttest.RetryCases() {
		srv.Respond(func(alerttest.Request) alerttest.Reply {
			body := "ok"
			if c.Status/100 != 2 {
				body = "invalid_payload"
			}
			return alerttest.Reply{Status: c.Status, Header: c.Header, Body: body}
		})
		retry, err := s.Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
		c.Check(t, retry, err)
		if err != nil && strings.Contains(err.Error(), "XXXXsecretXXXX") {
			t.Errorf("%s: error shows the webhook URL", c.Name)
		}
	}
}

func TestNewAndTransportErrorsHideTheURL(t *testing.T) {
	if _, err := slack.New(slack.Options{WebhookURL: "hooks.slack.com/services/XXXXsecretXXXX"}); err == nil ||
		strings.Contains(err.Error(), "XXXXsecretXXXX") {
		t.Errorf("New with a bad URL = %v", err)
	}
	srv := alerttest.NewRecorder(t)
	url := srv.URL
	srv.Close()
	s, err := slack.New(slack.Options{WebhookURL: config.Secret(url + hookPath), Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := s.Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
	if !retry || fault.KindOf(err) != fault.KindNetwork || strings.Contains(err.Error(), "XXXXsecretXXXX") {
		t.Errorf("Notify to a closed server = %v, %v", retry, err)
	}
}
