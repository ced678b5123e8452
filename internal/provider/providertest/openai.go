package providertest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// OpenAIOptions configures the fake OpenAI-compatible API.
type OpenAIOptions struct {
	// APIKey is the only bearer token accepted; required.
	APIKey string
	// Model is the only chat model that exists; default "gpt-4o-mini".
	Model string
	// ResponseModel is the model a completion reports; default Model + "-2024-07-18" (OpenAI
	// answers with the dated snapshot).
	ResponseModel string
	// Script is the assistant's content; default a short greeting.
	Script string
	// PromptTokens and CompletionTokens are reported in usage; defaults 42 and 17.
	PromptTokens, CompletionTokens int
	// CachedTokens and ReasoningTokens are reported in usage.prompt_tokens_details and
	// usage.completion_tokens_details, which are sent only when one of them is set (as
	// servers without the breakdown answer). A request whose
	// token bound is not above ReasoningTokens gets what a reasoning model gives when the
	// bound runs out while it thinks: empty content, finish_reason "length", and the whole
	// bound used for reasoning.
	CachedTokens, ReasoningTokens int
	// ReasoningModel makes the chat model behave like gpt-5 and the o-series: max_tokens is
	// refused with OpenAI's 400 unsupported_parameter (they want max_completion_tokens).
	ReasoningModel bool
	// RestrictedKey makes the key behave like an OpenAI restricted key without the Models
	// read scope: the probe GET /v1/models gets 401 "Missing scopes: api.model.read" while
	// chat and speech work.
	RestrictedKey bool
	// SpeechModel, Voice and Format are what /audio/speech calls must ask for; defaults
	// "gpt-4o-mini-tts", "alloy", "mp3".
	SpeechModel, Voice, Format string
	// Audio is the body of a successful speech call; default a few bytes.
	Audio []byte
}

// OpenAI is a fake OpenAI-compatible API under /v1: POST /v1/chat/completions, POST
// /v1/audio/speech and the probe GET /v1/models. Its own answers carry an x-request-id
// ("req_fake1", "req_fake2", … in arrival order); scripted replies carry only their own
// headers.
type OpenAI struct {
	*Server
	opts OpenAIOptions
	ids  atomic.Int64
}

// ChatRequest is a chat completion request as the fake decodes it.
type ChatRequest struct {
	Model               string        `json:"model"`
	Messages            []ChatMessage `json:"messages"`
	MaxTokens           *int          `json:"max_tokens"`
	MaxCompletionTokens *int          `json:"max_completion_tokens"`
	Temperature         *float64      `json:"temperature"`
}

// ChatMessage is one message of a ChatRequest.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// SpeechRequest is an /audio/speech request as the fake decodes it.
type SpeechRequest struct {
	Model          string   `json:"model"`
	Input          string   `json:"input"`
	Voice          string   `json:"voice"`
	ResponseFormat string   `json:"response_format"`
	Speed          *float64 `json:"speed"`
	Instructions   string   `json:"instructions"`
}

// NewOpenAI starts a fake OpenAI-compatible API for the test's lifetime.
func NewOpenAI(t testing.TB, o OpenAIOptions) *OpenAI {
	t.Helper()
	if o.APIKey == "" {
		t.Fatal("providertest: OpenAIOptions.APIKey is required")
	}
	if o.Model == "" {
		o.Model = "gpt-4o-mini"
	}
	if o.ResponseModel == "" {
		o.ResponseModel = o.Model + "-2024-07-18"
	}
	if o.Script == "" {
		o.Script = "Hello, this is a courtesy call from the clinic. Do you have a minute?"
	}
	if o.PromptTokens == 0 {
		o.PromptTokens = 42
	}
	if o.CompletionTokens == 0 {
		o.CompletionTokens = 17
	}
	if o.SpeechModel == "" {
		o.SpeechModel = "gpt-4o-mini-tts"
	}
	if o.Voice == "" {
		o.Voice = "alloy"
	}
	if o.Format == "" {
		o.Format = "mp3"
	}
	if o.Audio == nil {
		o.Audio = []byte{0xFF, 0xF3, 0x44, 0xC4, 0x00, 0x00, 0x00, 0x00}
	}
	f := &OpenAI{opts: o}
	f.Server = newServer(t, f.serve)
	return f
}

