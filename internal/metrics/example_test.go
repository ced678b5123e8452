package metrics_test

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/metrics"
	"github.com/callagent/resilience/internal/resilience"
)

// The worker builds the metrics on its registry, passes them as (or chained from) the guards'
// StateListener, and wraps each retry loop's op so attempts and retries are counted.
func Example() {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		panic(err)
	}
	g := resilience.NewGuard("ElevenLabs", resilience.GuardOptions{Listener: m})
	m.AddProvider(g.Provider(), g.Bulkhead())

	calls := 0
	op := func(context.Context) error {
		if calls++; calls == 1 {
			return fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 503})
		}
		return nil
	}
	retrier := resilience.NewRetrier(resilience.RetryPolicy{InitialDelay: 1}, nil, nil)
	err = retrier.Run(context.Background(), nil, g, m.InstrumentAttempts(g.Provider(), op))
	m.ContactOutcome(metrics.OutcomeCompleted)

	n, _ := testutil.GatherAndCount(reg, "callagent_provider_attempts_total", "callagent_provider_retries_total")
	fmt.Println(err, n)
	// Output: <nil> 3
}
