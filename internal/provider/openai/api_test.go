package openai_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/openai"
	"github.com/callagent/resilience/internal/provider/providertest"
	"github.com/callagent/resilience/internal/redact"
)

// x-should-retry is the provider's own word on retrying; it outranks the status, but not a
// code that says what is wrong. These rows cannot live in the shared table, whose kinds
// decide transience alone.
func TestShouldRetryHeaderDecidesTheRetry(t *testing.T) {
	t.Parallel()
	serverError := `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`
	for name, tc := range map[string]struct {
		status      int
		shouldRetry string
		body        string
		kind        fault.Kind
		retry       bool
	}{
		"500 with x-should-retry false": {500, "false", serverError, fault.KindUnavailable, false},
		"500 with x-should-retry true":  {500, "true", serverError, fault.KindUnavailable, true},
		"500 without the header":        {500, "", serverError, fault.KindUnavailable, true},
		"500 with a garbage value":      {500, "maybe", serverError, fault.KindUnavailable, true},
		"429 rate limit told not to retry": {429, "false",
			`{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			fault.KindRateLimited, false},
		"400 told to retry": {400, "true",
			`{"error":{"message":"Could not parse the request.","type":"invalid_request_error","param":null,"code":null}}`,
			fault.KindUnavailable, true},
		"401 invalid_api_key told to retry": {401, "true",
			`{"error":{"message":"Incorrect API key provided: sk-***.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			fault.KindAuthentication, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const reqID = "req_5e8f0c2a9b7d4e1f3a6c8b0d2e4f6a8c"
			rep := providertest.JSONReply(tc.status, tc.body)
			rep.Header.Set("X-Request-Id", reqID)
			if tc.shouldRetry != "" {
				rep.Header.Set("X-Should-Retry", tc.shouldRetry)
			}
			b := setup(t, providertest.OpenAIOptions{}, nil, nil)
			check := func(what string, err error) {
				t.Helper()
				se := providertest.ServiceError(t, err)
				if se.Kind != tc.kind || fault.IsTransient(err) != tc.retry || fault.Retryable(err, 1) != tc.retry ||
					errors.Is(err, fault.ErrPermanent) == tc.retry {
					t.Errorf("%s: kind %v, transient %v, retryable %v; want %v, %v", what, se.Kind,
						fault.IsTransient(err), fault.Retryable(err, 1), tc.kind, tc.retry)
				}
				if se.RequestID != reqID || !strings.HasSuffix(err.Error(), "(request_id "+reqID+")") {
					t.Errorf("%s: request id %q in %q", what, se.RequestID, err)
				}
			}
			b.fake.Enqueue(rep, rep)
			_, err := b.chat.WriteScript(context.Background(), someone)
			check("WriteScript", err)
			_, err = b.speech.Synthesize(context.Background(), someone, "Hello")
			check("Synthesize", err)
			b.fake.SetFault(rep)
			check("chat Probe", b.chat.Probe(context.Background()))
			check("speech Probe", b.speech.Probe(context.Background()))
		})
	}
}

// A restricted OpenAI key without Models:Read answers the probe with a permission error
// while its calls work; the health checker treats that kind as "up, but warn once". A wrong
// key stays an authentication error.
func TestProbeWithAScopedKeyIsAPermissionError(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.OpenAIOptions{RestrictedKey: true}, nil, nil)
	for what, probe := range map[string]func(context.Context) error{"chat": b.chat.Probe, "speech": b.speech.Probe} {
		err := probe(context.Background())
		se := providertest.ServiceError(t, err)
		if se.Kind != fault.KindPermission || fault.KindOf(err) != fault.KindPermission || fault.IsTransient(err) ||
			se.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), "Missing scopes: api.model.read") ||
			!strings.Contains(err.Error(), "(request_id req_fake") {
			t.Errorf("%s probe with a scoped key: %v %v (%v)", what, se.Kind, se.Status, err)
		}
	}
	if _, err := b.chat.WriteScript(context.Background(), someone); err != nil {
		t.Errorf("the scoped key cannot write: %v", err)
	}
	if _, err := b.speech.Synthesize(context.Background(), someone, "Hello"); err != nil {
		t.Errorf("the scoped key cannot speak: %v", err)
	}

	wrong := setup(t, providertest.OpenAIOptions{APIKey: "sk-proj-another-key-entirely-0000"}, nil, nil)
	err := wrong.chat.Probe(context.Background())
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindAuthentication || se.Code != "invalid_api_key" || fault.IsTransient(err) {
		t.Errorf("probe with a wrong key: %v %q", se.Kind, se.Code)
	}
}