// BaseURL is the API base with its version path, as LLM_BASE_URL takes it: <URL>/v1.
func (f *OpenAI) BaseURL() string { return f.URL() + "/v1" }

// Options returns the options in effect (defaults filled).
func (f *OpenAI) Options() OpenAIOptions { return f.opts }

// OpenAIError is a reply in OpenAI's error shape; an empty code or typ is sent as null.
func OpenAIError(status int, code, typ, message string) Reply {
	return OpenAIParamError(status, code, typ, "", message)
}

// OpenAIParamError is OpenAIError naming the request field at fault (param); an empty
// param is sent as null.
func OpenAIParamError(status int, code, typ, param, message string) Reply {
	e := map[string]any{"message": message, "type": nullable(typ), "param": nullable(param), "code": nullable(code)}
	b, _ := json.Marshal(map[string]any{"error": e})
	return JSONReply(status, string(b))
}

// RequestIDHeader is the header the fake's own answers carry their request id in.
const RequestIDHeader = "X-Request-Id"

// reply stamps one of the fake's own answers with the next request id, as OpenAI does.
func (f *OpenAI) reply(rep Reply) Reply {
	h := rep.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set(RequestIDHeader, fmt.Sprintf("req_fake%d", f.ids.Add(1)))
	rep.Header = h
	return rep
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (f *OpenAI) serve(s *Server, w http.ResponseWriter, r *http.Request, body []byte) {
	route := r.Method + " " + r.URL.Path
	probe := route == "GET /v1/models"
	s.record(r, body, probe)
	s.checkCommon(r, body)
	if !probe && route != "POST /v1/chat/completions" && route != "POST /v1/audio/speech" {
		s.violation(r, "no such OpenAI endpoint")
		s.write(w, r, f.reply(OpenAIError(http.StatusNotFound, "unknown_url", "invalid_request_error",
			"Invalid URL ("+route+")")))
		return
	}
	auth := r.Header.Get("Authorization")
	switch {
	case auth == "":
		s.write(w, r, f.reply(OpenAIError(http.StatusUnauthorized, "", "invalid_request_error",
			"You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")))
		return
	case auth != "Bearer "+f.opts.APIKey:
		s.write(w, r, f.reply(OpenAIError(http.StatusUnauthorized, "invalid_api_key", "invalid_request_error",
			"Incorrect API key provided: sk-***. You can find your API key at https://platform.openai.com/account/api-keys.")))
		return
	}
	if probe {
		if rep, ok := s.scripted(true); ok {
			s.write(w, r, rep)
			return
		}
		if f.opts.RestrictedKey {
			s.write(w, r, f.reply(OpenAIError(http.StatusUnauthorized, "", "invalid_request_error",
				"You have insufficient permissions for this operation. Missing scopes: api.model.read. Check that you have the correct role in your organization (Reader, Writer, Owner) and project (Viewer, Member, Owner), and if you're using a restricted API key, that it has the necessary scopes.")))
			return
		}
		s.write(w, r, f.reply(JSONReply(http.StatusOK, fmt.Sprintf(
			`{"object":"list","data":[{"id":%q,"object":"model","created":1721172741,"owned_by":"system"},{"id":%q,"object":"model","created":1721172741,"owned_by":"system"}]}`,
			f.opts.Model, f.opts.SpeechModel))))
		return
	}
	if r.URL.Path == "/v1/chat/completions" {
		f.chat(s, w, r, body)
		return
	}
	f.speech(s, w, r, body)
}

func (f *OpenAI) chat(s *Server, w http.ResponseWriter, r *http.Request, body []byte) {
	var req ChatRequest
	if bad, rep := decodeOpenAI(s, r, body, &req); bad {
		s.write(w, r, f.reply(rep))
		return
	}
	if len(req.Messages) == 0 {
		s.violation(r, "messages is empty")
		s.write(w, r, f.reply(OpenAIError(http.StatusBadRequest, "", "invalid_request_error", "[] is too short - 'messages'")))
		return
	}
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant":
		default:
			s.violation(r, "messages[%d].role is %q", i, m.Role)
		}
		if strings.TrimSpace(m.Content) == "" {
			s.violation(r, "messages[%d].content is empty", i)
		}
	}
	if req.MaxTokens != nil && *req.MaxTokens < 1 {
		s.violation(r, "max_tokens is %d", *req.MaxTokens)
	}
	if req.MaxCompletionTokens != nil && *req.MaxCompletionTokens < 1 {
		s.violation(r, "max_completion_tokens is %d", *req.MaxCompletionTokens)
	}
	if req.MaxTokens != nil && req.MaxCompletionTokens != nil {
		s.violation(r, "both max_tokens and max_completion_tokens are set; send one")
	}
	if req.Model != f.opts.Model {
		s.write(w, r, f.reply(OpenAIError(http.StatusNotFound, "model_not_found", "invalid_request_error",
			fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", req.Model))))
		return
	}
	if f.opts.ReasoningModel && req.MaxTokens != nil {
		s.write(w, r, f.reply(OpenAIParamError(http.StatusBadRequest, "unsupported_parameter", "invalid_request_error", "max_tokens",
			"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.")))
		return
	}
	if rep, ok := s.scripted(false); ok {
		s.write(w, r, rep)
		return
	}
	content, finish := f.opts.Script, "stop"
	completion, reasoning := f.opts.CompletionTokens, f.opts.ReasoningTokens
	if bound := cmp.Or(req.MaxCompletionTokens, req.MaxTokens); reasoning > 0 && bound != nil && *bound <= reasoning {
		content, finish = "", "length"
		completion, reasoning = *bound, *bound
	}
	usage := map[string]any{
		"prompt_tokens": f.opts.PromptTokens, "completion_tokens": completion,
		"total_tokens": f.opts.PromptTokens + completion,
	}
	if f.opts.CachedTokens > 0 || f.opts.ReasoningTokens > 0 {
		usage["prompt_tokens_details"] = map[string]any{"cached_tokens": f.opts.CachedTokens, "audio_tokens": 0}
		usage["completion_tokens_details"] = map[string]any{
			"reasoning_tokens": reasoning, "audio_tokens": 0,
			"accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
		}
	}
	resp := map[string]any{
		"id": "chatcmpl-fake1", "object": "chat.completion", "created": 1721172741, "model": f.opts.ResponseModel,
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": content, "refusal": nil, "annotations": []any{}},
			"logprobs":      nil,
			"finish_reason": finish,
		}},
		"usage":              usage,
		"service_tier":       "default",
		"system_fingerprint": "fp_fake",
	}
	b, _ := json.Marshal(resp)
	s.write(w, r, f.reply(JSONReply(http.StatusOK, string(b))))
}

