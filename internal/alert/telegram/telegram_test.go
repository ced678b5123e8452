package telegram_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/telegram"
	"github.com/callagent/resilience/internal/fault"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "123456789:AAFakeTokenForTestsOnly_abcdefghijklmnop"

// fakeBotAPI answers sendMessage like the Bot API: {"ok":true,...} or an error envelope.
func fakeBotAPI(t *testing.T) *alerttest.Recorder {
	srv := alerttest.NewRecorder(t)
	srv.Respond(func(r alerttest.Request) alerttest.Reply {
		if r.Path != "/bot"+token+"/sendMessage" {
			return alerttest.Reply{Status: 404, Body: `{"ok":false,"error_code":404,"description":"Not Found"}`}
		}
		return alerttest.Reply{Status: 200, Body: `{"ok":true,"result":{"message_id":42}}`}
	})
	return srv
}

type sent struct {
	ChatID             string `json:"chat_id"`
	Text               string `json:"text"`
	ParseMode          string `json:"parse_mode"`
	LinkPreviewOptions struct {
		IsDisabled bool `json:"is_disabled"`
	} `json:"link_preview_options"`
}

func newNotifier(t *testing.T, srv *alerttest.Recorder) *telegram.Notifier {
	t.Helper()
	n, err := telegram.New(telegram.Options{BotToken: token, ChatID: "-100123", APIURL: srv.URL, Client: alerttest.HTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNotifySendsEscapedHTML(t *testing.T) {
	t.Parallel()
	srv := fakeBotAPI(t)
	tg := newNotifier(t, srv)
	n := alert.Notification{ID: "evt_1-alert", Type: alert.TypeAlert, Kind: alert.KindCallFailed, Severity: alert.SeverityWarning,
		Provider: "ElevenLabs", DedupKey: "elevenlabs.call_failed", Title: "Call Failed for Contact <1> & co",
		Message: `Call failed: <script>alert("x")</script> & more`, Time: time.Unix(1700000000, 0)}
	if retry, err := tg.Notify(context.Background(), n); err != nil {
		t.Fatalf("Notify = %v, %v", retry, err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	var body sent
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.ChatID != "-100123" || body.ParseMode != "HTML" || !body.LinkPreviewOptions.IsDisabled {
		t.Errorf("request: %+v", body)
	}
	if !strings.HasPrefix(body.Text, "<b>Call Failed for Contact &lt;1&gt; &amp; co</b>\n") ||
		!strings.Contains(body.Text, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more") ||
		strings.Contains(body.Text, "<script>") {
		t.Errorf("text not escaped: %q", body.Text)
	}
	alerttest.AssertNoSecrets(t, "telegram body", reqs[0].Body, token)
	alerttest.AssertNoSecretsInHeader(t, "telegram", reqs[0].Header, token)
}

func TestFormatStaysWithin4096(t *testing.T) {
	t.Parallel()
	for _, msg := range []string{
		strings.Repeat("a", 10000),
		strings.Repeat("<&>", 5000), // each character escapes to 4 or 5
		strings.Repeat("🔥", 5000),   // two UTF-16 code units each
		strings.Repeat("é<", 3000),
	} {
		n := alert.Notification{Title: strings.Repeat("T", 300), Message: msg, Severity: alert.SeverityInfo, Time: time.Now()}
		text := telegram.Format(n)
		if l := len(utf16.Encode([]rune(text))); l > telegram.MaxTextLen {
			t.Errorf("text of %d UTF-16 units for a message of %.10q…", l, msg)
		}
		if !strings.Contains(text, "…") {
			t.Errorf("a cut message does not say so")
		}
		// No entity is cut in half: every '&' starts a complete entity.
		for i := 0; i < len(text); i++ {
			if text[i] == '&' {
				end := strings.IndexByte(text[i:], ';')
				if end < 0 || end > 6 {
					t.Fatalf("broken entity at %d: %q", i, text[i:min(len(text), i+8)])
				}
			}
		}
	}
}

func TestNotifyHonours429RetryAfter(t *testing.T) {
	t.Parallel()
	srv := fakeBotAPI(t)
	srv.Respond(func(alerttest.Request) alerttest.Reply {
		return alerttest.Reply{Status: 429, Body: `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 17","parameters":{"retry_after":17}}`}
	})
	retry, err := newNotifier(t, srv).Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
	if !retry || fault.KindOf(err) != fault.KindRateLimited || fault.RetryAfterOf(err) != 17*time.Second {
		t.Fatalf("Notify = %v, %v (retry after %s)", retry, err, fault.RetryAfterOf(err))
	}
	if !strings.Contains(err.Error(), "Too Many Requests: retry after 17") {
		t.Errorf("the API's description is missing: %v", err)
	}
}

// parameters.retry_after is cut to fault.MaxRetryAfter before it becomes a duration: a
// garbage value must not overflow into a negative wait (or a wait of centuries).
func TestNotifyClampsRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ra   string
		want time.Duration
	}{
		{"9223372037", fault.MaxRetryAfter},
		{"9223372036854775807", fault.MaxRetryAfter},
		{"100000", fault.MaxRetryAfter},
		{"86400", fault.MaxRetryAfter},
		{"3600", time.Hour},
		{"-5", 0},
	} {
		srv := fakeBotAPI(t)
		srv.Respond(func(alerttest.Request) alerttest.Reply {
			return alerttest.Reply{Status: 429, Body: `{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":` + tc.ra + `}}`}
		})
		_, err := newNotifier(t, srv).Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
		if got := fault.RetryAfterOf(err); got != tc.want {
			t.Errorf("retry_after %s: wait %v, want %v", tc.ra, got, tc.want)
		}
	}
}

// The Bot API URL may be a proxy's with a token of its own in its path; an answer quoting the
// request must show neither that token nor the bot's.
func TestNotifyErrorHidesTheEndpoint(t *testing.T) {
	t.Parallel()
	const proxyToken = "pxy0Kq2Wm5Xr9Tn3Vb7Lc1Yd"
	srv := alerttest.NewRecorder(t)
	srv.Respond(func(r alerttest.Request) alerttest.Reply {
		return alerttest.Reply{Status: 404, Body: `{"ok":false,"error_code":404,"description":"Not Found: ` + r.Path + `"}`}
	})
	tg, err := telegram.New(telegram.Options{BotToken: token, ChatID: "42", APIURL: strings.Replace(srv.URL, "http://", "HTTP://", 1) + "/relay/" + proxyToken, Client: alerttest.HTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
	if err == nil {
		t.Fatal("Notify succeeded")
	}
	for _, leak := range []string{proxyToken, token[10:30]} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q shows %q", err, leak)
		}
	}
}

func TestNotifyRetryTable(t *testing.T) {
	t.Parallel()
	srv := fakeBotAPI(t)
	tg := newNotifier(t, srv)
	for _, c := range alerttest.RetryCases() {
		if c.Status == 403 {
			c.WantKind = fault.KindConfiguration // the Bot API's 403 is about the chat, not the token
		}
		srv.Respond(func(alerttest.Request) alerttest.Reply {
			if c.Status/100 == 2 {
				return alerttest.Reply{Status: c.Status, Header: c.Header, Body: `{"ok":true,"result":{}}`}
			}
			return alerttest.Reply{Status: c.Status, Header: c.Header,
				Body: fmt.Sprintf(`{"ok":false,"error_code":%d,"description":"error %d"}`, c.Status, c.Status)}
		})
		retry, err := tg.Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
		c.Check(t, retry, err)
	}
}

func TestTokenNeverInErrors(t *testing.T) {
	t.Parallel()
	srv := fakeBotAPI(t)
	url := srv.URL
	srv.Close() // the API is unreachable
	tg, err := telegram.New(telegram.Options{BotToken: token, ChatID: "1", APIURL: url, Client: alerttest.HTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := tg.Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
	if err == nil || !retry || strings.Contains(err.Error(), "AAFakeToken") {
		t.Fatalf("Notify to an unreachable API = %v, %v", retry, err)
	}
	for want, o := range map[string]telegram.Options{
		"BotToken is required": {ChatID: "1"},
		"ChatID is required":   {BotToken: token},
		"APIURL must be":       {BotToken: token, ChatID: "1", APIURL: "api.telegram.org"},
	} {
		if _, err := telegram.New(o); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), token) {
			t.Errorf("%s: New = %v", want, err)
		}
	}
}

// botAPIErrors are sendMessage refusals as the Bot API sends them: status, error_code,
// description and parameters.
func botAPIErrors() []alerttest.RetryCase {
	row := func(name string, status int, desc, params string, kind fault.Kind, retry bool, want ...string) alerttest.RetryCase {
		body := fmt.Sprintf(`{"ok":false,"error_code":%d,"description":%q`, status, desc)
		if params != "" {
			body += `,"parameters":` + params
		}
		return alerttest.RetryCase{Name: name, Status: status, Body: body + "}", WantErr: true, WantRetry: retry,
			WantKind: kind, WantText: append([]string{fmt.Sprintf("Telegram answered HTTP %d: %s", status, desc)}, want...)}
	}
	limited := row("flood", 429, "Too Many Requests: retry after 35", `{"retry_after":35}`, fault.KindRateLimited, true)
	limited.WantRetryAfter = 35 * time.Second
	return []alerttest.RetryCase{
		row("chat not found", 400, "Bad Request: chat not found", "", fault.KindConfiguration, true,
			"check TELEGRAM_CHAT_ID -100123"),
		row("upgraded to a supergroup", 400, "Bad Request: group chat was upgraded to a supergroup chat",
			`{"migrate_to_chat_id":-1001234567890}`, fault.KindConfiguration, true,
			"set TELEGRAM_CHAT_ID to -1001234567890"),
		row("no rights", 400, "Bad Request: not enough rights to send text messages to the chat", "",
			fault.KindConfiguration, true, "TELEGRAM_CHAT_ID"),
		row("blocked", 403, "Forbidden: bot was blocked by the user", "", fault.KindConfiguration, true,
			"the bot may not write to TELEGRAM_CHAT_ID -100123"),
		row("kicked", 403, "Forbidden: bot was kicked from the supergroup chat", "", fault.KindConfiguration, true,
			"add the bot to the chat"),
		row("not a member", 403, "Forbidden: bot is not a member of the channel chat", "", fault.KindConfiguration, true),
		row("token refused", 401, "Unauthorized", "", fault.KindAuthentication, true, "TELEGRAM_BOT_TOKEN"),
		row("token unroutable", 404, "Not Found", "", fault.KindConfiguration, true, "TELEGRAM_BOT_TOKEN", "TELEGRAM_API_URL"),
		row("message too long", 400, "Bad Request: message is too long", "", fault.KindInvalidPayload, false),
		row("bad HTML", 400, `Bad Request: can't parse entities: Unsupported start tag "x" at byte offset 3`, "",
			fault.KindInvalidPayload, false),
		limited,
		row("internal", 500, "Internal Server Error", "", fault.KindUnavailable, true),
		row("gateway", 502, "Bad Gateway", "", fault.KindUnavailable, true),
	}
}

// TestNotifyBotAPIErrors replays the Bot API's refusals: a chat problem is configuration that
// says which setting to fix (with the new id of an upgraded group), a refused token is
// authentication, and only a message the API cannot take is dropped. No error shows the
// token.
func TestNotifyBotAPIErrors(t *testing.T) {
	t.Parallel()
	srv := fakeBotAPI(t)
	tg := newNotifier(t, srv)
	for _, c := range botAPIErrors() {
		srv.Respond(func(alerttest.Request) alerttest.Reply { return c.Reply() })
		retry, err := tg.Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
		c.Check(t, retry, err)
		if err != nil {
			alerttest.AssertNoSecrets(t, c.Name+" error", []byte(err.Error()), token, strings.Split(token, ":")[1])
		}
	}
}

// TestNotifyEchoedTokenIsRedacted: a proxy that echoes the request line cannot put the token
// into the error.
func TestNotifyEchoedTokenIsRedacted(t *testing.T) {
	t.Parallel()
	srv := fakeBotAPI(t)
	srv.Respond(func(r alerttest.Request) alerttest.Reply {
		return alerttest.Reply{Status: 502, Body: "upstream failed for POST " + r.Path}
	})
	_, err := newNotifier(t, srv).Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
	if err == nil {
		t.Fatal("no error")
	}
	alerttest.AssertNoSecrets(t, "error", []byte(err.Error()), token, strings.Split(token, ":")[1])
}

func TestNotifyDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	srv, other := fakeBotAPI(t), alerttest.NewRecorder(t)
	c := alerttest.RedirectCase(other.URL)
	srv.Respond(func(alerttest.Request) alerttest.Reply { return c.Reply() })
	retry, err := newNotifier(t, srv).Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
	c.Check(t, retry, err)
	if n := len(other.Requests()); n != 0 {
		t.Errorf("the redirect was followed: the other host got %d requests", n)
	}
	alerttest.AssertNoSecrets(t, "error", []byte(err.Error()), token, "stolen")
}
