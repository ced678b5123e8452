// Package pagerduty sends alert notifications to PagerDuty's Events API v2: opened,
// escalated, alert and summary notifications as "trigger" events and resolved ones as
// "resolve", all with the incident's dedup key, so PagerDuty keeps one alert per incident and
// closes it when the incident resolves.
//
// The Events API refuses an event with 400 "invalid event" and a list of errors. When they
// blame the routing key, every event would be refused the same way: that is a configuration
// error (the notification stays queued and the breaker sees it), not an invalid payload.
package pagerduty

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
const Name = "PagerDuty"

// DefaultURL is the Events API v2 endpoint.
const DefaultURL = "https://events.pagerduty.com/v2/enqueue"

// DefaultSource is payload.source when none is configured.
const DefaultSource = "callagent"

// Limits of the Events API v2.
const (
	maxSummary  = 1024
	maxDedupKey = 255
)

// Options configures a Notifier.
type Options struct {
	// RoutingKey is the integration key of an Events API v2
	// integration.
	RoutingKey secret.Secret
	// URL (default https://events.pagerduty.com/v2/enqueue).
	URL string
	// Source (default callagent) is payload.source: where it happens.
	Source string
	// Client sends the requests (the worker's shared outbound client: no redirects, capped
	// bodies); nil makes a private one. Each attempt is bounded by its context.
	Client *httpx.Client
	// Now is the clock for Retry-After dates; nil is time.Now.
	Now func() time.Time
}

// Notifier sends to one PagerDuty service. Safe for concurrent use.
type Notifier struct {
	key     string
	url     string
	secrets []string // what no error may show: the key, the URL and its pieces (a proxy's token)
	source  string
	client  *httpx.Client
	now     func() time.Time
}

// WithDefaults returns o with every unset option at its default.
func (o Options) WithDefaults() Options {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if strings.TrimSpace(o.Source) == "" {
		o.Source = DefaultSource
	}
	return o
}

// Validate reports every bad option of o (after WithDefaults), each a *field.Error naming
// the field; no problem contains the key.
func (o Options) Validate() error {
	var l field.List
	l.Required("RoutingKey", o.RoutingKey.Reveal(), "is required")
	if p := alert.URLProblem(o.URL); p != "" {
		l.Addf("URL", "%s", p)
	}
	return l.Err()
}

// New returns a Notifier for o with its defaults, or Validate's error.
func New(o Options) (*Notifier, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	key := strings.TrimSpace(o.RoutingKey.Reveal())
	client, now, err := alert.HTTPDefaults(o.Client, o.Now)
	if err != nil {
		return nil, err
	}
	return &Notifier{key: key, url: o.URL, secrets: append([]string{key}, redact.URLSecrets(o.URL)...),
		source: alert.Truncate(o.Source, 255), client: client, now: now}, nil
}

// Event is an Events API v2 request body.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key"`
	Client      string   `json:"client,omitempty"`
	Payload     *Payload `json:"payload,omitempty"`
}

// Payload describes a triggered alert.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// apiResponse is the Events API's answer.
type apiResponse struct {
	Status  string   `json:"status"`
	Message string   `json:"message"`
	Errors  []string `json:"errors"`
}

// Build returns the Events API body for n (routing key included).
func (p *Notifier) Build(n alert.Notification) Event {
	ev := Event{RoutingKey: p.key, DedupKey: dedupKey(n), Client: "callagent-resilience"}
	if n.Type == alert.TypeResolved {
		ev.EventAction = "resolve"
		return ev
	}
	ev.EventAction = "trigger"
	details := map[string]any{"message": n.Message, "type": string(n.Type), "notification_id": n.ID}
	if n.Count > 0 {
		details["events"] = n.Count
	}
	if n.Suppressed > 0 {
		details["repeats_suppressed"] = n.Suppressed
	}
	if len(n.Reporters) > 0 {
		details["reported_by"] = n.Reporters
	}
	if len(n.Reasons) > 0 {
		details["reasons"] = n.Reasons
	}
	ev.Payload = &Payload{
		Summary:       alert.Truncate(n.Title+": "+n.Message, maxSummary),
		Source:        p.source,
		Severity:      string(n.Severity), // critical, warning and info are PagerDuty severities
		Timestamp:     n.Time.UTC().Format(time.RFC3339),
		Component:     n.Provider,
		Group:         "callagent",
		Class:         string(n.Kind),
		CustomDetails: details,
	}
	return ev
}

// dedupKey is the incident key for incident notifications, so trigger and resolve meet; a
// one-off alert or summary gets its own key.
func dedupKey(n alert.Notification) string {
	switch n.Type {
	case alert.TypeOpened, alert.TypeEscalated, alert.TypeResolved:
		return alert.Truncate(n.DedupKey, maxDedupKey)
	default:
		return alert.Truncate(n.DedupKey+"."+n.ID, maxDedupKey)
	}
}

// Notify sends the event. PagerDuty answers 202 with {"status":"success",…}, 400 for an
// invalid event, 429 when throttled, 5xx when it cannot take events now (see verdict).
func (p *Notifier) Notify(ctx context.Context, n alert.Notification) (bool, error) {
	body, err := json.Marshal(p.Build(n))
	if err != nil {
		return false, fmt.Errorf("encode pagerduty event: %w", err)
	}
	resp, err := alert.PostJSON(ctx, p.client, p.url, nil, body)
	if err != nil {
		return alert.TransportError(Name, err)
	}
	return alert.CheckHTTP(Name, resp, verdict(resp), p.now(), p.secrets...)
}

// verdict reads the Events API's error document. A 400 whose errors blame the routing key
// ("Invalid routing key", "Length of 'routing_key' is incorrect") is configuration; any other
// 400 is this event's fault and left to the status (dropped). A 404 means PAGERDUTY_URL is
// not the Events API.
func verdict(resp alert.Response) alert.Verdict {
	var ar apiResponse
	_ = json.Unmarshal(resp.Body, &ar) // an unreadable body leaves the status to decide
	v := alert.Verdict{Detail: ar.Message}
	if len(ar.Errors) > 0 {
		v.Detail += ": " + strings.Join(ar.Errors, "; ")
	}
	switch text := strings.ToLower(v.Detail); {
	case resp.Status == http.StatusBadRequest && (strings.Contains(text, "routing key") || strings.Contains(text, "routing_key")):
		v.Kind = fault.KindConfiguration
		v.Fix = "check PAGERDUTY_ROUTING_KEY: the 32-character integration key of an Events API v2 integration"
	case resp.Status == http.StatusNotFound:
		v.Fix = "check PAGERDUTY_URL: the Events API v2 enqueue endpoint"
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		v.Fix = "check PAGERDUTY_ROUTING_KEY"
	}
	return v
}
