// Package elevenlabs is the ElevenLabs text-to-speech client: POST
// {base}/v1/text-to-speech/{voice_id}?output_format=… with the xi-api-key header and a JSON
// body {text, model_id, voice_settings} (unset fields omitted: the API rejects nulls),
// returning the audio bytes. Its health probe is the authenticated GET {base}/v1/models.
//
// Failures are reported as facts to fault.Classify: the HTTP status; from the body, either
// {"detail":{"type","code","status","message","param","request_id"}} (code wins; status is the
// legacy field older answers carry alone) or the 422 list {"detail":[{"loc","msg","type"}]},
// whose first loc names the field; the request-id header; Retry-After. The
// maximum-concurrent-requests response header is passed to Options.OnConcurrencyLimit, to size
// the bulkhead to the plan. A success reports the request-id and character-cost headers in
// call.Audio, so spend can be counted and a bad clip traced.
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
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

// Defaults of Options.
const (
	DefaultName    = "ElevenLabs"
	DefaultBaseURL = "https://api.elevenlabs.io"
	DefaultModelID = "eleven_flash_v2_5"
	// DefaultOutputFormat is MP3 at 44.1 kHz, 128 kb/s; use "ulaw_8000" for telephony.
	DefaultOutputFormat = "mp3_44100_128"
	// ProbePath is the cheap authenticated request of the health probe.
	ProbePath = "/v1/models"
	// DefaultTimeout bounds one call when Options.Timeout is zero.
	DefaultTimeout = 60 * time.Second
	// ConcurrencyHeader is the response header that carries the plan's concurrency limit.
	ConcurrencyHeader = "maximum-concurrent-requests"
	// CostHeader is the response header that carries what a call was billed, in characters
	// (credits).
	CostHeader = "character-cost"
	// RequestIDHeader is the response header that carries ElevenLabs' id of the request.
	RequestIDHeader = "request-id"
)

// ErrEmptyScript is returned (inside an invalid_payload *fault.ServiceError) for a blank
// script: there is nothing to say, and the API would refuse it anyway.
var ErrEmptyScript = errors.New("script to synthesize is empty")

