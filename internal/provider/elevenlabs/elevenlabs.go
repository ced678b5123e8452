// Package elevenlabs is the ElevenLabs text-to-speech client: POST
// {base}/v1/text-to-speech/{voice_id}?output_format=… with the xi-api-key header and a JSON
// body {text, model_id, voice_settings} (unset fields omitted: the API rejects nulls),
// returning the audio bytes. Its health probe is the authenticated GET {base}/v1/models.
//
// Failures are reported as facts to fault.Classify: the HTTP status, the code and message
// from either body shape ({"detail":{"code"|"status","message"}} or the 422 list
// {"detail":[{"loc","msg","type"}]}), Retry-After. The maximum-concurrent-requests response
// header is passed to Options.OnConcurrencyLimit, to size the bulkhead to the plan.
package elevenlabs

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
)

// Defaults of Options.
const (
	DefaultName          = "ElevenLabs"
	DefaultSettingPrefix = "ELEVENLABS_"
	DefaultBaseURL       = "https://api.elevenlabs.io"
	DefaultModelID       = "eleven_flash_v2_5"
	// DefaultOutputFormat is MP3 at 44.1 kHz, 128 kb/s; use "ulaw_8000" for telephony.
	DefaultOutputFormat = "mp3_44100_128"
	// ProbePath is the cheap authenticated request of the health probe.
	ProbePath = "/v1/models"
	// DefaultTimeout bounds one call when Options.Timeout is zero.
	DefaultTimeout = 60 * time.Second
	// ConcurrencyHeader is the response header that carries the plan's concurrency limit.
	ConcurrencyHeader = "maximum-concurrent-requests"
)

// ErrEmptyScript is returned (inside an invalid_payload *fault.ServiceError) for a blank
// script: there is nothing to say, and the API would refuse it anyway.
var ErrEmptyScript = errors.New("script to synthesize is empty")

// Options configures a Client. Each instance (primary, fallback) has its own Name, so it
// gets its own breaker, and its own SettingPrefix, so errors name its settings.
type Options struct {
	// Name is the display name in errors, logs and breakers; default "ElevenLabs" (a
	// fallback instance might be "ElevenLabs (fallback)").
	Name string
	// SettingPrefix names the settings in validation errors; default "ELEVENLABS_" (e.g.
	// "ELEVENLABS_FALLBACK_" for a fallback instance).
	SettingPrefix string
	// APIKey (<prefix>API_KEY) is required; it is sent as xi-api-key.
	APIKey config.Secret
	// VoiceID (<prefix>VOICE_ID) is required.
	VoiceID string
	// ModelID (<prefix>MODEL_ID) defaults to DefaultModelID.
	ModelID string
	// OutputFormat (<prefix>OUTPUT_FORMAT) is codec_samplerate[_bitrate], e.g.
	// mp3_44100_128 (default) or ulaw_8000.
	OutputFormat string
	// BaseURL (<prefix>BASE_URL) defaults to DefaultBaseURL.
	BaseURL string
	// VoiceSettings are sent when set (see ParseVoiceSettings); nil omits them, so the
	// voice's stored settings apply.
	VoiceSettings *VoiceSettings
	// Timeout bounds one call, body included, whatever the caller's context allows; default
	// DefaultTimeout. Pass the step's timeout (ELEVENLABS_TIMEOUT).
	Timeout time.Duration
	// MaxAudioBytes caps the audio body; default httpx.DefaultAudioLimit. A longer body is
	// a bad_response.
	MaxAudioBytes int64
	// HTTP is the shared client; nil builds a private one with the defaults.
	HTTP *httpx.Client
	// Redactor scrubs provider messages; the API key is added to it. Nil uses a private one.
	Redactor *redact.Redactor
	// OnConcurrencyLimit, when set, is called with the maximum-concurrent-requests header's
	// value whenever it differs from the last value reported (so a bulkhead the guard lowered
	// after a refusal is not raised again on every response). Wire it to
	// guard.Bulkhead().SetLimit. It must not block.
	OnConcurrencyLimit func(limit int)
}

// VoiceSettings are ElevenLabs' per-request voice settings; nil fields are omitted.
type VoiceSettings struct {
	Stability       *float64 `json:"stability,omitempty"`
	SimilarityBoost *float64 `json:"similarity_boost,omitempty"`
	Style           *float64 `json:"style,omitempty"`
	UseSpeakerBoost *bool    `json:"use_speaker_boost,omitempty"`
	Speed           *float64 `json:"speed,omitempty"`
}

