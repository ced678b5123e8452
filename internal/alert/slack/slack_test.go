package slack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/slack"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/secret"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const hookPath = "/services/T0000/B0000/XXXXsecretXXXX"

func newNotifier(t *testing.T) (*slack.Notifier, *alerttest.Recorder) {
	t.Helper()
	srv := alerttest.NewRecorder(t)
	s, err := slack.New(slack.Options{WebhookURL: secret.Secret(srv.URL + hookPath), Client: alerttest.HTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s, srv
}

func TestNotifyPostsBlocks(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
	s, srv := newNotifier(t)
	for _, c := range alerttest.RetryCases() {
		srv.Respond(func(alerttest.Request) alerttest.Reply {
			body := "ok"
			if c.Status/100 != 2 {
				body = "<html>Something went wrong</html>" // not one of Slack's error strings: the status decides
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

// slackErrors are incoming-webhook refusals as Slack documents them ("Handling errors"):
// the status and the plain-text error string.
func slackErrors() []alerttest.RetryCase {
	operator := func(status int, code, fix string) alerttest.RetryCase {
		return alerttest.RetryCase{Name: code, Status: status, Body: code, WantErr: true, WantRetry: true,
			WantKind: fault.KindConfiguration, WantText: []string{fmt.Sprintf("Slack answered HTTP %d: %s", status, code), fix, "SLACK_WEBHOOK_URL"}}
	}
	payload := func(status int, code string) alerttest.RetryCase {
		return alerttest.RetryCase{Name: code, Status: status, Body: code, WantErr: true, WantRetry: false,
			WantKind: fault.KindInvalidPayload, WantText: []string{fmt.Sprintf("Slack answered HTTP %d: %s", status, code)}}
	}
	limited := alerttest.RetryCase{Name: "rate limited", Status: 429, Header: http.Header{"Retry-After": {"30"}}, Body: "rate_limited",
		WantErr: true, WantRetry: true, WantKind: fault.KindRateLimited, WantRetryAfter: 30 * time.Second, WantText: []string{"HTTP 429"}}
	rollup := alerttest.RetryCase{Name: "rollup_error", Status: 500, Body: "rollup_error", WantErr: true, WantRetry: true,
		WantKind: fault.KindUnavailable, WantText: []string{"Slack answered HTTP 500: rollup_error"}}
	tooBig := alerttest.RetryCase{Name: "413", Status: 413, Body: "<html>Request Entity Too Large</html>", WantErr: true,
		WantKind: fault.KindInvalidPayload, WantText: []string{"HTTP 413"}}
	return []alerttest.RetryCase{
		payload(400, "invalid_payload"),
		payload(400, "too_many_attachments"),
		operator(400, "user_not_found", "user no longer exists"),
		operator(400, "no_service_id", "mistyped"),
		operator(403, "action_prohibited", "admin restricts posting"),
		operator(403, "posting_to_general_channel_denied", "only admins may post"),
		operator(403, "invalid_token", "invalid or revoked"),
		operator(404, "channel_not_found", "channel was deleted"),
		operator(404, "no_service", "disabled, removed or mistyped"),
		operator(404, "no_team", "workspace no longer exists"),
		operator(410, "channel_is_archived", "channel is archived"),
		operator(410, "team_disabled", "workspace is disabled"),
		limited, rollup, tooBig,
	}
}

// TestNotifySlackErrors replays Slack's documented refusals: the ones an operator must fix
// keep the notification queued as configuration errors that say what to do; only a payload
// Slack cannot take is dropped. No error shows the webhook URL.
func TestNotifySlackErrors(t *testing.T) {
	t.Parallel()
	s, srv := newNotifier(t)
	for _, c := range slackErrors() {
		srv.Respond(func(alerttest.Request) alerttest.Reply { return c.Reply() })
		retry, err := s.Notify(context.Background(), alert.Notification{ID: "n1", Title: "t", Severity: alert.SeverityInfo})
		c.Check(t, retry, err)
		if err != nil {
			alerttest.AssertNoSecrets(t, c.Name+" error", []byte(err.Error()), hookPath, "XXXXsecretXXXX", srv.URL)
		}
	}
}

// TestNotifyDoesNotFollowRedirects: a 302 to another host is a failure that stays queued;
// the other host receives nothing (it would receive the message, and the URL is the secret).
func TestNotifyDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	s, srv := newNotifier(t)
	other := alerttest.NewRecorder(t)
	c := alerttest.RedirectCase(other.URL)
	srv.Respond(func(alerttest.Request) alerttest.Reply { return c.Reply() })
	retry, err := s.Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
	c.Check(t, retry, err)
	if n := len(other.Requests()); n != 0 {
		t.Errorf("the redirect was followed: the other host got %d requests", n)
	}
	alerttest.AssertNoSecrets(t, "error", []byte(err.Error()), "XXXXsecretXXXX", "stolen")
}

func TestNewAndTransportErrorsHideTheURL(t *testing.T) {
	t.Parallel()
	if _, err := slack.New(slack.Options{WebhookURL: "hooks.slack.com/services/XXXXsecretXXXX"}); err == nil ||
		strings.Contains(err.Error(), "XXXXsecretXXXX") {
		t.Errorf("New with a bad URL = %v", err)
	}
	srv := alerttest.NewRecorder(t)
	url := srv.URL
	srv.Close()
	s, err := slack.New(slack.Options{WebhookURL: secret.Secret(url + hookPath), Client: alerttest.HTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := s.Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
	if !retry || fault.KindOf(err) != fault.KindNetwork || strings.Contains(err.Error(), "XXXXsecretXXXX") {
		t.Errorf("Notify to a closed server = %v, %v", retry, err)
	}
}

// An answer quoting the request must not show the webhook's key, whatever the case of the
// URL's scheme and with user info in it (trimming the URL's origin off it failed on both).
func TestErrorsHideTheWebhookPathWhateverTheURLLooksLike(t *testing.T) {
	t.Parallel()
	const key = "Zk8Qw2Xe4Rt6Yu1Io3Pa5Sd7"
	srv := alerttest.NewRecorder(t)
	srv.Respond(func(r alerttest.Request) alerttest.Reply {
		return alerttest.Reply{Status: 500, Body: "no route for POST " + r.Path + " (key " + key + ")"}
	})
	host := strings.TrimPrefix(srv.URL, "http://")
	alerttest.AssertURLsHidden(t, []string{
		"HTTP://" + host + "/services/T0000/B0000/" + key,
		"http://ops@" + host + "/services/T0000/B0000/" + key,
		"Http://ops@" + host + "/services/T0000/B0000/" + key,
	}, func(raw string) (bool, error) {
		s, err := slack.New(slack.Options{WebhookURL: secret.Secret(raw), Client: alerttest.HTTPClient(t)})
		if err != nil {
			return false, err
		}
		_, err = s.Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
		return true, err
	}, key, "/services/T0000/B0000/")
}
