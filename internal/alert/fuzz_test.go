package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/callagent/resilience/internal/redact"
)

// FuzzDecodeEvent decodes arbitrary JSON as an alert event, as the dispatcher does with
// every message of the alerts stream. Whatever the input:
//   - DecodeEvent does not panic, and every error wraps ErrInvalidEvent;
//   - an accepted event is valid and within the bounds Validate promises (id of 1 to 64
//     bytes, a known kind and severity, a time, a dedup key of the <provider>.<condition>
//     shape of at most 200 bytes, a message of at most MaxMessageLen characters);
//   - it round-trips: encoding it and decoding again gives the same event;
//   - what Emit makes of it (sanitized) is still valid, with every text field bounded.
func FuzzDecodeEvent(f *testing.F) {
	at := time.Date(2026, 11, 26, 21, 29, 3, 57639954, time.UTC)
	for _, ev := range []Event{
		{ID: "evt_3nAh9Fq2", Kind: KindBreakerOpened, Severity: SeverityCritical, Provider: "ElevenLabs", Message: "Circuit breaker OPENED for ElevenLabs",
			Time: at, DedupKey: "elevenlabs.down", Source: "worker-a"},
		{ID: "evt_2", Kind: KindCallFailed, Severity: SeverityWarning, Provider: "LLM", ContactID: "c-42", Reason: "service_unavailable",
			Message: "Call failed for Contact c-42: Service temporarily unavailable", Time: at, DedupKey: "llm.call_failed"},
		{ID: "evt_3", Kind: KindBreakerClosed, Severity: SeverityInfo, Time: at, DedupKey: "fleet.down"},
		{ID: "evt_4", Kind: KindDeadLettered, Severity: SeverityWarning, ContactID: "x1", Reason: "invalid_payload",
			Message: strings.Repeat("é", MaxMessageLen), Time: at.In(time.FixedZone("X", 3600)), DedupKey: "fleet.dead_lettered"},
	} {
		b, err := json.Marshal(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `{"id":""}`,
		`{"id":"e","kind":"breaker_opened","severity":"CRITICAL","time":"2026-01-01T00:00:00Z","dedup_key":"a.down"}`,
		`{"id":"e","kind":"nope","severity":"info","time":"2026-01-01T00:00:00Z","dedup_key":"a.down"}`,
		`{"id":"e","kind":"call_failed","severity":"info","time":"0001-01-01T00:00:00Z","dedup_key":"a.b"}`,
		`{"id":"e","kind":"call_failed","severity":"info","time":"2026-01-01T00:00:00Z","dedup_key":"A.b"}`,
		`{"id":"e","kind":"call_failed","severity":"info","time":"2026-01-01T00:00:00Z","dedup_key":"a.b","message":"\ud800\u0000 +14155550123 sk-proj-abcdefghijklmnopqrstuvwx"}`,
		`{"id":"e","kind":"call_failed","severity":"info","time":"9999-12-31T23:59:59-23:59","dedup_key":"a.b","provider":"` + strings.Repeat("p", 300) + `"}`,
		`{"id":"e","ID":"f","kind":"call_failed","severity":"info","time":"2026-01-01T00:00:00Z","dedup_key":"a.b","extra":[1,2,{"x":null}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEvent(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("DecodeEvent(%q): error %v does not wrap ErrInvalidEvent", data, err)
			}
			return
		}
		if verr := e.Validate(); verr != nil {
			t.Fatalf("DecodeEvent accepted an invalid event: %v", verr)
		}
		if e.ID == "" || len(e.ID) > maxIDLen || !e.Kind.Valid() || !e.Severity.Valid() || e.Time.IsZero() ||
			!dedupKeyPattern.MatchString(e.DedupKey) || len(e.DedupKey) > 200 || utf8.RuneCountInString(e.Message) > MaxMessageLen {
			t.Fatalf("DecodeEvent accepted an event out of bounds: %+v", e)
		}

		b, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("an accepted event does not encode: %v (%+v)", err, e)
		}
		e2, err := DecodeEvent(b)
		if err != nil {
			t.Fatalf("an accepted event, encoded, is refused: %v\n%s", err, b)
		}
		if b2, _ := json.Marshal(e2); !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the event:\n%s\n%s", b, b2)
		}

		s := e.sanitized(redact.New())
		if verr := s.Validate(); verr != nil {
			t.Fatalf("sanitizing a valid event made it invalid: %v", verr)
		}
		for name, v := range map[string]string{"provider": s.Provider, "contact id": s.ContactID, "reason": s.Reason, "source": s.Source} {
			if utf8.RuneCountInString(v) > maxFieldLen {
				t.Fatalf("sanitized %s has %d characters, more than %d", name, utf8.RuneCountInString(v), maxFieldLen)
			}
		}
		_ = e.Subject("alerts") // must not panic
	})
}

// FuzzDecodeNotification decodes arbitrary JSON as a notification, as a channel's consumer
// does with every message of its queue. Whatever the input:
//   - DecodeNotification does not panic, and refuses a notification without id, title or a
//     known severity;
//   - an accepted notification round-trips through JSON unchanged;
//   - its renderings (Subject, Details, Text) do not panic, and the details hold no line
//     break of their own (one "Label: value" per line) when the fields it renders hold none.
func FuzzDecodeNotification(f *testing.F) {
	at := time.Date(2026, 11, 26, 21, 29, 3, 0, time.UTC)
	ev := Event{ID: "evt_1", Kind: KindBreakerOpened, Severity: SeverityCritical, Provider: "ElevenLabs", Time: at, DedupKey: "elevenlabs.down"}
	for _, n := range []Notification{
		{ID: "evt_1-opened", Type: TypeOpened, Kind: KindBreakerOpened, Severity: SeverityCritical, Provider: "ElevenLabs",
			DedupKey: "elevenlabs.down", Title: "Circuit breaker OPENED for ElevenLabs", Message: "3 failures in a row", Time: at,
			OpenedAt: at, Reporters: []string{"worker-a", "worker-b"}, Event: &ev},
		{ID: "evt_1-resolved", Type: TypeResolved, Kind: KindBreakerOpened, Severity: SeverityCritical, Provider: "ElevenLabs",
			DedupKey: "elevenlabs.down", Title: "RESOLVED: Circuit breaker OPENED for ElevenLabs after 2m0s", Time: at,
			OpenedAt: at.Add(-2 * time.Minute), ResolvedAt: at, DurationSeconds: 120, Count: 7, Suppressed: 6},
		{ID: "evt_9-summary", Type: TypeSummary, Kind: KindCallFailed, Severity: SeverityWarning, Provider: "LLM",
			DedupKey: "llm.call_failed", Title: "30 calls failed (LLM) in 1m0s", Message: "service_unavailable ×30", Time: at,
			DurationSeconds: 60, Count: 30, Reasons: map[string]int{"service_unavailable": 30}, ContactIDs: []string{"c-1", "c-2"}},
	} {
		b, err := json.Marshal(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `{}`, `{"id":"a","title":"t"}`, `{"id":"a","title":"t","severity":"Critical"}`,
		`{"id":"a","title":"t","severity":"info","duration_seconds":1e300,"count":-5,"time":"0000-01-01T00:00:00+01:00"}`,
		`{"id":"a","title":"t","severity":"info","duration_seconds":-0.0004,"opened_at":"9999-12-31T23:59:59.999999999-23:59"}`,
		`{"id":"a","title":"t\nSubject: injected","severity":"warning","provider":"x\r\ny","reasons":{"":0,"b":-1},"event":{"id":""}}`,
		`{"id":"a","title":"t","severity":"info","reporters":[],"contact_ids":null,"event":null,"reasons":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := DecodeNotification(data)
		if err != nil {
			if n.ID != "" || n.Title != "" {
				t.Fatalf("DecodeNotification failed (%v) but returned %+v", err, n)
			}
			return
		}
		if n.ID == "" || n.Title == "" || !n.Severity.Valid() {
			t.Fatalf("DecodeNotification accepted %+v", n)
		}
		b, err := json.Marshal(n)
		if err != nil {
			t.Fatalf("an accepted notification does not encode: %v (%+v)", err, n)
		}
		n2, err := DecodeNotification(b)
		if err != nil {
			t.Fatalf("an accepted notification, encoded, is refused: %v\n%s", err, b)
		}
		if b2, _ := json.Marshal(n2); !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the notification:\n%s\n%s", b, b2)
		}

		_ = n.Subject()
		_ = n.Text()
		details := n.Details()
		rendered := string(n.Severity) + string(n.Kind) + n.Provider + n.DedupKey + strings.Join(n.Reporters, "")
		if !strings.ContainsAny(rendered, "\r\n") {
			for _, d := range details {
				if strings.ContainsAny(d, "\r\n") {
					t.Fatalf("detail %q spans lines", d)
				}
			}
		}
	})
}
