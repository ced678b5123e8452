package elevenlabs_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/fault/faulttest"
	"github.com/callagent/resilience/internal/provider/elevenlabs"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/provider/providertest"
	"github.com/callagent/resilience/internal/redact"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const apiKey = "sk_0123456789abcdef0123456789abcdef0123456789abcdef"

var someone = contact.Contact{ID: "c-1", Name: "Ada", Phone: "+14155550123", Language: "en"}

type bundle struct {
	fake   *providertest.ElevenLabs
	client *elevenlabs.Client
	red    *redact.Redactor
}

// setup starts a fake ElevenLabs and a client for it; edit adjusts the client's options.
func setup(t *testing.T, fo providertest.ElevenLabsOptions, edit func(*elevenlabs.Options)) *bundle {
	t.Helper()
	if fo.APIKey == "" {
		fo.APIKey = apiKey
	}
	fake := providertest.NewElevenLabs(t, fo)
	fake.Forbid(someone.Phone)
	hc, err := httpx.New(httpx.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	red := redact.New()
	o := elevenlabs.Options{
		APIKey:   config.Secret(apiKey),
		VoiceID:  fake.Options().VoiceID,
		BaseURL:  fake.URL(),
		HTTP:     hc,
		Redactor: red,
	}
	if edit != nil {
		edit(&o)
	}
	c, err := elevenlabs.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{fake: fake, client: c, red: red}
}

func serviceError(t *testing.T, err error) *fault.ServiceError {
	t.Helper()
	var se *fault.ServiceError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want a *fault.ServiceError", err, err)
	}
	return se
}

func TestSynthesizeSendsTheDocumentedRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.ElevenLabsOptions{}, nil)
	audio, err := b.client.Synthesize(context.Background(), someone, "Hello Ada, \"quick\" question.")
	if err != nil {
		t.Fatal(err)
	}
	if string(audio.Data) != string(b.fake.Options().Audio) || audio.Format != "mp3_44100_128" {
		t.Errorf("audio = %q %q", audio.Data, audio.Format)
	}
	reqs := b.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/v1/text-to-speech/voice-1" || r.RawQuery != "output_format=mp3_44100_128" {
		t.Errorf("request line = %s %s?%s", r.Method, r.Path, r.RawQuery)
	}
	for k, want := range map[string]string{
		"Xi-Api-Key": apiKey, "Content-Type": "application/json", "User-Agent": "call-agent/test",
		"Authorization": "",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if want := `{"text":"Hello Ada, \"quick\" question.","model_id":"eleven_flash_v2_5"}`; string(r.Body) != want {
		t.Errorf("body = %s\nwant   %s", r.Body, want)
	}
}

func TestSynthesizeSendsVoiceSettingsAndOtherFormats(t *testing.T) {
	t.Parallel()
	vs, err := elevenlabs.ParseVoiceSettings(`{"stability":0.5,"use_speaker_boost":true}`)
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, providertest.ElevenLabsOptions{ModelID: "eleven_multilingual_v2", OutputFormat: "ulaw_8000", VoiceID: "JBFqnCBsd6RMkjVDRZzb"},
		func(o *elevenlabs.Options) {
			o.ModelID, o.OutputFormat, o.VoiceSettings = "eleven_multilingual_v2", "ulaw_8000", vs
		})
	audio, err := b.client.Synthesize(context.Background(), someone, "Hi")
	if err != nil {
		t.Fatal(err)
	}
	if audio.Format != "ulaw_8000" {
		t.Errorf("format = %q", audio.Format)
	}
	r := b.fake.Requests()[0]
	if r.Path != "/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb" || r.RawQuery != "output_format=ulaw_8000" {
		t.Errorf("request = %s?%s", r.Path, r.RawQuery)
	}
	if want := `{"text":"Hi","model_id":"eleven_multilingual_v2","voice_settings":{"stability":0.5,"use_speaker_boost":true}}`; string(r.Body) != want {
		t.Errorf("body = %s\nwant   %s", r.Body, want)
	}
}

// Every row of the shared table that applies to ElevenLabs, served by the fake, must be
// reported with the row's facts and classified as the row says, by calls and probes alike.
func TestErrorsClassifyLikeTheSharedTable(t *testing.T) {
	t.Parallel()
	for _, tc := range faulttest.ClassificationCases() {
		if !tc.For(faulttest.ElevenLabs) || tc.Status == 0 {
			continue
		}
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, providertest.ElevenLabsOptions{}, nil)
			rep := providertest.Reply{Status: tc.Status, Header: tc.Header, Body: tc.Body}
			b.fake.Enqueue(rep)
			_, err := b.client.Synthesize(context.Background(), someone, "Hello")
			checkFacts(t, "Synthesize", err, tc)

			if tc.Status >= 200 && tc.Status <= 299 {
				return // a probe does not read the body
			}
			b.fake.SetFault(rep)
			checkFacts(t, "Probe", b.client.Probe(context.Background()), tc)
		})
	}
}