// Options configures a Client. Each instance (primary, fallback) has its own Name, so it
// gets its own breaker. Validate names bad options by field (*field.Error).
type Options struct {
	// Name is the display name in errors, logs and breakers; default "ElevenLabs" (a
	// fallback instance might be "ElevenLabs (fallback)").
	Name string
	// APIKey is required; it is sent as xi-api-key.
	APIKey secret.Secret
	// VoiceID is required.
	VoiceID string
	// ModelID defaults to DefaultModelID.
	ModelID string
	// OutputFormat is one of OutputFormats, e.g. mp3_44100_128
	// (default) or ulaw_8000.
	OutputFormat string
	// BaseURL defaults to DefaultBaseURL. A trailing /v1 is dropped (the
	// client adds /v1/… itself), so the URL copied from the API reference works too; any
	// other path (a proxy's prefix) is kept.
	BaseURL string
	// VoiceSettings are sent when set (see ParseVoiceSettings); nil omits them, so the
	// voice's stored settings apply.
	VoiceSettings *VoiceSettings
	// Timeout bounds one call, body included, whatever the caller's context allows; default
	// DefaultTimeout. Pass the step's timeout.
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

// outputFormats are the values of the API's output_format enum (codec_samplerate[_bitrate]).
// A made-up value would only fail on the first call, after the worker took contacts.
// Some need a higher plan (mp3_44100_192: Creator, pcm_44100: Pro); the API answers those
// with 403 output_format_not_allowed, a configuration error.
var outputFormats = []string{
	"mp3_22050_32", "mp3_24000_48", "mp3_44100_32", "mp3_44100_64", "mp3_44100_96", "mp3_44100_128", "mp3_44100_192",
	"pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_32000", "pcm_44100", "pcm_48000",
	"wav_8000", "wav_16000", "wav_22050", "wav_24000", "wav_32000", "wav_44100", "wav_48000",
	"ulaw_8000", "alaw_8000",
	"opus_48000_32", "opus_48000_64", "opus_48000_96", "opus_48000_128", "opus_48000_192",
}

// OutputFormats returns the output formats the API offers, grouped by codec; the caller may
// modify the slice.
func OutputFormats() []string { return slices.Clone(outputFormats) }

// Codec returns the codec of an output format: "mp3", "pcm" (raw 16-bit little-endian),
// "wav", "ulaw", "alaw" or "opus"; "" when format is not one of OutputFormats. Two formats
// with different codecs (or sample rates, see SampleRate) are not interchangeable: a fallback
// voice must produce what the telephony side expects.
func Codec(format string) string {
	if !slices.Contains(outputFormats, format) {
		return ""
	}
	codec, _, _ := strings.Cut(format, "_")
	return codec
}

// SampleRate returns the sample rate of an output format in Hz (8000 for ulaw_8000), or 0 when
// format is not one of OutputFormats.
func SampleRate(format string) int {
	if !slices.Contains(outputFormats, format) {
		return 0
	}
	rate, _ := strconv.Atoi(strings.Split(format, "_")[1])
	return rate
}

// compactFormats lists the formats grouped by codec, e.g. "mp3_{22050_32,24000_48,…},
// ulaw_8000", short enough for a one-line settings error.
func compactFormats() string {
	var groups []string
	for i := 0; i < len(outputFormats); {
		codec, _, _ := strings.Cut(outputFormats[i], "_")
		var rest []string
		for ; i < len(outputFormats) && strings.HasPrefix(outputFormats[i], codec+"_"); i++ {
			rest = append(rest, strings.TrimPrefix(outputFormats[i], codec+"_"))
		}
		if len(rest) == 1 {
			groups = append(groups, codec+"_"+rest[0])
		} else {
			groups = append(groups, codec+"_{"+strings.Join(rest, ",")+"}")
		}
	}
	return strings.Join(groups, ", ")
}

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

// WithDefaults returns o with every unset option at its default.
func (o Options) WithDefaults() Options {
	o.Name = cmp.Or(o.Name, DefaultName)
	o.ModelID = cmp.Or(o.ModelID, DefaultModelID)
	o.OutputFormat = cmp.Or(o.OutputFormat, DefaultOutputFormat)
	o.BaseURL = cmp.Or(o.BaseURL, DefaultBaseURL)
	o.MaxAudioBytes = cmp.Or(o.MaxAudioBytes, httpx.DefaultAudioLimit)
	o.Timeout = cmp.Or(o.Timeout, DefaultTimeout)
	return o
}

// VoiceIDProblem is the rule for a voice id, "" when id follows it (a blank id is left to
// the required check). The configuration checks ELEVENLABS_VOICE_ID and its fallback's with
// it, so each has this one rule.
func VoiceIDProblem(id string) string {
	if strings.ContainsAny(id, "/?#% \t\r\n") {
		return fmt.Sprintf("%q is not a voice id (letters and digits, as shown in the ElevenLabs voice library)", id)
	}
	return ""
}

// OutputFormatProblem is the rule for an output format, "" when format is one of the API's
// (see Codec). The configuration checks ELEVENLABS_OUTPUT_FORMAT with it.
func OutputFormatProblem(format string) string {
	if Codec(format) == "" {
		return fmt.Sprintf("%q is not an ElevenLabs output format; use one of %s", format, compactFormats())
	}
	return ""
}

// Validate reports every bad option of o (after WithDefaults), each a *field.Error naming
// the field, e.g. "APIKey is required when SIMULATE is unset".
func (o Options) Validate() error {
	s := httpx.NewSettings()
	s.Required("APIKey", o.APIKey.Reveal())
	s.Required("VoiceID", o.VoiceID)
	if p := VoiceIDProblem(o.VoiceID); p != "" {
		s.Problemf("VoiceID", "%s", p)
	}
	if strings.ContainsAny(o.ModelID, "/?#% \t\r\n") {
		s.Problemf("ModelID", "%q is not a model id (e.g. %s)", o.ModelID, DefaultModelID)
	}
	if p := OutputFormatProblem(o.OutputFormat); p != "" {
		s.Problemf("OutputFormat", "%s", p)
	}
	s.BaseURL("BaseURL", o.BaseURL)
	if o.Timeout < 0 {
		s.Problemf("Timeout", "is %v, must not be negative", o.Timeout)
	}
	if o.MaxAudioBytes < 0 {
		s.Problemf("MaxAudioBytes", "is %d, must be positive", o.MaxAudioBytes)
	}
	return s.Err()
}

// New returns a Client for o with its defaults, or Validate's error listing every bad
// option.
func New(o Options) (*Client, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	base := apiRoot(httpx.TrimBaseURL(o.BaseURL))
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

// apiRoot drops a trailing /v1 path segment from a checked base URL, since every request
// path starts with /v1: "https://api.elevenlabs.io/v1" gives "https://api.elevenlabs.io" and
// "https://proxy.example/eleven/v1" gives "https://proxy.example/eleven".
func apiRoot(base string) string {
	u, err := url.Parse(base)
	if err != nil || !strings.HasSuffix(u.Path, "/v1") {
		return base
	}
	u.Path = strings.TrimSuffix(u.Path, "/v1")
	u.RawPath = ""
	return u.String()
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

// Synthesize turns script into audio in the configured voice, model and output format; the
// Audio also carries the model, the characters billed (character-cost) and the request id.
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
	return call.Audio{
		Data:       resp.Body,
		Format:     c.o.OutputFormat,
		Model:      c.o.ModelID,
		Characters: characterCost(resp.Header),
		RequestID:  requestID(c.red, resp.Header, ""),
	}, nil
}

// characterCost reads the character-cost header: what the call was billed, 0 when absent or
// not a non-negative integer.
func characterCost(h http.Header) int {
	n, err := strconv.Atoi(strings.TrimSpace(h.Get(CostHeader)))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// Probe checks that ElevenLabs answers and accepts the key: GET /v1/models. It returns nil
// on a 2xx and the classified error otherwise, unchanged: a key scoped to text_to_speech
// without models_read gets 401 missing_permissions (fault.KindPermission), which proves the
// API is up and the key known, while a wrong key is still fault.KindAuthentication.
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
		d := parseError(resp.Body)
		return fault.Facts{
			Provider:   c.o.Name,
			Status:     resp.Status,
			Code:       httpx.CleanCode(c.red, d.code),
			Message:    httpx.CleanMessage(c.red, d.message),
			Param:      httpx.CleanMessage(c.red, d.param),
			RequestID:  requestID(c.red, resp.Header, d.requestID),
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

// requestIDLimit is the most bytes of a request id kept.
const requestIDLimit = 128

// requestID returns the request id of a response: the request-id header (x-request-id
// behind some proxies), else the one the error body gave; redacted with r, bounded and
// printable, since it goes into every error line. It is redacted before it is cut, so that a
// cut cannot leave the start of a secret that redaction would no longer recognise.
func requestID(r *redact.Redactor, h http.Header, fromBody string) string {
	id := cmp.Or(strings.TrimSpace(h.Get(RequestIDHeader)), strings.TrimSpace(h.Get("X-Request-Id")), strings.TrimSpace(fromBody))
	id = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return -1
		}
		return r
	}, id)
	id = r.Text(id)
	if len(id) > requestIDLimit {
		id = strings.ToValidUTF8(id[:requestIDLimit], "")
	}
	return id
}

// errorBody is either ElevenLabs error shape; Detail is an object, a list or a string.
type errorBody struct {
	Detail json.RawMessage `json:"detail"`
}

// detailObject is the object shape. Param and RequestID are null when there is none, and
// param is not always a string, hence any.
type detailObject struct {
	Type      string `json:"type"`
	Code      string `json:"code"`
	Status    string `json:"status"`
	Message   string `json:"message"`
	Param     any    `json:"param"`
	RequestID any    `json:"request_id"`
}

// detailItem is one item of the 422 list. Its "input", which may echo the script, is not
// read.
type detailItem struct {
	Loc []any  `json:"loc"`
	Msg string `json:"msg"`
}

// apiError is what an error body says; every field may be empty.
type apiError struct {
	code, message, param, requestID string
}

// parseError reads an error body of either shape. The code is detail.code, else the legacy
// detail.status, else detail.type (the broadest, still better than none). The 422 list gives
// no code, a message "loc: msg" per item, and as param the field the first item blames
// ("model_id" for ["body","model_id"]), so fault can tell a setting's field from the
// contact's text.
func parseError(body []byte) apiError {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil || len(eb.Detail) == 0 {
		return apiError{}
	}
	d := bytes.TrimSpace(eb.Detail)
	switch d[0] {
	case '{':
		var o detailObject
		if json.Unmarshal(d, &o) == nil {
			return apiError{
				code:      decidingCode(o.Code, o.Status, o.Type),
				message:   o.Message,
				param:     scalar(o.Param),
				requestID: scalar(o.RequestID),
			}
		}
	case '[':
		var items []detailItem
		if json.Unmarshal(d, &items) == nil && len(items) > 0 {
			parts := make([]string, 0, len(items))
			for _, it := range items {
				parts = append(parts, formatLoc(it.Loc)+it.Msg)
			}
			return apiError{message: strings.Join(parts, "; "), param: topField(items[0].Loc)}
		}
	case '"':
		var s string
		if json.Unmarshal(d, &s) == nil {
			return apiError{message: s}
		}
	}
	return apiError{}
}

// scalar returns a JSON string or number as text, "" for null and anything else.
func scalar(v any) string {
	switch v := v.(type) {
	case string:
		return strings.TrimSpace(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// topField returns the request field a validation location blames: the first string after
// where it is ("body", "query", "path"), so ["body","model_id"] gives "model_id" and
// ["body","voice_settings","stability"] gives "voice_settings" (a field our settings fill,
// though its last element is not); "" when there is none.
func topField(loc []any) string {
	for i, p := range loc {
		s, ok := p.(string)
		if !ok {
			continue
		}
		if i == 0 && (s == "body" || s == "query" || s == "path" || s == "header") {
			continue
		}
		return s
	}
	return ""
}

// decidingCode returns the first of the body's codes (detail.code, the legacy detail.status,
// detail.type) that the classification table knows, else the first one given: a new code
// ElevenLabs adds must not hide a known status beside it. Codes without the shape of a code
// (see httpx.ValidCode) are not given.
func decidingCode(codes ...string) string {
	valid := make([]string, 0, len(codes))
	for _, c := range codes {
		if c = strings.TrimSpace(c); httpx.ValidCode(c) {
			valid = append(valid, c)
		}
	}
	for _, c := range valid {
		if fault.KnownCode(c) {
			return c
		}
	}
	return cmp.Or(valid...)
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
