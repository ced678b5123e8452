package openai_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/fault/faulttest"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/provider/openai"
	"github.com/callagent/resilience/internal/provider/providertest"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

func TestSynthesizeSendsTheDocumentedRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.OpenAIOptions{SpeechModel: "tts-1", Voice: "nova", Format: "opus"}, nil,
		func(o *openai.SpeechOptions) { o.Model, o.Voice, o.Format = "tts-1", "nova", "opus" })
	audio, err := b.speech.Synthesize(context.Background(), someone, "Hello Ada.")
	if err != nil {
		t.Fatal(err)
	}
	if string(audio.Data) != string(b.fake.Options().Audio) || audio.Format != "opus" || audio.Model != "tts-1" ||
		audio.Characters != 10 || audio.RequestID != "req_fake1" {
		t.Errorf("audio = %q %q %q %d %q", audio.Data, audio.Format, audio.Model, audio.Characters, audio.RequestID)
	}
	r := b.fake.Requests()[0]
	if r.Method != http.MethodPost || r.Path != "/v1/audio/speech" || r.RawQuery != "" ||
		r.Header.Get("Authorization") != "Bearer "+apiKey || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get("User-Agent") != "call-agent/test" {
		t.Errorf("request = %s %s?%s %v", r.Method, r.Path, r.RawQuery, r.Header)
	}
	if want := `{"model":"tts-1","input":"Hello Ada.","voice":"nova","response_format":"opus"}`; string(r.Body) != want {
		t.Errorf("body = %s\nwant   %s", r.Body, want)
	}
}

func TestSpeechDefaults(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.OpenAIOptions{}, nil, nil)
	audio, err := b.speech.Synthesize(context.Background(), someone, "Hi")
	if err != nil {
		t.Fatal(err)
	}
	if audio.Format != "mp3" || audio.Model != "gpt-4o-mini-tts" || b.speech.Name() != "OpenAI TTS" {
		t.Errorf("format %q, model %q, name %q", audio.Format, audio.Model, b.speech.Name())
	}
	if want := `{"model":"gpt-4o-mini-tts","input":"Hi","voice":"alloy","response_format":"mp3"}`; string(b.fake.Requests()[0].Body) != want {
		t.Errorf("body = %s", b.fake.Requests()[0].Body)
	}
}

// The OpenAI-compatible rows of the shared table hold for the speech endpoint too: its
// errors have the same shape, and a JSON or HTML 2xx is not audio.
func TestSpeechErrorsClassifyLikeTheSharedTable(t *testing.T) {
	t.Parallel()
	providertest.RunTable(t, faulttest.LLM, func(t *testing.T, tc faulttest.Case, rep providertest.Reply) {
		b := setup(t, providertest.OpenAIOptions{}, nil, func(o *openai.SpeechOptions) { o.Name = "OpenAI TTS (fallback)" })
		b.fake.Enqueue(rep)
		_, err := b.speech.Synthesize(context.Background(), someone, "Hello")
		if tc.Status >= 200 && tc.Status <= 299 && tc.Facts.Code == fault.CodeTokenLimit {
			// A chat completion cut by its token bound is, at the speech endpoint, just a
			// JSON document instead of audio: retried once like any unusable body.
			tc.Facts.Code, tc.Facts.Param, tc.Want = "", "", fault.KindBadResponse
		}
		checkFacts(t, "Synthesize", "OpenAI TTS (fallback)", err, tc)
		if tc.Status >= 200 && tc.Status <= 299 {
			return
		}
		b.fake.SetFault(rep)
		checkFacts(t, "Probe", "OpenAI TTS (fallback)", b.speech.Probe(context.Background()), tc)
	})
}

func TestSpeechUnusableAndHostileBodies(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.OpenAIOptions{}, nil, func(o *openai.SpeechOptions) { o.MaxAudioBytes = 1 << 20 })
	b.fake.Enqueue(providertest.Reply{Header: http.Header{"Content-Type": {"audio/mpeg"}}})
	_, err := b.speech.Synthesize(context.Background(), someone, "Hello")
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindBadResponse || !strings.HasSuffix(err.Error(), "unusable response body: empty audio") {
		t.Errorf("empty audio: %v", err)
	}

	b.fake.Enqueue(providertest.Reply{Header: http.Header{"Content-Type": {"audio/mpeg"}}, Filler: 1 << 30})
	start := time.Now()
	_, err = b.speech.Synthesize(context.Background(), someone, "Hello")
	var tl *httpx.TooLargeError
	if !errors.As(err, &tl) || tl.Limit != 1<<20 || fault.KindOf(err) != fault.KindBadResponse {
		t.Errorf("1 GB body: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("1 GB body: took %v", d)
	}

	b.fake.Enqueue(providertest.Reply{Header: http.Header{"Content-Type": {"audio/mpeg"}}, Body: "ID3", Stall: true})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = b.speech.Synthesize(ctx, someone, "Hello")
	if fault.KindOf(err) != fault.KindTimeout {
		t.Errorf("slow body: %v (%v)", err, fault.KindOf(err))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slow body: returned after %v", d)
	}
}

