package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/callagent/resilience/internal/config/field"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/fault/faulttest"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/provider/openai"
	"github.com/callagent/resilience/internal/provider/providertest"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

func TestWriteScriptSendsTheDocumentedRequest(t *testing.T) {
	t.Parallel()
	prompt, err := openai.ParsePrompt("test prompt", "Call {{.Name}} in {{.Language}} about {{.Variables.topic}}.{{.Variables.missing}}")
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, providertest.OpenAIOptions{}, func(o *openai.ChatOptions) {
		o.Prompt, o.MaxTokens = prompt, 120
		o.BaseURL += "/" // a trailing slash is tolerated
	}, nil)
	s, err := b.chat.WriteScript(context.Background(), someone)
	if err != nil {
		t.Fatal(err)
	}
	if s.Text != b.fake.Options().Script || s.Model != "gpt-4o-mini-2024-07-18" || s.PromptTokens != 42 || s.CompletionTokens != 17 ||
		s.CachedTokens != 0 || s.ReasoningTokens != 0 || s.RequestID != "req_fake1" {
		t.Errorf("script = %+v", s)
	}
	if p := b.chat.TokenParam(); p != openai.TokenParamMaxTokens {
		t.Errorf("TokenParam() = %q for a local server, want max_tokens", p)
	}
	reqs := b.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/v1/chat/completions" || r.RawQuery != "" {
		t.Errorf("request line = %s %s?%s", r.Method, r.Path, r.RawQuery)
	}
	for k, want := range map[string]string{
		"Authorization": "Bearer " + apiKey, "Content-Type": "application/json", "User-Agent": "call-agent/test",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	want := `{"model":"gpt-4o-mini","messages":[` +
		`{"role":"system","content":"Call Ada in en about billing."},` +
		`{"role":"user","content":"Write the call script now. Reply with the words to be spoken and nothing else."}],` +
		`"max_tokens":120}`
	if string(r.Body) != want {
		t.Errorf("body = %s\nwant   %s", r.Body, want)
	}
}

func TestWriteScriptWithTheDefaultPromptNeverSendsThePhoneNumber(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.OpenAIOptions{}, nil, nil)
	if _, err := b.chat.WriteScript(context.Background(), someone); err != nil {
		t.Fatal(err)
	}
	body := string(b.fake.Requests()[0].Body)
	for _, s := range []string{"Ada", `\"en\"`, "topic: billing", `"max_tokens":300`} {
		if !strings.Contains(body, s) {
			t.Errorf("body lacks %s: %s", s, body)
		}
	}
	for _, s := range []string{someone.Phone, "4155550123", someone.ID} {
		if strings.Contains(body, s) {
			t.Errorf("body contains %q", s)
		}
	}
}

func TestChatErrorsClassifyLikeTheSharedTable(t *testing.T) {
	t.Parallel()
	providertest.RunTable(t, faulttest.LLM, func(t *testing.T, tc faulttest.Case, rep providertest.Reply) {
		b := setup(t, providertest.OpenAIOptions{}, nil, nil)
		b.fake.Enqueue(rep)
		_, err := b.chat.WriteScript(context.Background(), someone)
		checkFacts(t, "WriteScript", "LLM", err, tc)
		if tc.Status >= 200 && tc.Status <= 299 {
			return
		}
		b.fake.SetFault(rep)
		checkFacts(t, "Probe", "LLM", b.chat.Probe(context.Background()), tc)
	})
}

