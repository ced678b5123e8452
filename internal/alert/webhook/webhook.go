// Package webhook posts alert notifications to an HTTP endpoint the Standard Webhooks way
// (https://www.standardwebhooks.com). The body is the event
//
//	{"type": "alert.<kind>.<notification type>", "timestamp": "<RFC 3339>", "data": {…the notification…}}
//
// e.g. type "alert.breaker_opened.opened" then "alert.breaker_opened.resolved" for one
// incident, and timestamp the time of the event (not of the attempt). Headers: webhook-id
// (the notification id, the same on every retry), webhook-timestamp (Unix seconds of the
// attempt) and webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>" keyed with
// the secret "whsec_<base64>". Receivers can verify with any Standard Webhooks library, or
// with Verify.
//
// As the specification asks, a redirect is a failure (never followed), and 410 Gone — the
// receiver wants no more webhooks — is a configuration error: the notification stays queued,
// the channel's breaker sees it, and the operator disables the channel or fixes WEBHOOK_URL.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/callagent/resilience/internal/config/field"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

// Name is the channel's display name.
const Name = "Webhook"

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix starts every Standard Webhooks secret.
const secretPrefix = "whsec_"

// The key lengths the specification allows, in bytes (192 to 512 bits).
const (
	MinKeyLen = 24
	MaxKeyLen = 64
)

// EventPrefix starts every event type.
const EventPrefix = "alert"

// DefaultTolerance is how far a timestamp may be from now for Verify (the spec's 5 minutes).
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	ErrMissingHeaders = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrTimestamp      = errors.New("webhook: timestamp missing, malformed or outside the tolerance")
	ErrSignature      = errors.New("webhook: no matching signature")
)

// Options configures a Notifier.
type Options struct {
	// URL is the endpoint; http or https.
	URL string
	// Secret is "whsec_" followed by the standard, padded base64 of a 24 to
	// 64 byte key.
	Secret secret.Secret
	// Client sends the requests (the worker's shared outbound client: no redirects, capped
	// bodies); nil makes a private one. Each attempt is bounded by its context.
	Client *httpx.Client
	// Now is the clock for webhook-timestamp; nil is time.Now.
	Now func() time.Time
}

// Notifier posts notifications to one endpoint. Safe for concurrent use.
type Notifier struct {
	url     string
	key     []byte
	secrets []string // what no error may show: the secret, its key, the URL's path and query
	client  *httpx.Client
	now     func() time.Time
}

// Validate reports every bad option of o, each a *field.Error naming the field; no problem
// shows the secret.
func (o Options) Validate() error {
	var l field.List
	if p := alert.URLProblem(o.URL); p != "" {
		l.Addf("URL", "%s", p)
	}
	if _, err := DecodeSecret(o.Secret.Reveal()); err != nil {
		l.Addf("Secret", "%v", err)
	}
	return l.Err()
}

// New returns a Notifier for o, or Validate's error.
func New(o Options) (*Notifier, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	secret := strings.TrimSpace(o.Secret.Reveal())
	key, err := DecodeSecret(secret)
	if err != nil {
		return nil, err
	}
	client, now, err := alert.HTTPDefaults(o.Client, o.Now)
	if err != nil {
		return nil, err
	}
	return &Notifier{url: o.URL, key: key, client: client, now: now,
		secrets: append([]string{secret, strings.TrimPrefix(secret, secretPrefix)}, redact.URLSecrets(o.URL)...)}, nil
}

// DecodeSecret returns the key of a Standard Webhooks secret: "whsec_" followed by the
// standard base64 (A–Z, a–z, 0–9, + and /, padded with =) of a key of MinKeyLen to MaxKeyLen
// bytes. The error says what is wrong — the prefix, the base64 or the length — and never
// shows the secret.
func DecodeSecret(secret string) ([]byte, error) {
	const want = "must be whsec_ followed by the standard base64 of a 24 to 64 byte key"
	b64, ok := strings.CutPrefix(strings.TrimSpace(secret), secretPrefix)
	switch {
	case !ok:
		return nil, errors.New(want + "; it does not start with whsec_")
	case b64 == "":
		return nil, errors.New(want + "; nothing follows whsec_")
	case !isStdBase64(b64):
		return nil, errors.New(want + "; the part after whsec_ is not standard padded base64 " +
			"(only A-Z, a-z, 0-9, + and /, padded with = to a multiple of 4 characters)")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New(want + "; the part after whsec_ is not valid base64")
	}
	if len(key) < MinKeyLen || len(key) > MaxKeyLen {
		return nil, fmt.Errorf("%s; the key is %d bytes", want, len(key))
	}
	return key, nil
}

