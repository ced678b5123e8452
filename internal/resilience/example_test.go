package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/resilience"
)

// One guard per provider, one retrier per policy; each step of a contact runs through both.
func ExampleRetrier_Run() {
	tts := resilience.NewGuard("ElevenLabs", resilience.GuardOptions{MaxConcurrency: 3})
	retrier := resilience.NewRetrier(resilience.RetryPolicy{InitialDelay: time.Millisecond}, nil, nil)

	calls := 0
	err := retrier.Run(context.Background(), nil, tts, func(ctx context.Context) error {
		calls++
		if calls == 1 {
			return fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 503, Message: "Service temporarily unavailable"})
		}
		return nil
	})
	fmt.Println(calls, err, tts.State())

	// Permanent errors are not retried.
	calls = 0
	err = retrier.Run(context.Background(), nil, tts, func(ctx context.Context) error {
		calls++
		return fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 401, Code: "quota_exceeded", Message: "Quota exceeded"})
	})
	fmt.Println(calls, err, errors.Is(err, fault.ErrPermanent))
	// Output:
	// 2 <nil> CLOSED
	// 1 Quota exceeded true
}

// An open breaker fails fast and says when calls may pass again.
func ExampleGuard_Do() {
	llm := resilience.NewGuard("LLM", resilience.GuardOptions{
		Breaker: resilience.BreakerSettings{FailureThreshold: 1, OpenTimeout: time.Minute},
	})
	down := fault.Classify(fault.Facts{Provider: "LLM", Status: 502})
	_ = llm.Do(context.Background(), func(context.Context) error { return down })

	err := llm.Do(context.Background(), func(context.Context) error { return nil })
	var open *resilience.OpenError
	fmt.Println(llm.State(), errors.As(err, &open), errors.Is(err, resilience.ErrBreakerOpen), llm.Ready())
	// Output:
	// OPEN true true false
}
