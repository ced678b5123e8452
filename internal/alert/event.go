package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/redact"
)

// Kind names what happened. The values are stable: they are the last token of the subject
// (alerts.<severity>.<kind>), the "kind" of the JSON event and of every notification.
type Kind string

// The event kinds.
const (
	// KindBreakerOpened: a provider's circuit breaker opened on one worker (or opened again
	// after a failed half-open probe). Opens the provider's "down" incident.
	KindBreakerOpened Kind = "breaker_opened"
	// KindBreakerClosed: the breaker closed again on one worker. When no worker still reports
	// the provider down, the incident is resolved.
	KindBreakerClosed Kind = "breaker_closed"
	// KindServiceDown: a breaker stayed open longer than SERVICE_DOWN_ALERT_AFTER. Escalates
	// the "down" incident once (or opens it).
	KindServiceDown Kind = "service_down"
	// KindCallFailed: a contact's call failed (retries exhausted, or a permanent error).
	// Summarised per window.
	KindCallFailed Kind = "call_failed"
	// KindDeadLettered: a contact was written off to the dead-letter stream with a reason.
	// Summarised per window.
	KindDeadLettered Kind = "dead_lettered"
	// KindFallbackActivated: a fallback provider took over from Provider.
	KindFallbackActivated Kind = "fallback_activated"
	// KindQuotaExhausted: the provider refused for quota or credits; a human must act.
	KindQuotaExhausted Kind = "quota_exhausted"
	// KindAuthFailed: the provider rejected our credentials; a human must act.
	KindAuthFailed Kind = "auth_failed"
	// KindDeadLetterFailed: a contact's dead letter could not be written after several tries
	// (the dead-letter stream is gone, full or refuses the message). The contact stays in the
	// queue and is tried again at the longest redelivery delay; a human must act. Summarised
	// per window.
	KindDeadLetterFailed Kind = "dead_letter_failed"
)

// Kinds lists every kind, in documentation order.
var Kinds = []Kind{
	KindBreakerOpened, KindBreakerClosed, KindServiceDown, KindCallFailed,
	KindDeadLettered, KindFallbackActivated, KindQuotaExhausted, KindAuthFailed,
	KindDeadLetterFailed,
}

// Severity ranks events and notifications: info < warning < critical.
type Severity string

// The severities.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Severities lists the severities, least severe first.
var Severities = []Severity{SeverityInfo, SeverityWarning, SeverityCritical}

// ErrInvalidEvent is wrapped by every error Event.Validate returns.
var ErrInvalidEvent = errors.New("invalid alert event")

// Limits that keep alerts bounded.
const (
	// MaxMessageLen is the longest event message, in characters; longer ones are cut.
	MaxMessageLen = 1000
	// maxFieldLen bounds provider, contact id, reason and source, in characters.
	maxFieldLen = 128
	// maxIDLen bounds event ids.
	maxIDLen = 64
)

// role says what the dispatcher does with a kind.
type role uint8

const (
	roleOpen    role = iota + 1 // opens (or repeats) an incident
	roleResolve                 // withdraws one worker's report; may resolve
	roleSummary                 // counted per window
)

type kindInfo struct {
	severity  Severity
	condition string
	role      role
}

// kinds is the table of kinds: default severity, incident condition (the second part of
// the dedup key) and what the dispatcher does with it.
var kinds = map[Kind]kindInfo{
	KindBreakerOpened:     {SeverityCritical, conditionDown, roleOpen},
	KindServiceDown:       {SeverityCritical, conditionDown, roleOpen},
	KindBreakerClosed:     {SeverityInfo, conditionDown, roleResolve},
	KindQuotaExhausted:    {SeverityCritical, "quota", roleOpen},
	KindAuthFailed:        {SeverityCritical, "auth", roleOpen},
	KindFallbackActivated: {SeverityWarning, "fallback", roleOpen},
	KindCallFailed:        {SeverityWarning, "call_failed", roleSummary},
	KindDeadLettered:      {SeverityWarning, "dead_lettered", roleSummary},
	KindDeadLetterFailed:  {SeverityCritical, "dead_letter_failed", roleSummary},
}

// conditionDown is the condition of the breaker incident; breaker_closed resolves it and,
// with it, the provider's other incidents.
const conditionDown = "down"

// followerConditions are the incident conditions resolved together with the provider's
// "down" incident (the provider works again, so quota, credentials and fallback are fine).
var followerConditions = []string{"quota", "auth", "fallback"}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool { _, ok := kinds[k]; return ok }

// DefaultSeverity is the severity an event of kind k gets when none is set: critical for
// breaker_opened, service_down, quota_exhausted, auth_failed and dead_letter_failed; warning
// for call_failed, dead_lettered and fallback_activated; info for breaker_closed.
func (k Kind) DefaultSeverity() Severity { return kinds[k].severity }