// Whatever a provider echoes — the key in the message, in the param, in the request id
// header — the error the operator sees never holds it.
func TestErrorTextNeverHoldsTheKey(t *testing.T) {
	t.Parallel()
	echo := func(status int) providertest.Reply {
		rep := providertest.OpenAIParamError(status, "invalid_api_key", "invalid_request_error", apiKey,
			"Incorrect API key provided: "+apiKey+". You can find your API key at https://platform.openai.com/account/api-keys.")
		rep.Header.Set("X-Request-Id", apiKey)
		return rep
	}
	for _, status := range []int{400, 401, 403, 404, 429, 500, 503} {
		b := setup(t, providertest.OpenAIOptions{}, nil, nil)
		b.fake.Enqueue(echo(status), echo(status))
		_, chatErr := b.chat.WriteScript(context.Background(), someone)
		_, speechErr := b.speech.Synthesize(context.Background(), someone, "Hello")
		b.fake.SetFault(echo(status))
		for what, err := range map[string]error{"WriteScript": chatErr, "Synthesize": speechErr,
			"Probe": b.chat.Probe(context.Background())} {
			se := providertest.ServiceError(t, err)
			if strings.Contains(err.Error(), apiKey) || strings.Contains(se.Param, apiKey) || strings.Contains(se.RequestID, apiKey) ||
				strings.Contains(se.Message, apiKey[4:20]) {
				t.Errorf("HTTP %d %s: the key leaked: %q (param %q, request id %q)", status, what, err, se.Param, se.RequestID)
			}
			if !strings.Contains(err.Error(), "Incorrect API key provided: "+redact.Placeholder) {
				t.Errorf("HTTP %d %s: error = %q", status, what, err)
			}
		}
	}

	// A 2xx with the key in its request id and refusal.
	b := setup(t, providertest.OpenAIOptions{}, nil, nil)
	rep := providertest.JSONReply(200, `{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,`+
		`"message":{"role":"assistant","content":null,"refusal":"No. `+apiKey+`"},"finish_reason":"stop"}]}`)
	rep.Header.Set("X-Request-Id", apiKey)
	b.fake.Enqueue(rep)
	_, err := b.chat.WriteScript(context.Background(), someone)
	if strings.Contains(err.Error(), apiKey) || fault.KindOf(err) != fault.KindBadResponse {
		t.Errorf("2xx: the key leaked or kind is wrong: %q", err)
	}
}

func TestErrorParamShapes(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		body        string
		param, code string
		kind        fault.Kind
	}{
		"string":            {`{"error":{"message":"m","type":"invalid_request_error","param":"max_tokens","code":null}}`, "max_tokens", "invalid_request_error", fault.KindConfiguration},
		"null":              {`{"error":{"message":"m","type":"invalid_request_error","param":null,"code":null}}`, "", "invalid_request_error", fault.KindInvalidPayload},
		"absent (Groq)":     {`{"error":{"message":"m","type":"invalid_request_error"}}`, "", "invalid_request_error", fault.KindInvalidPayload},
		"not a string":      {`{"error":{"message":"m","type":"invalid_request_error","param":["model"],"code":null}}`, "", "invalid_request_error", fault.KindInvalidPayload},
		"vLLM top level":    {`{"object":"error","message":"m","type":"BadRequestError","param":"temperature","code":400}`, "temperature", "BadRequestError", fault.KindConfiguration},
		"contact's field":   {`{"error":{"message":"m","type":"invalid_request_error","param":"messages[0].content","code":null}}`, "messages[0].content", "invalid_request_error", fault.KindInvalidPayload},
		"setting, any case": {`{"error":{"message":"m","type":"invalid_request_error","param":"Model","code":null}}`, "Model", "invalid_request_error", fault.KindConfiguration},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, providertest.OpenAIOptions{}, nil, nil)
			b.fake.Enqueue(providertest.JSONReply(400, tc.body))
			_, err := b.chat.WriteScript(context.Background(), someone)
			if se := providertest.ServiceError(t, err); se.Param != tc.param || se.Code != tc.code || se.Kind != tc.kind {
				t.Errorf("param %q code %q kind %v; want %q %q %v", se.Param, se.Code, se.Kind, tc.param, tc.code, tc.kind)
			}
		})
	}
}

