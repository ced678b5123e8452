// Package crm records completed calls in a CRM through a webhook: each call.CallResult is
// POSTed as JSON to CRM_WEBHOOK_URL with an Idempotency-Key header equal to the contact id,
// so a retried or redelivered record is not stored twice.
//
// Idempotency-Key semantics are Stripe's and the IETF draft's
// (draft-ietf-httpapi-idempotency-key-header): a repeat of a completed request gets the
// first answer replayed, a 2xx, which is success; a 409 Conflict means a request with the
// same key is still being processed, not that the record exists. So a 409 is a transient
// failure (service_unavailable, Retry-After honoured) and the retry sends the same key
// again. A receiver that answers 409 for a record it already holds would be retried until
// the attempts run out: it must answer 2xx to a repeat instead.
//
// Failures are reported as facts (status, message, Retry-After, the x-request-id or
// request-id header) to fault.Classify, so the CRM step gets the same retries and breaker as
// the other providers.
//
// Health: a webhook URL cannot be probed safely (a GET or HEAD of it, or of its origin, may
// create records, trip the receiver's own protections or say nothing about the webhook), so
// Probe succeeds without a request unless CRM_HEALTH_URL names an endpoint made for it.
package crm

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

// Defaults of Options.
const (
	DefaultName = "CRM"
	// DefaultTimeout bounds one call when Options.Timeout is zero.
	DefaultTimeout = 10 * time.Second
)

// IdempotencyHeader carries the contact id on every record.
const IdempotencyHeader = "Idempotency-Key"

// ErrNoContactID is returned (inside an invalid_payload *fault.ServiceError) for a result
// without a contact id: it could not be made idempotent.
var ErrNoContactID = errors.New("call result has no contact id")

// Options configures a Client.
type Options struct {
	// Name is the display name in errors, logs and breakers; default "CRM".
	Name string
	// WebhookURL receives the records; required. It may hold a token
	// in its path or query: it never appears in errors (only its scheme and host do).
	WebhookURL string
	// HealthURL is an endpoint that answers 2xx to GET when the CRM is
	// healthy; empty makes Probe a no-op success.
	HealthURL string
	// Token (<prefix>TOKEN), when set, is sent as Authorization: Bearer on every request.
	Token secret.Secret
	// Timeout bounds one call, body included, whatever the caller's context allows; default
	// DefaultTimeout. Pass the step's timeout.
	Timeout time.Duration
	// HTTP is the shared client; nil builds a private one with the defaults.
	HTTP *httpx.Client
	// Redactor scrubs CRM messages; the token and the webhook and health URLs (whole, their
	// path and query, their query values and long path segments: see redact.URLSecrets) are
	// added to it. Nil uses a private one.
	Redactor *redact.Redactor
}

// Client posts call results to the CRM webhook. It implements call.Recorder and
// resilience.Prober and is safe for concurrent use.
type Client struct {
	o   Options
	red *redact.Redactor
	hc  *httpx.Client
}

// WithDefaults returns o with every unset option at its default.
func (o Options) WithDefaults() Options {
	o.Name = cmp.Or(o.Name, DefaultName)
	o.Timeout = cmp.Or(o.Timeout, DefaultTimeout)
	return o
}

// Validate reports every bad option of o (after WithDefaults), each a *field.Error naming
// the field.
func (o Options) Validate() error {
	s := httpx.NewSettings()
	if strings.TrimSpace(o.WebhookURL) == "" {
		s.Problemf("WebhookURL", "is required to record calls in the CRM")
	} else {
		s.EndpointURL("WebhookURL", o.WebhookURL, false)
	}
	s.EndpointURL("HealthURL", o.HealthURL, true)
	if o.Timeout < 0 {
		s.Problemf("Timeout", "is %v, must not be negative", o.Timeout)
	}
	return s.Err()
}

// New returns a Client for o with its defaults, or Validate's error listing every bad
// option.
func New(o Options) (*Client, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.WebhookURL, o.HealthURL = strings.TrimSpace(o.WebhookURL), strings.TrimSpace(o.HealthURL)
	hc := o.HTTP
	if hc == nil {
		var err error
		if hc, err = httpx.New(httpx.Options{}); err != nil {
			return nil, err
		}
	}
	red := o.Redactor
	if red == nil {
		red = redact.New()
	}
	red.Add(o.Token.Reveal())
	// Not only the whole URL: a receiver that quotes the request (Fastify's 404 "Route
	// POST:/hooks/catch/123/<token>/?sig=… not found", a request id echoing the URI) shows
	// its path and query, or a piece of them.
	for _, u := range []string{o.WebhookURL, o.HealthURL} {
		if u != "" {
			for _, sec := range redact.URLSecrets(u) {
				red.Add(sec)
			}
		}
	}
	return &Client{o: o, red: red, hc: hc}, nil
}

