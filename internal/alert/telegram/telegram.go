// Package telegram sends alert notifications with the Telegram Bot API's sendMessage, in HTML
// parse mode with every piece of text escaped, at most 4096 characters, honouring a 429's
// parameters.retry_after.
//
// The Bot API says why it refused in its description. When the chat is the problem — not
// found, the bot blocked or removed, a group upgraded to a supergroup (whose new id the error
// names, so the operator can set TELEGRAM_CHAT_ID) — the error is a configuration error: the
// notification stays queued and the channel's breaker sees it. A refused token (401) is an
// authentication error. Only a message the API cannot take is dropped.
package telegram

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/config/field"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

// Name is the channel's display name.
const Name = "Telegram"

// DefaultAPIURL is the Bot API's base URL.
const DefaultAPIURL = "https://api.telegram.org"

// MaxTextLen is sendMessage's limit on text, in UTF-16 code units (Telegram counts those).
const MaxTextLen = 4096

// Options configures a Notifier.
type Options struct {
	// BotToken is the bot's token from @BotFather.
	BotToken secret.Secret
	// ChatID is the chat to write to: a number, or @channelname.
	ChatID string
	// APIURL (default https://api.telegram.org) is the Bot API's base URL;
	// tests point it at a fake.
	APIURL string
	// Client sends the requests (the worker's shared outbound client: no redirects, capped
	// bodies); nil makes a private one. Each attempt is bounded by its context.
	Client *httpx.Client
	// Now is the clock for Retry-After dates; nil is time.Now.
	Now func() time.Time
}

// Notifier sends to one chat. Safe for concurrent use.
type Notifier struct {
	endpoint string // contains the token: never logged, never in an error
	token    string
	secrets  []string // what no error may show: the token, the endpoint and its pieces
	chatID   string
	client   *httpx.Client
	now      func() time.Time
}

// WithDefaults returns o with every unset option at its default.
func (o Options) WithDefaults() Options {
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	return o
}

// Validate reports every bad option of o (after WithDefaults), each a *field.Error naming
// the field; no problem contains the token.
func (o Options) Validate() error {
	var l field.List
	if token := strings.TrimSpace(o.BotToken.Reveal()); token == "" || strings.ContainsAny(token, "/?#% ") {
		l.Addf("BotToken", "is required and must be a bot token")
	}
	l.Required("ChatID", o.ChatID, "is required")
	if p := alert.URLProblem(o.APIURL); p != "" {
		l.Addf("APIURL", "%s", p)
	}
	return l.Err()
}

// New returns a Notifier for o with its defaults, or Validate's error.
func New(o Options) (*Notifier, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	token := strings.TrimSpace(o.BotToken.Reveal())
	client, now, err := alert.HTTPDefaults(o.Client, o.Now)
	if err != nil {
		return nil, err
	}
	endpoint := strings.TrimRight(o.APIURL, "/") + "/bot" + token + "/sendMessage"
	return &Notifier{
		endpoint: endpoint,
		token:    token,
		secrets:  append([]string{token}, redact.URLSecrets(endpoint)...),
		chatID:   strings.TrimSpace(o.ChatID),
		client:   client,
		now:      now,
	}, nil
}

// sendMessage is the request body.
type sendMessage struct {
	ChatID             string      `json:"chat_id"`
	Text               string      `json:"text"`
	ParseMode          string      `json:"parse_mode"`
	LinkPreviewOptions linkPreview `json:"link_preview_options"`
}

type linkPreview struct {
	IsDisabled bool `json:"is_disabled"`
}

