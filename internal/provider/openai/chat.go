package openai

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

// Defaults of ChatOptions.
const (
	DefaultChatName  = "LLM"
	DefaultChatModel = "gpt-4o-mini"
	DefaultMaxTokens = 300
	// MaxMaxTokens bounds ChatOptions.MaxTokens; a call script needs far fewer.
	MaxMaxTokens = 32768
)

// ChatOptions configures a Chat client. Each instance (primary, fallback) has its own Name,
// so it gets its own breaker. Validate names bad options by field (*field.Error).
type ChatOptions struct {
	// Name is the display name in errors, logs and breakers; default "LLM" (a fallback
	// might be "LLM (fallback)").
	Name string
	// APIKey is required; sent as Authorization: Bearer. Local servers
	// that take no key (Ollama, vLLM) accept any value.
	APIKey secret.Secret
	// Model defaults to DefaultChatModel.
	Model string
	// BaseURL includes the version path; default DefaultBaseURL.
	BaseURL string
	// Prompt is the system prompt template (see LoadPrompt); nil means DefaultPrompt.
	Prompt *Prompt
	// MaxTokens bounds the completion; default DefaultMaxTokens, at most
	// MaxMaxTokens. For reasoning models (gpt-5, o-series) it bounds the reasoning too.
	MaxTokens int
	// TokenParam is the request field MaxTokens is sent in; default
	// TokenParamAuto.
	TokenParam TokenParam
	// Timeout bounds one call, body included, whatever the caller's context allows; default
	// DefaultTimeout. Pass the step's timeout.
	Timeout time.Duration
	// HTTP is the shared client; nil builds a private one with the defaults.
	HTTP *httpx.Client
	// Redactor scrubs provider messages; the API key is added to it. Nil uses a private one.
	Redactor *redact.Redactor
}

// TokenParam names the request field that bounds the completion's length. OpenAI's
// reasoning models (gpt-5, o-series) reject max_tokens with unsupported_parameter and want
// max_completion_tokens; Ollama, Groq and vLLM accept only max_tokens.
type TokenParam string

// The token parameters.
const (
	// TokenParamAuto sends max_completion_tokens to OpenAI (api.openai.com) and Azure OpenAI
	// (*.openai.azure.com), whose every chat model accepts it, and max_tokens elsewhere.
	TokenParamAuto TokenParam = "auto"
	// TokenParamMaxTokens always sends max_tokens, the field every compatible server knows.
	TokenParamMaxTokens TokenParam = "max_tokens"
	// TokenParamMaxCompletionTokens always sends max_completion_tokens.
	TokenParamMaxCompletionTokens TokenParam = "max_completion_tokens"
)

// TokenParams are the values ChatOptions.TokenParam accepts.
var TokenParams = []TokenParam{TokenParamAuto, TokenParamMaxTokens, TokenParamMaxCompletionTokens}

// Chat writes call scripts with an OpenAI-compatible chat completions API. It implements
// call.ScriptWriter and resilience.Prober and is safe for concurrent use.
type Chat struct {
	api        *api
	model      string
	prompt     *Prompt
	maxTokens  int
	tokenParam TokenParam // resolved: never auto
}

// WithDefaults returns o with every unset option at its default.
func (o ChatOptions) WithDefaults() ChatOptions {
	o.Name = cmp.Or(o.Name, DefaultChatName)
	o.Model = cmp.Or(o.Model, DefaultChatModel)
	o.BaseURL = cmp.Or(o.BaseURL, DefaultBaseURL)
	o.MaxTokens = cmp.Or(o.MaxTokens, DefaultMaxTokens)
	o.TokenParam = cmp.Or(o.TokenParam, TokenParamAuto)
	return o
}

// Validate reports every bad option of o (after WithDefaults), each a *field.Error naming
// the field, e.g. "APIKey is required when SIMULATE is unset".
func (o ChatOptions) Validate() error {
	s := httpx.NewSettings()
	s.Required("APIKey", o.APIKey.Reveal())
	if strings.TrimSpace(o.Model) != o.Model {
		s.Problemf("Model", "%q has surrounding whitespace", o.Model)
	}
	s.BaseURL("BaseURL", o.BaseURL)
	if o.MaxTokens < 1 || o.MaxTokens > MaxMaxTokens {
		s.Problemf("MaxTokens", "is %d, must be within 1–%d", o.MaxTokens, MaxMaxTokens)
	}
	if !slices.Contains(TokenParams, o.TokenParam) {
		allowed := make([]string, len(TokenParams))
		for i, p := range TokenParams {
			allowed[i] = string(p)
		}
		s.Problemf("TokenParam", "is %q, must be one of %s", o.TokenParam, strings.Join(allowed, ", "))
	}
	if o.Timeout < 0 {
		s.Problemf("Timeout", "is %v, must not be negative", o.Timeout)
	}
	return s.Err()
}

