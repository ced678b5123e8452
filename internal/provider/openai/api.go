// Package openai holds clients for OpenAI-compatible APIs (OpenAI, Groq, Together, vLLM,
// Ollama, OpenRouter): Chat writes the call script with POST {base}/chat/completions, and
// Speech synthesizes it with POST {base}/audio/speech (a text-to-speech fallback). The base
// URL includes the version path, as in the OpenAI SDKs (https://api.openai.com/v1,
// https://api.groq.com/openai/v1). Both probe health with GET {base}/models.
//
// Failures are reported as facts to fault.Classify: the HTTP status, error.code (or
// error.type when the code is null), error.message and error.param from
// {"error":{"message","type","param","code"}}, the wait asked for (retry-after-ms,
// Retry-After, or the reset of an exhausted x-ratelimit-* limit), x-should-retry and
// x-request-id. The looser shapes some compatible servers send ({"error":"…"}, a top-level
// message, a numeric code) are read too. A 2xx whose body is unusable (not JSON, no
// choices, empty or cut-off content, no audio) is reported with an *httpx.UnusableBodyError,
// which classifies as bad_response.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
)

// DefaultBaseURL is OpenAI's API with its version path.
const DefaultBaseURL = "https://api.openai.com/v1"

// DefaultTimeout bounds one call when the options' Timeout is zero.
const DefaultTimeout = 60 * time.Second

// endpointPaths are the paths this package appends to a base URL; a base URL that already
// ends in one was copied from an endpoint's documentation.
var endpointPaths = []string{"/chat/completions", "/audio/speech", "/models", "/completions", "/responses"}

// BaseURLHint returns a one-line hint when base, an OpenAI-compatible base URL, looks like
// it lacks the version path (https://api.openai.com instead of https://api.openai.com/v1)
// or already ends in an endpoint (…/v1/chat/completions); otherwise, and for values that
// are not URLs (the constructors report those), "". Both mistakes end in 404s that read as
// a configuration error on every call, hence a hint at start. It is a hint, not an error:
// a few APIs (Perplexity, DeepSeek) serve at the root.
func BaseURLHint(base string) string {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || u.Host == "" {
		return ""
	}
	path := strings.TrimRight(u.Path, "/")
	root := u.Scheme + "://" + u.Host
	for _, ep := range endpointPaths {
		if p, ok := strings.CutSuffix(path, ep); ok && hasVersion(p) {
			return fmt.Sprintf("the base URL ends in the endpoint path %s; it should stop at the version path, e.g. %s", ep, root+p)
		}
	}
	if hasVersion(path) {
		return ""
	}
	return fmt.Sprintf("the base URL has no version path; OpenAI-compatible APIs expect one, e.g. %s/v1", root+path)
}

// hasVersion reports whether a path has a version segment: v1, v2, v1beta, v1alpha2, …
// (Gemini's compatible API is under /v1beta/openai, so it need not be the last).
func hasVersion(path string) bool {
	for seg := range strings.SplitSeq(path, "/") {
		rest, ok := strings.CutPrefix(strings.ToLower(seg), "v")
		if !ok {
			continue
		}
		digits := strings.TrimLeft(rest, "0123456789")
		if len(digits) == len(rest) {
			continue // no digit after the v
		}
		switch strings.TrimRight(digits, "0123456789") {
		case "", "alpha", "beta":
			return true
		}
	}
	return false
}

// api is what Chat and Speech share: where to call, with which key, how to read failures.
type api struct {
	name    string
	key     string
	base    string
	timeout time.Duration
	red     *redact.Redactor
	http    *httpx.Client
}

func newAPI(name, key, base string, timeout time.Duration, hc *httpx.Client, red *redact.Redactor) (*api, error) {
	if hc == nil {
		var err error
		if hc, err = httpx.New(httpx.Options{}); err != nil {
			return nil, err
		}
	}
	if red == nil {
		red = redact.New()
	}
	red.Add(key)
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &api{name: name, key: key, base: base, timeout: timeout, red: red, http: hc}, nil
}

