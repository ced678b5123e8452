package daemon

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/provider/crm"
	"github.com/callagent/resilience/internal/provider/elevenlabs"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/provider/openai"
	"github.com/callagent/resilience/internal/provider/sim"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/resilience"
)

// Provider is one implementation of a step, with the name its breaker, logs and records use.
type Provider[P any] struct {
	Name  string
	Impl  P
	Probe resilience.Prober
	// Bind, if set, receives the provider's guard once the worker has built it (ElevenLabs
	// sizes the bulkhead from its maximum-concurrent-requests header).
	Bind func(*resilience.Guard)
}

// Providers are the step implementations, each step an ordered list: the primary first,
// then its fallbacks. Each provider gets its own breaker, bulkhead and health checker.
type Providers struct {
	LLM []Provider[call.ScriptWriter]
	TTS []Provider[call.Synthesizer]
	// CRM is empty when no CRM is configured: the call ends after TTS.
	CRM []Provider[call.Recorder]
	// Close releases what the providers hold (idle HTTP connections); may be nil.
	Close func()
}

// NewProviders builds the providers cfg asks for: the simulated ones when SIMULATE is set,
// the real HTTP clients otherwise. With real providers every missing or bad setting is
// reported at once, named, and the worker does not start. red receives every key so that
// no log line can show one.
func NewProviders(cfg config.Config, log logrus.FieldLogger, red *redact.Redactor, version string) (*Providers, error) {
	if cfg.Sim.Scenario != "" {
		o := sim.Options{Scenario: cfg.Sim.Scenario, Latency: cfg.Sim.Latency, Outage: cfg.Sim.TTSOutage, Log: log}
		llm, tts := sim.NewLLM(o), sim.NewTTS(o)
		return &Providers{
			LLM: []Provider[call.ScriptWriter]{{Name: "LLM", Impl: llm, Probe: llm}},
			TTS: []Provider[call.Synthesizer]{{Name: sim.Provider, Impl: tts, Probe: tts}},
		}, nil
	}
	hc, err := httpx.New(httpx.Options{Version: version, MaxIdleConnsPerHost: cfg.Worker.Concurrency})
	if err != nil {
		return nil, err
	}
	for _, s := range []config.Secret{cfg.LLM.APIKey, cfg.LLM.FallbackAPIKey, cfg.ElevenLabs.APIKey,
		cfg.TTSFallback.ElevenLabsAPIKey, cfg.TTSFallback.OpenAIAPIKey, cfg.CRM.WebhookURL, cfg.CRM.Token} {
		red.Add(s.Reveal())
	}
	p := &Providers{Close: hc.CloseIdleConnections}
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	prompt, err := openai.LoadPrompt(cfg.LLM.SystemPromptFile)
	keep(err)
	chat := openai.ChatOptions{APIKey: cfg.LLM.APIKey, Model: cfg.LLM.Model, BaseURL: cfg.LLM.BaseURL, Prompt: prompt,
		MaxTokens: cfg.LLM.MaxTokens, TokenParam: openai.TokenParam(cfg.LLM.TokenParam), Timeout: cfg.Timeouts.LLM,
		HTTP: hc, Redactor: red}
	if llm, err := openai.NewChat(chat); err == nil {
		p.LLM = append(p.LLM, Provider[call.ScriptWriter]{Name: "LLM", Impl: llm, Probe: llm})
	} else {
		keep(err)
	}
	if cfg.LLM.FallbackBaseURL != "" {
		fb := chat
		fb.Name, fb.SettingPrefix, fb.BaseURL = "LLM (fallback)", "LLM_FALLBACK_", cfg.LLM.FallbackBaseURL
		fb.Model = cmp.Or(cfg.LLM.FallbackModel, cfg.LLM.Model)
		fb.APIKey = cmp.Or(cfg.LLM.FallbackAPIKey, cfg.LLM.APIKey)
		fb.TokenParam = openai.TokenParam(cfg.LLM.FallbackTokenParam)
		if llm, err := openai.NewChat(fb); err == nil {
			p.LLM = append(p.LLM, Provider[call.ScriptWriter]{Name: fb.Name, Impl: llm, Probe: llm})
		} else {
			keep(err)
		}
	}

	voice, err := elevenlabs.ParseVoiceSettings(cfg.ElevenLabs.VoiceSettings)
	keep(err)
	el := elevenlabs.Options{APIKey: cfg.ElevenLabs.APIKey, VoiceID: cfg.ElevenLabs.VoiceID, ModelID: cfg.ElevenLabs.ModelID,
		OutputFormat: cfg.ElevenLabs.OutputFormat, BaseURL: cfg.ElevenLabs.BaseURL, VoiceSettings: voice,
		Timeout: cfg.Timeouts.TTS, HTTP: hc, Redactor: red}
	keep(addElevenLabs(p, el, cfg.Bulkhead.TTS))
	switch cfg.TTSFallback.Kind {
	case config.TTSFallbackElevenLabs:
		fb := el
		fb.Name, fb.SettingPrefix = "ElevenLabs (fallback)", "ELEVENLABS_FALLBACK_"
		fb.APIKey = cmp.Or(cfg.TTSFallback.ElevenLabsAPIKey, cfg.ElevenLabs.APIKey)
		fb.VoiceID = cmp.Or(cfg.TTSFallback.ElevenLabsVoiceID, cfg.ElevenLabs.VoiceID)
		fb.ModelID = cmp.Or(cfg.TTSFallback.ElevenLabsModelID, cfg.ElevenLabs.ModelID)
		keep(addElevenLabs(p, fb, cfg.Bulkhead.TTS))
	case config.TTSFallbackOpenAI:
		speech, err := openai.NewSpeech(openai.SpeechOptions{
			APIKey:  cmp.Or(cfg.TTSFallback.OpenAIAPIKey, cfg.LLM.APIKey),
			BaseURL: cfg.TTSFallback.OpenAIBaseURL, Model: cfg.TTSFallback.OpenAIModel, Voice: cfg.TTSFallback.OpenAIVoice,
			Format: cfg.TTSFallback.OpenAIFormat, Timeout: cfg.Timeouts.TTS, HTTP: hc, Redactor: red,
		})
		if err == nil {
			p.TTS = append(p.TTS, Provider[call.Synthesizer]{Name: "OpenAI TTS", Impl: speech, Probe: speech})
		} else {
			keep(err)
		}
	}

	for setting, base := range map[string]string{"LLM_BASE_URL": cfg.LLM.BaseURL, "LLM_FALLBACK_BASE_URL": cfg.LLM.FallbackBaseURL} {
		if hint := openai.BaseURLHint(base); hint != "" {
			log.Warnf("%s: %s", setting, hint)
		}
	}
	if cfg.TTSFallback.Kind == config.TTSFallbackOpenAI {
		if hint := openai.BaseURLHint(cfg.TTSFallback.OpenAIBaseURL); hint != "" {
			log.Warnf("OPENAI_TTS_BASE_URL: %s", hint)
		}
	}
	for _, model := range []string{cfg.LLM.Model, cmp.Or(cfg.LLM.FallbackModel, cfg.LLM.Model)} {
		if w := reasoningBudgetWarning(model, cfg.LLM.MaxTokens); w != "" {
			log.Warn(w)
			break
		}
	}
	if w := fallbackFormatMismatch(cfg.ElevenLabs.OutputFormat, cfg.TTSFallback); w != "" {
		log.Warn(w)
	}

	if url := cfg.CRM.WebhookURL.Reveal(); url != "" {
		client, err := crm.New(crm.Options{WebhookURL: url, HealthURL: cfg.CRM.HealthURL, Token: cfg.CRM.Token,
			Timeout: cfg.Timeouts.CRM, HTTP: hc, Redactor: red})
		if err == nil {
			p.CRM = append(p.CRM, Provider[call.Recorder]{Name: "CRM", Impl: client, Probe: client})
		} else {
			keep(err)
		}
	}
	if len(errs) > 0 {
		hc.CloseIdleConnections()
		return nil, errors.Join(errs...)
	}
	return p, nil
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
func fallbackFormatMismatch(primary string, fb config.TTSFallback) string {
	if fb.Kind != config.TTSFallbackOpenAI {
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

// addElevenLabs adds an ElevenLabs client whose maximum-concurrent-requests header resizes
// its bulkhead, never above the configured cap (the plan's limit is shared by all replicas).
func addElevenLabs(p *Providers, o elevenlabs.Options, limit int) error {
	var guard atomic.Pointer[resilience.Guard]
	o.OnConcurrencyLimit = func(n int) {
		if g := guard.Load(); g != nil {
			g.Bulkhead().SetLimit(max(1, min(n, limit)))
		}
	}
	client, err := elevenlabs.New(o)
	if err != nil {
		return err
	}
	name := o.Name
	if name == "" {
		name = elevenlabs.DefaultName
	}
	p.TTS = append(p.TTS, Provider[call.Synthesizer]{Name: name, Impl: client, Probe: client, Bind: guard.Store})
	return nil
}
