package daemon

import (
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
	"github.com/callagent/resilience/internal/secret"
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
// the real HTTP clients from cfg.Providers() otherwise (Load has validated their options; a
// Config built in code gets every problem at once here). red receives every key so that no
// log line can show one.
func NewProviders(cfg config.Config, log logrus.FieldLogger, red *redact.Redactor, version string) (*Providers, error) {
	if cfg.Sim.Scenario != "" {
		o := sim.Options{Scenario: cfg.Sim.Scenario, Latency: cfg.Sim.Latency, Outage: cfg.Sim.TTSOutage, Log: log}
		llm, tts := sim.NewLLM(o), sim.NewTTS(o)
		return &Providers{
			LLM: []Provider[call.ScriptWriter]{{Name: "LLM", Impl: llm, Probe: llm}},
			TTS: []Provider[call.Synthesizer]{{Name: sim.Provider, Impl: tts, Probe: tts}},
		}, nil
	}
	opts, err := cfg.Providers()
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.ProviderWarnings() {
		log.Warn(w)
	}
	for _, s := range []secret.Secret{cfg.LLM.APIKey, cfg.LLM.FallbackAPIKey, cfg.ElevenLabs.APIKey,
		cfg.TTSFallback.ElevenLabsAPIKey, cfg.TTSFallback.OpenAIAPIKey, cfg.CRM.WebhookURL, cfg.CRM.Token} {
		red.Add(s.Reveal())
	}
	hc, err := httpx.New(httpx.Options{Version: version, MaxIdleConnsPerHost: cfg.Worker.Concurrency})
	if err != nil {
		return nil, err
	}
	p := &Providers{Close: hc.CloseIdleConnections}
	if err := p.add(opts, cfg.Bulkhead.TTS, hc, red); err != nil {
		hc.CloseIdleConnections()
		return nil, err
	}
	return p, nil
}

// add builds the clients of opts on hc, in order: each step's primary, then its fallbacks.
func (p *Providers) add(opts config.ProviderOptions, ttsLimit int, hc *httpx.Client, red *redact.Redactor) error {
	for _, o := range opts.LLM {
		o.HTTP, o.Redactor = hc, red
		llm, err := openai.NewChat(o)
		if err != nil {
			return err
		}
		p.LLM = append(p.LLM, Provider[call.ScriptWriter]{Name: o.Name, Impl: llm, Probe: llm})
	}
	for _, o := range opts.TTS {
		o.HTTP, o.Redactor = hc, red
		if err := p.addElevenLabs(o, ttsLimit); err != nil {
			return err
		}
	}
	for _, o := range opts.Speech {
		o.HTTP, o.Redactor = hc, red
		speech, err := openai.NewSpeech(o)
		if err != nil {
			return err
		}
		p.TTS = append(p.TTS, Provider[call.Synthesizer]{Name: o.Name, Impl: speech, Probe: speech})
	}
	for _, o := range opts.CRM {
		o.HTTP, o.Redactor = hc, red
		client, err := crm.New(o)
		if err != nil {
			return err
		}
		p.CRM = append(p.CRM, Provider[call.Recorder]{Name: o.Name, Impl: client, Probe: client})
	}
	return nil
}

// addElevenLabs adds an ElevenLabs client whose maximum-concurrent-requests header resizes
// its bulkhead, never above the configured cap (the plan's limit is shared by all replicas).
func (p *Providers) addElevenLabs(o elevenlabs.Options, limit int) error {
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
	p.TTS = append(p.TTS, Provider[call.Synthesizer]{Name: client.Name(), Impl: client, Probe: client, Bind: guard.Store})
	return nil
}
