package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/resilience"
)

func TestDecideTable(t *testing.T) {
	policy := Policy{MaxDeliver: 5, OnBreakerOpen: "hold", Redelivery: resilience.RetryPolicy{
		MaxAttempts: 3, InitialDelay: 5 * time.Second, Multiplier: 2, MaxDelay: time.Minute}}
	unavailable := fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 503, Message: "down"})
	quota := fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 402, Code: "insufficient_credits"})
	exhausted := &resilience.RetriesExhaustedError{Provider: "ElevenLabs", Attempts: 3, Last: unavailable}
	step := func(err error) error { return &call.StepError{Step: "tts", Provider: "ElevenLabs", Err: err} }
	cases := []struct {
		name      string
		err       error
		delivered uint64
		stopping  bool
		policy    BreakerOpenPolicy
		want      Decision
	}{
		{"completed", nil, 1, false, "", Decision{Action: Ack}},
		{"stopping", fmt.Errorf("step: %w", context.Canceled), 1, true, "", Decision{Action: Release}},
		{"invalid contact", &contact.InvalidError{}, 1, false, "", Decision{Action: DeadLetter, Reason: "invalid_payload"}},
		{"permanent", step(quota), 1, false, "", Decision{Action: DeadLetter, Reason: "quota_exceeded"}},
		{"final bad response", step(fault.Final(fault.Classify(fault.Facts{Provider: "LLM", Status: 200, Err: errors.New("empty")}))), 1, false, "",
			Decision{Action: DeadLetter, Reason: "bad_response"}},
		{"breaker open, hold", step(&resilience.OpenError{Provider: "ElevenLabs"}), 1, false, "hold", Decision{Action: Hold, Reason: "circuit_open"}},
		{"breaker open, deadletter", step(&resilience.OpenError{Provider: "ElevenLabs"}), 1, false, "deadletter", Decision{Action: DeadLetter, Reason: "circuit_open"}},
		{"retry-after beyond cap", step(&resilience.DeferError{Provider: "ElevenLabs", After: 45 * time.Second, Err: unavailable}), 1, false, "",
			Decision{Action: Retry, Delay: 45 * time.Second, Reason: "service_unavailable"}},
		{"retry-after beyond RETRY_MAX_DELAY", step(&resilience.DeferError{Provider: "ElevenLabs", After: 90 * time.Second, Err: unavailable}), 1, false, "",
			Decision{Action: Retry, Delay: time.Minute, Reason: "service_unavailable"}},
		{"retry-after of a year", step(&resilience.DeferError{Provider: "ElevenLabs", After: 365 * 24 * time.Hour, Err: unavailable}), 1, false, "",
			Decision{Action: Retry, Delay: time.Minute, Reason: "service_unavailable"}},
		{"retry-after of a day (fault.MaxRetryAfter)", step(&resilience.DeferError{Provider: "ElevenLabs", After: fault.MaxRetryAfter, Err: unavailable}), 2, false, "",
			Decision{Action: Retry, Delay: time.Minute, Reason: "service_unavailable"}},
		{"retry-after, last delivery", step(&resilience.DeferError{Provider: "ElevenLabs", After: time.Hour, Err: unavailable}), 5, false, "",
			Decision{Action: DeadLetter, Reason: "service_unavailable"}},
		{"settings refused, hold", step(fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 403, Code: "output_format_not_allowed"})), 1, false, "hold",
			Decision{Action: Hold, Reason: "configuration"}},
		{"held past the hold limit, breaker open", &HoldExpiredError{Reason: "circuit_open", Held: time.Minute, Err: step(&resilience.OpenError{Provider: "ElevenLabs"})}, 1, false, "",
			Decision{Action: HandBack, Delay: time.Second, Reason: "circuit_open"}},
		{"held past the hold limit, breaker open for a day", &HoldExpiredError{Reason: "circuit_open", RetryAt: time.Now().Add(24 * time.Hour),
			Err: step(&resilience.OpenError{Provider: "ElevenLabs"})}, 4, false, "", Decision{Action: HandBack, Delay: time.Minute, Reason: "circuit_open"}},
		{"held past the hold limit, last delivery", &HoldExpiredError{Reason: "circuit_open", RetryAt: time.Now().Add(-time.Second),
			Err: step(&resilience.OpenError{Provider: "ElevenLabs"})}, 5, false, "", Decision{Action: HandBack, Delay: time.Second, Reason: "circuit_open"}},
		{"retries exhausted, deliveries left", step(exhausted), 1, false, "", Decision{Action: Retry, Delay: 20 * time.Second, Reason: "service_unavailable"}},
		{"retries exhausted, second delivery", step(exhausted), 2, false, "", Decision{Action: Retry, Delay: 40 * time.Second, Reason: "service_unavailable"}},
		{"retries exhausted, last delivery", step(exhausted), 5, false, "", Decision{Action: DeadLetter, Reason: "service_unavailable"}},
		{"infrastructure error", errors.New("nats: timeout"), 1, false, "", Decision{Action: Retry, Delay: 20 * time.Second, Reason: "internal"}},
		{"claim held", &call.ClaimHeldError{Owner: "w2", Until: time.Now().Add(-time.Second)}, 1, false, "", Decision{Action: Yield, Delay: time.Second, Reason: "claimed"}},
		{"claim lost", fmt.Errorf("save: %w", call.ErrClaimLost), 1, false, "", Decision{Action: Abandon}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := policy
			if tc.policy != "" {
				p.OnBreakerOpen = tc.policy
			}
			got := p.Decide(tc.err, tc.delivered, tc.stopping)
			if got != tc.want {
				t.Fatalf("Decide(%v) = %+v, want %+v", tc.err, got, tc.want)
			}
		})
	}
}