func TestChatUnusableBodies(t *testing.T) {
	t.Parallel()
	completion := func(message string) string {
		return `{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":` + message + `,"finish_reason":"stop"}]}`
	}
	for name, tc := range map[string]struct {
		reply  providertest.Reply
		reason string
	}{
		"empty content":  {providertest.JSONReply(200, completion(`{"role":"assistant","content":"  "}`)), "unusable response body: empty content"},
		"null content":   {providertest.JSONReply(200, completion(`{"role":"assistant","content":null}`)), "unusable response body: empty content"},
		"refusal":        {providertest.JSONReply(200, completion(`{"role":"assistant","content":null,"refusal":"I can't help with that. `+apiKey+`"}`)), "unusable response body: the model refused: I can't help with that. " + redact.Placeholder},
		"no choices key": {providertest.JSONReply(200, `{"id":"c","object":"chat.completion"}`), "unusable response body: no choices"},
		"not json":       {providertest.Reply{Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html>"}, "unusable response body: not a chat completion (content-type text/html, not JSON)"},
		"json served as html": {providertest.Reply{Header: http.Header{"Content-Type": {"text/html; charset=utf-8"}}, Body: completion(`{"role":"assistant","content":"Hello Ada"}`)},
			"unusable response body: not a chat completion (content-type text/html, not JSON)"},
		"json served as text": {providertest.Reply{Header: http.Header{"Content-Type": {"text/plain"}}, Body: completion(`{"role":"assistant","content":"Hello Ada"}`)},
			"unusable response body: not a chat completion (content-type text/plain, not JSON)"},
		"empty body":         {providertest.Reply{}, "unusable response body: not a chat completion (no content-type): unexpected end of JSON input"},
		"content not string": {providertest.JSONReply(200, completion(`{"role":"assistant","content":[{"type":"text"}]}`)), "unusable response body: not a chat completion (content-type application/json): json: cannot unmarshal array into Go struct field .choices.message.content of type string"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, providertest.OpenAIOptions{}, nil, nil)
			b.fake.Enqueue(tc.reply)
			_, err := b.chat.WriteScript(context.Background(), someone)
			se := providertest.ServiceError(t, err)
			if se.Kind != fault.KindBadResponse || se.Status != 200 || !errors.Is(err, httpx.ErrUnusableBody) {
				t.Errorf("got %v HTTP %d (%v)", se.Kind, se.Status, err)
			}
			if got := "unusable response body: " + strings.TrimPrefix(err.Error(), "LLM: bad response (HTTP 200): unusable response body: "); got != tc.reason {
				t.Errorf("error = %q\nwant reason %q", err, tc.reason)
			}
			// One unusable body may be retried; a second one in a row is permanent.
			if !fault.Retryable(err, 1) || fault.Retryable(err, 2) {
				t.Errorf("retryable at attempts 1, 2 = %v, %v; want true, false", fault.Retryable(err, 1), fault.Retryable(err, 2))
			}
		})
	}
}

func TestCompatibleServersErrorShapes(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		reply         providertest.Reply
		kind          fault.Kind
		code, message string
		retryAfter    time.Duration
	}{
		"ollama string error": {providertest.JSONReply(404, `{"error":"model 'llama9' not found, try pulling it first"}`),
			fault.KindConfiguration, "", "model 'llama9' not found, try pulling it first", 0},
		"vllm top-level error": {providertest.JSONReply(400, `{"object":"error","message":"max_tokens is too large","type":"BadRequestError","param":null,"code":400}`),
			fault.KindInvalidPayload, "BadRequestError", "max_tokens is too large", 0},
		"quota with null code": {providertest.JSONReply(429, `{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":null}}`),
			fault.KindQuota, "insufficient_quota", "You exceeded your current quota.", 0},
		"rate limit with retry-after only": {providertest.Reply{Status: 429, Header: http.Header{"Retry-After": {"2"}},
			Body: `{"error":{"message":"Rate limit reached","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`},
			fault.KindRateLimited, "rate_limit_exceeded", "Rate limit reached", 2 * time.Second},
		"rate limit without retry-after": {providertest.OpenAIError(429, "rate_limit_exceeded", "requests", "Rate limit reached"),
			fault.KindRateLimited, "rate_limit_exceeded", "Rate limit reached", 0},
		"fastapi detail": {providertest.JSONReply(422, `{"detail":"Unprocessable"}`),
			fault.KindInvalidPayload, "", "Unprocessable", 0},
		"500 with empty body": {providertest.Reply{Status: 500}, fault.KindUnavailable, "", "", 0},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, providertest.OpenAIOptions{}, nil, nil)
			b.fake.Enqueue(tc.reply)
			_, err := b.chat.WriteScript(context.Background(), someone)
			se := providertest.ServiceError(t, err)
			if se.Kind != tc.kind || se.Code != tc.code || se.Message != tc.message || se.RetryAfter != tc.retryAfter {
				t.Errorf("got %v %q %q %v, want %v %q %q %v", se.Kind, se.Code, se.Message, se.RetryAfter,
					tc.kind, tc.code, tc.message, tc.retryAfter)
			}
		})
	}
}

