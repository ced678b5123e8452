package faulttest

import (
	"errors"
	"net/http"
	"time"

	"github.com/callagent/resilience/internal/fault"
)

// LLMCases are OpenAI-compatible error responses: {"error":{"message","type","param","code"}}.
func LLMCases() []Case {
	oa := func(name string, status int, code, msg, body string, want fault.Kind) Case {
		return Case{Name: "llm/" + name, Provider: LLM, Status: status, Body: body,
			Header: jsonHeader(),
			Facts:  fault.Facts{Provider: LLM, Status: status, Code: code, Message: msg}, Want: want}
	}
	return []Case{
		oa("invalid_api_key 401", 401, "invalid_api_key", "Incorrect API key provided: sk-***.",
			`{"error":{"message":"Incorrect API key provided: sk-***.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, fault.KindAuthentication),
		oa("insufficient_quota 429", 429, "insufficient_quota", "You exceeded your current quota, please check your plan and billing details.",
			`{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, fault.KindQuota),
		oa("model_not_found 404", 404, "model_not_found", "The model `gpt-9` does not exist",
			`{"error":{"message":"The model `+"`gpt-9`"+` does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}`, fault.KindConfiguration),
		oa("context_length_exceeded 400", 400, "context_length_exceeded", "This model's maximum context length is 8192 tokens.",
			`{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`, fault.KindInvalidPayload),
		oa("409 conflict is retried", 409, "", "The engine is currently overloaded",
			`{"error":{"message":"The engine is currently overloaded","type":"server_error","param":null,"code":null}}`, fault.KindUnavailable),
		oa("502", 502, "", "Bad gateway",
			`{"error":{"message":"Bad gateway","type":"server_error","param":null,"code":null}}`, fault.KindUnavailable),
		{
			Name: "llm/rate_limit_exceeded with retry-after-ms", Provider: LLM, Status: 429,
			Header: withHeader(withHeader(jsonHeader(), "Retry-After-Ms", "1500"), "Retry-After", "2"),
			Body:   `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			Facts: fault.Facts{Provider: LLM, Status: 429, Code: "rate_limit_exceeded", Message: "Rate limit reached for requests",
				RetryAfter: 1500 * time.Millisecond},
			Want: fault.KindRateLimited,
		},
		{
			Name: "llm/200 empty choices", Provider: LLM, Status: 200, Header: jsonHeader(),
			Body:  `{"id":"chatcmpl-1","object":"chat.completion","choices":[]}`,
			Facts: fault.Facts{Provider: LLM, Status: 200, Err: ErrEmptyBody},
			Want:  fault.KindBadResponse,
		},
		{
			Name: "llm/200 not json", Provider: LLM, Status: 200, Header: http.Header{"Content-Type": {"text/html"}},
			Body:  `<html>upstream proxy error</html>`,
			Facts: fault.Facts{Provider: LLM, Status: 200, Err: errors.New("invalid character '<' looking for beginning of value")},
			Want:  fault.KindBadResponse,
		},
	}
}
