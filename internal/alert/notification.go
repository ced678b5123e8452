package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// NotificationType says why a notification is sent.
type NotificationType string

// The notification types.
const (
	// TypeAlert is one event sent on its own: the first call failure of a quiet period.
	TypeAlert NotificationType = "alert"
	// TypeOpened is the first event of an incident.
	TypeOpened NotificationType = "opened"
	// TypeEscalated is sent once per incident, when a provider stays down longer than
	// SERVICE_DOWN_ALERT_AFTER.
	TypeEscalated NotificationType = "escalated"
	// TypeResolved closes an incident, with its duration and count.
	TypeResolved NotificationType = "resolved"
	// TypeSummary counts the events of a window beyond the first.
	TypeSummary NotificationType = "summary"
)

// Notification is what channels send: made by the dispatcher from one or more events, at
// most once per incident transition or window. Its ID is stable across retries and
// redeliveries (the webhook-id, the email Message-ID, the Nats-Msg-Id).
type Notification struct {
	// ID is derived from the event that caused it, e.g. "evt_…-opened".
	ID string `json:"id"`
	// Type is alert, opened, escalated, resolved or summary.
	Type NotificationType `json:"type"`
	// Kind is the kind of the causing event (the opening kind for an incident).
	Kind Kind `json:"kind"`
	// Severity is the event's or incident's; a resolved notification keeps the incident's,
	// so a channel that got the page gets the resolution.
	Severity Severity `json:"severity"`
	// Provider is the provider concerned, if any.
	Provider string `json:"provider,omitempty"`
	// DedupKey is the incident or summary key ("elevenlabs.down"): PagerDuty's dedup_key.
	DedupKey string `json:"dedup_key"`
	// Title is one line, e.g. "Circuit breaker OPENED for ElevenLabs": the email subject
	// and the "Sending alert: <title>" log line.
	Title string `json:"title"`
	// Message is the text under the title.
	Message string `json:"message"`
	// Time is when the notification was made (the causing event's time).
	Time time.Time `json:"time"`
	// OpenedAt and ResolvedAt bound an incident.
	OpenedAt   time.Time `json:"opened_at,omitzero"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// DurationSeconds is how long the incident lasted (resolved) or the window's length
	// (summary).
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
	// Count is how many events the incident or window held, the first one included.
	Count int `json:"count,omitempty"`
	// Suppressed is how many repeats were not sent while the incident was open.
	Suppressed int `json:"suppressed,omitempty"`
	// Reasons counts a summary's events by reason.
	Reasons map[string]int `json:"reasons,omitempty"`
	// ContactIDs samples a summary's contacts (at most 20).
	ContactIDs []string `json:"contact_ids,omitempty"`
	// Reporters are the workers that reported the incident.
	Reporters []string `json:"reporters,omitempty"`
	// Event is the event that caused the notification.
	Event *Event `json:"event,omitempty"`
}

// Duration returns DurationSeconds as a time.Duration.
func (n Notification) Duration() time.Duration {
	return time.Duration(n.DurationSeconds * float64(time.Second))
}

// Subject is the one-line form used as an email subject: "[CRITICAL] <title>".
func (n Notification) Subject() string {
	return "[" + strings.ToUpper(string(n.Severity)) + "] " + n.Title
}

// Details returns the facts under the message, one "Label: value" per line, for channels
// that render text.
func (n Notification) Details() []string {
	var out []string
	add := func(label, v string) {
		if v != "" {
			out = append(out, label+": "+v)
		}
	}
	add("Severity", string(n.Severity))
	add("Kind", string(n.Kind))
	add("Provider", n.Provider)
	if !n.OpenedAt.IsZero() {
		add("Opened", formatTime(n.OpenedAt))
	}
	if !n.ResolvedAt.IsZero() {
		add("Resolved", formatTime(n.ResolvedAt))
	}
	if n.DurationSeconds > 0 {
		add("Duration", formatDuration(n.Duration()))
	}
	if n.Count > 0 {
		add("Events", fmt.Sprint(n.Count))
	}
	if n.Suppressed > 0 {
		add("Repeats suppressed", fmt.Sprint(n.Suppressed))
	}
	if len(n.Reporters) > 0 {
		add("Reported by", strings.Join(n.Reporters, ", "))
	}
	add("Incident", n.DedupKey)
	add("Time", formatTime(n.Time))
	return out
}

// Text is the plain-text body: the message, a blank line, and the details.
func (n Notification) Text() string {
	return n.Message + "\n\n" + strings.Join(n.Details(), "\n")
}

// DecodeNotification parses a notification from its JSON.
func DecodeNotification(data []byte) (Notification, error) {
	var n Notification
	if err := json.Unmarshal(data, &n); err != nil {
		return Notification{}, fmt.Errorf("decode notification: %w", err)
	}
	if n.ID == "" || n.Title == "" || !n.Severity.Valid() {
		return Notification{}, errors.New("decode notification: id, title or severity missing")
	}
	return n, nil
}

// Notifier delivers a notification to one destination (an email address, a chat, a URL).
// Implementations must be safe for concurrent use and honour ctx.
//
// retry says whether the notification should be tried again later when err is not nil:
// true when time or an operator can fix it (the destination is down, rate-limits us, or
// rejects our credentials), false when this notification can never be accepted (it is
// malformed or too large). A *fault.ServiceError carries the details (kind, HTTP status,
// Retry-After). Errors never contain a secret.
type Notifier interface {
	Notify(ctx context.Context, n Notification) (retry bool, err error)
}

// Channel is a named Notifier with its minimum severity.
type Channel struct {
	// Name is the display name ("Email", "Telegram", …): it appears in logs, names the
	// channel's circuit breaker and (slugged) its durable consumer. Unique per dispatcher.
	Name string
	// Notifier sends.
	Notifier Notifier
	// MinSeverity drops less severe notifications for this channel (default info: all).
	MinSeverity Severity
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// formatDuration rounds to the second (to the millisecond below one second).
func formatDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// Titles: one line per notification, also the "Sending alert: <title>" log line.

// alertTitle names one call_failed or dead_lettered event sent on its own, in the seed's
// words ("Call Failed for Contact 1").
func alertTitle(k Kind, contactID string) string {
	switch k {
	case KindDeadLettered:
		return contactName(contactID) + " dead-lettered"
	case KindDeadLetterFailed:
		return contactName(contactID) + " could not be dead-lettered"
	}
	return "Call Failed for " + contactName(contactID)
}

// summaryTitle names a window of count events.
func summaryTitle(k Kind, provider string, count int, window time.Duration) string {
	what := "calls failed"
	switch k {
	case KindDeadLettered:
		what = "contacts dead-lettered"
	case KindDeadLetterFailed:
		what = "dead letters could not be written"
	}
	return fmt.Sprintf("%d %s (%s) in %s", count, what, orProvider(provider), formatDuration(window))
}

// escalatedTitle names the escalation of a provider's outage.
func escalatedTitle(provider string) string { return orProvider(provider) + " still down" }

// resolvedTitle names the resolution of an incident opened by kind k that lasted d.
func resolvedTitle(k Kind, provider string, d time.Duration) string {
	return fmt.Sprintf("RESOLVED: %s after %s", incidentName(k, orProvider(provider)), formatDuration(d))
}

// incidentName is the title of an incident opened by kind k.
func incidentName(k Kind, p string) string {
	switch k {
	case KindServiceDown:
		return p + " is down"
	case KindQuotaExhausted:
		return p + " quota exhausted"
	case KindAuthFailed:
		return p + " authentication failed"
	case KindFallbackActivated:
		return "Fallback took over from " + p
	default:
		return "Circuit breaker OPENED for " + p
	}
}

// reasonsText renders reason counts as "service_unavailable ×30, timeout ×7", most first.
func reasonsText(m map[string]int) string {
	type kv struct {
		k string
		v int
	}
	var list []kv
	for k, v := range m {
		list = append(list, kv{k, v})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].v != list[j].v {
			return list[i].v > list[j].v
		}
		return list[i].k < list[j].k
	})
	parts := make([]string, 0, len(list))
	for _, e := range list {
		parts = append(parts, fmt.Sprintf("%s ×%d", e.k, e.v))
	}
	return strings.Join(parts, ", ")
}
