package slack_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/slack"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/secret"
)

// fuzzHookKey is the secret last segment of the incoming webhook's path.
const fuzzHookKey = "Wz4Qm8Rt2Xn6Kp0Lv3Hc7Bd9"

const fuzzHookPath = "/services/T0A1B2C3D/B4E5F6G7H/" + fuzzHookKey

// maxErrorLen bounds the error message: "Slack answered HTTP 410: " (25), the detail (300
// characters), the fix (at most about 160).
const maxErrorLen = 600

// fuzzWindow is the shortest piece of the webhook key counted as a leak.
const fuzzWindow = 12

type fuzzAnswer struct {
	status     int
	body       string
	retryAfter string
}

// FuzzNotifyAnswer posts a notification to an incoming webhook that answers with a fuzzed
// status, body and Retry-After. Where the body holds \x01 the server puts the request URI
// (the webhook's path), where it holds \x02 the whole webhook URL, as a proxy quoting the
// request would. Whatever the answer:
//   - Notify does not panic; a 2xx is success;
//   - a failure is a *fault.ServiceError for Slack with the answer's status, a bounded
//     message, a code that is empty or one of Slack's error strings (lower case and '_', at
//     most 64), a wait that is not negative, and retry is what alert.RetryableKind says of
//     its kind;
//   - the webhook's path never appears in the error, nor any piece of its key.
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

	var reply atomic.Pointer[fuzzAnswer]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rep := reply.Load()
		if fuzzValidHeaderValue(rep.retryAfter) {
			w.Header().Set("Retry-After", rep.retryAfter)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(rep.status)
		body := strings.NewReplacer("\x01", r.URL.RequestURI(), "\x02", "http://"+r.Host+r.URL.RequestURI()).Replace(rep.body)
		_, _ = io.WriteString(w, body)
	}))
	f.Cleanup(srv.Close)
	s, err := slack.New(slack.Options{WebhookURL: secret.Secret(srv.URL + fuzzHookPath), Client: alerttest.HTTPClient(f)})
	if err != nil {
		f.Fatal(err)
	}
	n := alert.Notification{ID: "evt_1-summary", Type: alert.TypeSummary, Kind: alert.KindCallFailed, Severity: alert.SeverityWarning,
		Provider: "ElevenLabs", DedupKey: "elevenlabs.call_failed", Title: "30 calls failed (ElevenLabs) in 1m0s",
		Message: "service_unavailable ×30", Time: time.Unix(1767225600, 0), Count: 30}

	f.Fuzz(func(t *testing.T, status int, body, ra string) {
		if status < 200 || status > 599 {
			status = 200 + fuzzAbs(status)%400 // every answer but 1xx
		}
		reply.Store(&fuzzAnswer{status: status, body: body, retryAfter: ra})

		retry, err := s.Notify(context.Background(), n)
		if err == nil {
			if status/100 != 2 || retry {
				t.Fatalf("HTTP %d taken as success (retry %v)", status, retry)
			}
			return
		}
		var se *fault.ServiceError
		if !errors.As(err, &se) {
			t.Fatalf("%v (%T) is not a *fault.ServiceError", err, err)
		}
		if se.Provider != slack.Name || se.Status != status {
			t.Fatalf("provider %q status %d, want %s %d", se.Provider, se.Status, slack.Name, status)
		}
		if retry != alert.RetryableKind(fault.KindOf(err)) {
			t.Fatalf("retry = %v for kind %v", retry, fault.KindOf(err))
		}
		if se.RetryAfter < 0 {
			t.Fatalf("negative wait %v", se.RetryAfter)
		}
		if len(se.Code) > 64 || strings.Trim(se.Code, "abcdefghijklmnopqrstuvwxyz_") != "" {
			t.Fatalf("code %q is not one of Slack's error strings", se.Code)
		}
		text := err.Error()
		if n := utf8.RuneCountInString(text); n > maxErrorLen {
			t.Fatalf("error text of %d characters, more than %d: %.300q", n, maxErrorLen, text)
		}
		if strings.Contains(text, fuzzHookPath) {
			t.Fatalf("error %q shows the webhook's path", text)
		}
		for i := 0; i+fuzzWindow <= len(fuzzHookKey); i++ {
			if w := fuzzHookKey[i : i+fuzzWindow]; strings.Contains(text, w) {
				t.Fatalf("error %q shows %q of the webhook's key", text, w)
			}
		}
	})
}

// fuzzValidHeaderValue reports whether a server can send v as a header value as it is.
func fuzzValidHeaderValue(v string) bool {
	if v == "" || v != strings.TrimSpace(v) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func fuzzAbs(n int) int {
	if n < 0 {
		if n == -n { // math.MinInt
			return 0
		}
		return -n
	}
	return n
}
