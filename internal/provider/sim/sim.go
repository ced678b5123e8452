// Package sim holds the simulated LLM and ElevenLabs providers used by the demo (`SIMULATE`).
//
// They answer through the same interfaces and the same error classification as the real
// clients: a simulated 503 is reported as facts to fault.Classify, exactly as an HTTP client
// would, so the demo exercises the real resilience path.
package sim

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
)

// Scenarios the simulated providers can play.
const (
	// Healthy: every call succeeds after Latency.
	Healthy = "healthy"
	// TTS503: ElevenLabs answers 503 from its first call for Outage, then recovers (the seed's
	// required scenario).
	TTS503 = "tts-503"
)

// Options configures the simulated providers.
type Options struct {
	Scenario string
	// Latency is how long each simulated call takes.
	Latency time.Duration
	// Outage is how long the simulated ElevenLabs answers 503 in the TTS503 scenario,
	// counted from its first call.
	Outage time.Duration
	Log    logrus.FieldLogger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// LLM is a simulated LLM that writes a short, personalised script.
type LLM struct {
	opts Options
}

// NewLLM returns the simulated LLM.
func NewLLM(o Options) *LLM { return &LLM{opts: withDefaults(o)} }

// WriteScript returns a script for c after the configured latency.
func (l *LLM) WriteScript(ctx context.Context, c contact.Contact) (call.Script, error) {
	if err := wait(ctx, l.opts.Latency); err != nil {
		return call.Script{}, err
	}
	name := c.Name
	if name == "" {
		name = "there"
	}
	text := fmt.Sprintf("Hello %s, this is a courtesy call. Do you have a minute to talk?", name)
	if topic := c.Variables["topic"]; topic != "" {
		text += " We are calling about " + topic + "."
	}
	words := len(strings.Fields(text))
	return call.Script{Text: text, Model: "sim-llm", PromptTokens: 40, CompletionTokens: words}, nil
}

// Probe reports the simulated LLM healthy.
func (l *LLM) Probe(ctx context.Context) error { return wait(ctx, l.opts.Latency/4) }

// TTS is a simulated ElevenLabs.
type TTS struct {
	opts Options

	mu       sync.Mutex
	started  time.Time // first call; zero before
	failures int
}

// NewTTS returns the simulated ElevenLabs.
func NewTTS(o Options) *TTS { return &TTS{opts: withDefaults(o)} }

// Provider is the display name the simulated TTS reports errors under.
const Provider = "ElevenLabs"

// Synthesize returns fake audio for script, or a 503 while the scenario's outage lasts.
func (t *TTS) Synthesize(ctx context.Context, _ contact.Contact, script string) (call.Audio, error) {
	t.opts.Log.Infof("Calling %s text-to-speech API", Provider)
	if err := wait(ctx, t.opts.Latency); err != nil {
		return call.Audio{}, err
	}
	if n, down := t.down(true); down {
		t.opts.Log.Infof("Simulating 503 error (failure %d)", n)
		return call.Audio{}, unavailable()
	}
	// About one byte of MP3 per 8 ms of speech at 128 kb/s, 60 ms per character spoken.
	return call.Audio{Data: make([]byte, len(script)*60/8), Format: "mp3_44100_128"}, nil
}

// Probe answers like GET /v1/models: 503 during the outage, healthy otherwise.
func (t *TTS) Probe(ctx context.Context) error {
	if err := wait(ctx, t.opts.Latency/4); err != nil {
		return err
	}
	if _, down := t.down(false); down {
		return unavailable()
	}
	return nil
}

// down reports whether the outage is on now; a call (not a probe) starts the outage clock.
func (t *TTS) down(isCall bool) (failures int, down bool) {
	if t.opts.Scenario != TTS503 {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	if t.started.IsZero() {
		if !isCall {
			return 0, false
		}
		t.started = now
	}
	if now.Sub(t.started) >= t.opts.Outage {
		return t.failures, false
	}
	if isCall {
		t.failures++
	}
	return t.failures, true
}

func unavailable() error {
	return fault.Classify(fault.Facts{
		Provider: Provider,
		Status:   503,
		Code:     "service_unavailable",
		Message:  "Service temporarily unavailable",
	})
}

func withDefaults(o Options) Options {
	if o.Log == nil {
		l := logrus.New()
		l.Out = nopWriter{}
		o.Log = l
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
