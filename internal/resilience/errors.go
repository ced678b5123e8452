package resilience

import (
	"errors"
	"fmt"
	"time"
)

// ErrBreakerOpen matches every *OpenError: errors.Is(err, ErrBreakerOpen).
var ErrBreakerOpen = errors.New("circuit breaker open")

// OpenError is returned without calling the provider when its breaker refuses the call:
// OPEN, or HALF_OPEN with the one probe already in flight (or reserved for the health
// checker). The contact is not at fault and should be held, not dead-lettered.
type OpenError struct {
	// Provider is the display name of the refused provider.
	Provider string
	// State is StateOpen or StateHalfOpen.
	State State
	// RetryAt is when the breaker may let a call through again: the end of the open
	// timeout, or the moment of refusal when half-open (a call may pass as soon as the probe
	// ends).
	RetryAt time.Time
}

// Error says which breaker refused the call and when calls may pass again.
func (e *OpenError) Error() string {
	if e.State == StateHalfOpen {
		return fmt.Sprintf("circuit breaker for %s is half-open and its single probe is taken: calls may pass again once the probe closes it", e.Provider)
	}
	return fmt.Sprintf("circuit breaker for %s is open: calls may pass again at %s",
		e.Provider, e.RetryAt.Format("2006-01-02T15:04:05.000Z07:00"))
}

// Is reports whether target is ErrBreakerOpen.
func (e *OpenError) Is(target error) bool { return target == ErrBreakerOpen }

// RetriesExhaustedError is returned by Retrier.Run when every attempt failed with a
// transient error. Last is the final attempt's error (a *fault.ServiceError), so
// errors.Is(err, fault.ErrTransient) and fault.KindOf(err) see through it.
type RetriesExhaustedError struct {
	Provider string
	Attempts int
	Last     error
}

// Error reads like the seed's log line, followed by the last error.
func (e *RetriesExhaustedError) Error() string {
	return fmt.Sprintf("max retry attempts (%d) reached for %s: %v", e.Attempts, e.Provider, e.Last)
}

// Unwrap returns Last.
func (e *RetriesExhaustedError) Unwrap() error { return e.Last }

// DeferError is returned by Retrier.Run when the provider asked us to wait (Retry-After)
// longer than RetryPolicy.RetryAfterCap: rather than hold a worker, the contact should go back
// to the queue for After (NakWithDelay). Err is the provider's error.
type DeferError struct {
	Provider string
	After    time.Duration
	Err      error
}

// Error names the provider, the requested wait and the provider's error.
func (e *DeferError) Error() string {
	return fmt.Sprintf("%s asked to retry after %s, longer than the in-process cap: %v", e.Provider, e.After, e.Err)
}

// Unwrap returns Err.
func (e *DeferError) Unwrap() error { return e.Err }
