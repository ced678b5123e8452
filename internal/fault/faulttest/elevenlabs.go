package faulttest

import (
	"net/http"
	"time"

	"github.com/callagent/resilience/internal/fault"
)

// ElevenLabsCases are ElevenLabs' error responses as its API sends them:
// {"detail":{"status"|"code":..., "message":...}} or the 422 list; the code decides.
func ElevenLabsCases() []Case {
	el := func(name string, status int, code, msg, body string, want fault.Kind) Case {
		return Case{Name: "elevenlabs/" + name, Provider: ElevenLabs, Status: status, Body: body,
			Header: jsonHeader(),
			Facts:  fault.Facts{Provider: ElevenLabs, Status: status, Code: code, Message: msg}, Want: want}
	}
	return []Case{
		el("quota_exceeded as 401", 401, "quota_exceeded", "This request exceeds your quota of 10000. You have 12 credits remaining.",
			`{"detail":{"status":"quota_exceeded","message":"This request exceeds your quota of 10000. You have 12 credits remaining."}}`, fault.KindQuota),
		el("insufficient_credits 402", 402, "insufficient_credits", "Insufficient credits",
			`{"detail":{"code":"insufficient_credits","message":"Insufficient credits"}}`, fault.KindQuota),
		el("payment required without code", 402, "", "Payment required",
			`{"detail":{"message":"Payment required"}}`, fault.KindQuota),
		el("invalid_api_key 401", 401, "invalid_api_key", "Invalid API key",
			`{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}`, fault.KindAuthentication),
		el("missing_api_key 401", 401, "missing_api_key", "Missing API key",
			`{"detail":{"status":"missing_api_key","message":"Missing API key"}}`, fault.KindAuthentication),
		el("unknown code falls back to 401", 401, "needs_authorization", "Neither authorization header nor session cookie provided",
			`{"detail":{"status":"needs_authorization","message":"Neither authorization header nor session cookie provided"}}`, fault.KindAuthentication),
		el("too_many_concurrent_requests 429", 429, "too_many_concurrent_requests", "Too many concurrent requests",
			`{"detail":{"status":"too_many_concurrent_requests","message":"Too many concurrent requests"}}`, fault.KindConcurrencyLimit),
		el("concurrent_limit_exceeded 429", 429, "concurrent_limit_exceeded", "Concurrent limit exceeded",
			`{"detail":{"code":"concurrent_limit_exceeded","message":"Concurrent limit exceeded"}}`, fault.KindConcurrencyLimit),
		el("system_busy 429", 429, "system_busy", "The system is busy, try again later",
			`{"detail":{"status":"system_busy","message":"The system is busy, try again later"}}`, fault.KindRateLimited),
		el("max_character_limit_exceeded 400", 400, "max_character_limit_exceeded", "Text is too long",
			`{"detail":{"status":"max_character_limit_exceeded","message":"Text is too long"}}`, fault.KindInvalidPayload),
		el("voice_not_found 404", 404, "voice_not_found", "A voice with the voice_id was not found",
			`{"detail":{"status":"voice_not_found","message":"A voice with the voice_id was not found"}}`, fault.KindConfiguration),
		el("model_not_found as 400", 400, "model_not_found", "Model not found",
			`{"detail":{"status":"model_not_found","message":"Model not found"}}`, fault.KindConfiguration),
		el("validation 422 list", 422, "", "field required",
			`{"detail":[{"loc":["body","text"],"msg":"field required","type":"value_error.missing"}]}`, fault.KindInvalidPayload),
		el("503", 503, "", "Service temporarily unavailable",
			`{"detail":{"message":"Service temporarily unavailable"}}`, fault.KindUnavailable),
		el("500", 500, "", "Internal server error",
			`{"detail":{"message":"Internal server error"}}`, fault.KindUnavailable),
		{
			Name: "elevenlabs/system_busy with Retry-After", Provider: ElevenLabs, Status: 429,
			Header: withHeader(jsonHeader(), "Retry-After", "7"),
			Body:   `{"detail":{"status":"system_busy","message":"The system is busy"}}`,
			Facts: fault.Facts{Provider: ElevenLabs, Status: 429, Code: "system_busy", Message: "The system is busy",
				RetryAfter: 7 * time.Second},
			Want: fault.KindRateLimited,
		},
		{
			Name: "elevenlabs/200 empty audio", Provider: ElevenLabs, Status: 200,
			Header: http.Header{"Content-Type": {"audio/mpeg"}},
			Facts:  fault.Facts{Provider: ElevenLabs, Status: 200, Err: ErrEmptyBody},
			Want:   fault.KindBadResponse,
		},
	}
}
