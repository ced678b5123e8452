package alert

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/callagent/resilience/internal/redact"
)

func TestDedupKeyAndSlug(t *testing.T) {
	t.Parallel()
	cases := []struct {
		provider string
		kind     Kind
		want     string
	}{
		{"ElevenLabs", KindBreakerOpened, "elevenlabs.down"},
		{"ElevenLabs", KindBreakerClosed, "elevenlabs.down"},
		{"ElevenLabs", KindServiceDown, "elevenlabs.down"},
		{"ElevenLabs", KindQuotaExhausted, "elevenlabs.quota"},
		{"LLM", KindAuthFailed, "llm.auth"},
		{"Open AI (gpt)", KindCallFailed, "open_ai__gpt_.call_failed"},
		{"", KindDeadLettered, "fleet.dead_lettered"},
		{"ElevenLabs", KindFallbackActivated, "elevenlabs.fallback"},
	}
	for _, c := range cases {
		if got := DedupKey(c.provider, c.kind); got != c.want {
			t.Errorf("DedupKey(%q, %s) = %q, want %q", c.provider, c.kind, got, c.want)
		}
		if !dedupKeyPattern.MatchString(c.want) {
			t.Errorf("%q does not match the dedup key pattern", c.want)
		}
	}
	if got := Slug(strings.Repeat("x", 100)); len(got) != 64 {
		t.Errorf("Slug of 100 characters has length %d, want 64", len(got))
	}
}

func TestKindTable(t *testing.T) {
	t.Parallel()
	for _, k := range Kinds {
		if !k.Valid() || !k.DefaultSeverity().Valid() {
			t.Errorf("kind %s: valid %v, severity %q", k, k.Valid(), k.DefaultSeverity())
		}
	}
	if len(Kinds) != len(kinds) {
		t.Errorf("Kinds lists %d kinds, the table has %d", len(Kinds), len(kinds))
	}
	if Kind("nope").Valid() {
		t.Error("an unknown kind is valid")
	}
	for _, c := range []struct {
		in   string
		want Severity
		err  bool
	}{{"", SeverityInfo, false}, {"CRITICAL", SeverityCritical, false}, {" warning ", SeverityWarning, false}, {"page", "", true}} {
		got, err := ParseSeverity(c.in)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("ParseSeverity(%q) = %q, %v", c.in, got, err)
		}
	}
	if !SeverityCritical.AtLeast(SeverityWarning) || SeverityInfo.AtLeast(SeverityWarning) {
		t.Error("AtLeast ranks wrongly")
	}
}

func TestEventValidate(t *testing.T) {
	t.Parallel()
	good := Event{ID: "evt_1", Kind: KindCallFailed, Severity: SeverityWarning, Time: time.Now(),
		DedupKey: "elevenlabs.call_failed", Message: "m"}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid event: %v", err)
	}
	cases := map[string]func(*Event){
		"id must be":         func(e *Event) { e.ID = "" },
		"unknown kind":       func(e *Event) { e.Kind = "exploded" },
		"unknown severity":   func(e *Event) { e.Severity = "page" },
		"time is missing":    func(e *Event) { e.Time = time.Time{} },
		"dedup key":          func(e *Event) { e.DedupKey = "ElevenLabs" },
		"message is longer ": func(e *Event) { e.Message = strings.Repeat("x", MaxMessageLen+1) },
		"provider is longer": func(e *Event) { e.Provider = strings.Repeat("p", maxFieldLen+1) },
		"contact id is long": func(e *Event) { e.ContactID = strings.Repeat("é", maxFieldLen+1) },
		"reason is longer":   func(e *Event) { e.Reason = strings.Repeat("r", 64<<10) },
		"source is longer":   func(e *Event) { e.Source = strings.Repeat("s", maxFieldLen+1) },
	}
	for want, mutate := range cases {
		e := good
		mutate(&e)
		err := e.Validate()
		if !errors.Is(err, ErrInvalidEvent) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v", want, err)
		}
	}
	// At the bound is fine: it is what Emit makes of a longer field.
	atBound := good
	atBound.Provider, atBound.ContactID = strings.Repeat("p", maxFieldLen), strings.Repeat("é", maxFieldLen)
	atBound.Reason, atBound.Source = strings.Repeat("r", maxFieldLen), strings.Repeat("s", maxFieldLen)
	if err := atBound.Validate(); err != nil {
		t.Errorf("fields of %d characters: %v", maxFieldLen, err)
	}
	long := good
	long.Provider = strings.Repeat("p", 300)
	if err := long.sanitized(nil).Validate(); err != nil {
		t.Errorf("a sanitized event is refused: %v", err)
	}
	b, err := json.Marshal(long)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeEvent(b); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("DecodeEvent of a 300-character provider = %v, want refused", err)
	}
	if _, err := DecodeEvent([]byte(`{"id":`)); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("DecodeEvent(garbage) = %v", err)
	}
	if got := good.Subject("alerts"); got != "alerts.warning.call_failed" {
		t.Errorf("Subject = %q", got)
	}
}

