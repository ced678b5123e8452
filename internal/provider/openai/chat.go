package openai

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
)

// Defaults of ChatOptions.
const (
	DefaultChatName          = "LLM"
	DefaultChatSettingPrefix = "LLM_"
	DefaultChatModel         = "gpt-4o-mini"
	DefaultMaxTokens         = 300
	// MaxMaxTokens bounds ChatOptions.MaxTokens; a call script needs far fewer.
	MaxMaxTokens = 32768
)

// ChatOptions configures a Chat client. Each instance (primary, fallback) has its own Name,
// so it gets its own breaker, and its own SettingPrefix, so errors name its settings.
type ChatOptions struct {
	// Name is the display name in errors, logs and breakers; default "LLM" (a fallback
	// might be "LLM (fallback)").
	Name string
	// SettingPrefix names the settings in validation errors; default "LLM_" (e.g.
	// "LLM_FALLBACK_").
	SettingPrefix string
	// APIKey (<prefix>API_KEY) is required; sent as Authorization: Bearer. Local servers
	// that take no key (Ollama, vLLM) accept any value.
	APIKey config.Secret
	// Model (<prefix>MODEL) defaults to DefaultChatModel.
	Model string
	// BaseURL (<prefix>BASE_URL) includes the version path; default DefaultBaseURL.
	BaseURL string
	// Prompt is the system prompt template (see LoadPrompt); nil means DefaultPrompt.
	Prompt *Prompt
	// MaxTokens (<prefix>MAX_TOKENS) bounds the completion; default DefaultMaxTokens, at most
	// MaxMaxTokens.
	MaxTokens int
	// Timeout bounds one call, body included, whatever the caller's context allows; default
	// DefaultTimeout. Pass the step's timeout.
	Timeout time.Duration
	// HTTP is the shared client; nil builds a private one with the defaults.
	HTTP *httpx.Client
	// Redactor scrubs provider messages; the API key is added to it. Nil uses a private one.
	Redactor *redact.Redactor
}

// Chat writes call scripts with an OpenAI-compatible chat completions API. It implements
// call.ScriptWriter and resilience.Prober and is safe for concurrent use.
type Chat struct {
	api       *api
	model     string
	prompt    *Prompt
	maxTokens int
}

// NewChat checks o and returns a Chat, or an error listing every bad setting
// (*httpx.SettingError values joined), e.g. "LLM_API_KEY is required when SIMULATE is unset".
func NewChat(o ChatOptions) (*Chat, error) {
	o.Name = cmp.Or(o.Name, DefaultChatName)
	o.SettingPrefix = cmp.Or(o.SettingPrefix, DefaultChatSettingPrefix)
	o.Model = cmp.Or(o.Model, DefaultChatModel)
	o.BaseURL = cmp.Or(o.BaseURL, DefaultBaseURL)
	o.MaxTokens = cmp.Or(o.MaxTokens, DefaultMaxTokens)
	if o.Prompt == nil {
		o.Prompt = DefaultPrompt()
	}
	s := httpx.NewSettings(o.SettingPrefix)
	s.Required("API_KEY", o.APIKey.Reveal())
	if strings.TrimSpace(o.Model) != o.Model {
		s.Problemf("MODEL", "%q has surrounding whitespace", o.Model)
	}
	base := s.BaseURL("BASE_URL", o.BaseURL)
	if o.MaxTokens < 1 || o.MaxTokens > MaxMaxTokens {
		s.Problemf("MAX_TOKENS", "is %d, must be within 1–%d", o.MaxTokens, MaxMaxTokens)
	}
	if o.Timeout < 0 {
		s.Problemf("TIMEOUT", "is %v, must not be negative", o.Timeout)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	a, err := newAPI(o.Name, o.APIKey.Reveal(), base, o.Timeout, o.HTTP, o.Redactor)
	if err != nil {
		return nil, err
	}
	return &Chat{api: a, model: o.Model, prompt: o.Prompt, maxTokens: o.MaxTokens}, nil
}

// Name returns the display name the client reports errors under.
func (c *Chat) Name() string { return c.api.name }

// chatRequest is the JSON body of a chat completion.
type chatRequest struct {
	Model     string        `json:"model"`
	Messages  []chatMessage `json:"messages"`
	MaxTokens int           `json:"max_tokens"`
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
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

// WriteScript asks the model for c's call script: the system prompt rendered for c (name,
// language, variables; never the phone number) and UserMessage. The Script carries the
// model that answered and the token usage. Errors are *fault.ServiceError values (or ctx's
// error when ctx was cancelled).
func (c *Chat) WriteScript(ctx context.Context, ct contact.Contact) (call.Script, error) {
	system, err := c.prompt.System(ct)
	if err != nil {
		return call.Script{}, fault.InvalidContact(c.api.name, fmt.Errorf("render system prompt: %w", err))
	}
	body, err := json.Marshal(chatRequest{
		Model: c.model,
		Messages: []chatMessage{
			{Role: "system", Content: system},
			{Role: "user", Content: UserMessage},
		},
		MaxTokens: c.maxTokens,
	})
	if err != nil {
		return call.Script{}, fmt.Errorf("%s: encode chat request: %w", c.api.name, err)
	}
	resp, err := c.api.call(ctx, http.MethodPost, "/chat/completions", body, httpx.JSONLimit)
	if err != nil {
		return call.Script{}, err
	}
	var cr chatResponse
	if err := json.Unmarshal(resp.Body, &cr); err != nil {
		return call.Script{}, fault.Classify(httpx.Unusable(c.api.name, resp, "not a chat completion ("+contentType(resp)+")", err))
	}
	if len(cr.Choices) == 0 {
		return call.Script{}, fault.Classify(httpx.Unusable(c.api.name, resp, "no choices", nil))
	}
	m := cr.Choices[0].Message
	text := ""
	if m.Content != nil {
		text = strings.TrimSpace(*m.Content)
	}
	if text == "" {
		reason := "empty content"
		if m.Refusal != nil && strings.TrimSpace(*m.Refusal) != "" {
			reason = "the model refused: " + httpx.CleanMessage(c.api.red, *m.Refusal)
		}
		return call.Script{}, fault.Classify(httpx.Unusable(c.api.name, resp, reason, nil))
	}
	s := call.Script{Text: text, Model: cr.Model}
	if s.Model == "" {
		s.Model = c.model
	}
	if cr.Usage != nil {
		s.PromptTokens, s.CompletionTokens = cr.Usage.PromptTokens, cr.Usage.CompletionTokens
	}
	return s, nil
}

// Probe checks that the API answers and accepts the key: GET {base}/models.
func (c *Chat) Probe(ctx context.Context) error { return c.api.probe(ctx) }

func contentType(resp *httpx.Response) string {
	if ct := resp.ContentType(); ct != "" {
		return "content-type " + ct
	}
	return "no content-type"
}