// Without RETRY_MAX_DELAY every delay still stops at an hour (maxRedeliveryDelay).
func TestDecideCapsDelaysAtAnHourWithoutMaxDelay(t *testing.T) {
	policy := Policy{MaxDeliver: 50, Redelivery: resilience.RetryPolicy{MaxAttempts: 3, InitialDelay: 5 * time.Second, Multiplier: 2}}
	unavailable := fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 503, Message: "down"})
	year := 365 * 24 * time.Hour
	cases := []struct {
		name string
		err  error
		want time.Duration
	}{
		{"retry-after of a year", &resilience.DeferError{Provider: "ElevenLabs", After: year, Err: unavailable}, time.Hour},
		{"retry-after of 90s", &resilience.DeferError{Provider: "ElevenLabs", After: 90 * time.Second, Err: unavailable}, 90 * time.Second},
		{"backoff of the 40th delivery", &resilience.RetriesExhaustedError{Provider: "ElevenLabs", Attempts: 3, Last: unavailable}, time.Hour},
		{"hold expired, breaker open for a year", &HoldExpiredError{Reason: "circuit_open", RetryAt: time.Now().Add(year), Err: &resilience.OpenError{}}, time.Hour},
	}
	for _, tc := range cases {
		if got := policy.Decide(tc.err, 40, false); got.Delay != tc.want {
			t.Errorf("%s: Decide = %+v, want delay %s", tc.name, got, tc.want)
		}
	}
	// A RETRY_MAX_DELAY above the hour is capped too.
	policy.Redelivery.MaxDelay = 3 * time.Hour
	if got := policy.Decide(&resilience.DeferError{After: year, Err: unavailable}, 1, false); got.Delay != time.Hour {
		t.Errorf("RETRY_MAX_DELAY 3h: Decide = %+v, want delay 1h", got)
	}
}

// A contact held past the hold limit is handed back until the breaker may pass again.
func TestDecideHandsBackUntilTheBreakerMayPass(t *testing.T) {
	policy := Policy{MaxDeliver: 5, Redelivery: resilience.RetryPolicy{MaxDelay: time.Minute}}
	got := policy.Decide(&HoldExpiredError{Reason: "configuration", RetryAt: time.Now().Add(20 * time.Second), Err: errors.New("refused")}, 1, false)
	if got.Action != HandBack || got.Reason != "configuration" || got.Delay > 20*time.Second || got.Delay < 19*time.Second {
		t.Fatalf("Decide = %+v, want HandBack for about 20s", got)
	}
	// Stopping wins: the worker releases what it holds at once.
	stop := policy.Decide(fmt.Errorf("wait: %w", context.Canceled), 1, true)
	if stop.Action != Release {
		t.Fatalf("stopping: Decide = %+v, want Release", stop)
	}
	if HandBack.String() != "hand back" {
		t.Errorf("HandBack.String() = %q", HandBack.String())
	}
}

func TestHoldLimitDefault(t *testing.T) {
	w := &worker{}
	w.cfg.Topology.AckWait = 30 * time.Second
	w.cfg.Breaker.OpenTimeout = 30 * time.Second
	if got := w.holdLimit(); got != time.Minute {
		t.Errorf("default hold limit = %s, want 2 x ACK_WAIT = 1m", got)
	}
	w.cfg.Breaker.OpenTimeout = 5 * time.Minute
	if got := w.holdLimit(); got != 5*time.Minute {
		t.Errorf("hold limit = %s, want the open timeout 5m", got)
	}
	w.policy.HoldLimit = 10 * time.Second
	if got := w.holdLimit(); got != 10*time.Second {
		t.Errorf("hold limit = %s, want Policy.HoldLimit", got)
	}
}

func TestOnceSetAndShortID(t *testing.T) {
	var s onceSet
	if !s.first("CONTACTS/1") || s.first("CONTACTS/1") || !s.first("CONTACTS/2") {
		t.Fatal("onceSet must report each key once")
	}
	s.forget("CONTACTS/1")
	if !s.first("CONTACTS/1") {
		t.Fatal("a forgotten key is new again")
	}
	for i := range maxOnceKeys + 10 {
		s.first(fmt.Sprint(i))
	}
	if n := len(s.seen); n > maxOnceKeys {
		t.Fatalf("onceSet holds %d keys, more than %d", n, maxOnceKeys)
	}
	if got := shortID("c-1"); got != "c-1" {
		t.Errorf("shortID(c-1) = %q", got)
	}
	long := shortID(strings.Repeat("é", 200))
	if !utf8.ValidString(long) || len(long) > 128+len("…") {
		t.Errorf("shortID of a long id = %q (%d bytes)", long, len(long))
	}
	for id, want := range map[string]bool{"c-0001": true, "a.b=c_d": true, "": false, ".a": false, "a..b": false, "a b": false,
		strings.Repeat("a", 129): false, "x*": false, "c-0001…": false} {
		if got := lookupID(id); got != want {
			t.Errorf("lookupID(%q) = %v, want %v", id, got, want)
		}
	}
}
