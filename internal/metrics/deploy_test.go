package metrics_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/callagent/resilience/internal/metrics/metricstest"
)

// TestDeployFilesUseExportedMetrics: every callagent_ series the Grafana dashboard and the
// Prometheus rules query is one this package exports, so a rename cannot silently blank a
// panel or disarm an alert. (deploy/prometheus and deploy/grafana check the same with
// Prometheus's own parsers; this one runs with the package's tests.)
func TestDeployFilesUseExportedMetrics(t *testing.T) {
	exported := metricstest.Exported(t)
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
			if _, ok := exported[name]; !ok {
				t.Errorf("%s queries %s, which the worker does not export", file, name)
			}
		}
	}
}