func TestChatWrongKeyAndModel(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.OpenAIOptions{}, func(o *openai.ChatOptions) { o.APIKey = "not-the-key" }, nil)
	_, err := b.chat.WriteScript(context.Background(), someone)
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindAuthentication || se.Code != "invalid_api_key" {
		t.Errorf("wrong key: %v %q", se.Kind, se.Code)
	}
	b = setup(t, providertest.OpenAIOptions{}, func(o *openai.ChatOptions) { o.Model = "gpt-9" }, nil)
	_, err = b.chat.WriteScript(context.Background(), someone)
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindConfiguration || se.Message != "The model `gpt-9` does not exist or you do not have access to it." {
		t.Errorf("unknown model: %v %q", se.Kind, se.Message)
	}
}

func TestChatKeyEchoedInErrorBodyIsRedacted(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.OpenAIOptions{}, nil, nil)
	b.fake.Enqueue(providertest.OpenAIError(401, "invalid_api_key", "invalid_request_error",
		"Incorrect API key provided: "+apiKey+". You can find your API key at https://platform.openai.com/account/api-keys."))
	_, err := b.chat.WriteScript(context.Background(), someone)
	se := providertest.ServiceError(t, err)
	if strings.Contains(err.Error(), apiKey) || strings.Contains(se.Message, apiKey[4:20]) {
		t.Fatalf("the key leaked: %q", err)
	}
	if want := "Incorrect API key provided: " + redact.Placeholder + ". You can find your API key at https://platform.openai.com/account/api-keys."; se.Message != want {
		t.Errorf("message = %q\nwant      %q", se.Message, want)
	}
}

func TestChatHugeAndSlowBodies(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.OpenAIOptions{}, nil, nil)
	b.fake.Enqueue(providertest.Reply{Header: http.Header{"Content-Type": {"application/json"}}, Body: `{"choices":[`, Filler: 1 << 30})
	start := time.Now()
	_, err := b.chat.WriteScript(context.Background(), someone)
	var tl *httpx.TooLargeError
	if !errors.As(err, &tl) || tl.Limit != httpx.JSONLimit || fault.KindOf(err) != fault.KindBadResponse {
		t.Errorf("1 GB body: err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("1 GB body: took %v", d)
	}

	b = setup(t, providertest.OpenAIOptions{}, func(o *openai.ChatOptions) { o.Timeout = 100 * time.Millisecond }, nil)
	b.fake.Enqueue(providertest.Reply{Header: http.Header{"Content-Type": {"application/json"}}, Body: `{"choices":[`, Stall: true})
	start = time.Now()
	_, err = b.chat.WriteScript(context.Background(), someone)
	if fault.KindOf(err) != fault.KindTimeout || !errors.Is(err, fault.ErrTransient) {
		t.Errorf("slow body: err = %v (%v)", err, fault.KindOf(err))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slow body: returned after %v", d)
	}
}

func TestChatTemplateFailureForOneContactIsNotAProviderFailure(t *testing.T) {
	t.Parallel()
	prompt, err := openai.ParsePrompt("p", `Hello {{if eq .Name "Boom"}}{{template "nope"}}{{end}}{{.Name}}`)
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, providertest.OpenAIOptions{}, func(o *openai.ChatOptions) { o.Prompt = prompt }, nil)
	_, err = b.chat.WriteScript(context.Background(), contact.Contact{ID: "x", Name: "Boom", Phone: "+14155550123"})
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindInvalidPayload || !strings.Contains(err.Error(), `template: p:1:39: executing "p" at <{{template "nope"}}>: template "nope" not defined`) {
		t.Errorf("err = %v", err)
	}
	if n := b.fake.Calls(); n != 0 {
		t.Errorf("%d calls made", n)
	}
}

