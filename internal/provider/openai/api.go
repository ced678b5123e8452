// Package openai holds clients for OpenAI-compatible APIs (OpenAI, Groq, Together, vLLM,
// Ollama, OpenRouter): Chat writes the call script with POST {base}/chat/completions, and
// Speech synthesizes it with POST {base}/audio/speech (a text-to-speech fallback). The base
// URL includes the version path, as in the OpenAI SDKs (https://api.openai.com/v1,
// https://api.groq.com/openai/v1). Both probe health with GET {base}/models.
//
// Failures are reported as facts to fault.Classify: the HTTP status, error.code (or
// error.type when the code is null) and error.message from
// {"error":{"message","type","param","code"}}, and retry-after-ms / Retry-After. The looser
// shapes some compatible servers send ({"error":"…"}, a top-level message, a numeric code)
// are read too. A 2xx whose body is unusable (not JSON, no choices, empty content, no
// audio) is reported with an *httpx.UnusableBodyError, which classifies as bad_response.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
)

// DefaultBaseURL is OpenAI's API with its version path.
const DefaultBaseURL = "https://api.openai.com/v1"

// DefaultTimeout bounds one call when the options' Timeout is zero.
const DefaultTimeout = 60 * time.Second

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
		return nil, fault.Classify(httpx.Failure(a.name, resp, err))
	case !resp.OK():
		code, msg := parseError(resp.Body)
		return nil, fault.Classify(fault.Facts{
			Provider:   a.name,
			Status:     resp.Status,
			Code:       code,
			Message:    httpx.CleanMessage(a.red, msg),
			RetryAfter: fault.ParseRetryAfter(resp.Header, a.http.Now()),
			Err:        err,
		})
	}
	return resp, nil
}

// probe is GET {base}/models: nil on a 2xx, the classified error otherwise.
func (a *api) probe(ctx context.Context) error {
	_, err := a.call(ctx, http.MethodGet, "/models", nil, 0)
	return err
}

// errorBody covers OpenAI's {"error":{…}}, the {"error":"…"} of some compatible servers and
// vLLM's top-level {"message","type","code"}.
type errorBody struct {
	Error   json.RawMessage `json:"error"`
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
	Detail  json.RawMessage `json:"detail"`
}

type errorObject struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// parseError reads the code and message from an error body. The code is error.code when it
// is a string, else error.type (OpenAI has sent insufficient_quota with a null code and that
// type); numeric codes repeat the status and are ignored.
func parseError(body []byte) (code, message string) {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil {
		return "", ""
	}
	if e := bytes.TrimSpace(eb.Error); len(e) > 0 {
		switch e[0] {
		case '{':
			var o errorObject
			if json.Unmarshal(e, &o) == nil {
				return codeOrType(o.Code, o.Type), o.Message
			}
		case '"':
			var s string
			if json.Unmarshal(e, &s) == nil {
				return "", s
			}
		}
	}
	if eb.Message != "" {
		return codeOrType(eb.Code, eb.Type), eb.Message
	}
	var s string
	if json.Unmarshal(eb.Detail, &s) == nil {
		return "", s
	}
	return "", ""
}

func codeOrType(code json.RawMessage, typ string) string {
	var s string
	if json.Unmarshal(code, &s) == nil && s != "" {
		return s
	}
	return typ
}
