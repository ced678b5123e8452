// Package slack posts alert notifications to a Slack incoming webhook: a fallback "text"
// and Block Kit blocks (a header, the message in mrkdwn, the details as context), with
// Slack's control characters (&, <, >) escaped and every text within Slack's limits.
//
// Slack answers a refused post with a status and a short error string as the body. Those
// that an operator must fix (an archived or deleted channel, a revoked webhook, a workspace
// restriction) are configuration errors: the notification stays queued and the channel's
// breaker sees them. Only a payload Slack cannot take is dropped.
package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/config/field"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

// Name is the channel's display name.
const Name = "Slack"

// Slack's limits, in characters.
const (
	maxHeader  = 150
	maxSection = 3000
	maxContext = 2000
	maxText    = 3000
)

// Options configures a Notifier.
type Options struct {
	// WebhookURL is the incoming webhook URL; it is the credential.
	WebhookURL secret.Secret
	// Client sends the requests (the worker's shared outbound client: no redirects, capped
	// bodies); nil makes a private one. Each attempt is bounded by its context.
	Client *httpx.Client
	// Now is the clock for Retry-After dates; nil is time.Now.
	Now func() time.Time
}

// Notifier posts to one incoming webhook. Safe for concurrent use.
type Notifier struct {
	url     string
	secrets []string // what no error may show: the URL and its pieces (redact.URLSecrets)
	client  *httpx.Client
	now     func() time.Time
}

// Validate reports a missing or bad WebhookURL as a *field.Error that never contains the
// URL.
func (o Options) Validate() error {
	if p := alert.URLProblem(o.WebhookURL.Reveal()); p != "" {
		return &field.Error{Field: "WebhookURL", Problem: p}
	}
	return nil
}

// New returns a Notifier for o, or Validate's error. Errors never contain the URL's path.
func New(o Options) (*Notifier, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	raw := strings.TrimSpace(o.WebhookURL.Reveal())
	client, now, err := alert.HTTPDefaults(o.Client, o.Now)
	if err != nil {
		return nil, err
	}
	return &Notifier{url: raw, secrets: redact.URLSecrets(raw), client: client, now: now}, nil
}

// Message is the incoming-webhook payload.
type Message struct {
	Text   string  `json:"text"`
	Blocks []Block `json:"blocks"`
}

// Block is a Block Kit block (header, section or context).
type Block struct {
	Type     string       `json:"type"`
	Text     *TextObject  `json:"text,omitempty"`
	Elements []TextObject `json:"elements,omitempty"`
}

// TextObject is a Block Kit text object.
type TextObject struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Format builds the payload for n.
func Format(n alert.Notification) Message {
	title := alert.Truncate(n.Title, maxHeader)
	return Message{
		Text: alert.Truncate(escape(n.Subject()+": "+n.Message), maxText),
		Blocks: []Block{
			{Type: "header", Text: &TextObject{Type: "plain_text", Text: title}},
			{Type: "section", Text: &TextObject{Type: "mrkdwn", Text: alert.Truncate(escape(n.Message), maxSection)}},
			{Type: "context", Elements: []TextObject{{Type: "mrkdwn",
				Text: alert.Truncate(escape(strings.Join(n.Details(), " · ")), maxContext)}}},
		},
	}
}

// escape replaces the three characters Slack's mrkdwn treats as control characters.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Notify posts the notification. Slack answers 200 "ok", or an error status with a short
// text such as "invalid_payload" or "channel_is_archived" (see verdict).
func (s *Notifier) Notify(ctx context.Context, n alert.Notification) (bool, error) {
	body, err := json.Marshal(Format(n))
	if err != nil {
		return false, fmt.Errorf("encode slack message: %w", err)
	}
	resp, err := alert.PostJSON(ctx, s.client, s.url, nil, body)
	if err != nil {
		return alert.TransportError(Name, err)
	}
	return alert.CheckHTTP(Name, resp, verdict(resp.Body), s.now(), s.secrets...)
}

// errorFix maps the incoming-webhook error strings an operator must act on (Slack's
// "Handling errors" table) to what to do. Each is a configuration error, whatever its status
// (400 user_not_found, 403 action_prohibited and invalid_token, 404 channel_not_found and
// no_service, 410 channel_is_archived and team_disabled): the webhook will refuse every
// notification until it is fixed, so they wait rather than being dropped.
var errorFix = map[string]string{
	"channel_not_found":                 "the webhook's channel was deleted or is private to the app: create an incoming webhook for an existing channel and set SLACK_WEBHOOK_URL",
	"channel_is_archived":               "the webhook's channel is archived: unarchive it, or create an incoming webhook for another channel and set SLACK_WEBHOOK_URL",
	"user_not_found":                    "the webhook's user no longer exists: create a new incoming webhook and set SLACK_WEBHOOK_URL",
	"action_prohibited":                 "a workspace admin restricts posting in this channel: ask them to allow the app, or use another channel's webhook in SLACK_WEBHOOK_URL",
	"posting_to_general_channel_denied": "only admins may post in this channel: use another channel's webhook in SLACK_WEBHOOK_URL",
	"no_service":                        "the webhook is disabled, removed or mistyped: create a new incoming webhook and set SLACK_WEBHOOK_URL",
	"no_service_id":                     "the webhook URL is mistyped: copy it again into SLACK_WEBHOOK_URL",
	"invalid_token":                     "the webhook's token is invalid or revoked: create a new incoming webhook and set SLACK_WEBHOOK_URL",
	"no_team":                           "the webhook's workspace no longer exists: create a webhook in an active workspace and set SLACK_WEBHOOK_URL",
	"team_disabled":                     "the webhook's workspace is disabled: create a webhook in an active workspace and set SLACK_WEBHOOK_URL",
}

// payloadErrors are the error strings of a payload Slack cannot take: this notification is
// dropped, whatever its status.
var payloadErrors = map[string]bool{
	"invalid_payload":                         true,
	"too_many_attachments":                    true,
	"invalid_blocks":                          true,
	"invalid_blocks_format":                   true,
	"invalid_attachments":                     true,
	"missing_text_or_fallback_or_attachments": true,
	"no_text":                                 true,
}

// verdict reads an error answer's body: Slack's error string becomes the error's code, and
// decides the kind of a 4xx (see errorFix and payloadErrors). Anything else is left to the
// status.
func verdict(body []byte) alert.Verdict {
	code := strings.TrimSpace(string(body))
	if code == "" || len(code) > 64 || strings.Trim(code, "abcdefghijklmnopqrstuvwxyz_") != "" {
		return alert.Verdict{} // not one of Slack's error strings (an HTML page, a proxy's text)
	}
	v := alert.Verdict{Code: code}
	if fix, ok := errorFix[code]; ok {
		v.Kind, v.Fix = fault.KindConfiguration, fix
	} else if payloadErrors[code] {
		v.Kind = fault.KindInvalidPayload
	}
	return v
}
