package fault

// Kind is the category of a provider error. Its String form is stable: it is the
// error_category log field, a metric label and the dead-letter reason.
type Kind uint8

// The kinds. Transient kinds are retried; permanent kinds fail at once.
const (
	// KindUnknown is an error nobody classified (not a *ServiceError, or facts that fit no
	// rule). It is permanent: retrying an error we do not understand only hides a bug.
	KindUnknown Kind = iota

	// KindTimeout: the provider did not answer in time (408, deadline, net timeout).
	KindTimeout
	// KindNetwork: the connection failed (refused, reset, EOF).
	KindNetwork
	// KindUnavailable: the provider is down or overloaded (5xx, 409).
	KindUnavailable
	// KindRateLimited: the provider asks us to slow down (429, system_busy,
	// rate_limit_exceeded), often with a Retry-After.
	KindRateLimited
	// KindConcurrencyLimit: ElevenLabs' 429 too_many_concurrent_requests /
	// concurrent_limit_exceeded. Our concurrency is above the plan's: retried, lowers our
	// concurrency toward the provider, and is NOT a provider failure for the breaker.
	KindConcurrencyLimit
	// KindBadResponse: a 2xx whose body is unusable (not JSON, empty choices or content).
	// Transient once, then permanent: see Retryable.
	KindBadResponse

	// KindAuthentication: 401/403, an invalid or missing API key.
	KindAuthentication
	// KindInvalidPayload: 400/422, text_too_long, or a bad contact. The contact's fault,
	// not the provider's.
	KindInvalidPayload
	// KindQuota: quota_exceeded (seen as 401), insufficient_quota (seen as 429),
	// insufficient_credits (402), payment required.
	KindQuota
	// KindConfiguration: our settings are wrong, not the contact: voice_not_found,
	// model_not_found, model_decommissioned, unsupported_parameter, a format or voice the
	// plan does not include, a 400/422 naming a setting's field, 404, 410.
	KindConfiguration
	// KindPermission: the key is valid but lacks a permission for this endpoint (ElevenLabs
	// missing_permissions, OpenAI "Missing scopes"). On a real call it is a configuration
	// error; on a health probe it proves the provider is up (see resilience.HealthChecker).
	KindPermission
)

// String returns the stable lower snake name of k ("service_unavailable", "quota_exceeded",
// …), or "unknown".
func (k Kind) String() string {
	switch k {
	case KindTimeout:
		return "timeout"
	case KindNetwork:
		return "network"
	case KindUnavailable:
		return "service_unavailable"
	case KindRateLimited:
		return "rate_limited"
	case KindConcurrencyLimit:
		return "concurrency_limit"
	case KindBadResponse:
		return "bad_response"
	case KindAuthentication:
		return "authentication"
	case KindInvalidPayload:
		return "invalid_payload"
	case KindQuota:
		return "quota_exceeded"
	case KindConfiguration:
		return "configuration"
	case KindPermission:
		return "permission_denied"
	default:
		return "unknown"
	}
}

// Transient reports whether errors of kind k may succeed when tried again. KindBadResponse
// is transient, but only once (see Retryable).
func (k Kind) Transient() bool {
	switch k {
	case KindTimeout, KindNetwork, KindUnavailable, KindRateLimited, KindConcurrencyLimit, KindBadResponse:
		return true
	default:
		return false
	}
}

// phrase is the kind in words, for messages built without a provider message.
func (k Kind) phrase() string {
	switch k {
	case KindUnavailable:
		return "service unavailable"
	case KindRateLimited:
		return "rate limited"
	case KindConcurrencyLimit:
		return "concurrency limit exceeded"
	case KindBadResponse:
		return "bad response"
	case KindInvalidPayload:
		return "invalid payload"
	case KindQuota:
		return "quota exceeded"
	case KindConfiguration:
		return "configuration error"
	case KindPermission:
		return "permission denied"
	case KindUnknown:
		return "error"
	default:
		return k.String()
	}
}
