package config

import (
	"cmp"
	"errors"
	"fmt"
	"strings"

	option "github.com/callagent/resilience/internal/config/field"
	"github.com/callagent/resilience/internal/provider/crm"
	"github.com/callagent/resilience/internal/provider/elevenlabs"
	"github.com/callagent/resilience/internal/provider/openai"
)

// ProviderOptions are the options of the real provider clients a Config asks for (SIMULATE
// unset), each with its defaults and the fallbacks' inherit rules applied. The worker adds
// what is not configuration (the HTTP client, the redactor, callbacks) and builds them.
type ProviderOptions struct {
	// LLM is the primary, then the fallback when LLM_FALLBACK_BASE_URL is set.
	LLM []openai.ChatOptions
	// TTS is the ElevenLabs primary, then the ElevenLabs fallback (TTS_FALLBACK=elevenlabs).
	TTS []elevenlabs.Options
	// Speech is the OpenAI speech fallback (TTS_FALLBACK=openai), at most one.
	Speech []openai.SpeechOptions
	// CRM is empty without CRM_WEBHOOK_URL.
	CRM []crm.Options
}

// componentCheck is the result of one component's validation and the settings its option
// fields come from, so that Load can name each problem by setting and source.
type componentCheck struct {
	// fields maps an option field ("APIKey") to its setting; "" is the setting blamed for an
	// error that is not a *field.Error.
	fields map[string]string
	err    error
}

// problems returns the component's problems as (setting, reason) pairs.
func (k componentCheck) problems() [][2]string {
	fields, rest := option.Errors(k.err)
	var out [][2]string
	for _, f := range fields {
		setting, ok := k.fields[f.Field]
		if !ok {
			panic("config: no setting for option field " + f.Field)
		}
		out = append(out, [2]string{setting, f.Problem})
	}
	for _, e := range rest {
		out = append(out, [2]string{k.fields[""], e.Error()})
	}
	return out
}

// inherit names the setting of a fallback's option: own when it is set, else the
// primary's.
func inherit(set bool, own, primary string) string {
	if set {
		return own
	}
	return primary
}