func checkFacts(t *testing.T, what string, err error, tc faulttest.Case) {
	t.Helper()
	se := serviceError(t, err)
	want := tc.Facts
	if se.Kind != tc.Want || se.Provider != "ElevenLabs" || se.Status != want.Status || se.Code != want.Code ||
		se.RetryAfter != want.RetryAfter {
		t.Errorf("%s: got kind %v provider %q status %d code %q retry-after %v; want %v %q %d %q %v",
			what, se.Kind, se.Provider, se.Status, se.Code, se.RetryAfter,
			tc.Want, "ElevenLabs", want.Status, want.Code, want.RetryAfter)
	}
	if !strings.Contains(se.Message, want.Message) {
		t.Errorf("%s: message %q does not contain %q", what, se.Message, want.Message)
	}
	if want.Err != nil && !errors.Is(err, httpx.ErrUnusableBody) {
		t.Errorf("%s: err = %v, want an unusable-body error", what, err)
	}
}

func TestBodyShapes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name             string
		reply            providertest.Reply
		kind             fault.Kind
		code, message    string
		retryAfter       time.Duration
		permanentAtFirst bool
	}{
		{"422 list with two items", providertest.JSONReply(422,
			`{"detail":[{"loc":["body","text"],"msg":"field required","type":"value_error.missing"},{"loc":["body",0],"msg":"bad","type":"x"}]}`),
			fault.KindInvalidPayload, "", "body.text: field required; body.0: bad", 0, true},
		{"current shape: code wins over status", providertest.JSONReply(429,
			`{"detail":{"type":"rate_limit_error","code":"concurrent_limit_exceeded","status":"rate_limit_exceeded","message":"Too many","request_id":"r1","param":null}}`),
			fault.KindConcurrencyLimit, "concurrent_limit_exceeded", "Too many", 0, false},
		{"system_busy without Retry-After", providertest.ElevenLabsError(429, "system_busy", "Busy"),
			fault.KindRateLimited, "system_busy", "Busy", 0, false},
		{"rate_limit_exceeded with HTTP-date Retry-After in the past", providertest.Reply{Status: 429,
			Header: http.Header{"Retry-After": {"Wed, 21 Oct 2015 07:28:00 GMT"}},
			Body:   `{"detail":{"code":"rate_limit_exceeded","message":"Slow down"}}`},
			fault.KindRateLimited, "rate_limit_exceeded", "Slow down", 0, false},
		{"string detail", providertest.JSONReply(404, `{"detail":"Not Found"}`),
			fault.KindConfiguration, "", "Not Found", 0, true},
		{"html 502 from a proxy", providertest.Reply{Status: 502, Header: http.Header{"Content-Type": {"text/html"}},
			Body: "<html>bad gateway</html>"}, fault.KindUnavailable, "", "", 0, false},
		{"json instead of audio", providertest.JSONReply(200, `{"audio_base64":"AAAA"}`),
			fault.KindBadResponse, "", "", 0, false},
		{"quota_exceeded as 401", providertest.ElevenLabsError(401, "quota_exceeded", "This request exceeds your quota"),
			fault.KindQuota, "quota_exceeded", "This request exceeds your quota", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, providertest.ElevenLabsOptions{}, nil)
			b.fake.Enqueue(tc.reply)
			_, err := b.client.Synthesize(context.Background(), someone, "Hello")
			se := serviceError(t, err)
			if se.Kind != tc.kind || se.Code != tc.code || se.Message != tc.message || se.RetryAfter != tc.retryAfter {
				t.Errorf("got %v %q %q %v, want %v %q %q %v", se.Kind, se.Code, se.Message, se.RetryAfter,
					tc.kind, tc.code, tc.message, tc.retryAfter)
			}
			if errors.Is(err, fault.ErrPermanent) != tc.permanentAtFirst {
				t.Errorf("permanent = %v, want %v", !tc.permanentAtFirst, tc.permanentAtFirst)
			}
		})
	}
}

func TestWrongKeyAndVoiceGetTheAPIsAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.ElevenLabsOptions{}, func(o *elevenlabs.Options) { o.APIKey = "sk_wrong_key_000000000000000000" })
	_, err := b.client.Synthesize(context.Background(), someone, "Hello")
	if se := serviceError(t, err); se.Kind != fault.KindAuthentication || se.Code != "invalid_api_key" {
		t.Errorf("wrong key: %v %q", se.Kind, se.Code)
	}
	if se := serviceError(t, b.client.Probe(context.Background())); se.Kind != fault.KindAuthentication {
		t.Errorf("probe with a wrong key: %v", se.Kind)
	}

	b = setup(t, providertest.ElevenLabsOptions{}, func(o *elevenlabs.Options) { o.VoiceID = "gone" })
	_, err = b.client.Synthesize(context.Background(), someone, "Hello")
	if se := serviceError(t, err); se.Kind != fault.KindConfiguration || se.Code != "voice_not_found" {
		t.Errorf("unknown voice: %v %q", se.Kind, se.Code)
	}
}

