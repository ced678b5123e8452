package daemon

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

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
		policy    string
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
		{"retry-after beyond cap", step(&resilience.DeferError{Provider: "ElevenLabs", After: 90 * time.Second, Err: unavailable}), 1, false, "",
			Decision{Action: Retry, Delay: 90 * time.Second, Reason: "service_unavailable"}},
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
