package providertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"
)

// ElevenLabsOptions configures the fake ElevenLabs.
type ElevenLabsOptions struct {
	// APIKey is the only xi-api-key accepted; required.
	APIKey string
	// VoiceID is the only voice that exists; default "voice-1".
	VoiceID string
	// ModelID is the only model that exists; default "eleven_flash_v2_5".
	ModelID string
	// OutputFormat is the output_format every call must ask for; default "mp3_44100_128".
	OutputFormat string
	// MaxConcurrent, when > 0, is sent as maximum-concurrent-requests (with
	// current-concurrent-requests) on every text-to-speech response, and calls beyond it in
	// flight get 429 concurrent_limit_exceeded.
	MaxConcurrent int
	// Audio is the body of a successful call; default a few bytes of an MP3 frame header.
	Audio []byte
	// Permissions, when not nil, scopes the key as the ElevenLabs dashboard does: a call
	// needs "text_to_speech", GET /v1/models "models_read", GET /v1/user "user_read", and
	// without it gets the API's 401 missing_permissions. Nil means an unrestricted key. A
	// SetFault outage still answers the probes of a scoped key, so a health check can see the
	// outage and the recovery.
	Permissions []string
}

// ElevenLabs is a fake ElevenLabs API: POST /v1/text-to-speech/{voice_id} and the probe
// GET /v1/models (GET /v1/user too). Its own answers carry a request-id header
// ("req-fake-1", "req-fake-2", … in arrival order) and a successful call the character-cost
// header (the text's length in characters); scripted replies are sent as given.
type ElevenLabs struct {
	*Server
	opts     ElevenLabsOptions
	inFlight atomic.Int64
	seq      atomic.Int64
}

// ElevenLabsRequest is the JSON body of a text-to-speech call, as the fake decodes it.
type ElevenLabsRequest struct {
	Text          string          `json:"text"`
	ModelID       string          `json:"model_id"`
	VoiceSettings json.RawMessage `json:"voice_settings"`
	LanguageCode  string          `json:"language_code"`
}

// NewElevenLabs starts a fake ElevenLabs for the test's lifetime.
func NewElevenLabs(t testing.TB, o ElevenLabsOptions) *ElevenLabs {
	t.Helper()
	if o.APIKey == "" {
		t.Fatal("providertest: ElevenLabsOptions.APIKey is required")
	}
	if o.VoiceID == "" {
		o.VoiceID = "voice-1"
	}
	if o.ModelID == "" {
		o.ModelID = "eleven_flash_v2_5"
	}
	if o.OutputFormat == "" {
		o.OutputFormat = "mp3_44100_128"
	}
	if o.Audio == nil {
		o.Audio = []byte{0xFF, 0xFB, 0x90, 0x64, 0x00, 0x00, 0x00, 0x00}
	}
	e := &ElevenLabs{opts: o}
	e.Server = newServer(t, e.serve)
	return e
}

// Options returns the options in effect (defaults filled).
func (e *ElevenLabs) Options() ElevenLabsOptions { return e.opts }

// ElevenLabsError is a reply in ElevenLabs' error shape, {"detail":{"status":…,"message":…}}.
func ElevenLabsError(status int, code, message string) Reply {
	b, _ := json.Marshal(map[string]map[string]string{"detail": {"status": code, "message": message}})
	return JSONReply(status, string(b))
}

// ElevenLabsDetail is an error in ElevenLabs' current shape, {"detail":{"type","code",
// "message","status","request_id","param"}}; empty fields are sent as null (param,
// request_id) or left out.
type ElevenLabsDetail struct {
	Type, Code, Status, Message, RequestID, Param string
}

// Reply is the error as a response with HTTP status; a RequestID is also sent as the
// request-id header, as the API does.
func (d ElevenLabsDetail) Reply(status int) Reply {
	obj := map[string]any{"message": d.Message, "param": orNull(d.Param), "request_id": orNull(d.RequestID)}
	for k, v := range map[string]string{"type": d.Type, "code": d.Code, "status": d.Status} {
		if v != "" {
			obj[k] = v
		}
	}
	b, _ := json.Marshal(map[string]any{"detail": obj})
	rep := JSONReply(status, string(b))
	if d.RequestID != "" {
		rep.Header.Set("request-id", d.RequestID)
	}
	return rep
}

// orNull is s, or nil (JSON null) when s is empty.
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ElevenLabsValidationError is ElevenLabs' 422 shape, {"detail":[{"loc","msg","type"}]}.
func ElevenLabsValidationError(loc []string, msg, typ string) Reply {
	b, _ := json.Marshal(map[string]any{"detail": []map[string]any{{"loc": loc, "msg": msg, "type": typ}}})
	return JSONReply(http.StatusUnprocessableEntity, string(b))
}