// NewChat returns a Chat for o with its defaults, or Validate's error listing every bad
// option.
func NewChat(o ChatOptions) (*Chat, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Prompt == nil {
		o.Prompt = DefaultPrompt()
	}
	base := httpx.TrimBaseURL(o.BaseURL)
	a, err := newAPI(o.Name, o.APIKey.Reveal(), base, o.Timeout, o.HTTP, o.Redactor)
	if err != nil {
		return nil, err
	}
	return &Chat{api: a, model: o.Model, prompt: o.Prompt, maxTokens: o.MaxTokens,
		tokenParam: resolveTokenParam(o.TokenParam, base)}, nil
}

// resolveTokenParam turns auto into the field the API at base accepts: OpenAI's own API
// and Azure OpenAI take max_completion_tokens for every model (and reasoning models only
// that); other compatible servers may know only max_tokens.
func resolveTokenParam(p TokenParam, base string) TokenParam {
	if p != TokenParamAuto {
		return p
	}
	u, err := url.Parse(base)
	if err != nil {
		return TokenParamMaxTokens
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "api.openai.com" || strings.HasSuffix(host, ".openai.azure.com") {
		return TokenParamMaxCompletionTokens
	}
	return TokenParamMaxTokens
}

// Name returns the display name the client reports errors under.
func (c *Chat) Name() string { return c.api.name }

// TokenParam returns the request field the completion's bound is sent in, with auto
// resolved for the base URL: max_tokens or max_completion_tokens.
func (c *Chat) TokenParam() TokenParam { return c.tokenParam }

// chatRequest is the JSON body of a chat completion. Exactly one of the two bounds is set
// (MaxTokens is at least 1), so the other is omitted.
type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []chatMessage `json:"messages"`
	MaxTokens           int           `json:"max_tokens,omitempty"`
	MaxCompletionTokens int           `json:"max_completion_tokens,omitempty"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatResponse struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content *string `json:"content"`
			Refusal *string `json:"refusal"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		PromptTokensDetails *struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
		CompletionTokensDetails *struct {
			ReasoningTokens int `json:"reasoning_tokens"`
		} `json:"completion_tokens_details"`
	} `json:"usage"`
}

// reasoningTokens returns the completion tokens spent on reasoning, 0 when not reported.
func (r *chatResponse) reasoningTokens() int {
	if r.Usage == nil || r.Usage.CompletionTokensDetails == nil {
		return 0
	}
	return r.Usage.CompletionTokensDetails.ReasoningTokens
}

