package fault

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// Facts is what a provider client observed about a failed call. Fill what you know and leave
// the rest zero; Classify decides what it means.
type Facts struct {
	// Provider is the display name: "ElevenLabs", "LLM", "CRM".
	Provider string
	// Status is the HTTP status, 0 when no response arrived.
	Status int
	// Code is the provider's error code from the body (ElevenLabs detail.status or
	// detail.code, OpenAI error.code or error.type).
	Code string
	// Message is the provider's message from the body.
	Message string
	// RetryAfter is the wait the provider asked for (see ParseRetryAfter), 0 if none.
	RetryAfter time.Duration
	// Err is the transport error, or the decoding error for an unusable 2xx body.
	Err error
}

// codeKinds maps provider error codes to kinds; a known code wins over the HTTP status.
var codeKinds = map[string]Kind{
	"quota_exceeded":               KindQuota,
	"insufficient_quota":           KindQuota,
	"insufficient_credits":         KindQuota,
	"payment_required":             KindQuota,
	"too_many_concurrent_requests": KindConcurrencyLimit,
	"concurrent_limit_exceeded":    KindConcurrencyLimit,
	"system_busy":                  KindRateLimited,
	"rate_limit_exceeded":          KindRateLimited,
	"text_too_long":                KindInvalidPayload,
	"voice_not_found":              KindConfiguration,
	"model_not_found":              KindConfiguration,
	"invalid_api_key":              KindAuthentication,
	"missing_api_key":              KindAuthentication,
	"invalid_authentication":       KindAuthentication,
}

// Classify turns facts into a *ServiceError following the table in the package
// documentation. The one exception: when f.Err is (or wraps) context.Canceled, f.Err is
// returned unchanged, because a cancellation by the caller is not a provider error.
func Classify(f Facts) error {
	if f.Err != nil && errors.Is(f.Err, context.Canceled) {
		return f.Err
	}
	return &ServiceError{
		Provider:   f.Provider,
		Kind:       kindOf(f),
		Status:     f.Status,
		Code:       f.Code,
		Message:    f.Message,
		RetryAfter: max(f.RetryAfter, 0),
		Err:        f.Err,
	}
}

func kindOf(f Facts) Kind {
	if f.Code != "" {
		if k, ok := codeKinds[strings.ToLower(strings.TrimSpace(f.Code))]; ok {
			return k
		}
	}
	switch s := f.Status; {
	case s == 0:
		return transportKind(f.Err)
	case s == 401 || s == 403:
		return KindAuthentication
	case s == 402:
		return KindQuota
	case s == 400 || s == 422:
		return KindInvalidPayload
	case s == 404:
		return KindConfiguration
	case s == 408:
		return KindTimeout
	case s == 409:
		return KindUnavailable
	case s == 429:
		return KindRateLimited
	case s >= 500 && s <= 599:
		return KindUnavailable
	case s >= 400 && s <= 499:
		return KindInvalidPayload
	default: // 1xx, 2xx, 3xx reported as failures: the response was not usable
		return KindBadResponse
	}
}

// transportKind classifies an error that came without an HTTP response.
func transportKind(err error) Kind {
	if err == nil {
		return KindUnknown
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return KindTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return KindTimeout
		}
		return KindNetwork
	}
	var errno syscall.Errno
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &errno) {
		return KindNetwork
	}
	var opErr *net.OpError
	var sysErr *os.SyscallError
	var dnsErr *net.DNSError
	if errors.As(err, &opErr) || errors.As(err, &sysErr) || errors.As(err, &dnsErr) {
		return KindNetwork
	}
	return KindUnknown
}