// providers builds the provider options of c and validates each; it does not read
// SIMULATE: the caller decides whether real providers are used.
func (c Config) providers() (ProviderOptions, []componentCheck) {
	var p ProviderOptions
	var checks []componentCheck

	prompt, err := openai.LoadPrompt(c.LLM.SystemPromptFile)
	chat := openai.ChatOptions{APIKey: c.LLM.APIKey, Model: c.LLM.Model, BaseURL: c.LLM.BaseURL, Prompt: prompt,
		MaxTokens: c.LLM.MaxTokens, TokenParam: openai.TokenParam(c.LLM.TokenParam), Timeout: c.Timeouts.LLM}.WithDefaults()
	chatFields := map[string]string{"APIKey": "LLM_API_KEY", "Model": "LLM_MODEL", "BaseURL": "LLM_BASE_URL",
		"MaxTokens": "LLM_MAX_TOKENS", "TokenParam": "LLM_TOKEN_PARAM", "Timeout": "LLM_TIMEOUT",
		openai.PromptFileField: "LLM_SYSTEM_PROMPT_FILE"}
	checks = append(checks, componentCheck{chatFields, errors.Join(err, chat.Validate())})
	p.LLM = append(p.LLM, chat)
	if c.LLM.FallbackBaseURL != "" {
		fb := chat
		fb.Name, fb.BaseURL = "LLM (fallback)", c.LLM.FallbackBaseURL
		fb.Model = cmp.Or(c.LLM.FallbackModel, c.LLM.Model)
		fb.APIKey = cmp.Or(c.LLM.FallbackAPIKey, c.LLM.APIKey)
		fb.TokenParam = openai.TokenParam(c.LLM.FallbackTokenParam)
		fb = fb.WithDefaults()
		checks = append(checks, componentCheck{map[string]string{
			"APIKey":     inherit(c.LLM.FallbackAPIKey != "", "LLM_FALLBACK_API_KEY", "LLM_API_KEY"),
			"Model":      inherit(c.LLM.FallbackModel != "", "LLM_FALLBACK_MODEL", "LLM_MODEL"),
			"BaseURL":    "LLM_FALLBACK_BASE_URL",
			"TokenParam": "LLM_FALLBACK_TOKEN_PARAM",
			"MaxTokens":  "LLM_MAX_TOKENS", "Timeout": "LLM_TIMEOUT",
		}, fb.Validate()})
		p.LLM = append(p.LLM, fb)
	}

	voice, err := elevenlabs.ParseVoiceSettings(c.ElevenLabs.VoiceSettings)
	el := elevenlabs.Options{APIKey: c.ElevenLabs.APIKey, VoiceID: c.ElevenLabs.VoiceID, ModelID: c.ElevenLabs.ModelID,
		OutputFormat: c.ElevenLabs.OutputFormat, BaseURL: c.ElevenLabs.BaseURL, VoiceSettings: voice,
		Timeout: c.Timeouts.TTS}.WithDefaults()
	elFields := map[string]string{"APIKey": "ELEVENLABS_API_KEY", "VoiceID": "ELEVENLABS_VOICE_ID",
		"ModelID": "ELEVENLABS_MODEL_ID", "OutputFormat": "ELEVENLABS_OUTPUT_FORMAT", "BaseURL": "ELEVENLABS_BASE_URL",
		"Timeout": "ELEVENLABS_TIMEOUT", "": "ELEVENLABS_VOICE_SETTINGS"}
	checks = append(checks, componentCheck{elFields, errors.Join(err, el.Validate())})
	p.TTS = append(p.TTS, el)
	switch c.TTSFallback.Kind {
	case TTSFallbackElevenLabs:
		fb := el
		fb.Name = "ElevenLabs (fallback)"
		fb.APIKey = cmp.Or(c.TTSFallback.ElevenLabsAPIKey, c.ElevenLabs.APIKey)
		fb.VoiceID = cmp.Or(c.TTSFallback.ElevenLabsVoiceID, c.ElevenLabs.VoiceID)
		fb.ModelID = cmp.Or(c.TTSFallback.ElevenLabsModelID, c.ElevenLabs.ModelID)
		fbFields := map[string]string{
			"APIKey":  inherit(c.TTSFallback.ElevenLabsAPIKey != "", "ELEVENLABS_FALLBACK_API_KEY", "ELEVENLABS_API_KEY"),
			"VoiceID": inherit(c.TTSFallback.ElevenLabsVoiceID != "", "ELEVENLABS_FALLBACK_VOICE_ID", "ELEVENLABS_VOICE_ID"),
			"ModelID": inherit(c.TTSFallback.ElevenLabsModelID != "", "ELEVENLABS_FALLBACK_MODEL_ID", "ELEVENLABS_MODEL_ID"),
		}
		for k, v := range elFields {
			if _, own := fbFields[k]; !own {
				fbFields[k] = v
			}
		}
		checks = append(checks, componentCheck{fbFields, fb.Validate()})
		p.TTS = append(p.TTS, fb)
	case TTSFallbackOpenAI:
		sp := openai.SpeechOptions{APIKey: cmp.Or(c.TTSFallback.OpenAIAPIKey, c.LLM.APIKey),
			BaseURL: c.TTSFallback.OpenAIBaseURL, Model: c.TTSFallback.OpenAIModel, Voice: c.TTSFallback.OpenAIVoice,
			Format: c.TTSFallback.OpenAIFormat, Timeout: c.Timeouts.TTS}.WithDefaults()
		checks = append(checks, componentCheck{map[string]string{
			"APIKey":  inherit(c.TTSFallback.OpenAIAPIKey != "", "OPENAI_TTS_API_KEY", "LLM_API_KEY"),
			"BaseURL": "OPENAI_TTS_BASE_URL", "Model": "OPENAI_TTS_MODEL", "Voice": "OPENAI_TTS_VOICE",
			"Format": "OPENAI_TTS_FORMAT", "Timeout": "ELEVENLABS_TIMEOUT",
		}, sp.Validate()})
		p.Speech = append(p.Speech, sp)
	}

	if url := c.CRM.WebhookURL.Reveal(); url != "" {
		o := crm.Options{WebhookURL: url, HealthURL: c.CRM.HealthURL, Token: c.CRM.Token, Timeout: c.Timeouts.CRM}.WithDefaults()
		checks = append(checks, componentCheck{map[string]string{"WebhookURL": "CRM_WEBHOOK_URL",
			"HealthURL": "CRM_HEALTH_URL", "Timeout": "CRM_TIMEOUT"}, o.Validate()})
		p.CRM = append(p.CRM, o)
	}
	return p, checks
}

