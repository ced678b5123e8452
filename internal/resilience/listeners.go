package resilience

import "time"

// Listeners fans a guard's transitions out to several listeners (the worker's breaker gate,
// metrics, the fleet report, alerts), in order. Nil entries are skipped.
type Listeners []StateListener

// BreakerStateChanged implements StateListener.
func (ls Listeners) BreakerStateChanged(provider string, from, to State, at time.Time) {
	for _, l := range ls {
		if l != nil {
			l.BreakerStateChanged(provider, from, to, at)
		}
	}
}