func TestChatProbe(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.OpenAIOptions{}, nil, nil)
	if err := b.chat.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := b.fake.Requests()[0]
	if r.Method != http.MethodGet || r.Path != "/v1/models" || r.Header.Get("Authorization") != "Bearer "+apiKey ||
		r.Header.Get("Content-Type") != "" || len(r.Body) != 0 {
		t.Errorf("probe = %s %s %q body=%q", r.Method, r.Path, r.Header.Get("Content-Type"), r.Body)
	}
	providertest.CheckOutage(t, b.fake.Server, providertest.OpenAIError(503, "", "server_error", "The server is overloaded"), b.chat.Probe)
}

func TestNewChatNamesTheBadSettings(t *testing.T) {
	t.Parallel()
	_, err := openai.NewChat(openai.ChatOptions{})
	if want := "APIKey is required when SIMULATE is unset"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	_, err = openai.NewChat(openai.ChatOptions{APIKey: secret.Secret("k"),
		BaseURL: "https://api.groq.com/openai/v1?x=1", MaxTokens: -5, Model: " llama ", TokenParam: "max_output_tokens"})
	want := `Model " llama " has surrounding whitespace` + "\n" +
		"BaseURL must not contain a query (?…)\n" +
		"MaxTokens is -5, must be within 1–32768\n" +
		`TokenParam is "max_output_tokens", must be one of auto, max_tokens, max_completion_tokens`
	if err == nil || err.Error() != want {
		t.Errorf("err =\n%v\nwant\n%s", err, want)
	}
	var se *field.Error
	_, err = openai.NewChat(openai.ChatOptions{APIKey: secret.Secret("k"), TokenParam: "MAX_TOKENS"})
	if !errors.As(err, &se) || se.Field != "TokenParam" {
		t.Errorf("upper-case token param: err = %v", err)
	}
}

func TestTokenParamResolvesAutoByHost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		base string
		set  openai.TokenParam
		want openai.TokenParam
	}{
		{"", "", openai.TokenParamMaxCompletionTokens}, // the default base is OpenAI's
		{"https://api.openai.com/v1", openai.TokenParamAuto, openai.TokenParamMaxCompletionTokens},
		{"https://API.OpenAI.com./v1", "", openai.TokenParamMaxCompletionTokens},
		{"https://myres.openai.azure.com/openai/v1", "", openai.TokenParamMaxCompletionTokens},
		{"https://api.groq.com/openai/v1", "", openai.TokenParamMaxTokens},
		{"http://localhost:11434/v1", "", openai.TokenParamMaxTokens},
		{"https://openrouter.ai/api/v1", openai.TokenParamAuto, openai.TokenParamMaxTokens},
		{"https://api.openai.com.evil.example/v1", "", openai.TokenParamMaxTokens},
		{"https://api.openai.com/v1", openai.TokenParamMaxTokens, openai.TokenParamMaxTokens},
		{"http://localhost:8000/v1", openai.TokenParamMaxCompletionTokens, openai.TokenParamMaxCompletionTokens},
	} {
		c, err := openai.NewChat(openai.ChatOptions{APIKey: secret.Secret("k"), BaseURL: tc.base, TokenParam: tc.set})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.TokenParam(); got != tc.want {
			t.Errorf("base %q, TOKEN_PARAM %q: TokenParam() = %q, want %q", tc.base, tc.set, got, tc.want)
		}
	}
}