func TestFailureEvents(t *testing.T) {
	t.Parallel()
	evs := FailureEvents("ElevenLabs", "7", "service_unavailable", false, "Service temporarily unavailable")
	if len(evs) != 1 || evs[0].Kind != KindCallFailed {
		t.Fatalf("transient failure: %+v", evs)
	}
	if want := "Call failed for Contact 7 (ElevenLabs, service_unavailable): Service temporarily unavailable"; evs[0].Message != want {
		t.Errorf("message = %q, want %q", evs[0].Message, want)
	}
	evs = FailureEvents("ElevenLabs", "8", "quota_exceeded", true, "quota of 10000 exceeded")
	if len(evs) != 2 || evs[0].Kind != KindDeadLettered || evs[1].Kind != KindQuotaExhausted {
		t.Fatalf("quota failure: %+v", evs)
	}
	evs = FailureEvents("LLM", "9", "authentication", true, "")
	if len(evs) != 2 || evs[1].Kind != KindAuthFailed || evs[1].Message != "LLM rejected our credentials" {
		t.Fatalf("auth failure: %+v", evs)
	}
	if ev := FallbackActivated("ElevenLabs", "Sim TTS", ""); ev.Provider != "ElevenLabs" || ev.Message != "Sim TTS took over from ElevenLabs" {
		t.Errorf("fallback: %+v", ev)
	}
}

func TestDeadLetterFailedEvent(t *testing.T) {
	t.Parallel()
	ev := DeadLetterFailed("", "x1", "invalid_payload", "nats: no responders available for request")
	if ev.Kind != KindDeadLetterFailed || ev.ContactID != "x1" || ev.Reason != "invalid_payload" {
		t.Fatalf("event = %+v", ev)
	}
	if want := "Contact x1 could not be dead-lettered and stays in the queue (invalid_payload): nats: no responders available for request"; ev.Message != want {
		t.Errorf("message = %q, want %q", ev.Message, want)
	}
	if got := KindDeadLetterFailed.DefaultSeverity(); got != SeverityCritical {
		t.Errorf("severity = %s, want critical: the contact is stuck until someone acts", got)
	}
	if got := DedupKey("", KindDeadLetterFailed); got != "fleet.dead_letter_failed" {
		t.Errorf("dedup key = %q", got)
	}
	if kinds[KindDeadLetterFailed].role != roleSummary {
		t.Error("dead_letter_failed must be summarised per window, like dead_lettered")
	}
}

func TestEmitterCompletesAndSanitizes(t *testing.T) {
	t.Parallel()
	const key = "sk_live_0123456789abcdefghij"
	red := redact.New("hunter22-password")
	e := &Emitter{red: red, clock: newMock(), source: "worker-1"}
	ev := e.complete(CallFailed("ElevenLabs", "+14155550123", "authentication",
		"invalid api key "+key+" for +14155550123, password hunter22-password "+strings.Repeat("é", 2*MaxMessageLen)))
	if err := ev.Validate(); err != nil {
		t.Fatalf("completed event is invalid: %v", err)
	}
	for _, leak := range []string{key, "hunter22-password", "4155550123"} {
		if strings.Contains(ev.Message+ev.ContactID, leak) {
			t.Errorf("event text leaks %q: %q / %q", leak, ev.ContactID, ev.Message[:120])
		}
	}
	if n := utf8.RuneCountInString(ev.Message); n != MaxMessageLen {
		t.Errorf("message has %d characters, want the bound %d", n, MaxMessageLen)
	}
	if !strings.HasPrefix(ev.ID, "evt_") || ev.Source != "worker-1" || ev.Severity != SeverityWarning ||
		ev.DedupKey != "elevenlabs.call_failed" || !ev.Time.Equal(newMock().Now()) {
		t.Errorf("completed fields: %+v", ev)
	}
}
