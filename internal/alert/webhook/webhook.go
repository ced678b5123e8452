// Package webhook posts alert notifications as JSON to an HTTP endpoint, signed the Standard
// Webhooks way (https://www.standardwebhooks.com): headers webhook-id (the notification id,
// the same on every retry), webhook-timestamp (Unix seconds of the attempt) and
// webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>" keyed with the secret
// "whsec_<base64>". Receivers can verify with any Standard Webhooks library, or with Verify.
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
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/config"
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
	// URL (WEBHOOK_URL) is the endpoint; http or https.
	URL string
	// Secret (WEBHOOK_SECRET) is "whsec_" followed by the base64 key (at least 16 bytes).
	Secret config.Secret
	// Client sends the requests; nil uses a client without a global timeout (each attempt
	// is bounded by its context).
	Client *http.Client
	// Now is the clock for webhook-timestamp; nil is time.Now.
	Now func() time.Time
}

// Notifier posts notifications to one endpoint. Safe for concurrent use.
type Notifier struct {
	url    string
	key    []byte
	client *http.Client
	now    func() time.Time
}

// New checks o and returns a Notifier. Errors name the setting.
func New(o Options) (*Notifier, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("WEBHOOK_URL must be an http or https URL, got %q", alert.SafeURL(o.URL))
	}
	key, err := DecodeSecret(o.Secret.Reveal())
	if err != nil {
		return nil, fmt.Errorf("WEBHOOK_SECRET: %w", err)
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Notifier{url: o.URL, key: key, client: o.Client, now: o.Now}, nil
}

// DecodeSecret returns the key of a "whsec_<base64>" secret (standard or URL-safe base64,
// padded or not), at least 16 bytes long.
func DecodeSecret(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(secret), secretPrefix)
	if !ok || b64 == "" {
		return nil, errors.New("must be whsec_ followed by a base64 key")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(b64); err == nil {
			if len(key) < 16 {
				return nil, fmt.Errorf("the key is %d bytes, want at least 16", len(key))
			}
			return key, nil
		}
	}
	return nil, errors.New("the part after whsec_ is not base64")
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

// Notify posts the notification's JSON, signed. The webhook-id is the notification id, so
// the receiver can drop a repeat after a lost answer.
func (w *Notifier) Notify(ctx context.Context, n alert.Notification) (bool, error) {
	body, err := json.Marshal(n)
	if err != nil {
		return false, fmt.Errorf("encode notification %s: %w", n.ID, err)
	}
	now := w.now()
	ts := now.Unix()
	h := http.Header{}
	h.Set(HeaderID, n.ID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, Sign(w.key, n.ID, ts, body))
	resp, err := alert.PostJSON(ctx, w.client, w.url, h, body)
	if err != nil {
		return alert.TransportError(Name, err)
	}
	return alert.CheckHTTP(Name, resp, "", 0, now)
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
