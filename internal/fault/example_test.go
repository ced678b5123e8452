package fault_test

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/callagent/resilience/internal/fault"
)

// A provider client reports what it saw; Classify decides what it means.
func ExampleClassify() {
	h := http.Header{}
	h.Set("Retry-After", "7")
	err := fault.Classify(fault.Facts{
		Provider:   "ElevenLabs",
		Status:     429,
		Code:       "system_busy",
		Message:    "The system is busy",
		RetryAfter: fault.ParseRetryAfter(h, time.Now()),
	})
	var se *fault.ServiceError
	if errors.As(err, &se) {
		fmt.Println(se.Kind, se.RetryAfter, errors.Is(err, fault.ErrTransient))
	}

	// quota_exceeded arrives as a 401 and must never be retried.
	err = fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 401, Code: "quota_exceeded"})
	fmt.Println(fault.KindOf(err), fault.IsTransient(err))
	// Output:
	// rate_limited 7s true
	// quota_exceeded false
}
