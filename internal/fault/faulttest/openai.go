package faulttest

import (
	"errors"
	"net/http"
	"time"

	"github.com/callagent/resilience/internal/fault"
)

// LLMCases are OpenAI-compatible error responses (OpenAI, Groq, vLLM, Ollama) as their APIs
// send them: {"error":{"message","type","param","code"}} with x-request-id, x-should-retry
// and the x-ratelimit-* headers. The bodies are the providers' own words, from their
// documentation and from error reports quoting them.
//
// The Facts are exactly what a correct client extracts: Code is error.code, or error.type
// when the code is null; Param is error.param when it is a string; RequestID is
// x-request-id; ShouldRetry is x-should-retry; RetryAfter is fault.ParseRetryAfter of the
// header. Messages stay under the 300 characters clients keep of a provider message.
func LLMCases() []Case {
	// oa is an OpenAI-shaped error with its request id (when reqID is not "").
	oa := func(name string, status int, reqID, code, param, msg, body string, want fault.Kind) Case {
		return Case{Name: "llm/" + name, Provider: LLM, Status: status, Body: body, Header: openAIHeader(reqID),
			Facts: fault.Facts{Provider: LLM, Status: status, Code: code, Param: param, Message: msg, RequestID: reqID},
			Want:  want}
	}
	const (
		rpdLimit = "Rate limit reached for gpt-4o-mini in organization org-2bNnsyHk6cNK0TUv on requests per day (RPD): Limit 10000, Used 10000, Requested 1. Please try again in 6m0s. Visit https://platform.openai.com/account/rate-limits to learn more."
		groqTPM  = "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_01hq3k4d6bfmzr0c9mxb3v7gyn` on tokens per minute (TPM): Limit 12000, Used 11727, Requested 1054. Please try again in 3.905s. Visit https://console.groq.com/docs/rate-limits for more information."
		scopes   = "You have insufficient permissions for this operation. Missing scopes: api.model.read. Check that you have the correct role in your organization (Reader, Writer, Owner) and project (Viewer, Member, Owner), and if you're using a restricted API key, that it has the necessary scopes."
	)
	return []Case{
		// Authentication, permission, quota.
		oa("invalid_api_key 401", 401, "req_2b0f5e8d1c7a4f6e9b3d0a1c5e7f9b2d", "invalid_api_key", "", "Incorrect API key provided: sk-***.",
			`{"error":{"message":"Incorrect API key provided: sk-***.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, fault.KindAuthentication),
		oa("groq invalid_api_key 401", 401, "", "invalid_api_key", "", "Invalid API Key",
			`{"error":{"message":"Invalid API Key","type":"invalid_request_error","code":"invalid_api_key"}}`, fault.KindAuthentication),
		oa("restricted key 403 missing api.model.read", 403, "req_9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f", "invalid_request_error", "", scopes,
			`{"error":{"message":"`+scopes+`","type":"invalid_request_error","param":null,"code":null}}`, fault.KindPermission),
		oa("restricted key 401 missing model.request", 401, "req_4f5e6d7c8b9a0f1e2d3c4b5a69788796", "invalid_request_error", "",
			"You have insufficient permissions for this operation. Missing scopes: model.request. Check that you have the correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and if you're using a restricted API key, that it has the necessary scopes.",
			`{"error":{"message":"You have insufficient permissions for this operation. Missing scopes: model.request. Check that you have the correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and if you're using a restricted API key, that it has the necessary scopes.","type":"invalid_request_error","param":null,"code":null}}`,
			fault.KindPermission),
		oa("insufficient_quota 429", 429, "req_0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d", "insufficient_quota", "", "You exceeded your current quota, please check your plan and billing details.",
			`{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, fault.KindQuota),

		// Our settings are wrong: every contact would fail the same way.
		oa("model_not_found 404", 404, "req_5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a", "model_not_found", "", "The model `gpt-9` does not exist",
			`{"error":{"message":"The model `+"`gpt-9`"+` does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}`, fault.KindConfiguration),
		oa("gpt-5 unsupported_parameter max_tokens", 400, "req_8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b", "unsupported_parameter", "max_tokens",
			"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
			`{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}`,
			fault.KindConfiguration),
		oa("o3-mini unsupported_parameter temperature", 400, "req_1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d", "unsupported_parameter", "temperature",
			"Unsupported parameter: 'temperature' is not supported with this model.",
			`{"error":{"message":"Unsupported parameter: 'temperature' is not supported with this model.","type":"invalid_request_error","param":"temperature","code":"unsupported_parameter"}}`,
			fault.KindConfiguration),
		oa("gpt-5 unsupported_value temperature", 400, "req_6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c", "unsupported_value", "temperature",
			"Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is supported.",
			`{"error":{"message":"Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is supported.","type":"invalid_request_error","param":"temperature","code":"unsupported_value"}}`,
			fault.KindConfiguration),
		oa("groq model_decommissioned 400", 400, "", "model_decommissioned", "",
			"The model `llama-3.1-70b-versatile` has been decommissioned and is no longer supported. Please refer to https://console.groq.com/docs/deprecations for a recommendation on which model to use instead.",
			`{"error":{"message":"The model `+"`llama-3.1-70b-versatile`"+` has been decommissioned and is no longer supported. Please refer to https://console.groq.com/docs/deprecations for a recommendation on which model to use instead.","type":"invalid_request_error","code":"model_decommissioned"}}`,
			fault.KindConfiguration),
		oa("400 naming param model without code", 400, "req_3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f", "invalid_request_error", "model",
			"Invalid value for 'model': 'gpt-4o-mini '.",
			`{"error":{"message":"Invalid value for 'model': 'gpt-4o-mini '.","type":"invalid_request_error","param":"model","code":null}}`,
			fault.KindConfiguration),
		oa("max_tokens too large 400", 400, "req_7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e", "invalid_request_error", "max_tokens",
			"max_tokens is too large: 40000. This model supports at most 16384 completion tokens, whereas you provided 40000.",
			`{"error":{"message":"max_tokens is too large: 40000. This model supports at most 16384 completion tokens, whereas you provided 40000.","type":"invalid_request_error","param":"max_tokens","code":null}}`,
			fault.KindConfiguration),

		// The contact's data is at fault: a field no setting fills.
		oa("context_length_exceeded 400", 400, "req_0f1e2d3c4b5a69788796a5b4c3d2e1f0", "context_length_exceeded", "messages",
			"This model's maximum context length is 8192 tokens.",
			`{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			fault.KindInvalidPayload),

		// The provider is down or busy.
		oa("409 conflict is retried", 409, "", "server_error", "", "The engine is currently overloaded",
			`{"error":{"message":"The engine is currently overloaded","type":"server_error","param":null,"code":null}}`, fault.KindUnavailable),
		oa("502", 502, "", "server_error", "", "Bad gateway",
			`{"error":{"message":"Bad gateway","type":"server_error","param":null,"code":null}}`, fault.KindUnavailable),
		oa("groq 498 flex capacity_exceeded", 498, "", "capacity_exceeded", "", "Flex tier capacity exceeded",
			`{"error":{"message":"Flex tier capacity exceeded","type":"invalid_request_error","code":"capacity_exceeded"}}`, fault.KindUnavailable),
		{
			Name: "llm/rate_limit_exceeded with retry-after-ms", Provider: LLM, Status: 429,
			Header: withHeader(withHeader(jsonHeader(), "Retry-After-Ms", "1500"), "Retry-After", "2"),
			Body:   `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			Facts: fault.Facts{Provider: LLM, Status: 429, Code: "rate_limit_exceeded", Message: "Rate limit reached for requests",
				RetryAfter: 1500 * time.Millisecond},
			Want: fault.KindRateLimited,
		},
		{
			// No Retry-After: the exhausted daily request limit's reset says how long.
			Name: "llm/rate_limit_exceeded RPD with only x-ratelimit headers", Provider: LLM, Status: 429,
			Header: rateLimitHeader(openAIHeader("req_e1d2c3b4a5f60718293a4b5c6d7e8f90"), "10000", "0", "6m0s", "200000", "199970", "9ms"),
			Body:   `{"error":{"message":"` + rpdLimit + `","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			Facts: fault.Facts{Provider: LLM, Status: 429, Code: "rate_limit_exceeded", Message: rpdLimit,
				RequestID: "req_e1d2c3b4a5f60718293a4b5c6d7e8f90", RetryAfter: 6 * time.Minute},
			Want: fault.KindRateLimited,
		},
		{
			// Groq sends retry-after with every 429; it wins over the limit's reset.
			Name: "llm/groq rate_limit_exceeded TPM with retry-after", Provider: LLM, Status: 429,
			Header: withHeader(rateLimitHeader(jsonHeader(), "1000", "988", "1m26.4s", "12000", "0", "3.905s"), "Retry-After", "4"),
			Body:   `{"error":{"message":"` + groqTPM + `","type":"tokens","code":"rate_limit_exceeded"}}`,
			Facts: fault.Facts{Provider: LLM, Status: 429, Code: "rate_limit_exceeded", Message: groqTPM,
				RetryAfter: 4 * time.Second},
			Want: fault.KindRateLimited,
		},
		{
			// The provider's word beats the status: a 400 it says may succeed is retried.
			Name: "llm/400 with x-should-retry true", Provider: LLM, Status: 400,
			Header: withHeader(openAIHeader("req_a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"), "X-Should-Retry", "true"),
			Body:   `{"error":{"message":"The server had an error processing your request. Sorry about that! You can retry your request.","type":"invalid_request_error","param":null,"code":null}}`,
			Facts: fault.Facts{Provider: LLM, Status: 400, Code: "invalid_request_error", RequestID: "req_a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5",
				Message:     "The server had an error processing your request. Sorry about that! You can retry your request.",
				ShouldRetry: fault.HintRetry},
			Want: fault.KindUnavailable,
		},

		// A 2xx that cannot be used.
		{
			Name: "llm/200 empty choices", Provider: LLM, Status: 200, Header: openAIHeader("req_c0ffee00c0ffee00c0ffee00c0ffee00"),
			Body:  `{"id":"chatcmpl-1","object":"chat.completion","choices":[]}`,
			Facts: fault.Facts{Provider: LLM, Status: 200, RequestID: "req_c0ffee00c0ffee00c0ffee00c0ffee00", Err: ErrEmptyBody},
			Want:  fault.KindBadResponse,
		},
		{
			Name: "llm/200 not json", Provider: LLM, Status: 200, Header: http.Header{"Content-Type": {"text/html"}},
			Body:  `<html>upstream proxy error</html>`,
			Facts: fault.Facts{Provider: LLM, Status: 200, Err: errors.New("not a chat completion (content-type text/html, not JSON)")},
			Want:  fault.KindBadResponse,
		},
		{
			// A captive portal or proxy page whose text happens to parse as a completion.
			Name: "llm/200 json body served as text/html", Provider: LLM, Status: 200,
			Header: http.Header{"Content-Type": {"text/html; charset=utf-8"}},
			Body:   `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}]}`,
			Facts:  fault.Facts{Provider: LLM, Status: 200, Err: errors.New("not a chat completion (content-type text/html, not JSON)")},
			Want:   fault.KindBadResponse,
		},
		{
			// The script was cut by the token bound: never phone half a sentence to a person.
			Name: "llm/200 finish_reason length", Provider: LLM, Status: 200, Header: openAIHeader("req_1e2d3c4b5a6f7e8d9c0b1a2f3e4d5c6b"),
			Body: `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello Ada, this is the clinic calling about your","refusal":null},"finish_reason":"length"}],` +
				`"usage":{"prompt_tokens":96,"completion_tokens":10,"total_tokens":106,"completion_tokens_details":{"reasoning_tokens":0}}}`,
			Facts: fault.Facts{Provider: LLM, Status: 200, RequestID: "req_1e2d3c4b5a6f7e8d9c0b1a2f3e4d5c6b",
				Code: fault.CodeTokenLimit, Param: "max_tokens", // the bound is a setting
				Err: errors.New("the model hit the token limit and the script is cut off")},
			Want: fault.KindConfiguration,
		},
		{
			// A reasoning model spent the whole bound thinking and wrote nothing.
			Name: "llm/200 reasoning used the whole token bound", Provider: LLM, Status: 200, Header: openAIHeader("req_9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c"),
			Body: `{"id":"chatcmpl-2","object":"chat.completion","model":"gpt-5-mini-2025-08-07","choices":[{"index":0,"message":{"role":"assistant","content":"","refusal":null,"annotations":[]},"finish_reason":"length"}],` +
				`"usage":{"prompt_tokens":120,"completion_tokens":300,"total_tokens":420,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":300,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`,
			Facts: fault.Facts{Provider: LLM, Status: 200, RequestID: "req_9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c",
				Code: fault.CodeTokenLimit, Param: "max_tokens",
				Err: errors.New("the model hit the token limit after 300 reasoning tokens before writing the script")},
			Want: fault.KindConfiguration,
		},
	}
}

// openAIHeader is the header of an OpenAI answer: JSON, with its request id when reqID is
// not "".
func openAIHeader(reqID string) http.Header {
	h := jsonHeader()
	h.Set("Openai-Version", "2020-10-01")
	h.Set("Openai-Processing-Ms", "183")
	if reqID != "" {
		h.Set("X-Request-Id", reqID)
	}
	return h
}

// rateLimitHeader adds OpenAI's rate-limit headers (Groq sends the same) to h.
func rateLimitHeader(h http.Header, limitReq, remainingReq, resetReq, limitTok, remainingTok, resetTok string) http.Header {
	h.Set("X-Ratelimit-Limit-Requests", limitReq)
	h.Set("X-Ratelimit-Remaining-Requests", remainingReq)
	h.Set("X-Ratelimit-Reset-Requests", resetReq)
	h.Set("X-Ratelimit-Limit-Tokens", limitTok)
	h.Set("X-Ratelimit-Remaining-Tokens", remainingTok)
	h.Set("X-Ratelimit-Reset-Tokens", resetTok)
	return h
}
