package alert

import (
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"
)

// FallbackAlerts emits fallback_activated when a fallback provider takes over a step of the
// call pipeline. It implements call.FallbackListener: set it as the pipeline's Fallbacks.
// It never blocks (it emits through an EventSink). Safe for concurrent use.
//
// The event names the primary, the first provider the pipeline skipped (its reason reads
// "<provider>: <why>; …"), so repeats fold into that provider's fallback incident, which
// resolves with the provider's "down" incident. Traffic returning to the primary (reason
// "recovered") emits nothing: the breaker's breaker_closed already says so.
type FallbackAlerts struct {
	sink EventSink
	log  *logrus.Logger
}

// NewFallbackAlerts returns a listener that emits to sink; log (may be nil) receives a
// warning when an event cannot be emitted.
func NewFallbackAlerts(sink EventSink, log *logrus.Logger) *FallbackAlerts {
	return &FallbackAlerts{sink: sink, log: loggerOrDiscard(log)}
}

// StepProviderChanged implements call.FallbackListener.
func (f *FallbackAlerts) StepProviderChanged(step, from, to, reason string) {
	if reason == "" || reason == "recovered" {
		return
	}
	primary := from
	if name, _, ok := strings.Cut(reason, ":"); ok && strings.TrimSpace(name) != "" {
		primary = strings.TrimSpace(name)
	}
	ev := FallbackActivated(primary, to, fmt.Sprintf("step %s (%s)", step, reason))
	if err := f.sink.Emit(ev); err != nil {
		f.log.WithError(err).WithField("service", primary).Warn("Could not emit fallback_activated alert")
	}
}