func (e *ElevenLabs) serve(s *Server, w http.ResponseWriter, r *http.Request, body []byte) {
	probe := r.Method == http.MethodGet && (r.URL.Path == "/v1/models" || r.URL.Path == "/v1/user")
	s.record(r, body, probe)
	s.checkCommon(r, body)
	id := "req-fake-" + strconv.FormatInt(e.seq.Add(1), 10)
	own := func(rep Reply) { // the fake's own answer, with its request id
		if rep.Header == nil {
			rep.Header = http.Header{}
		}
		rep.Header.Set("request-id", id)
		s.write(w, r, rep)
	}
	const ttsPrefix = "/v1/text-to-speech/"
	if !probe && (r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, ttsPrefix)) {
		s.violation(r, "no such ElevenLabs endpoint")
		own(JSONReply(http.StatusNotFound, `{"detail":"Not Found"}`))
		return
	}
	switch key := r.Header.Get("xi-api-key"); {
	case key == "":
		own(ElevenLabsError(http.StatusUnauthorized, "needs_authorization", "Neither authorization header nor session cookie provided"))
		return
	case key != e.opts.APIKey:
		own(ElevenLabsError(http.StatusUnauthorized, "invalid_api_key", "Invalid API key"))
		return
	}
	if probe {
		if rep, ok := s.scripted(true); ok {
			s.write(w, r, rep)
			return
		}
		if rep, denied := e.checkPermission(r, true); denied {
			own(rep)
			return
		}
		own(JSONReply(http.StatusOK, fmt.Sprintf(
			`[{"model_id":%q,"name":"Eleven Flash v2.5","can_do_text_to_speech":true,"max_characters_request_free_user":10000}]`, e.opts.ModelID)))
		return
	}

	if rep, denied := e.checkPermission(r, false); denied {
		own(rep)
		return
	}
	if rep, bad := e.checkTTS(s, r, body); bad {
		own(rep)
		return
	}
	n := e.inFlight.Add(1)
	defer e.inFlight.Add(-1)
	conc := http.Header{}
	if limit := e.opts.MaxConcurrent; limit > 0 {
		conc.Set("current-concurrent-requests", strconv.FormatInt(min(n, int64(limit)), 10))
		conc.Set("maximum-concurrent-requests", strconv.Itoa(limit))
		if n > int64(limit) {
			rep := ElevenLabsError(http.StatusTooManyRequests, "concurrent_limit_exceeded",
				"You have too many concurrent requests for your plan")
			mergeHeader(rep.Header, conc)
			own(rep)
			return
		}
	}
	if rep, ok := s.scripted(false); ok {
		h := conc.Clone()
		mergeHeader(h, rep.Header) // the script's headers win
		rep.Header = h
		s.write(w, r, rep)
		return
	}
	var req ElevenLabsRequest
	_ = json.Unmarshal(body, &req) // checkTTS decoded it already
	h := http.Header{"Content-Type": {"audio/mpeg"}, "Character-Cost": {strconv.Itoa(utf8.RuneCountInString(req.Text))}}
	mergeHeader(h, conc)
	own(Reply{Header: h, Body: string(e.opts.Audio)})
}

// checkPermission answers a scoped key that lacks the endpoint's permission, as the API
// does: 401 with the legacy {"detail":{"status":"missing_permissions"}} shape.
func (e *ElevenLabs) checkPermission(r *http.Request, probe bool) (Reply, bool) {
	if e.opts.Permissions == nil {
		return Reply{}, false
	}
	need := "text_to_speech"
	if probe {
		need = map[string]string{"/v1/models": "models_read", "/v1/user": "user_read"}[r.URL.Path]
	}
	if slices.Contains(e.opts.Permissions, need) {
		return Reply{}, false
	}
	return ElevenLabsError(http.StatusUnauthorized, "missing_permissions",
		"The API key you used is missing the permission "+need+" to execute this operation."), true
}

// checkTTS checks a text-to-speech call; bad is true with the API's answer when it fails.
func (e *ElevenLabs) checkTTS(s *Server, r *http.Request, body []byte) (Reply, bool) {
	voice := strings.TrimPrefix(r.URL.Path, "/v1/text-to-speech/")
	if voice != e.opts.VoiceID {
		return ElevenLabsError(http.StatusNotFound, "voice_not_found",
			"A voice with the voice_id "+voice+" was not found."), true
	}
	q := r.URL.Query()
	if len(q) != 1 || len(q["output_format"]) != 1 || q.Get("output_format") != e.opts.OutputFormat {
		s.violation(r, "query is %q, want exactly output_format=%s", r.URL.RawQuery, e.opts.OutputFormat)
		return ElevenLabsValidationError([]string{"query", "output_format"}, "invalid output_format", "value_error"), true
	}
	fields, err := jsonFields(body)
	if err != nil {
		s.violation(r, "%v", err)
		return ElevenLabsValidationError([]string{"body"}, err.Error(), "value_error"), true
	}
	var req ElevenLabsRequest
	if err := strict(body, &req); err != nil {
		s.violation(r, "body: %v", err)
		return ElevenLabsValidationError([]string{"body"}, err.Error(), "value_error.extra"), true
	}
	if strings.TrimSpace(req.Text) == "" {
		s.violation(r, "text is empty")
		return ElevenLabsValidationError([]string{"body", "text"}, "field required", "value_error.missing"), true
	}
	if _, ok := fields["voice_settings"]; ok {
		var vs struct {
			Stability       *float64 `json:"stability"`
			SimilarityBoost *float64 `json:"similarity_boost"`
			Style           *float64 `json:"style"`
			UseSpeakerBoost *bool    `json:"use_speaker_boost"`
			Speed           *float64 `json:"speed"`
		}
		if err := strict(req.VoiceSettings, &vs); err != nil {
			s.violation(r, "voice_settings: %v", err)
			return ElevenLabsValidationError([]string{"body", "voice_settings"}, err.Error(), "value_error"), true
		}
	}
	if req.ModelID != "" && req.ModelID != e.opts.ModelID {
		return ElevenLabsError(http.StatusBadRequest, "model_not_found", "Model "+req.ModelID+" does not exist."), true
	}
	return Reply{}, false
}

func mergeHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
}