// Name returns the display name the client reports errors under.
func (c *Client) Name() string { return c.o.Name }

// RecordCall posts r to the webhook with Idempotency-Key: r.ContactID. A 2xx is success;
// anything else, a 409 (the same key still in progress) included, is a *fault.ServiceError
// (or ctx's error when ctx was cancelled), and a retry must post the same r again.
func (c *Client) RecordCall(ctx context.Context, r call.CallResult) error {
	if strings.TrimSpace(r.ContactID) == "" {
		return fault.InvalidContact(c.o.Name, ErrNoContactID)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("%s: encode call result of contact %s: %w", c.o.Name, r.ContactID, err)
	}
	resp, err := c.send(ctx, http.MethodPost, c.o.WebhookURL, body, func(h http.Header) {
		h.Set("Content-Type", "application/json")
		h.Set(IdempotencyHeader, r.ContactID)
	})
	return c.check(resp, err)
}

// Probe GETs CRM_HEALTH_URL and succeeds on a 2xx; without a health URL it succeeds at once
// without a request (see the package documentation).
func (c *Client) Probe(ctx context.Context) error {
	if c.o.HealthURL == "" {
		return ctx.Err()
	}
	return c.check(c.send(ctx, http.MethodGet, c.o.HealthURL, nil, nil))
}

func (c *Client) send(ctx context.Context, method, url string, body []byte, set func(http.Header)) (*httpx.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	req, err := httpx.NewRequest(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	if tok := c.o.Token.Reveal(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if set != nil {
		set(req.Header)
	}
	return c.hc.Do(req, 0)
}

// check turns the outcome of send into nil (a 2xx) or the classified failure.
func (c *Client) check(resp *httpx.Response, err error) error {
	switch {
	case resp == nil:
		return fault.Classify(httpx.Failure(c.o.Name, resp, err))
	case resp.OK() && err != nil:
		f := httpx.Failure(c.o.Name, resp, err)
		f.RequestID = c.requestID(resp.Header)
		return fault.Classify(f)
	case !resp.OK():
		return fault.Classify(fault.Facts{
			Provider:   c.o.Name,
			Status:     resp.Status,
			Message:    httpx.CleanMessage(c.red, message(resp)),
			RequestID:  c.requestID(resp.Header),
			RetryAfter: fault.ParseRetryAfter(resp.Header, c.hc.Now()),
			Err:        err,
		})
	}
	return nil
}

// maxRequestID is the longest request id kept; a longer header is not an id.
const maxRequestID = 200

// requestID returns the receiver's id of the request (X-Request-Id, else Request-Id), for
// the CRM's support, cleaned like a message; "" when absent or implausibly long.
func (c *Client) requestID(h http.Header) string {
	id := strings.TrimSpace(h.Get("X-Request-Id"))
	if id == "" {
		id = strings.TrimSpace(h.Get("Request-Id"))
	}
	if len(id) > maxRequestID {
		return ""
	}
	return httpx.CleanMessage(c.red, id)
}

// maxTextMessage is the longest plain-text body taken as a message; a longer one is a page,
// not a message.
const maxTextMessage = 1 << 10

// message finds a human message in a CRM's error body, whatever its shape: a JSON
// "message", "error" (string or object with a message) or "detail", or a plain-text body of
// at most maxTextMessage bytes.
func message(resp *httpx.Response) string {
	var b struct {
		Message string          `json:"message"`
		Error   json.RawMessage `json:"error"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(resp.Body, &b) == nil {
		if b.Message != "" {
			return b.Message
		}
		var s string
		if json.Unmarshal(b.Error, &s) == nil && s != "" {
			return s
		}
		var o struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(b.Error, &o) == nil && o.Message != "" {
			return o.Message
		}
		if json.Unmarshal(b.Detail, &s) == nil {
			return s
		}
		return ""
	}
	if resp.ContentType() == "text/plain" && !resp.Truncated && len(resp.Body) <= maxTextMessage {
		return string(resp.Body)
	}
	return ""
}
