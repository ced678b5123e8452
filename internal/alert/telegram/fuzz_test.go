package telegram_test

import (
	"context"
	"encoding/json"
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
	"github.com/callagent/resilience/internal/alert/telegram"
	"github.com/callagent/resilience/internal/fault"
)

const fuzzToken = "7412589630:AAHq3Zx8Wv2Lm7Pk4Tn9Rb5Yc1Jd6Gf0Se"

// maxErrorLen bounds the error message: "Telegram answered HTTP 400: " (28), the detail (300
// characters), the fix (at most about 150, with the chat id).
const maxErrorLen = 600

// fuzzWindow is the shortest piece of the token counted as a leak.
const fuzzWindow = 12

type fuzzAnswer struct {
	status     int
	body       string
	retryAfter string
}

// FuzzNotifyAnswer sends a notification to a Bot API that answers with a fuzzed status, body
// and Retry-After. The body is raw (shape 0) or the Bot API's envelope built from fuzzed
// fields (description, retry_after, migrate_to_chat_id). Where the answer holds \x01 the
// server puts the request URI (/bot<token>/sendMessage), where it holds \x02 the token, as
// an API that quotes the request would. Whatever the answer:
//   - Notify does not panic; a 2xx is success unless its body says ok:false;
//   - a failure is a *fault.ServiceError for Telegram with the answer's status (502 for a
//     2xx that says it failed), a bounded message and a wait that is not negative, and
//     retry is what alert.RetryableKind says of its kind; a parameters.retry_after is
//     honoured up to fault.MaxRetryAfter (a day, as a Retry-After header), and a longer one
//     is cut to it;
//   - the bot token never appears in the error, whole or in part.
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
	} {
		f.Add(s.status, s.shape, s.desc, s.retry, s.mig, s.raw, s.ra)
	}

	var reply atomic.Pointer[fuzzAnswer]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rep := reply.Load()
		if fuzzValidHeaderValue(rep.retryAfter) {
			w.Header().Set("Retry-After", rep.retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		body := strings.NewReplacer("\x01", r.URL.RequestURI(), "\x02", fuzzToken).Replace(rep.body)
		_, _ = io.WriteString(w, body)
	}))
	f.Cleanup(srv.Close)
	tg, err := telegram.New(telegram.Options{BotToken: fuzzToken, ChatID: "-1001234567890", APIURL: srv.URL, Client: alerttest.HTTPClient(f)})
	if err != nil {
		f.Fatal(err)
	}
	n := alert.Notification{ID: "evt_1-opened", Type: alert.TypeOpened, Kind: alert.KindBreakerOpened, Severity: alert.SeverityCritical,
		Provider: "ElevenLabs", DedupKey: "elevenlabs.down", Title: "Circuit breaker OPENED for ElevenLabs",
		Message: "3 failures in a row", Time: time.Unix(1767225600, 0)}

	f.Fuzz(func(t *testing.T, status int, shape uint8, desc string, retryAfter, migrate int64, raw, ra string) {
		if status < 200 || status > 599 {
			status = 200 + fuzzAbs(status)%400 // every answer but 1xx
		}
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
		// json.Marshal escapes the marks; put them back so the server sees them.
		body = strings.NewReplacer(`\u0001`, "\x01", `\u0002`, "\x02").Replace(body)
		reply.Store(&fuzzAnswer{status: status, body: body, retryAfter: ra})

		retry, err := tg.Notify(context.Background(), n)
		if err == nil {
			if status/100 != 2 {
				t.Fatalf("HTTP %d taken as success", status)
			}
			if retry {
				t.Fatalf("success with retry")
			}
			return
		}
		var se *fault.ServiceError
		if !errors.As(err, &se) {
			t.Fatalf("%v (%T) is not a *fault.ServiceError", err, err)
		}
		if se.Provider != telegram.Name || (se.Status != status && !(status/100 == 2 && se.Status == http.StatusBadGateway)) {
			t.Fatalf("provider %q status %d, want %s %d", se.Provider, se.Status, telegram.Name, status)
		}
		if retry != alert.RetryableKind(fault.KindOf(err)) {
			t.Fatalf("retry = %v for kind %v", retry, fault.KindOf(err))
		}
		if se.RetryAfter < 0 {
			t.Fatalf("negative wait %v", se.RetryAfter)
		}
		if asked := min(time.Duration(min(retryAfter, 1e6))*time.Second, fault.MaxRetryAfter); shape%2 == 1 && retryAfter > 0 && se.RetryAfter < asked {
			t.Fatalf("parameters.retry_after %d: wait %v, want at least %v", retryAfter, se.RetryAfter, asked)
		}
		text := err.Error()
		if n := utf8.RuneCountInString(text); n > maxErrorLen {
			t.Fatalf("error text of %d characters, more than %d: %.300q", n, maxErrorLen, text)
		}
		for i := 0; i+fuzzWindow <= len(fuzzToken); i++ {
			if w := fuzzToken[i : i+fuzzWindow]; strings.Contains(text, w) || strings.Contains(se.Code, w) {
				t.Fatalf("error %q (code %q) shows %q of the bot token", text, se.Code, w)
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