// Valid reports whether s is one of Severities.
func (s Severity) Valid() bool { return s.rank() > 0 }

// AtLeast reports whether s is as severe as min or more.
func (s Severity) AtLeast(min Severity) bool { return s.rank() >= min.rank() }

func (s Severity) rank() int {
	switch s {
	case SeverityInfo:
		return 1
	case SeverityWarning:
		return 2
	case SeverityCritical:
		return 3
	}
	return 0
}

func maxSeverity(a, b Severity) Severity {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// ParseSeverity accepts "info", "warning" or "critical" (any case); empty means info.
func ParseSeverity(s string) (Severity, error) {
	v := Severity(strings.ToLower(strings.TrimSpace(s)))
	if v == "" {
		return SeverityInfo, nil
	}
	if !v.Valid() {
		return "", fmt.Errorf("unknown alert severity %q: one of info, warning, critical", s)
	}
	return v, nil
}

// Event is one alert event as published on alerts.<severity>.<kind>, in JSON. Build it with
// the constructors (CallFailed, FailureEvents, …) and hand it to Emitter.Emit, which fills
// ID, Time, Source, Severity and DedupKey when they are empty and makes the text safe.
type Event struct {
	// ID is unique per event ("evt_" + a NUID); it is the Nats-Msg-Id, so a re-publish is
	// dropped by the stream.
	ID string `json:"id"`
	// Kind is what happened.
	Kind Kind `json:"kind"`
	// Severity defaults to Kind.DefaultSeverity().
	Severity Severity `json:"severity"`
	// Provider is the display name of the provider concerned ("ElevenLabs"); may be empty.
	Provider string `json:"provider,omitempty"`
	// ContactID is the contact concerned, for contact-level kinds. Never a phone number.
	ContactID string `json:"contact_id,omitempty"`
	// Reason is the error category (a fault kind such as "service_unavailable", or a
	// dead-letter reason such as "max_deliveries").
	Reason string `json:"reason,omitempty"`
	// Message is the human text, redacted and at most MaxMessageLen characters.
	Message string `json:"message"`
	// Time is when it happened.
	Time time.Time `json:"time"`
	// DedupKey groups events into one incident or summary: "<provider slug>.<condition>",
	// e.g. "elevenlabs.down", "elevenlabs.call_failed".
	DedupKey string `json:"dedup_key"`
	// Source is the worker that emitted the event.
	Source string `json:"source,omitempty"`
}

// dedupKeyPattern is the shape of a dedup key: dot-separated lowercase tokens, valid in a
// KV key and a PagerDuty dedup_key.
var dedupKeyPattern = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)+$`)

// DedupKey returns the key that groups events of kind k about provider: the provider's
// slug and the kind's condition, e.g. DedupKey("ElevenLabs", KindBreakerOpened) is
// "elevenlabs.down". An empty provider is "fleet".
func DedupKey(provider string, k Kind) string {
	cond := kinds[k].condition
	if cond == "" {
		cond = string(k)
	}
	return Slug(provider) + "." + cond
}

// Slug lower-cases s and replaces every character other than a-z, 0-9, '_' and '-' with
// '_', at most 64 characters; empty becomes "fleet". It names providers in dedup keys and
// channels in consumer names.
func Slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		if b.Len() >= 64 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "fleet"
	}
	return b.String()
}

// Validate reports the first problem of a complete event (as the dispatcher receives it);
// errors wrap ErrInvalidEvent and name the field. Provider, contact id, reason and source
// must be at most 128 characters (Emit cuts them to that).
func (e Event) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
	}
	switch {
	case e.ID == "" || len(e.ID) > maxIDLen:
		return bad("id must be 1 to %d bytes, got %d", maxIDLen, len(e.ID))
	case !e.Kind.Valid():
		return bad("unknown kind %q", e.Kind)
	case !e.Severity.Valid():
		return bad("unknown severity %q", e.Severity)
	case e.Time.IsZero():
		return bad("time is missing")
	case !dedupKeyPattern.MatchString(e.DedupKey) || len(e.DedupKey) > 200:
		return bad("dedup key %q is not <provider>.<condition> in lower case", e.DedupKey)
	case utf8.RuneCountInString(e.Message) > MaxMessageLen:
		return bad("message is longer than %d characters", MaxMessageLen)
	}
	// Emit cuts these to maxFieldLen before it validates, so only an event it did not make
	// can be longer.
	for _, f := range []struct{ name, v string }{
		{"provider", e.Provider}, {"contact id", e.ContactID}, {"reason", e.Reason}, {"source", e.Source},
	} {
		if utf8.RuneCountInString(f.v) > maxFieldLen {
			return bad("%s is longer than %d characters", f.name, maxFieldLen)
		}
	}
	return nil
}

// Subject returns the subject the event is published on: <prefix>.<severity>.<kind>.
func (e Event) Subject(prefix string) string {
	return prefix + "." + string(e.Severity) + "." + string(e.Kind)
}

// DecodeEvent parses and validates an event from its JSON.
func DecodeEvent(data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// sanitized returns e with every text field redacted (secrets, credential shapes, phone
// numbers) and cut to its bound.
func (e Event) sanitized(r *redact.Redactor) Event {
	e.Message = Truncate(r.Text(e.Message), MaxMessageLen)
	e.Provider = Truncate(r.Text(e.Provider), maxFieldLen)
	e.ContactID = Truncate(r.Text(e.ContactID), maxFieldLen)
	e.Reason = Truncate(r.Text(e.Reason), maxFieldLen)
	e.Source = Truncate(r.Text(e.Source), maxFieldLen)
	return e
}

// Truncate cuts s to at most n characters, ending with "…" when it cut.
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// contactName is how alerts name a contact: "Contact <id>", never the person's name.
func contactName(id string) string {
	if id == "" {
		return "a contact"
	}
	return "Contact " + id
}

// CallFailed is the event for a contact whose call failed at provider with reason (an
// error category) and detail (the provider's message; it is redacted on Emit).
func CallFailed(provider, contactID, reason, detail string) Event {
	msg := fmt.Sprintf("Call failed for %s", contactName(contactID))
	return contactEvent(KindCallFailed, provider, contactID, reason, msg, detail)
}

// DeadLettered is the event for a contact written off to the dead-letter stream with
// reason.
func DeadLettered(provider, contactID, reason, detail string) Event {
	msg := fmt.Sprintf("%s dead-lettered", contactName(contactID))
	return contactEvent(KindDeadLettered, provider, contactID, reason, msg, detail)
}

// DeadLetterFailed is the event for a contact whose dead letter (for reason) could not be
// written after several tries; detail is the publish error. The contact stays in the queue.
func DeadLetterFailed(provider, contactID, reason, detail string) Event {
	msg := fmt.Sprintf("%s could not be dead-lettered and stays in the queue", contactName(contactID))
	return contactEvent(KindDeadLetterFailed, provider, contactID, reason, msg, detail)
}

// QuotaExhausted is the event for a provider that refused for quota or credits.
func QuotaExhausted(provider, contactID, detail string) Event {
	msg := fmt.Sprintf("%s quota or credits exhausted", orProvider(provider))
	return contactEvent(KindQuotaExhausted, provider, contactID, fault.KindQuota.String(), msg, detail)
}

// AuthFailed is the event for a provider that rejected our credentials.
func AuthFailed(provider, contactID, detail string) Event {
	msg := fmt.Sprintf("%s rejected our credentials", orProvider(provider))
	return contactEvent(KindAuthFailed, provider, contactID, fault.KindAuthentication.String(), msg, detail)
}

// FallbackActivated is the event for fallback taking over from primary.
func FallbackActivated(primary, fallback, detail string) Event {
	msg := fmt.Sprintf("%s took over from %s", orProvider(fallback), orProvider(primary))
	return contactEvent(KindFallbackActivated, primary, "", "", msg, detail)
}

func contactEvent(k Kind, provider, contactID, reason, msg, detail string) Event {
	var extra []string
	if provider != "" && k != KindQuotaExhausted && k != KindAuthFailed && k != KindFallbackActivated {
		extra = append(extra, provider)
	}
	if reason != "" && k != KindQuotaExhausted && k != KindAuthFailed {
		extra = append(extra, reason)
	}
	if len(extra) > 0 {
		msg += " (" + strings.Join(extra, ", ") + ")"
	}
	if detail = strings.TrimSpace(detail); detail != "" {
		msg += ": " + detail
	}
	return Event{Kind: k, Provider: provider, ContactID: contactID, Reason: reason, Message: msg}
}

func orProvider(p string) string {
	if p == "" {
		return "the provider"
	}
	return p
}

// FailureEvents returns the events for one failed contact, as the worker's outcome table
// decided it: dead_lettered when deadLettered, else call_failed; plus quota_exhausted or
// auth_failed when reason is the fault kind "quota_exceeded" or "authentication", because
// those need a human at once. provider may be empty when the failure came from no step.
func FailureEvents(provider, contactID, reason string, deadLettered bool, detail string) []Event {
	var out []Event
	if deadLettered {
		out = append(out, DeadLettered(provider, contactID, reason, detail))
	} else {
		out = append(out, CallFailed(provider, contactID, reason, detail))
	}
	switch reason {
	case fault.KindQuota.String():
		out = append(out, QuotaExhausted(provider, contactID, detail))
	case fault.KindAuthentication.String():
		out = append(out, AuthFailed(provider, contactID, detail))
	}
	return out
}