// apiResponse is the Bot API's answer.
type apiResponse struct {
	OK          bool   `json:"ok"`
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter      int   `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// Notify sends the notification as one message.
func (t *Notifier) Notify(ctx context.Context, n alert.Notification) (bool, error) {
	body, err := json.Marshal(sendMessage{ChatID: t.chatID, Text: Format(n), ParseMode: "HTML",
		LinkPreviewOptions: linkPreview{IsDisabled: true}})
	if err != nil {
		return false, fmt.Errorf("encode telegram message: %w", err)
	}
	resp, err := alert.PostJSON(ctx, t.client, t.endpoint, nil, body)
	if err != nil {
		return alert.TransportError(Name, err)
	}
	var ar apiResponse
	_ = json.Unmarshal(resp.Body, &ar) // an unreadable body leaves the status to decide
	if resp.Status/100 == 2 && !ar.OK && len(resp.Body) > 0 {
		resp.Status = http.StatusBadGateway // a 2xx that says it failed: treat as a bad answer
	}
	return alert.CheckHTTP(Name, resp, t.verdict(resp.Status, ar), t.now(), t.secrets...)
}

// chatProblems are words of 400 descriptions that blame the chat, not the message: the chat
// id is wrong or the bot may not write there. Every message would fail the same way.
var chatProblems = []string{
	"chat not found", "chat_id is empty", "not enough rights", "have no rights", "need administrator rights",
	"bot was kicked", "bot is not a member", "chat_write_forbidden", "peer_id_invalid", "user not found",
	"group chat was upgraded", "chat is deactivated",
}

// verdict reads the Bot API's error answer: a refused token is authentication (401; a 404,
// a token the API cannot even route, is configuration naming the token and API URL); a chat
// the bot cannot write to (403, or a 400 that blames the chat) is configuration; a group
// upgraded to a supergroup is configuration and the fix names the new chat id. Any other 400 (a message too long, bad HTML) is the message's
// fault and left to the status.
func (t *Notifier) verdict(status int, ar apiResponse) alert.Verdict {
	v := alert.Verdict{Detail: ar.Description, RetryAfter: retryAfter(ar.Parameters.RetryAfter)}
	desc := strings.ToLower(ar.Description)
	switch {
	case ar.Parameters.MigrateToChatID != 0:
		v.Kind = fault.KindConfiguration
		v.Fix = "the group became a supergroup: set TELEGRAM_CHAT_ID to " + strconv.FormatInt(ar.Parameters.MigrateToChatID, 10)
	case status == http.StatusUnauthorized:
		v.Fix = "the Bot API refused TELEGRAM_BOT_TOKEN: set the token @BotFather gave the bot"
	case status == http.StatusNotFound:
		v.Fix = "check TELEGRAM_BOT_TOKEN and TELEGRAM_API_URL"
	case status == http.StatusForbidden:
		v.Kind = fault.KindConfiguration
		v.Fix = "the bot may not write to TELEGRAM_CHAT_ID " + t.chatID + ": add the bot to the chat (or unblock it), or set another chat"
	case status == http.StatusBadRequest && containsAny(desc, chatProblems):
		v.Kind = fault.KindConfiguration
		v.Fix = "check TELEGRAM_CHAT_ID " + t.chatID + " and that the bot is a member of the chat allowed to post"
	}
	return v
}

// retryAfter turns parameters.retry_after (seconds) into a wait: a negative one is none, and
// one over fault.MaxRetryAfter (a day, what a Retry-After header may ask for) is cut to it,
// so that a garbage value cannot overflow the duration into a negative wait.
func retryAfter(seconds int) time.Duration {
	const maxSeconds = int(fault.MaxRetryAfter / time.Second)
	return time.Duration(min(max(seconds, 0), maxSeconds)) * time.Second
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// Format renders n as sendMessage HTML: the title in bold, the message, the details in
// italics; every piece of text escaped, and the message cut so the whole stays within
// MaxTextLen UTF-16 code units.
func Format(n alert.Notification) string {
	head := "<b>" + esc(alert.Truncate(n.Title, 256)) + "</b>\n"
	tail := "\n\n<i>" + esc(strings.Join(n.Details(), "\n")) + "</i>"
	if utf16Len(head)+utf16Len(tail) > MaxTextLen/2 {
		tail = ""
	}
	budget := MaxTextLen - utf16Len(head) - utf16Len(tail)
	return head + fitEscaped(n.Message, budget) + tail
}

func esc(s string) string { return html.EscapeString(s) }

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// fitEscaped escapes s, cutting it (before escaping, so no entity is split) until the
// escaped text is within budget UTF-16 code units.
func fitEscaped(s string, budget int) string {
	e := esc(s)
	if utf16Len(e) <= budget {
		return e
	}
	r := []rune(s)
	lo, hi := 0, len(r) // the longest prefix whose escaped form plus "…" fits
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if utf16Len(esc(string(r[:mid])))+1 <= budget {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return esc(string(r[:lo])) + "…"
}
