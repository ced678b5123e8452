package daemon

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/callagent/resilience/internal/metrics"
)

// TestMetricsObserverCountsEachOutcome: each action of the outcome table lands on its outcome
// series of the real registry (all present at 0 from the start); a dead letter that could
// not be written is not counted, nor are Yield and Abandon (the contact is another worker's).
func TestMetricsObserverCountsEachOutcome(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	o := metricsObserver{m}
	for _, ev := range []OutcomeEvent{
		{Decision: Decision{Action: Ack}},
		{Decision: Decision{Action: Ack}, AlreadyCompleted: true},
		{Decision: Decision{Action: Retry, Reason: "timeout"}},
		{Decision: Decision{Action: Hold, Reason: ReasonBreakerOpen}},
		{Decision: Decision{Action: DeadLetter, Reason: "quota_exceeded"}},
		{Decision: Decision{Action: DeadLetter, Reason: "quota_exceeded"}, LetterErr: errors.New("nats: timeout"), Tries: 1},
		{Decision: Decision{Action: Release}},
		{Decision: Decision{Action: HandBack, Reason: ReasonBreakerOpen}, Requeued: 42},
		{Decision: Decision{Action: HandBack, Reason: ReasonBreakerOpen}, RequeueErr: errors.New("nats: timeout")},
		{Decision: Decision{Action: Yield}},
		{Decision: Decision{Action: Abandon}},
	} {
		o.ObserveOutcome(ev)
	}
	want := map[metrics.Outcome]float64{
		metrics.OutcomeCompleted: 1, metrics.OutcomeAlreadyCompleted: 1, metrics.OutcomeRetried: 1,
		metrics.OutcomeHeld: 1, metrics.OutcomeDeadLettered: 1, metrics.OutcomeReleased: 1, metrics.OutcomeHandedBack: 2,
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[metrics.Outcome]float64{}
	letters := map[string]float64{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			switch f.GetName() {
			case "callagent_contacts_processed_total":
				got[metrics.Outcome(s.GetLabel()[0].GetValue())] = s.GetCounter().GetValue()
			case "callagent_dead_letters_total":
				letters[s.GetLabel()[0].GetValue()] = s.GetCounter().GetValue()
			}
		}
	}
	if len(got) != len(metrics.Outcomes) {
		t.Errorf("%d outcome series, want one per outcome (%d): %v", len(got), len(metrics.Outcomes), got)
	}
	for _, o := range metrics.Outcomes {
		if got[o] != want[o] {
			t.Errorf("outcome %s = %g, want %g", o, got[o], want[o])
		}
	}
	if letters["quota_exceeded"] != 1 {
		t.Errorf("dead letters for quota_exceeded = %g, want 1 (the one written)", letters["quota_exceeded"])
	}
	if n, err := testutil.GatherAndCount(reg, "callagent_llm_tokens_total"); err != nil || n != 0 {
		t.Errorf("outcomes counted spend (%d series, %v): spend is counted where each paid call returns", n, err)
	}
}
