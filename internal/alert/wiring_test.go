package alert_test

import (
	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/metrics"
	"github.com/callagent/resilience/internal/resilience"
)

// The worker wires these directly: the metrics count deliveries, the breaker listener is a
// resilience.StateListener, the emitter is the listener's sink.
var (
	_ alert.Observer           = (*metrics.Metrics)(nil)
	_ resilience.StateListener = (*alert.BreakerAlerts)(nil)
	_ alert.EventSink          = (*alert.Emitter)(nil)
	_ alert.Notifier           = alert.Notifier(nil)
)

var _ call.FallbackListener = (*alert.FallbackAlerts)(nil)