func TestHugeAudioBodyStopsAtTheCap(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.ElevenLabsOptions{}, func(o *elevenlabs.Options) { o.MaxAudioBytes = 1 << 20 })
	b.fake.Enqueue(providertest.Reply{Header: http.Header{"Content-Type": {"audio/mpeg"}}, Filler: 1 << 30})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := b.client.Synthesize(ctx, someone, "Hello")
	var tl *httpx.TooLargeError
	if !errors.As(err, &tl) || tl.Limit != 1<<20 {
		t.Fatalf("err = %v, want a *httpx.TooLargeError at 1 MiB", err)
	}
	if se := serviceError(t, err); se.Kind != fault.KindBadResponse || se.Status != 200 {
		t.Errorf("classified %v (HTTP %d), want bad_response (HTTP 200)", se.Kind, se.Status)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestSlowBodyHonoursTheDeadline(t *testing.T) {
	t.Parallel()
	for _, viaOption := range []bool{false, true} {
		b := setup(t, providertest.ElevenLabsOptions{}, func(o *elevenlabs.Options) {
			if viaOption {
				o.Timeout = 100 * time.Millisecond
			}
		})
		b.fake.Enqueue(providertest.Reply{Header: http.Header{"Content-Type": {"audio/mpeg"}}, Body: "ID3", Stall: true})
		ctx := context.Background()
		if !viaOption {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
		}
		start := time.Now()
		_, err := b.client.Synthesize(ctx, someone, "Hello")
		if se := serviceError(t, err); se.Kind != fault.KindTimeout || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("timeout via option=%v: %v (%v)", viaOption, se.Kind, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("returned after %v", d)
		}
	}
}

func TestCancelledContextIsNotAProviderError(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.ElevenLabsOptions{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.client.Synthesize(ctx, someone, "Hello")
	var se *fault.ServiceError
	if !errors.Is(err, context.Canceled) || errors.As(err, &se) {
		t.Errorf("err = %v, want context.Canceled, unclassified", err)
	}
}

func TestKeyEchoedInErrorBodyIsRedacted(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.ElevenLabsOptions{}, nil)
	b.fake.Enqueue(providertest.ElevenLabsError(401, "invalid_api_key", "Invalid API key: "+apiKey+" (xi-api-key="+apiKey+")"))
	_, err := b.client.Synthesize(context.Background(), someone, "Hello")
	se := serviceError(t, err)
	for _, s := range []string{err.Error(), se.Message, strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")} {
		if strings.Contains(s, apiKey) || strings.Contains(s, apiKey[10:30]) {
			t.Fatalf("the key leaked: %q", s)
		}
	}
	if !strings.Contains(se.Message, redact.Placeholder) {
		t.Errorf("message %q has no placeholder", se.Message)
	}
	// The shared redactor now knows the key, so logs written through it are clean too.
	if got := b.red.Text("key " + apiKey); strings.Contains(got, apiKey) {
		t.Errorf("the shared redactor does not know the key: %q", got)
	}
}

func TestConcurrencyLimitHeaderIsReportedWhenItChanges(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []int
	b := setup(t, providertest.ElevenLabsOptions{MaxConcurrent: 7}, func(o *elevenlabs.Options) {
		o.OnConcurrencyLimit = func(n int) { mu.Lock(); got = append(got, n); mu.Unlock() }
	})
	for range 3 {
		if _, err := b.client.Synthesize(context.Background(), someone, "Hello"); err != nil {
			t.Fatal(err)
		}
	}
	// A refusal carries the header too; a new value is reported.
	rep := providertest.ElevenLabsError(429, "too_many_concurrent_requests", "Too many concurrent requests")
	rep.Header.Set("maximum-concurrent-requests", "3")
	b.fake.Enqueue(rep)
	_, err := b.client.Synthesize(context.Background(), someone, "Hello")
	if se := serviceError(t, err); se.Kind != fault.KindConcurrencyLimit {
		t.Errorf("kind = %v", se.Kind)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != 7 || got[1] != 3 {
		t.Errorf("OnConcurrencyLimit got %v, want [7 3]", got)
	}
}

func TestProbe(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.ElevenLabsOptions{}, nil)
	if err := b.client.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := b.fake.Requests()[0]
	if r.Method != http.MethodGet || r.Path != "/v1/models" || r.RawQuery != "" || r.Header.Get("xi-api-key") != apiKey || len(r.Body) != 0 {
		t.Errorf("probe = %s %s?%s key=%v body=%q", r.Method, r.Path, r.RawQuery, r.Header.Get("xi-api-key") == apiKey, r.Body)
	}
	b.fake.SetFault(providertest.ElevenLabsError(503, "", "Service temporarily unavailable"))
	if se := serviceError(t, b.client.Probe(context.Background())); se.Kind != fault.KindUnavailable {
		t.Errorf("probe during an outage: %v", se.Kind)
	}
	b.fake.ClearFault()
	if err := b.client.Probe(context.Background()); err != nil {
		t.Errorf("probe after recovery: %v", err)
	}
}

func TestEmptyScriptIsRefusedWithoutACall(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.ElevenLabsOptions{}, nil)
	_, err := b.client.Synthesize(context.Background(), someone, " \n")
	if se := serviceError(t, err); se.Kind != fault.KindInvalidPayload || !errors.Is(err, elevenlabs.ErrEmptyScript) {
		t.Errorf("err = %v", err)
	}
	if n := b.fake.Calls(); n != 0 {
		t.Errorf("%d calls made", n)
	}
}