// Exactly one of the two bounds goes out, with the value of MaxTokens.
func TestWriteScriptSendsOneTokenBound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		set         openai.TokenParam
		sent, other string
	}{
		{"", "max_tokens", "max_completion_tokens"}, // auto on a loopback server
		{openai.TokenParamAuto, "max_tokens", "max_completion_tokens"},
		{openai.TokenParamMaxTokens, "max_tokens", "max_completion_tokens"},
		{openai.TokenParamMaxCompletionTokens, "max_completion_tokens", "max_tokens"},
	} {
		t.Run(string(tc.set), func(t *testing.T) {
			t.Parallel()
			b := setup(t, providertest.OpenAIOptions{}, func(o *openai.ChatOptions) { o.TokenParam, o.MaxTokens = tc.set, 250 }, nil)
			if _, err := b.chat.WriteScript(context.Background(), someone); err != nil {
				t.Fatal(err)
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal(b.fake.Requests()[0].Body, &body); err != nil {
				t.Fatal(err)
			}
			if string(body[tc.sent]) != "250" {
				t.Errorf("%s = %s, want 250 (body %s)", tc.sent, body[tc.sent], b.fake.Requests()[0].Body)
			}
			if _, ok := body[tc.other]; ok {
				t.Errorf("%s was sent too: %s", tc.other, b.fake.Requests()[0].Body)
			}
		})
	}
}

// gpt-5 and the o-series refuse max_tokens: a configuration error naming the field, which
// TOKEN_PARAM=max_completion_tokens fixes.
func TestReasoningModelRefusesMaxTokens(t *testing.T) {
	t.Parallel()
	fo := providertest.OpenAIOptions{Model: "gpt-5-mini", ReasoningModel: true, ReasoningTokens: 64, CompletionTokens: 90}
	b := setup(t, fo, func(o *openai.ChatOptions) { o.Model, o.TokenParam = "gpt-5-mini", openai.TokenParamMaxTokens }, nil)
	_, err := b.chat.WriteScript(context.Background(), someone)
	se := providertest.ServiceError(t, err)
	if se.Kind != fault.KindConfiguration || se.Code != "unsupported_parameter" || se.Param != "max_tokens" ||
		fault.IsTransient(err) || !strings.Contains(err.Error(), "Use 'max_completion_tokens' instead.") ||
		!strings.HasSuffix(err.Error(), "(request_id req_fake1)") {
		t.Errorf("max_tokens to a reasoning model: %v %q %q: %v", se.Kind, se.Code, se.Param, err)
	}

	b = setup(t, fo, func(o *openai.ChatOptions) {
		o.Model, o.TokenParam = "gpt-5-mini", openai.TokenParamMaxCompletionTokens
	}, nil)
	s, err := b.chat.WriteScript(context.Background(), someone)
	if err != nil || s.ReasoningTokens != 64 || s.CompletionTokens != 90 {
		t.Errorf("max_completion_tokens: %+v, %v", s, err)
	}
}

func TestWriteScriptReportsUsage(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.OpenAIOptions{PromptTokens: 1200, CachedTokens: 1024, CompletionTokens: 180, ReasoningTokens: 128}, nil, nil)
	s, err := b.chat.WriteScript(context.Background(), someone)
	if err != nil {
		t.Fatal(err)
	}
	if s.PromptTokens != 1200 || s.CachedTokens != 1024 || s.CompletionTokens != 180 || s.ReasoningTokens != 128 || s.RequestID != "req_fake1" {
		t.Errorf("script = %+v", s)
	}

	// Servers that report no details (Ollama, older vLLM) and no usage at all.
	for body, want := range map[string]call.Script{
		`{"choices":[{"message":{"content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1}}`: {Text: "Hi", Model: "gpt-4o-mini", PromptTokens: 5, CompletionTokens: 1},
		`{"choices":[{"message":{"content":"Hi"},"finish_reason":"stop"}]}`:                                                   {Text: "Hi", Model: "gpt-4o-mini"},
	} {
		b := setup(t, providertest.OpenAIOptions{}, nil, nil)
		b.fake.Enqueue(providertest.JSONReply(200, body))
		if s, err := b.chat.WriteScript(context.Background(), someone); err != nil || s != want {
			t.Errorf("%s: %+v, %v; want %+v", body, s, err, want)
		}
	}
}

