// Package pagerduty sends alert notifications to PagerDuty's Events API v2: opened,
// escalated, alert and summary notifications as "trigger" events and resolved ones as
// "resolve", all with the incident's dedup key, so PagerDuty keeps one alert per incident and
// closes it when the incident resolves.
package pagerduty

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
	// RoutingKey (PAGERDUTY_ROUTING_KEY) is the integration key of an Events API v2
	// integration.
	RoutingKey config.Secret
	// URL (PAGERDUTY_URL, default https://events.pagerduty.com/v2/enqueue).
	URL string
	// Source (PAGERDUTY_SOURCE, default callagent) is payload.source: where it happens.
	Source string
	// Client sends the requests; nil uses a client without a global timeout.
	Client *http.Client
	// Now is the clock for Retry-After dates; nil is time.Now.
	Now func() time.Time
}

// Notifier sends to one PagerDuty service. Safe for concurrent use.
type Notifier struct {
	key    string
	url    string
	source string
	client *http.Client
	now    func() time.Time
}

// New checks o and returns a Notifier. Errors name the setting and never contain the key.
func New(o Options) (*Notifier, error) {
	key := strings.TrimSpace(o.RoutingKey.Reveal())
	if key == "" {
		return nil, fmt.Errorf("PAGERDUTY_ROUTING_KEY is required")
	}
	if o.URL == "" {
		o.URL = DefaultURL
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("PAGERDUTY_URL must be an http or https URL, got %q", alert.SafeURL(o.URL))
	}
	if strings.TrimSpace(o.Source) == "" {
		o.Source = DefaultSource
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Notifier{key: key, url: o.URL, source: alert.Truncate(o.Source, 255), client: o.Client, now: o.Now}, nil
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
// invalid event, 429 when throttled.
func (p *Notifier) Notify(ctx context.Context, n alert.Notification) (bool, error) {
	body, err := json.Marshal(p.Build(n))
	if err != nil {
		return false, fmt.Errorf("encode pagerduty event: %w", err)
	}
	resp, err := alert.PostJSON(ctx, p.client, p.url, nil, body)
	if err != nil {
		return alert.TransportError(Name, err)
	}
	var ar apiResponse
	_ = json.Unmarshal(resp.Body, &ar)
	detail := ar.Message
	if len(ar.Errors) > 0 {
		detail += ": " + strings.Join(ar.Errors, "; ")
	}
	return alert.CheckHTTP(Name, resp, detail, 0, p.now(), p.key)
}