// WriteScript asks the model for c's call script: the system prompt rendered for c (name,
// language, variables; never the phone number) and UserMessage. The Script carries the
// model that answered, the token usage and the request id. A script the token limit cut
// off (finish_reason "length", or no content after reasoning) is a configuration error
// (see tokenLimit): a half-sentence must not be phoned to a person. Errors are *fault.ServiceError values (or
// ctx's error when ctx was cancelled).
func (c *Chat) WriteScript(ctx context.Context, ct contact.Contact) (call.Script, error) {
	system, err := c.prompt.System(ct)
	if err != nil {
		return call.Script{}, fault.InvalidContact(c.api.name, fmt.Errorf("render system prompt: %w", err))
	}
	req := chatRequest{
		Model: c.model,
		Messages: []chatMessage{
			{Role: "system", Content: system},
			{Role: "user", Content: UserMessage},
		},
	}
	if c.tokenParam == TokenParamMaxCompletionTokens {
		req.MaxCompletionTokens = c.maxTokens
	} else {
		req.MaxTokens = c.maxTokens
	}
	body, err := json.Marshal(req)
	if err != nil {
		return call.Script{}, fmt.Errorf("%s: encode chat request: %w", c.api.name, err)
	}
	resp, err := c.api.call(ctx, http.MethodPost, "/chat/completions", body, httpx.JSONLimit)
	if err != nil {
		return call.Script{}, err
	}
	// An HTML page from a proxy or captive portal may hold JSON-looking text; only a JSON
	// document is a completion. A missing Content-Type is let through to the decoder.
	if ct := resp.ContentType(); ct != "" && !isJSON(ct) {
		return call.Script{}, c.api.unusable(resp, "not a chat completion ("+contentType(resp)+", not JSON)", nil)
	}
	var cr chatResponse
	if err := json.Unmarshal(resp.Body, &cr); err != nil {
		return call.Script{}, c.api.unusable(resp, "not a chat completion ("+contentType(resp)+")", err)
	}
	if len(cr.Choices) == 0 {
		return call.Script{}, c.api.unusable(resp, "no choices", nil)
	}
	choice := cr.Choices[0]
	text := ""
	if choice.Message.Content != nil {
		text = strings.TrimSpace(*choice.Message.Content)
	}
	reasoning := cr.reasoningTokens()
	switch {
	case choice.FinishReason == "length":
		return call.Script{}, c.tokenLimit(resp, reasoning, text != "")
	case text != "":
	case choice.Message.Refusal != nil && strings.TrimSpace(*choice.Message.Refusal) != "":
		return call.Script{}, c.api.unusable(resp, "the model refused: "+httpx.CleanMessage(c.api.red, *choice.Message.Refusal), nil)
	case reasoning > 0:
		return call.Script{}, c.tokenLimit(resp, reasoning, false)
	default:
		return call.Script{}, c.api.unusable(resp, "empty content", nil)
	}
	s := call.Script{Text: text, Model: cmp.Or(cr.Model, c.model), RequestID: c.api.requestID(resp)}
	if u := cr.Usage; u != nil {
		s.PromptTokens, s.CompletionTokens = u.PromptTokens, u.CompletionTokens
		if u.PromptTokensDetails != nil {
			s.CachedTokens = u.PromptTokensDetails.CachedTokens
		}
		s.ReasoningTokens = reasoning
	}
	return s, nil
}

// tokenLimit is the error of a script the token bound cut off: a configuration error (code
// fault.CodeTokenLimit), since the same bound cuts the next, billed, attempt and every other
// contact's too (a reasoning model spends hundreds of tokens before it writes). So it is not
// retried; the fallback takes over, or the contacts wait while an operator raises the bound.
func (c *Chat) tokenLimit(resp *httpx.Response, reasoning int, cut bool) error {
	f := c.api.unusableFacts(resp, c.tokenLimitReason(reasoning, cut), nil)
	f.Code, f.Param = fault.CodeTokenLimit, string(c.tokenParam)
	return fault.Classify(f)
}

// tokenLimitReason says that the completion ran into the bound we sent and which setting
// raises it; cut tells a truncated script from one never started (reasoning models spend
// the bound on hidden reasoning before they write).
func (c *Chat) tokenLimitReason(reasoning int, cut bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "the model hit the token limit (%s %d)", c.tokenParam, c.maxTokens)
	if reasoning > 0 {
		fmt.Fprintf(&b, " after %d reasoning tokens", reasoning)
	}
	if cut {
		b.WriteString(" and the script is cut off")
	} else {
		b.WriteString(" before writing the script")
	}
	// One setting bounds every endpoint: a fallback inherits LLM_MAX_TOKENS.
	b.WriteString("; raise LLM_MAX_TOKENS")
	return b.String()
}

// Probe checks that the API answers and accepts the key: GET {base}/models. A key valid
// for calls but without the Models read scope (an OpenAI restricted key) gets a
// permission_denied *fault.ServiceError: the API is up, and the caller decides what that
// means for health.
func (c *Chat) Probe(ctx context.Context) error { return c.api.probe(ctx) }

// isJSON reports whether the media type ct (lower case, no parameters) is JSON:
// application/json or a structured +json type.
func isJSON(ct string) bool {
	return ct == "application/json" || (strings.HasPrefix(ct, "application/") && strings.HasSuffix(ct, "+json"))
}

func contentType(resp *httpx.Response) string {
	if ct := resp.ContentType(); ct != "" {
		return "content-type " + ct
	}
	return "no content-type"
}