// A script the token bound cut off must not be phoned to anyone: a configuration error (the
// bound is a setting; a fallback inherits LLM_MAX_TOKENS), with a reason that names it.
func TestWriteScriptRefusesAScriptCutByTheTokenLimit(t *testing.T) {
	t.Parallel()
	completion := func(content, finish, usage string) string {
		return `{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":` + content +
			`},"finish_reason":"` + finish + `"}]` + usage + `}`
	}
	reasoned := func(n string) string {
		return `,"usage":{"prompt_tokens":90,"completion_tokens":` + n + `,"completion_tokens_details":{"reasoning_tokens":` + n + `}}`
	}
	for name, tc := range map[string]struct {
		body, want string
	}{
		"cut": {completion(`"Hello Ada, this is the clinic calling about your"`, "length", ""),
			"the model hit the token limit (max_tokens 120) and the script is cut off; raise LLM_MAX_TOKENS"},
		"cut after reasoning": {completion(`"Hello Ada, this is"`, "length", `,"usage":{"completion_tokens":120,"completion_tokens_details":{"reasoning_tokens":110}}`),
			"the model hit the token limit (max_tokens 120) after 110 reasoning tokens and the script is cut off; raise LLM_MAX_TOKENS"},
		"reasoning used it all": {completion(`""`, "length", reasoned("120")),
			"the model hit the token limit (max_tokens 120) after 120 reasoning tokens before writing the script; raise LLM_MAX_TOKENS"},
		"reasoning, no content, finish stop": {completion(`null`, "stop", reasoned("120")),
			"the model hit the token limit (max_tokens 120) after 120 reasoning tokens before writing the script; raise LLM_MAX_TOKENS"},
		"length, nothing written": {completion(`null`, "length", ""),
			"the model hit the token limit (max_tokens 120) before writing the script; raise LLM_MAX_TOKENS"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, providertest.OpenAIOptions{}, func(o *openai.ChatOptions) {
				o.Name, o.MaxTokens = "LLM (fallback)", 120
			}, nil)
			rep := providertest.JSONReply(200, tc.body)
			rep.Header.Set("X-Request-Id", "req_cut")
			b.fake.Enqueue(rep)
			s, err := b.chat.WriteScript(context.Background(), someone)
			se := providertest.ServiceError(t, err)
			want := "LLM (fallback): configuration error (HTTP 200, code token_limit_reached): unusable response body: " + tc.want + " (request_id req_cut)"
			if se.Kind != fault.KindConfiguration || fault.IsTransient(err) || !errors.Is(err, httpx.ErrUnusableBody) || err.Error() != want || s.Text != "" {
				t.Errorf("script %q, err =\n%v\nwant\n%s", s.Text, err, want)
			}
		})
	}

	// Through the fake: a reasoning model given fewer tokens than it thinks with.
	b := setup(t, providertest.OpenAIOptions{ReasoningTokens: 400}, func(o *openai.ChatOptions) {
		o.TokenParam, o.MaxTokens = openai.TokenParamMaxCompletionTokens, 300
	}, nil)
	_, err := b.chat.WriteScript(context.Background(), someone)
	if want := "the model hit the token limit (max_completion_tokens 300) after 300 reasoning tokens before writing the script; raise LLM_MAX_TOKENS (request_id req_fake1)"; fault.KindOf(err) != fault.KindConfiguration || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("err = %v\nwant suffix %s", err, want)
	}
}

func TestWriteScriptAcceptsJSONContentTypes(t *testing.T) {
	t.Parallel()
	body := `{"choices":[{"message":{"content":"Hi Ada"},"finish_reason":"stop"}]}`
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.openai+json"} {
		b := setup(t, providertest.OpenAIOptions{}, nil, nil)
		b.fake.Enqueue(providertest.Reply{Body: body, Header: http.Header{"Content-Type": {ct}}})
		if s, err := b.chat.WriteScript(context.Background(), someone); err != nil || s.Text != "Hi Ada" {
			t.Errorf("content-type %q: %+v, %v", ct, s, err)
		}
	}
}
