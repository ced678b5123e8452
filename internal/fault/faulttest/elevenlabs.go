package faulttest

import (
	"net/http"
	"time"

	"github.com/callagent/resilience/internal/fault"
)

// ElevenLabsCases are ElevenLabs' error responses as its API sends them: the legacy
// {"detail":{"status","message"}}, the current {"detail":{"type","code","message","status",
// "request_id","param"}} (code wins over status) with a request-id header, or the 422 list
// {"detail":[{"loc","msg","type"}]}, whose first loc names the field (Facts.Param).
func ElevenLabsCases() []Case {
	// el is a row in the legacy shape: a code (or none) and a message, no request id.
	el := func(name string, status int, code, msg, body string, want fault.Kind) Case {
		return Case{Name: "elevenlabs/" + name, Provider: ElevenLabs, Status: status, Body: body,
			Header: jsonHeader(),
			Facts:  fault.Facts{Provider: ElevenLabs, Status: status, Code: code, Message: msg}, Want: want}
	}
	// withID adds the request-id header the API sends with every answer.
	withID := func(c Case, id string) Case {
		c.Header.Set("request-id", id)
		c.Facts.RequestID = id
		return c
	}
	// withParam records the field the body blames.
	withParam := func(c Case, param string) Case {
		c.Facts.Param = param
		return c
	}
	return []Case{
		// Authentication and permissions: all 401, told apart by the code.
		withID(el("unauthorized 401", 401, "unauthorized", "Invalid or expired API key.",
			`{"detail":{"type":"authentication_error","code":"unauthorized","message":"Invalid or expired API key.","status":"unauthorized","request_id":"5f1e2d3c4b5a69788796a5b4c3d2e1f0","param":null}}`,
			fault.KindAuthentication), "5f1e2d3c4b5a69788796a5b4c3d2e1f0"),
		el("invalid_api_key 401", 401, "invalid_api_key", "Invalid API key",
			`{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}`, fault.KindAuthentication),
		el("missing_api_key 401", 401, "missing_api_key", "Missing API key",
			`{"detail":{"status":"missing_api_key","message":"Missing API key"}}`, fault.KindAuthentication),
		el("unknown code falls back to 401", 401, "needs_authorization", "Neither authorization header nor session cookie provided",
			`{"detail":{"status":"needs_authorization","message":"Neither authorization header nor session cookie provided"}}`, fault.KindAuthentication),
		// A key scoped without text_to_speech: known key, missing permission.
		el("missing_permissions 401", 401, "missing_permissions", "The API key you used is missing the permission text_to_speech to execute this operation.",
			`{"detail":{"status":"missing_permissions","message":"The API key you used is missing the permission text_to_speech to execute this operation."}}`,
			fault.KindPermission),

		// Quota: seen as 401 and 402.
		el("quota_exceeded as 401", 401, "quota_exceeded", "This request exceeds your quota of 10000. You have 12 credits remaining, while 85 credits are required for this request.",
			`{"detail":{"status":"quota_exceeded","message":"This request exceeds your quota of 10000. You have 12 credits remaining, while 85 credits are required for this request."}}`,
			fault.KindQuota),
		el("insufficient_credits 402", 402, "insufficient_credits", "Insufficient credits",
			`{"detail":{"code":"insufficient_credits","message":"Insufficient credits"}}`, fault.KindQuota),
		el("payment required without code", 402, "", "Payment required",
			`{"detail":{"message":"Payment required"}}`, fault.KindQuota),

		// Plan limits on settings: the code wins over 402's quota and 403's authentication. The
		// request id of paid_plan_required comes in the body only (a proxy dropped the header).
		func() Case {
			c := withParam(el("paid_plan_required 402 library voice on a free plan", 402, "paid_plan_required",
				"Free users cannot use library voices via the API. Please upgrade your subscription to use this voice.",
				`{"detail":{"type":"payment_required","code":"paid_plan_required","message":"Free users cannot use library voices via the API. Please upgrade your subscription to use this voice.","status":"payment_required","request_id":"0b7c1d2e3f40516273849a5b6c7d8e9f","param":"voice_id"}}`,
				fault.KindConfiguration), "voice_id")
			c.Facts.RequestID = "0b7c1d2e3f40516273849a5b6c7d8e9f"
			return c
		}(),
		func() Case {
			c := withID(el("subscription_required 403", 403, "subscription_required",
				"This model requires a paid subscription. Please upgrade your plan to use it.",
				`{"detail":{"type":"authorization_error","code":"subscription_required","message":"This model requires a paid subscription. Please upgrade your plan to use it.","status":"subscription_required","request_id":"9a8b7c6d5e4f30211203f4e5d6c7b8a9","param":"model_id"}}`,
				fault.KindConfiguration), "9a8b7c6d5e4f30211203f4e5d6c7b8a9")
			return withParam(c, "model_id")
		}(),
		el("output_format_not_allowed 403", 403, "output_format_not_allowed",
			"Output format pcm_44100 is only available on the Pro plan and above. Upgrade your subscription or choose another output format.",
			`{"detail":{"status":"output_format_not_allowed","message":"Output format pcm_44100 is only available on the Pro plan and above. Upgrade your subscription or choose another output format."}}`,
			fault.KindConfiguration),

		// Concurrency (our own concurrency is above the plan's) versus load (back off).
		// The API's message is 321 characters; clients keep the first 300 (httpx.MaxMessageLen).
		el("too_many_concurrent_requests 429", 429, "too_many_concurrent_requests",
			"Too many concurrent requests. Your current subscription is associated with a maximum of 2 concurrent requests (running in parallel). This is done such that a single user does not overwhelm our systems and affect other users negatively. Please upgrade your subscription or contact sales if you want t…",
			`{"detail":{"status":"too_many_concurrent_requests","message":"Too many concurrent requests. Your current subscription is associated with a maximum of 2 concurrent requests (running in parallel). This is done such that a single user does not overwhelm our systems and affect other users negatively. Please upgrade your subscription or contact sales if you want to increase this limit."}}`,
			fault.KindConcurrencyLimit),
		withID(el("concurrent_limit_exceeded 429", 429, "concurrent_limit_exceeded",
			"You have exceeded the maximum number of concurrent requests (5) for your subscription.",
			`{"detail":{"type":"rate_limit_error","code":"concurrent_limit_exceeded","message":"You have exceeded the maximum number of concurrent requests (5) for your subscription.","status":"concurrent_limit_exceeded","request_id":"c0ffee00c0ffee00c0ffee00c0ffee00","param":null}}`,
			fault.KindConcurrencyLimit), "c0ffee00c0ffee00c0ffee00c0ffee00"),
		el("system_busy 429", 429, "system_busy",
			"Our services are experiencing high levels of traffic and your request could not be processed. Please retry later.",
			`{"detail":{"status":"system_busy","message":"Our services are experiencing high levels of traffic and your request could not be processed. Please retry later."}}`,
			fault.KindRateLimited),
		{
			Name: "elevenlabs/system_busy with Retry-After", Provider: ElevenLabs, Status: 429,
			Header: withHeader(jsonHeader(), "Retry-After", "7"),
			Body:   `{"detail":{"status":"system_busy","message":"The system is busy"}}`,
			Facts: fault.Facts{Provider: ElevenLabs, Status: 429, Code: "system_busy", Message: "The system is busy",
				RetryAfter: 7 * time.Second},
			Want: fault.KindRateLimited,
		},

		// The request: the contact's text versus our settings.
		el("max_character_limit_exceeded 400", 400, "max_character_limit_exceeded",
			"This request's text has 40123 characters and exceeds the character limit of 40000 characters.",
			`{"detail":{"status":"max_character_limit_exceeded","message":"This request's text has 40123 characters and exceeds the character limit of 40000 characters."}}`,
			fault.KindInvalidPayload),
		el("voice_not_found 404", 404, "voice_not_found", "A voice with the voice_id JBFqnCBsd6RMkjVDRZzb was not found.",
			`{"detail":{"status":"voice_not_found","message":"A voice with the voice_id JBFqnCBsd6RMkjVDRZzb was not found."}}`, fault.KindConfiguration),
		func() Case {
			c := withID(el("voice_not_found 400", 400, "voice_not_found", "A voice with voice_id 21m00Tcm4TlvDq8ikWAX does not exist.",
				`{"detail":{"type":"invalid_request","code":"voice_not_found","message":"A voice with voice_id 21m00Tcm4TlvDq8ikWAX does not exist.","status":"voice_not_found","request_id":"d41d8cd98f00b204e9800998ecf8427e","param":"voice_id"}}`,
				fault.KindConfiguration), "d41d8cd98f00b204e9800998ecf8427e")
			return withParam(c, "voice_id")
		}(),
		el("model_not_found as 400", 400, "model_not_found", "Model not found",
			`{"detail":{"status":"model_not_found","message":"Model not found"}}`, fault.KindConfiguration),
		withParam(el("422 list loc body.model_id", 422, "", "body.model_id: Value error, model eleven_turbo_v9 does not exist",
			`{"detail":[{"type":"value_error","loc":["body","model_id"],"msg":"Value error, model eleven_turbo_v9 does not exist","input":"eleven_turbo_v9","ctx":{"error":{}}}]}`,
			fault.KindConfiguration), "model_id"),
		withParam(el("422 list loc body.voice_settings.stability", 422, "", "body.voice_settings.stability: Input should be less than or equal to 1",
			`{"detail":[{"type":"less_than_equal","loc":["body","voice_settings","stability"],"msg":"Input should be less than or equal to 1","input":1.5,"ctx":{"le":1.0}}]}`,
			fault.KindConfiguration), "voice_settings"),
		withParam(el("422 list loc body.text", 422, "", "body.text: field required",
			`{"detail":[{"loc":["body","text"],"msg":"field required","type":"value_error.missing"}]}`, fault.KindInvalidPayload), "text"),

		// The provider's trouble.
		el("503", 503, "", "Service temporarily unavailable",
			`{"detail":{"message":"Service temporarily unavailable"}}`, fault.KindUnavailable),
		withID(el("500", 500, "", "Internal server error",
			`{"detail":{"message":"Internal server error"}}`, fault.KindUnavailable), "4e6f7420616e206964206174206c6c21"),
		{
			Name: "elevenlabs/200 empty audio", Provider: ElevenLabs, Status: 200,
			Header: http.Header{"Content-Type": {"audio/mpeg"}},
			Facts:  fault.Facts{Provider: ElevenLabs, Status: 200, Err: ErrEmptyBody},
			Want:   fault.KindBadResponse,
		},
		{
			Name: "elevenlabs/200 json instead of audio", Provider: ElevenLabs, Status: 200, Header: jsonHeader(),
			Body:  `{"audio_base64":"","alignment":null}`,
			Facts: fault.Facts{Provider: ElevenLabs, Status: 200, Err: ErrEmptyBody},
			Want:  fault.KindBadResponse,
		},
	}
}