func TestConnectionRefusedIsANetworkError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c, err := elevenlabs.New(elevenlabs.Options{APIKey: apiKey, VoiceID: "v", BaseURL: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Synthesize(context.Background(), someone, "Hello")
	if se := serviceError(t, err); se.Kind != fault.KindNetwork || !errors.Is(err, fault.ErrTransient) {
		t.Errorf("kind = %v", se.Kind)
	}
}

func TestNewNamesTheMissingSettings(t *testing.T) {
	t.Parallel()
	_, err := elevenlabs.New(elevenlabs.Options{})
	want := "ELEVENLABS_API_KEY is required when SIMULATE is unset\nELEVENLABS_VOICE_ID is required when SIMULATE is unset"
	if err == nil || err.Error() != want {
		t.Errorf("err =\n%v\nwant\n%s", err, want)
	}
	_, err = elevenlabs.New(elevenlabs.Options{
		SettingPrefix: "ELEVENLABS_FALLBACK_", APIKey: apiKey, VoiceID: "a/b",
		OutputFormat: "mp3", BaseURL: "api.elevenlabs.io", Timeout: -1,
	})
	want = `ELEVENLABS_FALLBACK_VOICE_ID "a/b" is not a voice id (letters and digits, as shown in the ElevenLabs voice library)` + "\n" +
		`ELEVENLABS_FALLBACK_OUTPUT_FORMAT "mp3" is not an output format (codec_samplerate[_bitrate], e.g. mp3_44100_128 or ulaw_8000)` + "\n" +
		"ELEVENLABS_FALLBACK_BASE_URL must be an absolute http:// or https:// URL with a host\n" +
		"ELEVENLABS_FALLBACK_TIMEOUT is -1ns, must not be negative"
	if err == nil || err.Error() != want {
		t.Errorf("err =\n%v\nwant\n%s", err, want)
	}
	if !errors.Is(err, httpx.ErrInvalidSetting) {
		t.Error("errors.Is(err, httpx.ErrInvalidSetting) is false")
	}
}

func TestParseVoiceSettings(t *testing.T) {
	t.Parallel()
	vs, err := elevenlabs.ParseVoiceSettings(`{"stability":0,"similarity_boost":1,"style":0.2,"use_speaker_boost":false,"speed":0.7}`)
	if err != nil || *vs.Stability != 0 || *vs.SimilarityBoost != 1 || *vs.UseSpeakerBoost || *vs.Speed != 0.7 {
		t.Fatalf("vs = %+v, err = %v", vs, err)
	}
	if vs, err := elevenlabs.ParseVoiceSettings("  "); vs != nil || err != nil {
		t.Errorf("blank: %v %v", vs, err)
	}
	for in, want := range map[string]string{
		`{"stability":null}`:      "voice setting stability is null: omit it instead (the API rejects nulls)",
		`{"stability":1.5}`:       "voice setting stability is 1.5, must be within 0–1",
		`{"speed":2}`:             "voice setting speed is 2, must be within 0.7–1.2",
		`{"volume":1}`:            `voice settings are not a JSON object of stability, similarity_boost, style, use_speaker_boost, speed: json: unknown field "volume"`,
		`{"style":0.1} {}`:        "voice settings have data after the JSON object",
		`[1]`:                     "voice settings are not a JSON object of stability, similarity_boost, style, use_speaker_boost, speed: json: cannot unmarshal array into Go value of type elevenlabs.VoiceSettings",
		`{"similarity_boost":-1}`: "voice setting similarity_boost is -1, must be within 0–1",
	} {
		if _, err := elevenlabs.ParseVoiceSettings(in); err == nil || err.Error() != want {
			t.Errorf("ParseVoiceSettings(%s) = %v, want %q", in, err, want)
		}
	}
}
