package elevenlabs_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/callagent/resilience/internal/config/field"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/fault/faulttest"
	"github.com/callagent/resilience/internal/provider/elevenlabs"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/provider/providertest"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
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
	red := redact.New()
	o := elevenlabs.Options{
		APIKey:   secret.Secret(apiKey),
		VoiceID:  fake.Options().VoiceID,
		BaseURL:  fake.URL(),
		HTTP:     providertest.HTTPClient(t, "test"),
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

// operatorView is what the shared table's rows mean beyond their kind: whether the step
// retries them, and the exact error line an operator reads in logs and dead letters (the
// provider's message and request id, or a line naming the provider, kind and status). Every
// row the client serves must be here, so a new row is a decision, not an accident.
var operatorView = map[string]struct {
	retried bool
	shows   string
}{
	"any/403":                     {false, "ElevenLabs: authentication (HTTP 403)"},
	"any/408":                     {true, "ElevenLabs: timeout (HTTP 408)"},
	"any/418 other 4xx":           {false, "ElevenLabs: invalid payload (HTTP 418)"},
	"any/429 without code":        {true, "ElevenLabs: rate limited (HTTP 429)"},
	"any/503":                     {true, "ElevenLabs: service unavailable (HTTP 503)"},
	"any/504":                     {true, "ElevenLabs: service unavailable (HTTP 504)"},
	"any/302 unexpected redirect": {true, "ElevenLabs: bad response (HTTP 302)"},

	"elevenlabs/unauthorized 401":                 {false, "Invalid or expired API key. (request_id 5f1e2d3c4b5a69788796a5b4c3d2e1f0)"},
	"elevenlabs/invalid_api_key 401":              {false, "Invalid API key"},
	"elevenlabs/missing_api_key 401":              {false, "Missing API key"},
	"elevenlabs/unknown code falls back to 401":   {false, "Neither authorization header nor session cookie provided"},
	"elevenlabs/missing_permissions 401":          {false, "The API key you used is missing the permission text_to_speech to execute this operation."},
	"elevenlabs/quota_exceeded as 401":            {false, "This request exceeds your quota of 10000. You have 12 credits remaining, while 85 credits are required for this request."},
	"elevenlabs/insufficient_credits 402":         {false, "Insufficient credits"},
	"elevenlabs/payment required without code":    {false, "Payment required"},
	"elevenlabs/subscription_required 403":        {false, "This model requires a paid subscription. Please upgrade your plan to use it. (request_id 9a8b7c6d5e4f30211203f4e5d6c7b8a9)"},
	"elevenlabs/output_format_not_allowed 403":    {false, "Output format pcm_44100 is only available on the Pro plan and above. Upgrade your subscription or choose another output format."},
	"elevenlabs/concurrent_limit_exceeded 429":    {true, "You have exceeded the maximum number of concurrent requests (5) for your subscription. (request_id c0ffee00c0ffee00c0ffee00c0ffee00)"},
	"elevenlabs/system_busy with Retry-After":     {true, "The system is busy"},
	"elevenlabs/max_character_limit_exceeded 400": {false, "This request's text has 40123 characters and exceeds the character limit of 40000 characters."},
	"elevenlabs/voice_not_found 404":              {false, "A voice with the voice_id JBFqnCBsd6RMkjVDRZzb was not found."},
	"elevenlabs/voice_not_found 400":              {false, "A voice with voice_id 21m00Tcm4TlvDq8ikWAX does not exist. (request_id d41d8cd98f00b204e9800998ecf8427e)"},
	"elevenlabs/model_not_found as 400":           {false, "Model not found"},
	"elevenlabs/422 list loc body.model_id":       {false, "body.model_id: Value error, model eleven_turbo_v9 does not exist"},
	"elevenlabs/422 list loc body.text":           {false, "body.text: field required"},
	"elevenlabs/503":                              {true, "Service temporarily unavailable"},
	"elevenlabs/500":                              {true, "Internal server error (request_id 4e6f7420616e206964206174206c6c21)"},
	"elevenlabs/200 empty audio":                  {true, "ElevenLabs: bad response (HTTP 200): unusable response body: empty audio"},
	"elevenlabs/200 json instead of audio":        {true, "ElevenLabs: bad response (HTTP 200): unusable response body: a application/json document instead of audio"},
	"elevenlabs/paid_plan_required 402 library voice on a free plan": {false,
		"Free users cannot use library voices via the API. Please upgrade your subscription to use this voice. (request_id 0b7c1d2e3f40516273849a5b6c7d8e9f)"},
	"elevenlabs/too_many_concurrent_requests 429": {true, "Too many concurrent requests. Your current subscription is associated with a maximum of 2 concurrent requests (running in parallel). " +
		"This is done such that a single user does not overwhelm our systems and affect other users negatively. Please upgrade your subscription or contact sales if you want t…"},
	"elevenlabs/system_busy 429":                            {true, "Our services are experiencing high levels of traffic and your request could not be processed. Please retry later."},
	"elevenlabs/422 list loc body.voice_settings.stability": {false, "body.voice_settings.stability: Input should be less than or equal to 1"},
}

// Every row of the shared table that applies to ElevenLabs, served by the fake, must be
// reported with exactly the row's facts and classified as the row says, by calls and probes
// alike; the retry decision and the operator's line must be as operatorView says.
func TestErrorsClassifyLikeTheSharedTable(t *testing.T) {
	t.Parallel()
	served := providertest.RunTable(t, faulttest.ElevenLabs, func(t *testing.T, tc faulttest.Case, rep providertest.Reply) {
		view, ok := operatorView[tc.Name]
		if !ok {
			t.Fatalf("row %q has no operatorView entry", tc.Name)
		}
		b := setup(t, providertest.ElevenLabsOptions{}, nil)
		b.fake.Enqueue(rep)
		_, err := b.client.Synthesize(context.Background(), someone, "Hello")
		checkFacts(t, "Synthesize", err, tc)
		checkView(t, "Synthesize", err, view.retried, view.shows)

		if tc.Status >= 200 && tc.Status <= 299 {
			return // a probe does not read the body
		}
		b.fake.SetFault(rep)
		err = b.client.Probe(context.Background())
		checkFacts(t, "Probe", err, tc)
		checkView(t, "Probe", err, view.retried, view.shows)
	})
	for name := range operatorView {
		if !slices.Contains(served, name) {
			t.Errorf("operatorView has %q, which is not a row of the table", name)
		}
	}
}

// checkFacts checks that err carries exactly the facts of the row and its kind.
func checkFacts(t *testing.T, what string, err error, tc faulttest.Case) {
	t.Helper()
	se := providertest.ServiceError(t, err)
	want := tc.Facts
	if se.Kind != tc.Want || se.Provider != "ElevenLabs" || se.Status != want.Status || se.Code != want.Code ||
		se.Message != want.Message || se.Param != want.Param || se.RequestID != want.RequestID || se.RetryAfter != want.RetryAfter {
		t.Errorf("%s: got kind %v provider %q status %d code %q message %q param %q request id %q retry-after %v\n"+
			"want          %v %q %d %q %q %q %q %v",
			what, se.Kind, se.Provider, se.Status, se.Code, se.Message, se.Param, se.RequestID, se.RetryAfter,
			tc.Want, "ElevenLabs", want.Status, want.Code, want.Message, want.Param, want.RequestID, want.RetryAfter)
	}
	if (want.Err != nil) != errors.Is(err, httpx.ErrUnusableBody) {
		t.Errorf("%s: err = %v, want an unusable-body error: %v", what, err, want.Err != nil)
	}
}

// checkView checks the retry decision and the operator's line, which never holds the key.
func checkView(t *testing.T, what string, err error, retried bool, shows string) {
	t.Helper()
	if fault.IsTransient(err) != retried || fault.Retryable(err, 1) != retried {
		t.Errorf("%s: retried = %v, want %v", what, fault.IsTransient(err), retried)
	}
	if err.Error() != shows {
		t.Errorf("%s: operator sees\n%q\nwant\n%q", what, err.Error(), shows)
	}
	if strings.Contains(err.Error(), apiKey) {
		t.Errorf("%s: the key leaked: %q", what, err.Error())
	}
}

// Shapes and edge cases of error answers beyond the shared table: where the code, param and
// request id come from when the body or headers are unusual.
func TestBodyShapes(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("r", 300)
	cases := []struct {
		name                      string
		reply                     providertest.Reply
		kind                      fault.Kind
		code, message, param, rid string
		retryAfter                time.Duration
		permanentAtFirst          bool
	}{
		{name: "422 list with two items: the first names the field", reply: providertest.JSONReply(422,
			`{"detail":[{"loc":["body","text"],"msg":"field required","type":"value_error.missing"},{"loc":["body",0],"msg":"bad","type":"x"}]}`),
			kind: fault.KindInvalidPayload, message: "body.text: field required; body.0: bad", param: "text", permanentAtFirst: true},
		{name: "422 list on the query's output_format is a setting", reply: providertest.ElevenLabsValidationError(
			[]string{"query", "output_format"}, "Input should be 'mp3_44100_128' or 'ulaw_8000'", "enum"),
			kind: fault.KindConfiguration, message: "query.output_format: Input should be 'mp3_44100_128' or 'ulaw_8000'", param: "output_format", permanentAtFirst: true},
		{name: "422 list blaming the whole body names no field", reply: providertest.ElevenLabsValidationError(
			[]string{"body"}, "JSON decode error", "json_invalid"),
			kind: fault.KindInvalidPayload, message: "body: JSON decode error", permanentAtFirst: true},
		{name: "422 empty list", reply: providertest.JSONReply(422, `{"detail":[]}`),
			kind: fault.KindInvalidPayload, permanentAtFirst: true},
		{name: "current shape: code wins over status, ids from header and body", reply: providertest.ElevenLabsDetail{
			Type: "rate_limit_error", Code: "concurrent_limit_exceeded", Status: "rate_limit_exceeded", Message: "Too many", RequestID: "r1"}.Reply(429),
			kind: fault.KindConcurrencyLimit, code: "concurrent_limit_exceeded", message: "Too many", rid: "r1"},
		{name: "current shape: 400 invalid_parameters naming model_id is a setting", reply: providertest.ElevenLabsDetail{
			Type: "validation_error", Code: "invalid_parameters", Status: "invalid_parameters",
			Message: "The model eleven_v3 does not support output format ulaw_8000.", RequestID: "3c807fc4c3a1705f9638ecc764a91c01", Param: "model_id"}.Reply(400),
			kind: fault.KindConfiguration, code: "invalid_parameters", message: "The model eleven_v3 does not support output format ulaw_8000.",
			param: "model_id", rid: "3c807fc4c3a1705f9638ecc764a91c01", permanentAtFirst: true},
		{name: "current shape: 400 invalid_parameters naming text is the contact's", reply: providertest.ElevenLabsDetail{
			Type: "validation_error", Code: "invalid_parameters", Message: "Text contains no speakable characters.", Param: "text"}.Reply(400),
			kind: fault.KindInvalidPayload, code: "invalid_parameters", message: "Text contains no speakable characters.", param: "text", permanentAtFirst: true},
		{name: "header id wins over the body's", reply: func() providertest.Reply {
			r := providertest.ElevenLabsDetail{Code: "system_busy", Message: "Busy", RequestID: "from-body"}.Reply(429)
			r.Header.Set("request-id", "from-header")
			return r
		}(), kind: fault.KindRateLimited, code: "system_busy", message: "Busy", rid: "from-header"},
		{name: "x-request-id from a proxy", reply: providertest.Reply{Status: 502,
			Header: http.Header{"Content-Type": {"text/html"}, "X-Request-Id": {"edge-42"}}, Body: "<html>bad gateway</html>"},
			kind: fault.KindUnavailable, rid: "edge-42"},
		{name: "a hostile request id is cut and cleaned", reply: providertest.Reply{Status: 503,
			Header: http.Header{"Request-Id": {"a\tb" + long}}},
			kind: fault.KindUnavailable, rid: ("ab" + long)[:128]},
		{name: "type only, as a last resort code", reply: providertest.JSONReply(429,
			`{"detail":{"type":"rate_limit_error","message":"Slow down","param":null,"request_id":null}}`),
			kind: fault.KindRateLimited, code: "rate_limit_error", message: "Slow down"},
		{name: "numeric param", reply: providertest.JSONReply(400, `{"detail":{"code":"bad","message":"m","param":3}}`),
			kind: fault.KindInvalidPayload, code: "bad", message: "m", param: "3", permanentAtFirst: true},
		{name: "system_busy without Retry-After", reply: providertest.ElevenLabsError(429, "system_busy", "Busy"),
			kind: fault.KindRateLimited, code: "system_busy", message: "Busy"},
		{name: "rate_limit_exceeded with HTTP-date Retry-After in the past", reply: providertest.Reply{Status: 429,
			Header: http.Header{"Retry-After": {"Wed, 21 Oct 2015 07:28:00 GMT"}},
			Body:   `{"detail":{"code":"rate_limit_exceeded","message":"Slow down"}}`},
			kind: fault.KindRateLimited, code: "rate_limit_exceeded", message: "Slow down"},
		{name: "concurrency limit with Retry-After", reply: func() providertest.Reply {
			r := providertest.ElevenLabsError(429, "too_many_concurrent_requests", "Too many concurrent requests")
			r.Header.Set("Retry-After", "2")
			return r
		}(), kind: fault.KindConcurrencyLimit, code: "too_many_concurrent_requests", message: "Too many concurrent requests", retryAfter: 2 * time.Second},
		{name: "legacy payment_required for a library voice reads as quota", reply: providertest.ElevenLabsError(402, "payment_required",
			"Free users cannot use library voices via the API. Please upgrade your subscription to use this voice"),
			kind: fault.KindQuota, code: "payment_required",
			message: "Free users cannot use library voices via the API. Please upgrade your subscription to use this voice", permanentAtFirst: true},
		{name: "string detail", reply: providertest.JSONReply(404, `{"detail":"Not Found"}`),
			kind: fault.KindConfiguration, message: "Not Found", permanentAtFirst: true},
		{name: "html 502 from a proxy", reply: providertest.Reply{Status: 502, Header: http.Header{"Content-Type": {"text/html"}},
			Body: "<html>bad gateway</html>"}, kind: fault.KindUnavailable},
		{name: "json instead of audio", reply: providertest.JSONReply(200, `{"audio_base64":"AAAA"}`),
			kind: fault.KindBadResponse},
		{name: "text instead of audio", reply: providertest.Reply{Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, Body: "OK"},
			kind: fault.KindBadResponse},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, providertest.ElevenLabsOptions{}, nil)
			b.fake.Enqueue(tc.reply)
			_, err := b.client.Synthesize(context.Background(), someone, "Hello")
			se := providertest.ServiceError(t, err)
			if se.Kind != tc.kind || se.Code != tc.code || se.Message != tc.message || se.Param != tc.param ||
				se.RequestID != tc.rid || se.RetryAfter != tc.retryAfter {
				t.Errorf("got  %v %q %q param %q id %q %v\nwant %v %q %q param %q id %q %v",
					se.Kind, se.Code, se.Message, se.Param, se.RequestID, se.RetryAfter,
					tc.kind, tc.code, tc.message, tc.param, tc.rid, tc.retryAfter)
			}
			if errors.Is(err, fault.ErrPermanent) != tc.permanentAtFirst {
				t.Errorf("permanent = %v, want %v", !tc.permanentAtFirst, tc.permanentAtFirst)
			}
			if tc.rid != "" && !strings.HasSuffix(err.Error(), " (request_id "+tc.rid+")") {
				t.Errorf("error line %q does not end with the request id", err.Error())
			}
		})
	}
}

