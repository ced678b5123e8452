package slack_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/slack"
	"github.com/callagent/resilience/internal/secret"
)

// fuzzHookKey is the secret last segment of the incoming webhook's path.
const fuzzHookKey = "Wz4Qm8Rt2Xn6Kp0Lv3Hc7Bd9"

const fuzzHookPath = "/services/T0A1B2C3D/B4E5F6G7H/" + fuzzHookKey

// FuzzNotifyAnswer posts a notification to an incoming webhook that answers with a fuzzed
// status, body and Retry-After. Where the body holds \x01 the server puts the request URI
// (the webhook's path), where it holds \x02 the whole webhook URL, as a proxy quoting the
// request would. Whatever the answer, alerttest.AnswerFuzz.Check's invariants hold — the
// error message is at most 600 characters: "Slack answered HTTP 410: " (25), the detail
// (300), the fix (at most about 160); no piece of the webhook's key shows — the error's code
// is empty or one of Slack's error strings (lower case and '_', at most 64), and the
// webhook's path never shows in the error.
func FuzzNotifyAnswer(f *testing.F) {
	for _, s := range []struct {
		status   int
		body, ra string
	}{
		{200, "ok", ""},
		{400, "invalid_payload", ""},
		{400, "invalid_blocks", ""},
		{400, "user_not_found", ""},
		{403, "action_prohibited", ""},
		{403, "invalid_token", ""},
		{404, "channel_not_found", ""},
		{404, "no_service", ""},
		{410, "channel_is_archived\n", ""},
		{429, "rate_limited", "30"},
		{500, "rollup_error", ""},
		{502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "Wed, 21 Oct 2015 07:28:00 GMT"},
		{404, "No service for POST \x01", ""},
		{403, "invalid_token for \x02", ""},
		{400, strings.Repeat("a", 65), ""},
		{503, strings.Repeat("slack is down ", 40), "-3"},
		{301, "", ""},
	} {
		f.Add(s.status, s.body, s.ra)
	}

	h := alerttest.NewAnswerFuzz(f, alerttest.AnswerFuzzOptions{
		Channel:     slack.Name,
		ContentType: "text/plain; charset=utf-8",
		Marks: func(r *http.Request, _ []byte) []string {
			return []string{r.URL.RequestURI(), "http://" + r.Host + r.URL.RequestURI()}
		},
		MaxErrorLen: 600,
		Secrets:     []string{fuzzHookKey},
		Retryable:   alert.RetryableKind,
	})
	s, err := slack.New(slack.Options{WebhookURL: secret.Secret(h.URL + fuzzHookPath), Client: alerttest.HTTPClient(f)})
	if err != nil {
		f.Fatal(err)
	}
	n := alert.Notification{ID: "evt_1-summary", Type: alert.TypeSummary, Kind: alert.KindCallFailed, Severity: alert.SeverityWarning,
		Provider: "ElevenLabs", DedupKey: "elevenlabs.call_failed", Title: "30 calls failed (ElevenLabs) in 1m0s",
		Message: "service_unavailable ×30", Time: time.Unix(1767225600, 0), Count: 30}

	f.Fuzz(func(t *testing.T, status int, body, ra string) {
		fl := h.Check(t, alerttest.FuzzStatus(status), body, ra, func(ctx context.Context) (bool, error) { return s.Notify(ctx, n) })
		if fl == nil {
			return
		}
		if code := fl.Service.Code; len(code) > 64 || strings.Trim(code, "abcdefghijklmnopqrstuvwxyz_") != "" {
			t.Fatalf("code %q is not one of Slack's error strings", code)
		}
		if text := fl.Err.Error(); strings.Contains(text, fuzzHookPath) {
			t.Fatalf("error %q shows the webhook's path", text)
		}
	})
}
