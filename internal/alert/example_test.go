package alert_test

import (
	"fmt"

	"github.com/callagent/resilience/internal/alert"
)

// The worker's outcome table reports a failed contact with FailureEvents: a quota error
// also raises quota_exhausted, which needs a human at once.
func ExampleFailureEvents() {
	for _, ev := range alert.FailureEvents("ElevenLabs", "7", "quota_exceeded", true, "insufficient credits") {
		fmt.Printf("%s %s: %s\n", ev.Kind, alert.DedupKey(ev.Provider, ev.Kind), ev.Message)
	}
	// Output:
	// dead_lettered elevenlabs.dead_lettered: Contact 7 dead-lettered (ElevenLabs, quota_exceeded): insufficient credits
	// quota_exhausted elevenlabs.quota: ElevenLabs quota or credits exhausted: insufficient credits
}

// Every breaker event of a provider shares the incident key of its "down" condition, so the
// dispatcher folds them into one incident.
func ExampleDedupKey() {
	for _, k := range []alert.Kind{alert.KindBreakerOpened, alert.KindServiceDown, alert.KindBreakerClosed, alert.KindCallFailed} {
		fmt.Println(k, alert.DedupKey("ElevenLabs", k))
	}
	// Output:
	// breaker_opened elevenlabs.down
	// service_down elevenlabs.down
	// breaker_closed elevenlabs.down
	// call_failed elevenlabs.call_failed
}