// isStdBase64 reports whether s has the alphabet and padding of padded standard base64. The
// decoder alone would also skip line breaks, which have no place in a secret.
func isStdBase64(s string) bool {
	if len(s)%4 != 0 {
		return false
	}
	body := strings.TrimRight(s, "=")
	if len(s)-len(body) > 2 {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// Sign returns the webhook-signature value for id, timestamp and body: "v1,<base64>".
func Sign(key []byte, id string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Event is the body posted: a Standard Webhooks payload.
type Event struct {
	// Type is "alert.<kind>.<notification type>", e.g. "alert.breaker_opened.resolved".
	Type string `json:"type"`
	// Timestamp is when the event happened (the notification's time), in RFC 3339.
	Timestamp string `json:"timestamp"`
	// Data is the notification.
	Data alert.Notification `json:"data"`
}

// EventType names n's event: "alert.<kind>.<notification type>" (e.g.
// "alert.breaker_opened.opened", "alert.call_failed.summary"), with every character outside
// [a-zA-Z0-9_] replaced by '_' so the dots stay the hierarchy's; parts that are empty are
// left out.
func EventType(n alert.Notification) string {
	parts := []string{EventPrefix}
	for _, p := range []string{string(n.Kind), string(n.Type)} {
		if p != "" {
			parts = append(parts, strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
					return r
				}
				return '_'
			}, p))
		}
	}
	return strings.Join(parts, ".")
}

// NewEvent wraps n as the event posted; a notification without a time takes now's.
func NewEvent(n alert.Notification, now time.Time) Event {
	at := n.Time
	if at.IsZero() {
		at = now
	}
	return Event{Type: EventType(n), Timestamp: at.UTC().Format(time.RFC3339Nano), Data: n}
}

// Notify posts the notification as a signed event. The webhook-id is the notification id, so
// the receiver can drop a repeat after a lost answer; the webhook-timestamp and the signature
// are the attempt's.
func (w *Notifier) Notify(ctx context.Context, n alert.Notification) (bool, error) {
	now := w.now()
	body, err := json.Marshal(NewEvent(n, now))
	if err != nil {
		return false, fmt.Errorf("encode notification %s: %w", n.ID, err)
	}
	ts := now.Unix()
	h := http.Header{}
	h.Set(HeaderID, n.ID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, Sign(w.key, n.ID, ts, body))
	resp, err := alert.PostJSON(ctx, w.client, w.url, h, body)
	if err != nil {
		return alert.TransportError(Name, err)
	}
	return alert.CheckHTTP(Name, resp, verdict(resp.Status), now, w.secrets...)
}

// verdict tells the operator what a refusal asks of them; the status decides the kind.
func verdict(status int) alert.Verdict {
	switch status {
	case http.StatusGone:
		return alert.Verdict{Fix: "the receiver asks for no more webhooks: set WEBHOOK_ENABLED=false, or WEBHOOK_URL to an endpoint that takes alerts"}
	case http.StatusNotFound:
		return alert.Verdict{Fix: "check WEBHOOK_URL"}
	case http.StatusUnauthorized, http.StatusForbidden:
		return alert.Verdict{Fix: "check that the receiver verifies with the same WEBHOOK_SECRET"}
	}
	return alert.Verdict{}
}

// Verify checks a received webhook: the three headers, a timestamp within tolerance of now
// (DefaultTolerance when 0), and one "v1," signature in the space-separated list matching
// body under secret ("whsec_…").
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := DecodeSecret(secret)
	if err != nil {
		return fmt.Errorf("webhook: secret %w", err)
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissingHeaders
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	want := Sign(key, id, ts, body)
	for _, sig := range strings.Fields(sigs) {
		if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) == 1 {
			return nil
		}
	}
	return ErrSignature
}
