package metricstest_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/callagent/resilience/internal/metrics/metricstest"
)

// TestCheck: Check accepts queries of what the worker exports and names each mistake a
// rename or a typo makes.
func TestCheck(t *testing.T) {
	s := metricstest.Exported(t)
	for _, c := range []struct {
		expr  string
		names []string
		want  string // "" for no problem, else a part of one of the problems
	}{
		{`sum by (reason) (increase(callagent_dead_letters_total{reason="max_deliveries"}[5m])) > 0`, []string{"callagent_dead_letters_total"}, ""},
		{`histogram_quantile(0.9, sum by (le, provider) (rate(callagent_step_duration_seconds_bucket[5m])))`, []string{"callagent_step_duration_seconds_bucket"}, ""},
		{`count(up{job="worker"} == 1) < max_over_time(count(up{job="worker"} == 1)[30m:1m])`, []string{"up"}, ""},
		{`sum by (instance) (rate(callagent_alerts_total{result=~"retried|deferred"}[5m]))`, []string{"callagent_alerts_total"}, ""},
		{`a unless on (stream) max by (stream) (callagent_consumer_paused)`, nil, "a is not exported"},
		{`rate(callagent_dead_letter_total[5m])`, nil, "callagent_dead_letter_total is not exported"},
		{`callagent_alerts_total{chanel="email"}`, nil, "has no label chanel"},
		{`callagent_contacts_processed_total{outcome="complete"}`, nil, "no outcome value"},
		{`callagent_contacts_processed_total{outcome=~"done|finished"}`, nil, "no outcome value"},
		{`sum by (provider) (callagent_contacts_processed_total)`, nil, "groups or matches on provider"},
		{`callagent_breaker_state * on (channel) callagent_breaker_state`, nil, "matches on channel"},
		{`sum(rate(callagent_alerts_total[5m])`, nil, "parse"},
		{`{__name__=~"callagent_.*"}`, nil, "names no metric"},
	} {
		names, problems := s.Check(c.expr)
		switch {
		case c.want == "" && len(problems) > 0:
			t.Errorf("Check(%s): %v", c.expr, problems)
		case c.want != "" && !slices.ContainsFunc(problems, func(p error) bool { return strings.Contains(p.Error(), c.want) }):
			t.Errorf("Check(%s) = %v, want a problem with %q", c.expr, problems, c.want)
		case c.names != nil && !slices.Equal(names, c.names):
			t.Errorf("Check(%s) names %v, want %v", c.expr, names, c.names)
		}
	}
}