// Providers returns the options of the real provider clients c asks for, with an error
// naming every bad setting ("ELEVENLABS_OUTPUT_FORMAT ..."), each once. A Config from Load
// has none: Load reports them.
func (c Config) Providers() (ProviderOptions, error) {
	p, checks := c.providers()
	var errs []error
	seen := map[[2]string]bool{}
	for _, k := range checks {
		for _, pr := range k.problems() {
			if !seen[pr] {
				seen[pr] = true
				errs = append(errs, fmt.Errorf("%s %s", pr[0], pr[1]))
			}
		}
	}
	return p, errors.Join(errs...)
}

// ProviderWarnings are settings that are valid but probably not what the operator wants,
// one line each: a reasoning model with too few tokens, a text-to-speech fallback that
// speaks another format, a base URL that looks wrong.
func (c Config) ProviderWarnings() []string {
	var out []string
	for setting, base := range map[string]string{"LLM_BASE_URL": c.LLM.BaseURL, "LLM_FALLBACK_BASE_URL": c.LLM.FallbackBaseURL} {
		if hint := openai.BaseURLHint(base); hint != "" {
			out = append(out, setting+": "+hint)
		}
	}
	if c.TTSFallback.Kind == TTSFallbackOpenAI {
		if hint := openai.BaseURLHint(c.TTSFallback.OpenAIBaseURL); hint != "" {
			out = append(out, "OPENAI_TTS_BASE_URL: "+hint)
		}
	}
	for _, model := range []string{c.LLM.Model, cmp.Or(c.LLM.FallbackModel, c.LLM.Model)} {
		if w := reasoningBudgetWarning(model, c.LLM.MaxTokens); w != "" {
			out = append(out, w)
			break
		}
	}
	if w := fallbackFormatMismatch(c.ElevenLabs.OutputFormat, c.TTSFallback); w != "" {
		out = append(out, w)
	}
	return out
}

// minReasoningTokens is the least completion budget that leaves a reasoning model room to
// write after it thinks: gpt-5 and the o-series often spend several hundred tokens first.
const minReasoningTokens = 2000

// reasoningBudgetWarning says when model looks like a reasoning model (gpt-5, o1, o3, o4)
// and LLM_MAX_TOKENS leaves it too little to write a script after reasoning: every contact
// would end cut off (a configuration error) before the first call is made.
func reasoningBudgetWarning(model string, maxTokens int) string {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:] // openai/gpt-5 on a router
	}
	reasoning := strings.HasPrefix(m, "gpt-5") || (len(m) > 1 && m[0] == 'o' && m[1] >= '1' && m[1] <= '9')
	if !reasoning || maxTokens >= minReasoningTokens {
		return ""
	}
	return fmt.Sprintf("LLM_MAX_TOKENS is %d but %s is a reasoning model, which spends hundreds of tokens thinking before it writes: "+
		"scripts will be cut off; set LLM_MAX_TOKENS to %d or more", maxTokens, model, minReasoningTokens)
}

// fallbackFormatMismatch says, in one line, when the text-to-speech fallback cannot produce
// audio in the primary's format (an OpenAI voice cannot speak ulaw_8000 for a phone line):
// the calls it serves would carry audio the dialer may not play. Empty when they match.
func fallbackFormatMismatch(primary string, fb TTSFallback) string {
	if fb.Kind != TTSFallbackOpenAI {
		return "" // no fallback, or an ElevenLabs voice with the same output format
	}
	codec := elevenlabs.Codec(primary)
	same := codec == fb.OpenAIFormat
	if codec == "pcm" || codec == "wav" { // OpenAI's pcm and wav are 24 kHz, 16-bit
		same = same && elevenlabs.SampleRate(primary) == 24000
	}
	if same || codec == "" {
		return ""
	}
	return "ELEVENLABS_OUTPUT_FORMAT is " + primary + " but the text-to-speech fallback (OPENAI_TTS_FORMAT) produces " +
		fb.OpenAIFormat + ": calls served by the fallback carry audio in another format. OpenAI speech offers " +
		strings.Join(openai.SpeechFormats, ", ") + "; pick the closest, or a fallback of ELEVENLABS_FALLBACK_* voices."
}