func TestSpeechKeyEchoedIsRedactedAndEmptyInputRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.OpenAIOptions{}, nil, nil)
	b.fake.Enqueue(providertest.OpenAIError(401, "invalid_api_key", "invalid_request_error", "Incorrect API key provided: "+apiKey))
	_, err := b.speech.Synthesize(context.Background(), someone, "Hello")
	if se := providertest.ServiceError(t, err); strings.Contains(err.Error(), apiKey) || se.Message != "Incorrect API key provided: "+redact.Placeholder {
		t.Errorf("err = %q", err)
	}

	_, err = b.speech.Synthesize(context.Background(), someone, "\t")
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindInvalidPayload || !errors.Is(err, openai.ErrEmptyInput) {
		t.Errorf("empty input: %v", err)
	}
	if n := b.fake.Calls(); n != 1 {
		t.Errorf("%d calls, want 1 (the empty input made none)", n)
	}
}

func TestSpeechProbe(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.OpenAIOptions{}, nil, nil)
	if err := b.speech.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := b.fake.Requests()[0]; r.Method != http.MethodGet || r.Path != "/v1/models" || !r.Probe {
		t.Errorf("probe = %s %s", r.Method, r.Path)
	}
}

func TestNewSpeechNamesTheBadSettings(t *testing.T) {
	t.Parallel()
	_, err := openai.NewSpeech(openai.SpeechOptions{Format: "ogg", BaseURL: "http:///v1"})
	want := "APIKey is required when SIMULATE is unset\n" +
		"BaseURL must be an absolute http:// or https:// URL with a host\n" +
		`Format is "ogg", must be one of mp3, opus, aac, flac, wav, pcm`
	if err == nil || err.Error() != want {
		t.Errorf("err =\n%v\nwant\n%s", err, want)
	}
	if _, err := openai.NewSpeech(openai.SpeechOptions{APIKey: secret.Secret("k"), MaxAudioBytes: -1}); err == nil ||
		err.Error() != "MaxAudioBytes is -1, must be positive" {
		t.Errorf("err = %v", err)
	}
}

// OpenAI bills tts-1 per character of input: Characters counts what was sent, in
// characters, not bytes.
func TestSynthesizeCountsTheCharactersSent(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.OpenAIOptions{}, nil, nil)
	rep := providertest.Reply{Header: http.Header{"Content-Type": {"audio/mpeg"}, "X-Request-Id": {"req_tts42"}}, Body: "ID3"}
	b.fake.Enqueue(rep)
	script := "  ¿Qué tal, Zoë? 你好  "
	audio, err := b.speech.Synthesize(context.Background(), someone, script)
	if err != nil {
		t.Fatal(err)
	}
	if audio.Characters != 21 || len(script) == audio.Characters || audio.RequestID != "req_tts42" || audio.Model != "gpt-4o-mini-tts" {
		t.Errorf("characters %d (of %d bytes), request id %q, model %q", audio.Characters, len(script), audio.RequestID, audio.Model)
	}
	if want := `"input":"  ¿Qué tal, Zoë? 你好  "`; !strings.Contains(string(b.fake.Requests()[0].Body), want) {
		t.Errorf("body = %s, want the input as given", b.fake.Requests()[0].Body)
	}
}

// A JSON or text document with a 2xx is not audio, and keeps its request id.
func TestSynthesizeRefusesDocuments(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"application/json", "application/problem+json", "text/html; charset=utf-8", "text/plain"} {
		b := setup(t, providertest.OpenAIOptions{}, nil, nil)
		b.fake.Enqueue(providertest.Reply{Header: http.Header{"Content-Type": {ct}, "X-Request-Id": {"req_doc"}}, Body: `{"ok":true}`})
		_, err := b.speech.Synthesize(context.Background(), someone, "Hello")
		if se := providertest.ServiceError(t, err); se.Kind != fault.KindBadResponse || se.RequestID != "req_doc" ||
			!strings.Contains(err.Error(), "document instead of audio") {
			t.Errorf("%s: %v", ct, err)
		}
	}
}
