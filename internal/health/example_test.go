package health_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callagent/resilience/internal/health"
)

// The worker serves its registry and a readiness check; in production the check is
// health.NATSReady(nc, js, stream) and the server runs with Run(ctx) on METRICS_ADDR.
func ExampleNewServer() {
	ready := func(context.Context) error { return nil }
	s := health.NewServer(":9090", prometheus.NewRegistry(), ready)

	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output: 200 ok
}
