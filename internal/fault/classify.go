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
	// Param is the request field the provider blamed: OpenAI's error.param, the last
	// element of an ElevenLabs 422 loc, ElevenLabs' detail.param. A 400/422 that names a
	// field our settings fill (model, output_format, …) is a configuration error.
	Param string
	// RequestID is the provider's id of the request (x-request-id, request-id), for
	// support tickets.
	RequestID string
	// RetryAfter is the wait the provider asked for (see ParseRetryAfter), 0 if none.
	RetryAfter time.Duration
	// ShouldRetry is the provider's explicit word on retrying (OpenAI's x-should-retry;
	// see ParseShouldRetry); it overrides what the status alone would say.
	ShouldRetry Hint
	// Err is the transport error, or the decoding error for an unusable 2xx body.
	Err error
}

// Hint is a provider's explicit statement on whether a failed request may be retried.
type Hint int8

// The hints.
const (
	// HintNone: the provider said nothing; the code and status decide.
	HintNone Hint = iota
	// HintRetry: the provider says retrying may succeed (x-should-retry: true).
	HintRetry
	// HintDoNotRetry: the provider says retrying will not help (x-should-retry: false).
	HintDoNotRetry
)

// CodeTokenLimit is our code for a completion the token bound cut off (finish_reason
// "length", or no content after reasoning tokens): the bound is a setting, so it is a
// configuration error.
const CodeTokenLimit = "token_limit_reached"

// codeKinds maps provider error codes to kinds; a known code wins over the HTTP status.
var codeKinds = map[string]Kind{
	"quota_exceeded":                  KindQuota,
	"insufficient_quota":              KindQuota,
	"insufficient_credits":            KindQuota,
	"payment_required":                KindQuota,
	"too_many_concurrent_requests":    KindConcurrencyLimit,
	"concurrent_limit_exceeded":       KindConcurrencyLimit,
	"system_busy":                     KindRateLimited,
	"rate_limit_exceeded":             KindRateLimited,
	"max_character_limit_exceeded":    KindInvalidPayload,
	"voice_not_found":                 KindConfiguration,
	"model_not_found":                 KindConfiguration,
	"model_decommissioned":            KindConfiguration,
	"unsupported_parameter":           KindConfiguration,
	"unsupported_value":               KindConfiguration,
	"subscription_required":           KindConfiguration,
	"output_format_not_allowed":       KindConfiguration,
	"paid_plan_required":              KindConfiguration,
	"only_for_creator+":               KindConfiguration,
	"invalid_uid":                     KindConfiguration,
	CodeTokenLimit:                    KindConfiguration,
	"model_can_not_do_text_to_speech": KindConfiguration,
	"missing_permissions":             KindPermission,
	"invalid_api_key":                 KindAuthentication,
	"missing_api_key":                 KindAuthentication,
	"invalid_authentication":          KindAuthentication,
	"unauthorized":                    KindAuthentication,
}

// KnownCode reports whether code (any case) is one the classification table knows, so a
// client that finds several candidate codes in a body (ElevenLabs' code, status and type)
// can report the one that decides.
func KnownCode(code string) bool {
	_, ok := codeKinds[strings.ToLower(strings.TrimSpace(code))]
	return ok
}

// settingParams are request fields our settings fill, not the contact: a 400/422 naming one
// means the configuration is wrong (a retired model, a format the plan lacks), and every
// contact would fail the same way.
var settingParams = map[string]bool{
	"model": true, "model_id": true, "voice": true, "voice_id": true, "voice_settings": true,
	"output_format": true, "response_format": true, "max_tokens": true, "max_completion_tokens": true,
	"temperature": true, "top_p": true, "reasoning_effort": true, "speed": true, "seed": true,
	"language_code": true, "apply_text_normalization": true, "optimize_streaming_latency": true,
}

// permissionPhrases mark a 401/403 whose key is known but lacks a permission (OpenAI's
// restricted keys: "You have insufficient permissions for this operation. Missing scopes:
// api.model.read").
var permissionPhrases = []string{"missing scopes", "insufficient permissions"}

// Classify turns facts into a *ServiceError following the table in the package
// documentation. The one exception: when f.Err is (or wraps) context.Canceled, f.Err is
// returned unchanged, because a cancellation by the caller is not a provider error.
func Classify(f Facts) error {
	if f.Err != nil && errors.Is(f.Err, context.Canceled) {
		return f.Err
	}
	kind, byCode := kindOf(f)
	final := false
	switch f.ShouldRetry {
	case HintDoNotRetry:
		final = kind.Transient()
	case HintRetry:
		if !kind.Transient() && !byCode {
			kind = KindUnavailable
		}
	}
	return &ServiceError{
		Provider:   f.Provider,
		Kind:       kind,
		Status:     f.Status,
		Code:       f.Code,
		Param:      f.Param,
		RequestID:  f.RequestID,
		Message:    f.Message,
		RetryAfter: max(f.RetryAfter, 0),
		Err:        f.Err,
		final:      final,
	}
}

// kindOf returns the kind f describes; byCode is true when the provider's own code (or
// words) decided it rather than the status.
func kindOf(f Facts) (_ Kind, byCode bool) {
	if f.Status == 413 {
		// Too large for the provider (Groq's "Request too large … tokens per minute" comes as
		// 413 rate_limit_exceeded): no wait makes it fit.
		return KindInvalidPayload, true
	}
	if f.Code != "" {
		if k, ok := codeKinds[strings.ToLower(strings.TrimSpace(f.Code))]; ok {
			return k, true
		}
	}
	if f.Status == 401 || f.Status == 403 {
		msg := strings.ToLower(f.Message)
		for _, p := range permissionPhrases {
			if strings.Contains(msg, p) {
				return KindPermission, true
			}
		}
	}
	if (f.Status == 400 || f.Status == 422) && settingParams[strings.ToLower(strings.TrimSpace(f.Param))] {
		return KindConfiguration, true
	}
	return statusKind(f), false
}

func statusKind(f Facts) Kind {
	switch s := f.Status; {
	case s == 0:
		return transportKind(f.Err)
	case s == 401 || s == 403:
		return KindAuthentication
	case s == 402:
		return KindQuota
	case s == 400 || s == 422:
		return KindInvalidPayload
	case s == 404, s == 410:
		return KindConfiguration
	case s == 408:
		return KindTimeout
	case s == 409:
		return KindUnavailable
	case s == 429:
		return KindRateLimited
	case s == 498: // Groq: flex tier capacity exceeded, try again later
		return KindUnavailable
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
