package telegram_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/telegram"
	"github.com/callagent/resilience/internal/fault"
)

const fuzzToken = "7412589630:AAHq3Zx8Wv2Lm7Pk4Tn9Rb5Yc1Jd6Gf0Se"

// FuzzNotifyAnswer sends a notification to a Bot API that answers with a fuzzed status, body
// and Retry-After. The body is raw (shape 0) or the Bot API's envelope built from fuzzed
// fields (description, retry_after, migrate_to_chat_id). Where the answer holds \x01 the
// server puts the request URI (/bot<token>/sendMessage), where it holds \x02 the token, as
// an API that quotes the request would. Whatever the answer, alerttest.AnswerFuzz.Check's
// invariants hold — a 2xx whose body says ok:false fails as a 502; the error message is at
// most 600 characters: "Telegram answered HTTP 400: " (28), the detail (300), the fix (at
// most about 150, with the chat id); the bot token never shows — and a
// parameters.retry_after is honoured up to fault.MaxRetryAfter (a day, as a Retry-After
// header), and a longer one is cut to it (but for a 304, which has no body to carry it).
func FuzzNotifyAnswer(f *testing.F) {
	for _, s := range []struct {
		status     int
		shape      uint8
		desc       string
		retry, mig int64
		raw, ra    string
	}{
		{200, 0, "", 0, 0, `{"ok":true,"result":{"message_id":42}}`, ""},
		{200, 0, "", 0, 0, `{"ok":false,"error_code":400,"description":"Bad Request: message is too long"}`, ""},
		{200, 0, "", 0, 0, ``, ""},
		{400, 1, "Bad Request: chat not found", 0, 0, "", ""},
		{400, 1, "Bad Request: group chat was upgraded to a supergroup chat", 0, -1001234567890, "", ""},
		{400, 1, "Bad Request: can't parse entities: Unsupported start tag \"scr\" at byte offset 12", 0, 0, "", ""},
		{401, 1, "Unauthorized", 0, 0, "", ""},
		{403, 1, "Forbidden: bot was blocked by the user", 0, 0, "", ""},
		{404, 1, "Not Found: method \x01 not found", 0, 0, "", ""},
		{404, 0, "", 0, 0, `{"ok":false,"error_code":404,"description":"Not Found"}`, ""},
		{429, 1, "Too Many Requests: retry after 35", 35, 0, "", "30"},
		{429, 1, "Too Many Requests", 9223372037, 0, "", ""},
		{502, 0, "", 0, 0, "<html><head><title>502 Bad Gateway</title></head></html>", "Wed, 21 Oct 2015 07:28:00 GMT"},
		{500, 1, strings.Repeat("долго ", 100) + "token \x02", 0, 0, "", ""},
		{302, 0, "", 0, 0, "", ""},
		{409, 1, "Conflict: terminated by other getUpdates request", 0, 0, "", "-1"},
		{304, 1, "0", 5, 62, "0", ""}, // a 304 has no body: its retry_after never arrives
	} {
		f.Add(s.status, s.shape, s.desc, s.retry, s.mig, s.raw, s.ra)
	}

	h := alerttest.NewAnswerFuzz(f, alerttest.AnswerFuzzOptions{
		Channel:        telegram.Name,
		ContentType:    "application/json",
		Marks:          func(r *http.Request, _ []byte) []string { return []string{r.URL.RequestURI(), fuzzToken} },
		MaxErrorLen:    600,
		Secrets:        []string{fuzzToken},
		Retryable:      alert.RetryableKind,
		FailedOKStatus: http.StatusBadGateway,
	})
	tg, err := telegram.New(telegram.Options{BotToken: fuzzToken, ChatID: "-1001234567890", APIURL: h.URL, Client: alerttest.HTTPClient(f)})
	if err != nil {
		f.Fatal(err)
	}
	n := alert.Notification{ID: "evt_1-opened", Type: alert.TypeOpened, Kind: alert.KindBreakerOpened, Severity: alert.SeverityCritical,
		Provider: "ElevenLabs", DedupKey: "elevenlabs.down", Title: "Circuit breaker OPENED for ElevenLabs",
		Message: "3 failures in a row", Time: time.Unix(1767225600, 0)}

	f.Fuzz(func(t *testing.T, status int, shape uint8, desc string, retryAfter, migrate int64, raw, ra string) {
		status = alerttest.FuzzStatus(status)
		body := raw
		if shape%2 == 1 {
			env := map[string]any{"ok": false, "error_code": status, "description": desc}
			if retryAfter != 0 || migrate != 0 {
				env["parameters"] = map[string]any{"retry_after": retryAfter, "migrate_to_chat_id": migrate}
			}
			b, err := json.Marshal(env)
			if err != nil {
				t.Fatal(err)
			}
			body = string(b)
		}
		fl := h.Check(t, status, alerttest.UnescapeMarks(body), ra, func(ctx context.Context) (bool, error) { return tg.Notify(ctx, n) })
		asked := min(time.Duration(min(retryAfter, 1e6))*time.Second, fault.MaxRetryAfter)
		if fl != nil && shape%2 == 1 && retryAfter > 0 && status != http.StatusNotModified && fl.Service.RetryAfter < asked {
			t.Fatalf("parameters.retry_after %d: wait %v, want at least %v", retryAfter, fl.Service.RetryAfter, asked)
		}
	})
}
