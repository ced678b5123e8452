// Package slack posts alert notifications to a Slack incoming webhook: a fallback "text"
// and Block Kit blocks (a header, the message in mrkdwn, the details as context), with
// Slack's control characters (&, <, >) escaped and every text within Slack's limits.
package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/config"
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
	// WebhookURL (SLACK_WEBHOOK_URL) is the incoming webhook URL; it is the credential.
	WebhookURL config.Secret
	// Client sends the requests; nil uses a client without a global timeout.
	Client *http.Client
	// Now is the clock for Retry-After dates; nil is time.Now.
	Now func() time.Time
}

// Notifier posts to one incoming webhook. Safe for concurrent use.
type Notifier struct {
	url    string
	client *http.Client
	now    func() time.Time
}

// New checks o and returns a Notifier. Errors never contain the URL's path.
func New(o Options) (*Notifier, error) {
	raw := strings.TrimSpace(o.WebhookURL.Reveal())
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("SLACK_WEBHOOK_URL is required and must be an http or https URL")
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Notifier{url: raw, client: o.Client, now: o.Now}, nil
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
// text such as "invalid_payload" or "no_service".
func (s *Notifier) Notify(ctx context.Context, n alert.Notification) (bool, error) {
	body, err := json.Marshal(Format(n))
	if err != nil {
		return false, fmt.Errorf("encode slack message: %w", err)
	}
	resp, err := alert.PostJSON(ctx, s.client, s.url, nil, body)
	if err != nil {
		return alert.TransportError(Name, err)
	}
	return alert.CheckHTTP(Name, resp, "", 0, s.now(), s.url, strings.TrimPrefix(s.url, alert.SafeURL(s.url)))
}