// call sends one request and returns the 2xx response with its body read (up to limit; 0
// discards it), or the classified failure.
func (a *api) call(ctx context.Context, method, path string, body []byte, limit int64) (*httpx.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := httpx.NewRequest(ctx, method, a.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req, limit)
	switch {
	case resp == nil || (resp.OK() && err != nil):
		f := httpx.Failure(a.name, resp, err)
		if resp != nil {
			f.RequestID = a.requestID(resp)
		}
		return nil, fault.Classify(f)
	case !resp.OK():
		e := parseError(resp.Body)
		return nil, fault.Classify(fault.Facts{
			Provider:    a.name,
			Status:      resp.Status,
			Code:        httpx.CleanCode(a.red, e.code),
			Message:     httpx.CleanMessage(a.red, e.message),
			Param:       httpx.CleanMessage(a.red, e.param),
			RequestID:   a.requestID(resp),
			RetryAfter:  fault.ParseRetryAfter(resp.Header, a.http.Now()),
			ShouldRetry: fault.ParseShouldRetry(resp.Header),
			Err:         err,
		})
	}
	return resp, nil
}

// unusable classifies a 2xx response whose body cannot be used (bad_response), keeping
// its request id so the operator can quote it to the provider.
func (a *api) unusable(resp *httpx.Response, reason string, err error) error {
	return fault.Classify(a.unusableFacts(resp, reason, err))
}

func (a *api) unusableFacts(resp *httpx.Response, reason string, err error) fault.Facts {
	f := httpx.Unusable(a.name, resp, reason, err)
	f.RequestID = a.requestID(resp)
	return f
}

// requestID returns the provider's id of the request (x-request-id), made safe for logs:
// it is a header anyone on the path could set.
func (a *api) requestID(resp *httpx.Response) string {
	return httpx.CleanMessage(a.red, resp.Header.Get("X-Request-Id"))
}

// probe is GET {base}/models: nil on a 2xx, the classified error otherwise. A key without
// the Models:Read scope (an OpenAI restricted key) gets a permission_denied error here
// while its calls work; the caller decides what that means for health.
func (a *api) probe(ctx context.Context) error {
	_, err := a.call(ctx, http.MethodGet, "/models", nil, 0)
	return err
}

// errorBody covers OpenAI's {"error":{…}}, the {"error":"…"} of some compatible servers and
// vLLM's top-level {"message","type","param","code"}.
type errorBody struct {
	Error   json.RawMessage `json:"error"`
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Param   json.RawMessage `json:"param"`
	Code    json.RawMessage `json:"code"`
	Detail  json.RawMessage `json:"detail"`
}

type errorObject struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Param   json.RawMessage `json:"param"`
	Code    json.RawMessage `json:"code"`
}

// apiError is what an error body says, as given (not yet cleaned).
type apiError struct {
	code, message, param string
}

// parseError reads the code, message and param from an error body. The code is error.code
// when it is a string, else error.type (OpenAI has sent insufficient_quota with a null code
// and that type); numeric codes repeat the status and are ignored. The param is kept when
// it is a string (it is null when the error is not about one field).
func parseError(body []byte) apiError {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil {
		return apiError{}
	}
	if e := bytes.TrimSpace(eb.Error); len(e) > 0 {
		switch e[0] {
		case '{':
			var o errorObject
			if json.Unmarshal(e, &o) == nil {
				return apiError{code: codeOrType(o.Code, o.Type), message: o.Message, param: jsonString(o.Param)}
			}
		case '"':
			var s string
			if json.Unmarshal(e, &s) == nil {
				return apiError{message: s}
			}
		}
	}
	if eb.Message != "" {
		return apiError{code: codeOrType(eb.Code, eb.Type), message: eb.Message, param: jsonString(eb.Param)}
	}
	return apiError{message: jsonString(eb.Detail)}
}

// codeOrType returns the code when it is a string with the shape of a code, else the type
// when it has that shape, else "".
func codeOrType(code json.RawMessage, typ string) string {
	if s := jsonString(code); httpx.ValidCode(s) {
		return s
	}
	if httpx.ValidCode(typ) {
		return typ
	}
	return ""
}

// jsonString returns raw as a string when it is a JSON string, else "".
func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}
