package metrics_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

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

	fmt.Println(err)

	// Every result and retry category of the provider exists from AddProvider on, at 0 until
	// it happens; print those that happened.
	families, _ := reg.Gather()
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "callagent_provider_") {
			continue
		}
		for _, s := range f.GetMetric() {
			if v := s.GetCounter().GetValue(); v > 0 {
				var labels []string
				for _, l := range s.GetLabel() {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				fmt.Println(f.GetName(), strings.Join(labels, " "), v)
			}
		}
	}
	// Output:
	// <nil>
	// callagent_provider_attempts_total provider=ElevenLabs result=ok 1
	// callagent_provider_attempts_total provider=ElevenLabs result=service_unavailable 1
	// callagent_provider_retries_total category=service_unavailable provider=ElevenLabs 1
}
