package httpx

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/redact"
)

// ErrUnusableBody matches every *UnusableBodyError and *TooLargeError: a 2xx response
// whose body cannot be used. Reported with its status, fault classifies it as bad_response.
var ErrUnusableBody = errors.New("unusable response body")

// TooLargeError is a 2xx body longer than the cap the caller set; the rest was not read.
type TooLargeError struct {
	// Limit is the cap in bytes.
	Limit int64
	// Declared is the Content-Length for which the body was refused before any of it was
	// read, or -1 when the length was not declared and reading found the body too long.
	Declared int64
}

// Error says the body exceeded the limit, e.g. "response body is larger than the 1 MiB
// limit", with the declared length when there was one.
func (e *TooLargeError) Error() string {
	msg := "response body is larger than the " + FormatBytes(e.Limit) + " limit"
	if e.Declared > 0 {
		msg += " (Content-Length " + strconv.FormatInt(e.Declared, 10) + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrUnusableBody) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrUnusableBody }

// ErrBudgetExhausted matches every *BudgetError.
var ErrBudgetExhausted = errors.New("in-flight response budget exhausted")

// BudgetError is a 2xx body the Client could not read because its in-flight budget
// (Options.MaxInFlightBytes) had no room for it: other calls were holding it. It is this
// worker's own memory limit, not a fault of the provider nor of its body (the body is within
// the caller's limit), so it is transient: Failure classifies it service_unavailable, without
// the response's status, so that it is retried with backoff (not once, like bad_response). The
// body was abandoned with its connection.
type BudgetError struct {
	// Need is the bytes the call needed to hold at once when it failed.
	Need int64
	// Budget is the whole budget, Options.MaxInFlightBytes.
	Budget int64
	// Waited is true when the call waited for room until its context's deadline.
	Waited bool
}

// Error says what did not fit, e.g. "response body not read: no room for 16 MiB in the
// 48 MiB in-flight response budget (a limit of this worker, not of the provider)".
func (e *BudgetError) Error() string {
	if e.Need > e.Budget {
		return "response body not read: it needs " + FormatBytes(e.Need) + ", more than the whole " +
			FormatBytes(e.Budget) + " in-flight response budget"
	}
	msg := "response body not read: no room for " + FormatBytes(e.Need) + " in the " +
		FormatBytes(e.Budget) + " in-flight response budget"
	if e.Waited {
		msg += " before the call's deadline"
	}
	return msg + " (a limit of this worker, not of the provider)"
}

// Is makes errors.Is(err, ErrBudgetExhausted) true.
// It also matches fault.ErrOwnLimit: the budget is ours, so running out of it says nothing
// about the provider and must not count against its breaker.
func (e *BudgetError) Is(target error) bool {
	return target == ErrBudgetExhausted || target == fault.ErrOwnLimit
}

// UnusableBodyError is a 2xx body that does not hold what the call needs: not JSON, no
// choices, empty content, no audio, a JSON document where audio was expected.
type UnusableBodyError struct {
	// Reason says what is wrong, in lower case: "no choices", "empty audio", ….
	Reason string
	// Err is the decoding error, if any.
	Err error
}

// Error reads "unusable response body: <reason>[: <decoding error>]".
func (e *UnusableBodyError) Error() string {
	if e.Err != nil {
		return "unusable response body: " + e.Reason + ": " + e.Err.Error()
	}
	return "unusable response body: " + e.Reason
}

// Unwrap returns the decoding error.
func (e *UnusableBodyError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnusableBody) true.
func (e *UnusableBodyError) Is(target error) bool { return target == ErrUnusableBody }

// Unusable reports a 2xx response whose body is unusable, as facts for fault.Classify
// (kind bad_response).
func Unusable(provider string, resp *Response, reason string, err error) fault.Facts {
	return fault.Facts{Provider: provider, Status: resp.Status, Err: &UnusableBodyError{Reason: reason, Err: err}}
}

// Failure returns the facts of a Do that did not give a usable response, for the cases
// that do not depend on the provider's error format: no response (resp nil), a 2xx body over
// its cap, a 2xx body with no room in the in-flight budget, a body that broke off. Non-2xx
// responses are the caller's to parse.
//
// A body over its cap is the provider's doing: bad_response, with the status. A *BudgetError
// is ours: service_unavailable without a status (see BudgetError).
func Failure(provider string, resp *Response, err error) fault.Facts {
	var tl *TooLargeError
	if resp != nil && errors.As(err, &tl) {
		return fault.Facts{Provider: provider, Status: resp.Status, Err: err}
	}
	if errors.Is(err, ErrBudgetExhausted) {
		// No status (a 2xx would make it bad_response) and an error no transport rule knows:
		// HintRetry makes that service_unavailable, retried with backoff.
		return fault.Facts{Provider: provider, Err: err, ShouldRetry: fault.HintRetry}
	}
	// No response, or it broke off: what happened on the wire decides (timeout, network).
	return fault.Facts{Provider: provider, Err: err}
}

// MaxMessageLen is the most characters of a provider message kept in an error.
const MaxMessageLen = 300

// CleanMessage makes a message taken from a provider body safe and short for errors and
// logs: secrets registered in r (and credential shapes and phone numbers) redacted,
// whitespace runs collapsed, control characters dropped, cut to MaxMessageLen characters.
func CleanMessage(r *redact.Redactor, s string) string {
	if s == "" {
		return ""
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
	s = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return -1
		}
		return c
	}, s)
	// Redact before cutting, so a cut cannot split a secret into an unrecognised prefix.
	s = r.Text(s)
	if utf8.RuneCountInString(s) > MaxMessageLen {
		s = string([]rune(s)[:MaxMessageLen-1]) + "…"
	}
	return s
}

// codePattern is what an error code looks like: "invalid_api_key", "value_error.missing",
// "only_for_creator+", an OAuth error such as "invalid_grant". Anything else is not a code (a
// control character, a sentence, a 64 KiB string) and is dropped.
var codePattern = regexp.MustCompile(`^[A-Za-z0-9_.+-]{1,64}$`)

// ValidCode reports whether code has the shape of an error code.
func ValidCode(code string) bool { return codePattern.MatchString(code) }

// CleanCode returns code when it has the shape of an error code and shows nothing r
// redacts (the API key echoed as a code, a phone number), else "": a code is kept as it is
// or not at all, since ServiceError prints it when the message is empty.
func CleanCode(r *redact.Redactor, code string) string {
	if !ValidCode(code) || r.Text(code) != code {
		return ""
	}
	return code
}

// FormatBytes prints n as B, KiB or MiB, whichever is exact or shortest.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d B", n)
	}
}