func (f *OpenAI) speech(s *Server, w http.ResponseWriter, r *http.Request, body []byte) {
	var req SpeechRequest
	if bad, rep := decodeOpenAI(s, r, body, &req); bad {
		s.write(w, r, f.reply(rep))
		return
	}
	if strings.TrimSpace(req.Input) == "" {
		s.violation(r, "input is empty")
	}
	if req.Voice != f.opts.Voice || req.ResponseFormat != f.opts.Format {
		s.violation(r, "voice %q, response_format %q; want %q, %q", req.Voice, req.ResponseFormat, f.opts.Voice, f.opts.Format)
	}
	if req.Model != f.opts.SpeechModel {
		s.write(w, r, f.reply(OpenAIError(http.StatusNotFound, "model_not_found", "invalid_request_error",
			fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", req.Model))))
		return
	}
	if rep, ok := s.scripted(false); ok {
		s.write(w, r, rep)
		return
	}
	s.write(w, r, f.reply(Reply{Header: http.Header{"Content-Type": {speechContentType(f.opts.Format)}}, Body: string(f.opts.Audio)}))
}

// decodeOpenAI checks a JSON body strictly (no unknown fields, no nulls).
func decodeOpenAI(s *Server, r *http.Request, body []byte, v any) (bool, Reply) {
	if _, err := jsonFields(body); err != nil {
		s.violation(r, "%v", err)
		return true, OpenAIError(http.StatusBadRequest, "", "invalid_request_error", "We could not parse the JSON body of your request.")
	}
	if err := strict(body, v); err != nil {
		s.violation(r, "body: %v", err)
		return true, OpenAIError(http.StatusBadRequest, "unknown_parameter", "invalid_request_error", "Unrecognized request argument supplied")
	}
	return false, Reply{}
}

func speechContentType(format string) string {
	switch format {
	case "mp3":
		return "audio/mpeg"
	case "pcm":
		return "audio/pcm"
	default:
		return "audio/" + format
	}
}
