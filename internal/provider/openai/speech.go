package openai

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

// Defaults of SpeechOptions.
const (
	DefaultSpeechName   = "OpenAI TTS"
	DefaultSpeechModel  = "gpt-4o-mini-tts"
	DefaultVoice        = "alloy"
	DefaultSpeechFormat = "mp3"
)

// SpeechFormats are the response_format values the speech API accepts.
var SpeechFormats = []string{"mp3", "opus", "aac", "flac", "wav", "pcm"}

// ErrEmptyInput is returned (inside an invalid_payload *fault.ServiceError) for a blank
// script.
var ErrEmptyInput = errors.New("script to synthesize is empty")

// SpeechOptions configures a Speech client.
type SpeechOptions struct {
	// Name is the display name in errors, logs and breakers; default "OpenAI TTS".
	Name string
	// APIKey is required; sent as Authorization: Bearer.
	APIKey secret.Secret
	// BaseURL includes the version path; default DefaultBaseURL.
	BaseURL string
	// Model defaults to DefaultSpeechModel (tts-1 and tts-1-hd work too).
	Model string
	// Voice defaults to DefaultVoice.
	Voice string
	// Format is one of SpeechFormats; default mp3.
	Format string
	// Timeout bounds one call, body included, whatever the caller's context allows; default
	// DefaultTimeout. Pass the step's timeout.
	Timeout time.Duration
	// MaxAudioBytes caps the audio body; default httpx.DefaultAudioLimit.
	MaxAudioBytes int64
	// HTTP is the shared client; nil builds a private one with the defaults.
	HTTP *httpx.Client
	// Redactor scrubs provider messages; the API key is added to it. Nil uses a private one.
	Redactor *redact.Redactor
}

// Speech is an OpenAI-compatible text-to-speech client (POST {base}/audio/speech), usable
// as a fallback for ElevenLabs. It implements call.Synthesizer and resilience.Prober and is
// safe for concurrent use.
type Speech struct {
	api      *api
	model    string
	voice    string
	format   string
	maxAudio int64
}

// WithDefaults returns o with every unset option at its default.
func (o SpeechOptions) WithDefaults() SpeechOptions {
	o.Name = cmp.Or(o.Name, DefaultSpeechName)
	o.BaseURL = cmp.Or(o.BaseURL, DefaultBaseURL)
	o.Model = cmp.Or(o.Model, DefaultSpeechModel)
	o.Voice = cmp.Or(o.Voice, DefaultVoice)
	o.Format = cmp.Or(o.Format, DefaultSpeechFormat)
	o.MaxAudioBytes = cmp.Or(o.MaxAudioBytes, httpx.DefaultAudioLimit)
	return o
}

// Validate reports every bad option of o (after WithDefaults), each a *field.Error.
func (o SpeechOptions) Validate() error {
	s := httpx.NewSettings()
	s.Required("APIKey", o.APIKey.Reveal())
	s.BaseURL("BaseURL", o.BaseURL)
	if !slices.Contains(SpeechFormats, o.Format) {
		s.Problemf("Format", "is %q, must be one of %s", o.Format, strings.Join(SpeechFormats, ", "))
	}
	if o.Timeout < 0 {
		s.Problemf("Timeout", "is %v, must not be negative", o.Timeout)
	}
	if o.MaxAudioBytes < 0 {
		s.Problemf("MaxAudioBytes", "is %d, must be positive", o.MaxAudioBytes)
	}
	return s.Err()
}

// NewSpeech returns a Speech client for o with its defaults, or Validate's error listing
// every bad option.
func NewSpeech(o SpeechOptions) (*Speech, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	base := httpx.TrimBaseURL(o.BaseURL)
	a, err := newAPI(o.Name, o.APIKey.Reveal(), base, o.Timeout, o.HTTP, o.Redactor)
	if err != nil {
		return nil, err
	}
	return &Speech{api: a, model: o.Model, voice: o.Voice, format: o.Format, maxAudio: o.MaxAudioBytes}, nil
}

// Name returns the display name the client reports errors under.
func (s *Speech) Name() string { return s.api.name }

type speechRequest struct {
	Model          string `json:"model"`
	Input          string `json:"input"`
	Voice          string `json:"voice"`
	ResponseFormat string `json:"response_format"`
}

// Synthesize turns script into audio. Audio.Format is the response format (e.g. "mp3"),
// Model the model asked for, Characters the characters of input sent and RequestID the
// provider's x-request-id. Errors are *fault.ServiceError values (or ctx's error when ctx
// was cancelled).
func (s *Speech) Synthesize(ctx context.Context, _ contact.Contact, script string) (call.Audio, error) {
	if strings.TrimSpace(script) == "" {
		return call.Audio{}, fault.InvalidContact(s.api.name, ErrEmptyInput)
	}
	body, err := json.Marshal(speechRequest{Model: s.model, Input: script, Voice: s.voice, ResponseFormat: s.format})
	if err != nil {
		return call.Audio{}, fmt.Errorf("%s: encode speech request: %w", s.api.name, err)
	}
	resp, err := s.api.call(ctx, http.MethodPost, "/audio/speech", body, s.maxAudio)
	if err != nil {
		return call.Audio{}, err
	}
	switch ct := resp.ContentType(); {
	case isJSON(ct) || strings.HasPrefix(ct, "text/"):
		return call.Audio{}, s.api.unusable(resp, "a "+ct+" document instead of audio", nil)
	case len(resp.Body) == 0:
		return call.Audio{}, s.api.unusable(resp, "empty audio", nil)
	}
	return call.Audio{
		Data:   resp.Body,
		Format: s.format,
		Model:  s.model,
		// The speech API has no usage in its answer. tts-1 and tts-1-hd are billed per
		// character of input; gpt-4o-mini-tts per token, which the characters sent still
		// measure. Count them as sent (runes, not bytes).
		Characters: utf8.RuneCountInString(script),
		RequestID:  s.api.requestID(resp),
	}, nil
}

// Probe checks that the API answers and accepts the key: GET {base}/models. A key valid
// for calls but without the Models read scope (an OpenAI restricted key) gets a
// permission_denied *fault.ServiceError: the API is up, and the caller decides what that
// means for health.
func (s *Speech) Probe(ctx context.Context) error { return s.api.probe(ctx) }