// The code is kept only when it has the shape of a code and shows no secret: it is passed
// through as it is, and ServiceError prints it when the message is empty. Fuzz crasher
// 5167bfef63cc43c1 (a backspace as error.code).
func TestErrorCodeShapes(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		body, code string
	}{
		"control character":        {`{"error":{"message":"","type":"","param":"0","code":"\b"}}`, ""},
		"control character, typed": {`{"error":{"message":"","type":"invalid_request_error","code":"\b"}}`, "invalid_request_error"},
		"ansi escape as type":      {`{"error":{"message":"","type":"\u001b[2J","code":null}}`, ""},
		"huge code":                {`{"error":{"message":"","code":"` + strings.Repeat("x", 64<<10) + `"}}`, ""},
		"a sentence":               {`{"error":{"message":"","code":"no such thing"}}`, ""},
		"the key as a code":        {`{"error":{"message":"","type":"t","code":"` + apiKey + `"}}`, ""},
		"vLLM top level, bad code": {`{"object":"error","message":"m","type":"Bad\nRequest","code":"\u0000"}`, ""},
		"plain code":               {`{"error":{"message":"m","type":"requests","code":"rate_limit_exceeded"}}`, "rate_limit_exceeded"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, providertest.OpenAIOptions{}, nil, nil)
			b.fake.Enqueue(providertest.JSONReply(403, tc.body))
			_, err := b.chat.WriteScript(context.Background(), someone)
			se := providertest.ServiceError(t, err)
			if se.Code != tc.code {
				t.Errorf("code %.100q, want %q", se.Code, tc.code)
			}
			if text := err.Error(); strings.ContainsFunc(text, unicode.IsControl) || strings.Contains(text, apiKey) || len(text) > 1000 {
				t.Errorf("error text %.200q is not short, printable and free of the key", text)
			}
		})
	}
}

func TestBaseURLHint(t *testing.T) {
	t.Parallel()
	for base, want := range map[string]string{
		"https://api.openai.com":                                  "the base URL has no version path; OpenAI-compatible APIs expect one, e.g. https://api.openai.com/v1",
		"https://api.openai.com/":                                 "the base URL has no version path; OpenAI-compatible APIs expect one, e.g. https://api.openai.com/v1",
		"http://localhost:11434":                                  "the base URL has no version path; OpenAI-compatible APIs expect one, e.g. http://localhost:11434/v1",
		"https://api.groq.com/openai":                             "the base URL has no version path; OpenAI-compatible APIs expect one, e.g. https://api.groq.com/openai/v1",
		"https://api.openai.com/v1/chat/completions":              "the base URL ends in the endpoint path /chat/completions; it should stop at the version path, e.g. https://api.openai.com/v1",
		"https://api.groq.com/openai/v1/models/":                  "the base URL ends in the endpoint path /models; it should stop at the version path, e.g. https://api.groq.com/openai/v1",
		"https://api.openai.com/v1":                               "",
		"https://api.openai.com/v1/":                              "",
		"https://api.groq.com/openai/v1":                          "",
		"http://localhost:11434/v1":                               "",
		"http://127.0.0.1:8000/v1":                                "",
		"https://openrouter.ai/api/v1":                            "",
		"https://generativelanguage.googleapis.com/v1beta/openai": "",
		"https://myres.openai.azure.com/openai/v1":                "",
		"https://api.example.com/V2":                              "",
		"https://api.example.com/video":                           "the base URL has no version path; OpenAI-compatible APIs expect one, e.g. https://api.example.com/video/v1",
		"":                                                        "",
		"not a url":                                               "",
		"http://[::1":                                             "",
	} {
		if got := openai.BaseURLHint(base); got != want {
			t.Errorf("BaseURLHint(%q) = %q\nwant %q", base, got, want)
		}
	}
}
