package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/metrics"
	"github.com/callagent/resilience/internal/resilience"
)

// staticConsumer stands in for a consumer whose state is known, so every family is exported.
type staticConsumer struct{}

func (staticConsumer) Info(context.Context) (*jetstream.ConsumerInfo, error) {
	return &jetstream.ConsumerInfo{Stream: "CONTACTS", Name: "workers", NumPending: 1}, nil
}

// TestDeployFilesUseExportedMetrics: every callagent_ series the Grafana dashboard and the
// Prometheus rules query is one this package exports, so a rename cannot silently blank a
// panel or disarm an alert.
func TestDeployFilesUseExportedMetrics(t *testing.T) {
	m, reg := newMetrics(t)
	m.AddProvider("ElevenLabs", resilience.NewBulkhead(1))
	m.ObserveConsumer(staticConsumer{})
	m.ContactOutcome(metrics.OutcomeCompleted)
	m.TrackInFlight()()
	m.ObserveAttempt("ElevenLabs", nil)
	m.ObserveRetry("ElevenLabs", errors.New("x"))
	m.ObserveStep("ElevenLabs", "tts", time.Second, nil)
	m.DeadLettered("max_deliveries")
	m.AlertDelivered("email", metrics.AlertSent)
	m.SheetsRows(metrics.SheetsAppended, 1)
	m.BreakerStateChanged("ElevenLabs", resilience.StateClosed, resilience.StateOpen, time.Now())
	m.BreakerStateChanged("ElevenLabs", resilience.StateOpen, resilience.StateClosed, time.Now())

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		exported[name] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				exported[name+s] = true
			}
		}
	}

	series := regexp.MustCompile(`callagent_[a-z_]+`)
	for _, file := range []string{"../../deploy/grafana/dashboard.json", "../../deploy/prometheus/rules.yml"} {
		body, err := os.ReadFile(filepath.FromSlash(file))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(file, ".json") && !json.Valid(body) {
			t.Errorf("%s is not valid JSON", file)
		}
		found := series.FindAllString(string(body), -1)
		if len(found) == 0 {
			t.Errorf("%s queries no callagent_ series", file)
		}
		for _, name := range found {
			if !exported[name] {
				t.Errorf("%s queries %s, which the worker does not export", file, name)
			}
		}
	}
}