// ParseVoiceSettings reads voice settings from a JSON object such as
// {"stability":0.5,"similarity_boost":0.75}: unknown fields and nulls are refused,
// stability, similarity_boost and style must be within 0–1 and speed within 0.7–1.2. An
// empty string gives nil.
func ParseVoiceSettings(s string) (*VoiceSettings, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var vs VoiceSettings
	if err := dec.Decode(&vs); err != nil {
		return nil, fmt.Errorf("voice settings are not a JSON object of stability, similarity_boost, style, use_speaker_boost, speed: %w", err)
	}
	if dec.More() {
		return nil, errors.New("voice settings have data after the JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil || raw == nil {
		return nil, errors.New("voice settings must be a JSON object")
	}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		if string(bytes.TrimSpace(raw[k])) == "null" {
			return nil, fmt.Errorf("voice setting %s is null: omit it instead (the API rejects nulls)", k)
		}
	}
	for _, f := range []struct {
		name   string
		v      *float64
		lo, hi float64
	}{
		{"stability", vs.Stability, 0, 1}, {"similarity_boost", vs.SimilarityBoost, 0, 1},
		{"style", vs.Style, 0, 1}, {"speed", vs.Speed, 0.7, 1.2},
	} {
		if f.v != nil && (*f.v < f.lo || *f.v > f.hi) {
			return nil, fmt.Errorf("voice setting %s is %g, must be within %g–%g", f.name, *f.v, f.lo, f.hi)
		}
	}
	return &vs, nil
}

var outputFormatPattern = regexp.MustCompile(`^(mp3|pcm|ulaw|alaw|opus|wav)_[0-9]+(_[0-9]+)?$`)

// Client is an ElevenLabs text-to-speech client. It implements call.Synthesizer and
// resilience.Prober and is safe for concurrent use.
type Client struct {
	o         Options
	key       string
	ttsURL    string
	probeURL  string
	red       *redact.Redactor
	http      *httpx.Client
	lastLimit atomic.Int64
}

// New checks o and returns a Client, or an error listing every bad setting
// (*httpx.SettingError values joined), e.g. "ELEVENLABS_API_KEY is required when SIMULATE is
// unset".
func New(o Options) (*Client, error) {
	o.Name = cmp.Or(o.Name, DefaultName)
	o.SettingPrefix = cmp.Or(o.SettingPrefix, DefaultSettingPrefix)
	o.ModelID = cmp.Or(o.ModelID, DefaultModelID)
	o.OutputFormat = cmp.Or(o.OutputFormat, DefaultOutputFormat)
	o.BaseURL = cmp.Or(o.BaseURL, DefaultBaseURL)
	o.MaxAudioBytes = cmp.Or(o.MaxAudioBytes, httpx.DefaultAudioLimit)
	o.Timeout = cmp.Or(o.Timeout, DefaultTimeout)
	s := httpx.NewSettings(o.SettingPrefix)
	s.Required("API_KEY", o.APIKey.Reveal())
	s.Required("VOICE_ID", o.VoiceID)
	if strings.ContainsAny(o.VoiceID, "/?#% \t\r\n") {
		s.Problemf("VOICE_ID", "%q is not a voice id (letters and digits, as shown in the ElevenLabs voice library)", o.VoiceID)
	}
	if strings.ContainsAny(o.ModelID, "/?#% \t\r\n") {
		s.Problemf("MODEL_ID", "%q is not a model id (e.g. %s)", o.ModelID, DefaultModelID)
	}
	if !outputFormatPattern.MatchString(o.OutputFormat) {
		s.Problemf("OUTPUT_FORMAT", "%q is not an output format (codec_samplerate[_bitrate], e.g. %s or ulaw_8000)", o.OutputFormat, DefaultOutputFormat)
	}
	base := s.BaseURL("BASE_URL", o.BaseURL)
	if o.Timeout < 0 {
		s.Problemf("TIMEOUT", "is %v, must not be negative", o.Timeout)
	}
	if o.MaxAudioBytes < 0 {
		s.Problemf("MAX_AUDIO_BYTES", "is %d, must be positive", o.MaxAudioBytes)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	hc := o.HTTP
	if hc == nil {
		var err error
		if hc, err = httpx.New(httpx.Options{}); err != nil {
			return nil, err
		}
	}
	red := o.Redactor
	if red == nil {
		red = redact.New()
	}
	red.Add(o.APIKey.Reveal())
	return &Client{
		o:        o,
		key:      o.APIKey.Reveal(),
		ttsURL:   base + "/v1/text-to-speech/" + url.PathEscape(o.VoiceID) + "?output_format=" + url.QueryEscape(o.OutputFormat),
		probeURL: base + ProbePath,
		red:      red,
		http:     hc,
	}, nil
}

// Name returns the display name the client reports errors under.
func (c *Client) Name() string { return c.o.Name }

// OutputFormat returns the output format every call asks for (Audio.Format).
func (c *Client) OutputFormat() string { return c.o.OutputFormat }

// ttsRequest is the JSON body of a text-to-speech call.
type ttsRequest struct {
	Text          string         `json:"text"`
	ModelID       string         `json:"model_id,omitempty"`
	VoiceSettings *VoiceSettings `json:"voice_settings,omitempty"`
}

// Synthesize turns script into audio in the configured voice, model and output format.
// Errors are *fault.ServiceError values (or ctx's error when ctx was cancelled); a blank
// script is an invalid_payload error without a call.
func (c *Client) Synthesize(ctx context.Context, _ contact.Contact, script string) (call.Audio, error) {
	if strings.TrimSpace(script) == "" {
		return call.Audio{}, fault.InvalidContact(c.o.Name, ErrEmptyScript)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	body, err := json.Marshal(ttsRequest{Text: script, ModelID: c.o.ModelID, VoiceSettings: c.o.VoiceSettings})
	if err != nil {
		return call.Audio{}, fmt.Errorf("%s: encode text-to-speech request: %w", c.o.Name, err)
	}
	req, err := httpx.NewRequest(ctx, http.MethodPost, c.ttsURL, body)
	if err != nil {
		return call.Audio{}, err
	}
	req.Header.Set("xi-api-key", c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req, c.o.MaxAudioBytes)
	if resp != nil {
		c.noteConcurrency(resp.Header)
	}
	if f, failed := c.failure(resp, err); failed {
		return call.Audio{}, fault.Classify(f)
	}
	switch ct := resp.ContentType(); {
	case ct == "application/json" || strings.HasPrefix(ct, "text/"):
		return call.Audio{}, fault.Classify(httpx.Unusable(c.o.Name, resp, "a "+ct+" document instead of audio", nil))
	case len(resp.Body) == 0:
		return call.Audio{}, fault.Classify(httpx.Unusable(c.o.Name, resp, "empty audio", nil))
	}
	return call.Audio{Data: resp.Body, Format: c.o.OutputFormat}, nil
}

// Probe checks that ElevenLabs answers and accepts the key: GET /v1/models. It returns nil
// on a 2xx and the classified error otherwise.
func (c *Client) Probe(ctx context.Context) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	req, err := httpx.NewRequest(ctx, http.MethodGet, c.probeURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("xi-api-key", c.key)
	resp, err := c.http.Do(req, 0)
	if f, failed := c.failure(resp, err); failed {
		return fault.Classify(f)
	}
	return nil
}

// failure returns the facts of a failed exchange; failed is false for a 2xx whose body
// arrived whole.
func (c *Client) failure(resp *httpx.Response, err error) (fault.Facts, bool) {
	switch {
	case resp == nil || (resp.OK() && err != nil):
		return httpx.Failure(c.o.Name, resp, err), true
	case !resp.OK():
		code, msg := parseError(resp.Body)
		return fault.Facts{
			Provider:   c.o.Name,
			Status:     resp.Status,
			Code:       code,
			Message:    httpx.CleanMessage(c.red, msg),
			RetryAfter: fault.ParseRetryAfter(resp.Header, c.http.Now()),
			Err:        err,
		}, true
	}
	return fault.Facts{}, false
}

// noteConcurrency reports the plan's concurrency limit when the header carries a new value.
func (c *Client) noteConcurrency(h http.Header) {
	if c.o.OnConcurrencyLimit == nil {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(h.Get(ConcurrencyHeader)))
	if err != nil || n < 1 {
		return
	}
	if c.lastLimit.Swap(int64(n)) != int64(n) {
		c.o.OnConcurrencyLimit(n)
	}
}

func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.o.Timeout)
}

