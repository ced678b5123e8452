package daemon

import (
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/provider/sim"
	"github.com/callagent/resilience/internal/resilience"
)

// Providers are the step implementations the worker runs, with their display names (used in
// logs, breakers and records) and health probes.
type Providers struct {
	LLM      call.ScriptWriter
	LLMName  string
	LLMProbe resilience.Prober
	TTS      call.Synthesizer
	TTSName  string
	TTSProbe resilience.Prober
}

// ErrRealProvidersUnavailable is returned when SIMULATE is unset: the real HTTP clients are
// not part of this build yet.
var ErrRealProvidersUnavailable = errors.New("real provider clients (OpenAI-compatible LLM, ElevenLabs) are not available in this build yet; set SIMULATE=tts-503 or SIMULATE=healthy to run with the simulated providers")

// NewProviders builds the providers cfg asks for.
func NewProviders(cfg config.Config, log logrus.FieldLogger) (*Providers, error) {
	if cfg.Sim.Scenario == "" {
		return nil, fmt.Errorf("SIMULATE is unset: %w", ErrRealProvidersUnavailable)
	}
	o := sim.Options{Scenario: cfg.Sim.Scenario, Latency: cfg.Sim.Latency, Outage: cfg.Sim.TTSOutage, Log: log}
	llm, tts := sim.NewLLM(o), sim.NewTTS(o)
	return &Providers{
		LLM: llm, LLMName: "LLM", LLMProbe: llm,
		TTS: tts, TTSName: sim.Provider, TTSProbe: tts,
	}, nil
}
