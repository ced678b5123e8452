// Package faulttest holds the shared table of provider failures and the kind each must be
// classified as. The fault package tests Classify against the Facts of every row; each HTTP
// client serves Status, Header and Body from an httptest server and checks that what it
// reports classifies the same way, so the clients and the classifier cannot drift apart.
package faulttest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/callagent/resilience/internal/fault"
)

// Provider display names used in the table.
const (
	ElevenLabs = "ElevenLabs"
	LLM        = "LLM"
)

// Case is one provider failure. Rows with Status 0 are transport failures that no HTTP server
// can serve (Facts.Err holds the error); the others are complete responses.
type Case struct {
	// Name identifies the row in test output.
	Name string
	// Provider is ElevenLabs, LLM (an OpenAI-compatible API) or "" for a row that holds for
	// every provider (status only, or transport).
	Provider string
	// Status, Header and Body are the response as the provider sends it.
	Status int
	Header http.Header
	Body   string
	// Facts is what a correct client extracts from the response.
	Facts fault.Facts
	// Want is the kind the response must be classified as.
	Want fault.Kind
}

// For reports whether the row applies to provider (rows with no Provider apply to all).
func (c Case) For(provider string) bool { return c.Provider == "" || c.Provider == provider }

// ClassificationCases returns the table, freshly built so callers may modify it.
func ClassificationCases() []Case {
	el := func(name string, status int, code, msg, body string, want fault.Kind) Case {
		return Case{Name: "elevenlabs/" + name, Provider: ElevenLabs, Status: status, Body: body,
			Header: jsonHeader(),
			Facts:  fault.Facts{Provider: ElevenLabs, Status: status, Code: code, Message: msg}, Want: want}
	}
	oa := func(name string, status int, code, msg, body string, want fault.Kind) Case {
		return Case{Name: "llm/" + name, Provider: LLM, Status: status, Body: body,
			Header: jsonHeader(),
			Facts:  fault.Facts{Provider: LLM, Status: status, Code: code, Message: msg}, Want: want}
	}
	generic := func(name string, status int, want fault.Kind) Case {
		return Case{Name: "any/" + name, Status: status, Header: http.Header{},
			Facts: fault.Facts{Status: status}, Want: want}
	}
	transport := func(name string, err error, want fault.Kind) Case {
		return Case{Name: "transport/" + name, Facts: fault.Facts{Err: err}, Want: want}
	}

	cases := []Case{
		// ElevenLabs: {"detail":{"status"|"code":..., "message":...}}; the code decides.
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
		el("text_too_long 400", 400, "text_too_long", "Text is too long",
			`{"detail":{"status":"text_too_long","message":"Text is too long"}}`, fault.KindInvalidPayload),
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

		// OpenAI-compatible: {"error":{"message","type","param","code"}}.
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

		// Any provider, status only.
		generic("403", 403, fault.KindAuthentication),
		generic("408", 408, fault.KindTimeout),
		generic("418 other 4xx", 418, fault.KindInvalidPayload),
		generic("429 without code", 429, fault.KindRateLimited),
		generic("503", 503, fault.KindUnavailable),
		generic("504", 504, fault.KindUnavailable),
		generic("302 unexpected redirect", 302, fault.KindBadResponse),

		// Transport failures: no response.
		transport("context deadline", context.DeadlineExceeded, fault.KindTimeout),
		transport("client timeout", &url.Error{Op: "Post", URL: "https://api.example/v1", Err: timeoutError{}}, fault.KindTimeout),
		transport("connection refused", &url.Error{Op: "Post", URL: "https://api.example/v1",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, fault.KindNetwork),
		transport("connection reset", syscall.ECONNRESET, fault.KindNetwork),
		transport("unexpected EOF", io.ErrUnexpectedEOF, fault.KindNetwork),
		transport("dns", &net.DNSError{Err: "no such host", Name: "api.example", IsNotFound: true}, fault.KindNetwork),
		transport("unclassified error", errors.New("boom"), fault.KindUnknown),
		transport("nothing at all", nil, fault.KindUnknown),
	}
	return cases
}

// ErrEmptyBody is the decoding error the table's unusable-2xx rows carry.
var ErrEmptyBody = errors.New("response body has no usable content")

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

func withHeader(h http.Header, k, v string) http.Header {
	h.Set(k, v)
	return h
}