// errorBody is either ElevenLabs error shape; Detail is an object, a list or a string.
type errorBody struct {
	Detail json.RawMessage `json:"detail"`
}

type detailObject struct {
	Code    string `json:"code"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

type detailItem struct {
	Loc []any  `json:"loc"`
	Msg string `json:"msg"`
}

// parseError reads the code and message from an error body of either shape. The code is
// detail.code, else detail.status (the legacy field); the 422 list gives no code and a
// message "loc: msg" per item.
func parseError(body []byte) (code, message string) {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil || len(eb.Detail) == 0 {
		return "", ""
	}
	d := bytes.TrimSpace(eb.Detail)
	switch d[0] {
	case '{':
		var o detailObject
		if json.Unmarshal(d, &o) == nil {
			code = o.Code
			if code == "" {
				code = o.Status
			}
			return code, o.Message
		}
	case '[':
		var items []detailItem
		if json.Unmarshal(d, &items) == nil {
			parts := make([]string, 0, len(items))
			for _, it := range items {
				parts = append(parts, formatLoc(it.Loc)+it.Msg)
			}
			return "", strings.Join(parts, "; ")
		}
	case '"':
		var s string
		if json.Unmarshal(d, &s) == nil {
			return "", s
		}
	}
	return "", ""
}

// formatLoc renders a validation location ["body","text"] as "body.text: ".
func formatLoc(loc []any) string {
	if len(loc) == 0 {
		return ""
	}
	parts := make([]string, len(loc))
	for i, p := range loc {
		parts[i] = fmt.Sprint(p)
	}
	return strings.Join(parts, ".") + ": "
}
