package alert_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/natstest"
)

// A worker's alert settings never rewrite an existing alerts stream; the difference is drift.
func TestEnsureNeverChangesAnExistingAlertsStream(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Start(t))
	ctx := context.Background()
	topo := alert.Topology{}.WithDefaults()
	cfg := topo.StreamConfig()
	cfg.MaxAge = time.Hour
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := alert.Ensure(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, topo.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != time.Hour {
		t.Errorf("Ensure changed max_age to %v", got)
	}
	drift, err := alert.Drift(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	if len(drift) != 1 || !strings.Contains(drift[0], "max_age: configured "+topo.StreamConfig().MaxAge.String()+", server has 1h0m0s") {
		t.Errorf("drift = %q", drift)
	}
}
