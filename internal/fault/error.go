package fault

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Sentinels for errors.Is: every *ServiceError is exactly one of them.
var (
	// ErrTransient matches a *ServiceError that may succeed when tried again.
	ErrTransient = errors.New("transient provider error")
	// ErrPermanent matches a *ServiceError that will fail again: unknown kinds, permanent
	// kinds, and transient errors marked Final.
	ErrPermanent = errors.New("permanent provider error")
	// ErrOwnLimit is matched by errors that hit one of our own limits (the in-flight
	// response-bytes budget), not the provider's: retried like an unavailable provider, but
	// never counted against its circuit breaker.
	ErrOwnLimit = errors.New("our own limit reached")
)

// ServiceError is a classified provider error. Build it with Classify (or InvalidContact);
// check it with errors.As, errors.Is(err, ErrTransient / ErrPermanent), KindOf or IsTransient.
type ServiceError struct {
	// Provider is the display name: "ElevenLabs", "LLM", "CRM".
	Provider string
	// Kind is the category; it decides retries and breaker accounting.
	Kind Kind
	// Status is the HTTP status, 0 if there was none.
	Status int
	// Code is the provider's error code from the body, e.g. "quota_exceeded".
	Code string
	// Param is the request field the provider blamed, if it named one.
	Param string
	// RequestID is the provider's id of the request, for support tickets; Error shows it.
	RequestID string
	// Message is the provider's message as given. It may echo request data: sanitize it
	// before sending it anywhere but the local log.
	Message string
	// RetryAfter is how long the provider asked us to wait (Retry-After, retry-after-ms or
	// the body); 0 if it did not say.
	RetryAfter time.Duration
	// Err is the underlying transport or decoding error, if any.
	Err error

	final bool // a transient kind that must not be retried again (see Final)
}

// Error returns the provider's message when there is one (the seed prints "Service
// temporarily unavailable"); otherwise a short line naming the provider, the kind, the HTTP
// status, the code and the underlying error. A provider request id is appended as
// " (request_id …)", so it reaches logs and dead letters.
func (e *ServiceError) Error() string {
	if e.RequestID == "" {
		return e.text()
	}
	return e.text() + " (request_id " + e.RequestID + ")"
}

func (e *ServiceError) text() string {
	if e.Message != "" {
		return e.Message
	}
	var b strings.Builder
	if e.Provider != "" {
		b.WriteString(e.Provider)
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.phrase())
	if e.Status != 0 || e.Code != "" {
		b.WriteString(" (")
		if e.Status != 0 {
			b.WriteString("HTTP ")
			b.WriteString(strconv.Itoa(e.Status))
		}
		if e.Code != "" {
			if e.Status != 0 {
				b.WriteString(", ")
			}
			b.WriteString("code ")
			b.WriteString(e.Code)
		}
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying transport error, if any.
func (e *ServiceError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrTransient) and errors.Is(err, ErrPermanent) work.
func (e *ServiceError) Is(target error) bool {
	switch target {
	case ErrTransient:
		return e.transient()
	case ErrPermanent:
		return !e.transient()
	}
	return false
}

// Transient reports whether e may succeed when tried again: a transient kind not marked
// Final.
func (e *ServiceError) Transient() bool { return e.transient() }

func (e *ServiceError) transient() bool { return e.Kind.Transient() && !e.final }

// KindOf returns the Kind of the first *ServiceError in err's chain, or KindUnknown.
func KindOf(err error) Kind {
	var se *ServiceError
	if errors.As(err, &se) {
		return se.Kind
	}
	return KindUnknown
}

// IsTransient reports whether err holds a *ServiceError that may succeed when tried again.
// Anything else — nil, unclassified errors, cancellations, errors marked Final — is not.
func IsTransient(err error) bool {
	var se *ServiceError
	return errors.As(err, &se) && se.transient()
}

// RetryAfterOf returns the RetryAfter of the first *ServiceError in err's chain, or 0.
func RetryAfterOf(err error) time.Duration {
	var se *ServiceError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// Retryable reports whether err, returned by attempt number attempt (1 for the first),
// should be tried again: a transient error, except a bad_response that already happened on
// an earlier attempt (one unusable body may be a glitch; two are a pattern). It does not
// know the attempt budget; the retry loop does.
func Retryable(err error, attempt int) bool {
	var se *ServiceError
	if !errors.As(err, &se) || !se.transient() {
		return false
	}
	return se.Kind != KindBadResponse || attempt <= 1
}

// Final returns err with its *ServiceError replaced by a copy marked permanent, for a
// transient error the caller decided not to retry again (a repeated bad_response): then
// IsTransient is false and errors.Is(err, ErrPermanent) is true, while Kind stays as it was.
// When err is itself the *ServiceError, the copy is returned; when it is wrapped, the copy
// is returned unwrapped. Errors without a *ServiceError are returned unchanged.
func Final(err error) error {
	var se *ServiceError
	if !errors.As(err, &se) {
		return err
	}
	cp := *se
	cp.final = true
	return &cp
}

// InvalidContact reports a bad contact found by a step (no phone number, text too long for
// the voice, …): a permanent invalid_payload error that is the contact's fault, so it does
// not count against provider's circuit breaker.
func InvalidContact(provider string, err error) *ServiceError {
	return &ServiceError{Provider: provider, Kind: KindInvalidPayload, Message: invalidContactMessage(err), Err: err}
}

func invalidContactMessage(err error) string {
	if err == nil {
		return "invalid contact"
	}
	return "invalid contact: " + err.Error()
}