func TestWrongKeyAndVoiceGetTheAPIsAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.ElevenLabsOptions{}, func(o *elevenlabs.Options) { o.APIKey = "sk_wrong_key_000000000000000000" })
	_, err := b.client.Synthesize(context.Background(), someone, "Hello")
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindAuthentication || se.Code != "invalid_api_key" {
		t.Errorf("wrong key: %v %q", se.Kind, se.Code)
	}
	if se := providertest.ServiceError(t, b.client.Probe(context.Background())); se.Kind != fault.KindAuthentication {
		t.Errorf("probe with a wrong key: %v", se.Kind)
	}

	b = setup(t, providertest.ElevenLabsOptions{}, func(o *elevenlabs.Options) { o.VoiceID = "gone" })
	_, err = b.client.Synthesize(context.Background(), someone, "Hello")
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindConfiguration || se.Code != "voice_not_found" {
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
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindBadResponse || se.Status != 200 {
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
		if se := providertest.ServiceError(t, err); se.Kind != fault.KindTimeout || !errors.Is(err, context.DeadlineExceeded) {
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
	b.fake.Enqueue(
		providertest.ElevenLabsDetail{Code: "invalid_api_key", Message: "Invalid API key: " + apiKey + " (xi-api-key=" + apiKey + ")",
			Param: apiKey, RequestID: "rid-7"}.Reply(401),
		providertest.ElevenLabsValidationError([]string{"header", "xi-api-key"}, "key "+apiKey+" is malformed", "value_error"),
	)
	for i, want := range []string{
		"Invalid API key: " + redact.Placeholder + " (xi-api-key=" + redact.Placeholder + ") (request_id rid-7)",
		"header.xi-api-key: " + redact.Placeholder + " " + redact.Placeholder + " is malformed", // "xi-api-key: key" reads as a credential too
	} {
		_, err := b.client.Synthesize(context.Background(), someone, "Hello")
		se := providertest.ServiceError(t, err)
		for _, s := range []string{err.Error(), se.Message, se.Param, se.RequestID, fmt.Sprintf("%+v", *se)} {
			if strings.Contains(s, apiKey) || strings.Contains(s, apiKey[10:30]) {
				t.Fatalf("reply %d: the key leaked: %q", i, s)
			}
		}
		if err.Error() != want {
			t.Errorf("reply %d: operator sees %q, want %q", i, err.Error(), want)
		}
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
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindConcurrencyLimit {
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
	providertest.CheckOutage(t, b.fake.Server, providertest.ElevenLabsError(503, "", "Service temporarily unavailable"), b.client.Probe)
}

func TestEmptyScriptIsRefusedWithoutACall(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.ElevenLabsOptions{}, nil)
	_, err := b.client.Synthesize(context.Background(), someone, " \n")
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindInvalidPayload || !errors.Is(err, elevenlabs.ErrEmptyScript) {
		t.Errorf("err = %v", err)
	}
	if n := b.fake.Calls(); n != 0 {
		t.Errorf("%d calls made", n)
	}
}

func TestConnectionRefusedIsANetworkError(t *testing.T) {
	t.Parallel()
	c, err := elevenlabs.New(elevenlabs.Options{APIKey: apiKey, VoiceID: "v", BaseURL: "http://" + providertest.ClosedAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Synthesize(context.Background(), someone, "Hello")
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindNetwork || !errors.Is(err, fault.ErrTransient) {
		t.Errorf("kind = %v", se.Kind)
	}
}

func TestNewNamesTheMissingSettings(t *testing.T) {
	t.Parallel()
	_, err := elevenlabs.New(elevenlabs.Options{})
	want := "APIKey is required when SIMULATE is unset\nVoiceID is required when SIMULATE is unset"
	if err == nil || err.Error() != want {
		t.Errorf("err =\n%v\nwant\n%s", err, want)
	}
	_, err = elevenlabs.New(elevenlabs.Options{
		APIKey: apiKey, VoiceID: "a/b",
		OutputFormat: "mp3", BaseURL: "api.elevenlabs.io", Timeout: -1,
	})
	want = `VoiceID "a/b" is not a voice id (letters and digits, as shown in the ElevenLabs voice library)` + "\n" +
		`OutputFormat "mp3" is not an ElevenLabs output format; use one of ` + allFormats + "\n" +
		"BaseURL must be an absolute http:// or https:// URL with a host\n" +
		"Timeout is -1ns, must not be negative"
	if err == nil || err.Error() != want {
		t.Errorf("err =\n%v\nwant\n%s", err, want)
	}
	if !errors.Is(err, field.ErrInvalid) {
		t.Error("errors.Is(err, field.ErrInvalid) is false")
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

// allFormats is the list as settings errors print it.
const allFormats = "mp3_{22050_32,24000_48,44100_32,44100_64,44100_96,44100_128,44100_192}, " +
	"pcm_{8000,16000,22050,24000,32000,44100,48000}, wav_{8000,16000,22050,24000,32000,44100,48000}, " +
	"ulaw_8000, alaw_8000, opus_{48000_32,48000_64,48000_96,48000_128,48000_192}"

func TestOutputFormats(t *testing.T) {
	t.Parallel()
	formats := elevenlabs.OutputFormats()
	if len(formats) != 28 || !slices.Contains(formats, "ulaw_8000") || !slices.Contains(formats, elevenlabs.DefaultOutputFormat) {
		t.Fatalf("OutputFormats() = %v", formats)
	}
	formats[0] = "changed"
	if elevenlabs.OutputFormats()[0] != "mp3_22050_32" {
		t.Error("OutputFormats returns the package's own slice")
	}
	for _, f := range elevenlabs.OutputFormats() {
		if _, err := elevenlabs.New(elevenlabs.Options{APIKey: apiKey, VoiceID: "v", OutputFormat: f}); err != nil {
			t.Errorf("%s refused: %v", f, err)
		}
		if elevenlabs.Codec(f) == "" || elevenlabs.SampleRate(f) < 8000 {
			t.Errorf("%s: codec %q, rate %d", f, elevenlabs.Codec(f), elevenlabs.SampleRate(f))
		}
	}
	for in, want := range map[string]struct {
		codec string
		rate  int
	}{
		"mp3_44100_128": {"mp3", 44100}, "mp3_22050_32": {"mp3", 22050}, "pcm_16000": {"pcm", 16000},
		"wav_8000": {"wav", 8000}, "ulaw_8000": {"ulaw", 8000}, "alaw_8000": {"alaw", 8000},
		"opus_48000_64": {"opus", 48000},
		"flac":          {}, "mp3": {}, "mp3_44100_320": {}, "pcm_96000": {}, "ulaw_16000": {}, "MP3_44100_128": {}, "": {},
	} {
		if c, r := elevenlabs.Codec(in), elevenlabs.SampleRate(in); c != want.codec || r != want.rate {
			t.Errorf("Codec/SampleRate(%q) = %q, %d; want %q, %d", in, c, r, want.codec, want.rate)
		}
	}

	_, err := elevenlabs.New(elevenlabs.Options{APIKey: apiKey, VoiceID: "v", OutputFormat: "flac"})
	if want := `OutputFormat "flac" is not an ElevenLabs output format; use one of ` + allFormats; err == nil || err.Error() != want {
		t.Errorf("flac: %v\nwant %s", err, want)
	}
	if !errors.Is(err, field.ErrInvalid) {
		t.Error("flac: not a setting error")
	}
	_, err = elevenlabs.New(elevenlabs.Options{APIKey: apiKey, VoiceID: "v", OutputFormat: "ulaw_16000"})
	if err == nil || !strings.HasPrefix(err.Error(), `OutputFormat "ulaw_16000" is not`) {
		t.Errorf("ulaw_16000: %v", err)
	}
}

// The base URL may be copied from the API reference with its /v1; requests must still go
// to /v1/text-to-speech/…, never /v1/v1/…, while a proxy's own prefix is kept.
func TestBaseURLPath(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var paths []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "audio/mpeg")
		_, _ = w.Write([]byte("ID3"))
	}))
	t.Cleanup(api.Close)
	hc := providertest.HTTPClient(t, "test")
	for suffix, prefix := range map[string]string{
		"": "", "/": "", "/v1": "", "/v1/": "", "/v1//": "",
		"/eleven": "/eleven", "/eleven/": "/eleven", "/eleven/v1": "/eleven", "/eleven/v1/": "/eleven",
		"/v1/eleven": "/v1/eleven", "/v10": "/v10",
	} {
		c, err := elevenlabs.New(elevenlabs.Options{APIKey: apiKey, VoiceID: "voice-1", BaseURL: api.URL + suffix, HTTP: hc})
		if err != nil {
			t.Fatalf("%q: %v", suffix, err)
		}
		mu.Lock()
		paths = nil
		mu.Unlock()
		if _, err := c.Synthesize(context.Background(), someone, "Hi"); err != nil {
			t.Fatalf("%q: %v", suffix, err)
		}
		if err := c.Probe(context.Background()); err != nil {
			t.Fatalf("%q: probe: %v", suffix, err)
		}
		mu.Lock()
		got := slices.Clone(paths)
		mu.Unlock()
		if want := []string{prefix + "/v1/text-to-speech/voice-1", prefix + "/v1/models"}; !slices.Equal(got, want) {
			t.Errorf("base %q: requests went to %q, want %q", api.URL+suffix, got, want)
		}
	}
}

func TestSuccessReportsModelCostAndRequestID(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.ElevenLabsOptions{ModelID: "eleven_multilingual_v2"},
		func(o *elevenlabs.Options) { o.ModelID = "eleven_multilingual_v2" })
	audio, err := b.client.Synthesize(context.Background(), someone, "Hello Ada, ¿qué tal?")
	if err != nil {
		t.Fatal(err)
	}
	if audio.Model != "eleven_multilingual_v2" || audio.Characters != 20 || audio.RequestID != "req-fake-1" {
		t.Errorf("audio model %q, characters %d, request id %q; want eleven_multilingual_v2, 20, req-fake-1",
			audio.Model, audio.Characters, audio.RequestID)
	}

	for cost, want := range map[string]int{"12": 12, " 7 ": 7, "0": 0, "": 0, "abc": 0, "-3": 0, "1.5": 0, "99999999999999999999": 0} {
		h := http.Header{"Content-Type": {"audio/mpeg"}, "X-Request-Id": {"edge-1"}}
		if cost != "" {
			h.Set("character-cost", cost)
		}
		b.fake.Enqueue(providertest.Reply{Header: h, Body: "ID3"})
		audio, err := b.client.Synthesize(context.Background(), someone, "Hello")
		if err != nil {
			t.Fatal(err)
		}
		if audio.Characters != want || audio.RequestID != "edge-1" || audio.Model != "eleven_multilingual_v2" {
			t.Errorf("character-cost %q: characters %d, request id %q; want %d, edge-1", cost, audio.Characters, audio.RequestID, want)
		}
	}
}

// A key scoped to text_to_speech cannot list models: the probe reports permission_denied
// unchanged (the health checker counts that as up), while calls work. A wrong key is still
// authentication.
func TestProbeWithAScopedKey(t *testing.T) {
	t.Parallel()
	b := setup(t, providertest.ElevenLabsOptions{Permissions: []string{"text_to_speech"}}, nil)
	err := b.client.Probe(context.Background())
	se := providertest.ServiceError(t, err)
	if se.Kind != fault.KindPermission || se.Status != 401 || se.Code != "missing_permissions" || fault.IsTransient(err) {
		t.Errorf("probe: %v %d %q transient=%v", se.Kind, se.Status, se.Code, fault.IsTransient(err))
	}
	if want := "The API key you used is missing the permission models_read to execute this operation. (request_id req-fake-1)"; err.Error() != want {
		t.Errorf("probe says %q, want %q", err.Error(), want)
	}
	if _, err := b.client.Synthesize(context.Background(), someone, "Hello"); err != nil {
		t.Errorf("a call with the scoped key: %v", err)
	}
	// An outage still shows through, and so does the recovery.
	b.fake.SetFault(providertest.ElevenLabsError(503, "", "Service temporarily unavailable"))
	if err := b.client.Probe(context.Background()); fault.KindOf(err) != fault.KindUnavailable || !fault.IsTransient(err) {
		t.Errorf("probe during an outage: %v", err)
	}
	b.fake.ClearFault()
	if k := fault.KindOf(b.client.Probe(context.Background())); k != fault.KindPermission {
		t.Errorf("probe after the outage: %v", k)
	}

	b = setup(t, providertest.ElevenLabsOptions{Permissions: []string{"models_read"}}, nil)
	if err := b.client.Probe(context.Background()); err != nil {
		t.Errorf("probe with models_read: %v", err)
	}
	_, err = b.client.Synthesize(context.Background(), someone, "Hello")
	if k := fault.KindOf(err); k != fault.KindPermission || fault.IsTransient(err) {
		t.Errorf("a call without text_to_speech: %v (%v)", k, err)
	}

	b = setup(t, providertest.ElevenLabsOptions{Permissions: []string{"text_to_speech"}},
		func(o *elevenlabs.Options) { o.APIKey = "sk_wrong_key_000000000000000000" })
	err = b.client.Probe(context.Background())
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindAuthentication || se.Code != "invalid_api_key" || fault.IsTransient(err) {
		t.Errorf("probe with a wrong key: %v %q", se.Kind, se.Code)
	}
}
