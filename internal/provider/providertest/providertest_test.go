package providertest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/provider/providertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a testing.TB that keeps Errorf messages instead of failing, so the fakes'
// own checks can be tested.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// client closes its idle connections when the test ends.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

type call struct {
	method, url, body string
	header            map[string]string
}

func do(t *testing.T, hc *http.Client, c call) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, c.url, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "call-agent/test")
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestElevenLabsFakeChecksTheContract(t *testing.T) {
	t.Parallel()
	const key = "xi-key-1234"
	json := map[string]string{"xi-api-key": key, "Content-Type": "application/json"}
	for name, tc := range map[string]struct {
		call       call
		status     int
		violations int
	}{
		"valid":            {call{"POST", "/v1/text-to-speech/voice-1?output_format=mp3_44100_128", `{"text":"Hi","model_id":"eleven_flash_v2_5"}`, json}, 200, 0},
		"null field":       {call{"POST", "/v1/text-to-speech/voice-1?output_format=mp3_44100_128", `{"text":"Hi","voice_settings":null}`, json}, 422, 1},
		"nested null":      {call{"POST", "/v1/text-to-speech/voice-1?output_format=mp3_44100_128", `{"text":"Hi","voice_settings":{"stability":null}}`, json}, 422, 1},
		"unknown field":    {call{"POST", "/v1/text-to-speech/voice-1?output_format=mp3_44100_128", `{"text":"Hi","pitch":2}`, json}, 422, 1},
		"extra query":      {call{"POST", "/v1/text-to-speech/voice-1?output_format=mp3_44100_128&x=1", `{"text":"Hi"}`, json}, 422, 1},
		"empty text":       {call{"POST", "/v1/text-to-speech/voice-1?output_format=mp3_44100_128", `{"text":" "}`, json}, 422, 1},
		"wrong path":       {call{"POST", "/v2/tts", `{"text":"Hi"}`, json}, 404, 1},
		"no key":           {call{"POST", "/v1/text-to-speech/voice-1?output_format=mp3_44100_128", `{"text":"Hi"}`, map[string]string{"Content-Type": "application/json"}}, 401, 0},
		"unknown voice":    {call{"POST", "/v1/text-to-speech/nobody?output_format=mp3_44100_128", `{"text":"Hi"}`, json}, 404, 0},
		"unknown model":    {call{"POST", "/v1/text-to-speech/voice-1?output_format=mp3_44100_128", `{"text":"Hi","model_id":"x"}`, json}, 400, 0},
		"not json content": {call{"POST", "/v1/text-to-speech/voice-1?output_format=mp3_44100_128", `{"text":"Hi"}`, map[string]string{"xi-api-key": key}}, 200, 1},
		"probe":            {call{"GET", "/v1/models", "", map[string]string{"xi-api-key": key}}, 200, 0},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			fake := providertest.NewElevenLabs(rec, providertest.ElevenLabsOptions{APIKey: key})
			tc.call.url = fake.URL() + tc.call.url
			status, _, body := do(t, client(t), tc.call)
			if status != tc.status || len(rec.errors()) != tc.violations {
				t.Errorf("status %d (%s), violations %q; want %d, %d", status, body, rec.errors(), tc.status, tc.violations)
			}
		})
	}
}

func TestElevenLabsFakeReportsConcurrency(t *testing.T) {
	t.Parallel()
	fake := providertest.NewElevenLabs(t, providertest.ElevenLabsOptions{APIKey: "k1234", MaxConcurrent: 1})
	fake.Enqueue(providertest.Reply{Stall: true, Header: http.Header{"Content-Type": {"audio/mpeg"}}})
	hc := client(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stalled := make(chan error, 1)
	headers := make(chan struct{}) // the first call is in flight: its handler sent headers and stalls
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", fake.URL()+"/v1/text-to-speech/voice-1?output_format=mp3_44100_128",
			strings.NewReader(`{"text":"a"}`))
		req.Header.Set("xi-api-key", "k1234")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "call-agent/test")
		resp, err := hc.Do(req)
		close(headers)
		if err == nil {
			_, err = io.ReadAll(resp.Body) // blocks until cancel
			resp.Body.Close()
		}
		stalled <- err
	}()
	// Counting calls is not enough: a call is counted before it is in flight, and a second
	// call racing in between would take the stalled reply.
	select {
	case <-headers:
	case <-time.After(10 * time.Second):
		t.Fatal("the first call never answered its headers")
	}
	status, h, body := do(t, hc, call{"POST", fake.URL() + "/v1/text-to-speech/voice-1?output_format=mp3_44100_128", `{"text":"b"}`,
		map[string]string{"xi-api-key": "k1234", "Content-Type": "application/json"}})
	if status != 429 || !strings.Contains(body, `"concurrent_limit_exceeded"`) || h.Get("maximum-concurrent-requests") != "1" {
		t.Errorf("second call in flight: %d %s %v", status, body, h)
	}
	cancel()
	if err := <-stalled; err == nil {
		t.Error("the stalled body finished")
	}
}

func TestOpenAIFakeChecksTheContract(t *testing.T) {
	t.Parallel()
	const key = "sk-test-1234"
	auth := map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}
	for name, tc := range map[string]struct {
		call       call
		status     int
		violations int
		contains   string
	}{
		"chat":           {call{"POST", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5}`, auth}, 200, 0, `"usage":{"completion_tokens":17,"prompt_tokens":42,"total_tokens":59}`},
		"chat null":      {call{"POST", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":null}]}`, auth}, 400, 1, ""},
		"chat unknown":   {call{"POST", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true}`, auth}, 400, 1, ""},
		"chat bad role":  {call{"POST", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"robot","content":"hi"}]}`, auth}, 200, 1, ""},
		"chat model":     {call{"POST", "/v1/chat/completions", `{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}`, auth}, 404, 0, `"code":"model_not_found"`},
		"wrong key":      {call{"POST", "/v1/chat/completions", `{}`, map[string]string{"Authorization": "Bearer nope", "Content-Type": "application/json"}}, 401, 0, `"code":"invalid_api_key"`},
		"no key":         {call{"GET", "/v1/models", ``, nil}, 401, 0, `"code":null`},
		"speech":         {call{"POST", "/v1/audio/speech", `{"model":"gpt-4o-mini-tts","input":"hi","voice":"alloy","response_format":"mp3"}`, auth}, 200, 0, ""},
		"speech voice":   {call{"POST", "/v1/audio/speech", `{"model":"gpt-4o-mini-tts","input":"hi","voice":"echo","response_format":"mp3"}`, auth}, 200, 1, ""},
		"models":         {call{"GET", "/v1/models", ``, map[string]string{"Authorization": "Bearer " + key}}, 200, 0, `"object":"list"`},
		"unknown path":   {call{"GET", "/v1/engines", ``, map[string]string{"Authorization": "Bearer " + key}}, 404, 1, ""},
		"missing prefix": {call{"POST", "/chat/completions", `{}`, auth}, 404, 1, ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			fake := providertest.NewOpenAI(rec, providertest.OpenAIOptions{APIKey: key})
			tc.call.url = fake.URL() + tc.call.url
			status, _, body := do(t, client(t), tc.call)
			if status != tc.status || len(rec.errors()) != tc.violations || !strings.Contains(body, tc.contains) {
				t.Errorf("status %d (%s), violations %q; want %d, %d, body with %s", status, body, rec.errors(), tc.status, tc.violations, tc.contains)
			}
		})
	}
}

func TestCRMFakeIsIdempotent(t *testing.T) {
	t.Parallel()
	rec := &recorder{TB: t}
	fake := providertest.NewCRM(rec, providertest.CRMOptions{})
	hc := client(t)
	body := `{"contact_id":"c1","status":"completed","script":"s","providers":{},"step_ms":{},"completed_at":"2026-01-01T00:00:00Z"}`
	h := map[string]string{"Content-Type": "application/json", "Idempotency-Key": "c1"}
	for i, want := range []int{201, 201} {
		if status, _, b := do(t, hc, call{"POST", fake.WebhookURL(), body, h}); status != want {
			t.Errorf("post %d: %d %s, want %d", i+1, status, b, want)
		}
	}
	if n := len(fake.Recorded()); n != 1 {
		t.Errorf("a repeated key was stored %d times, want once", n)
	}
	if status, _, _ := do(t, hc, call{"POST", fake.WebhookURL(), body, map[string]string{"Content-Type": "application/json", "Idempotency-Key": "c2"}}); status != 400 {
		t.Errorf("mismatched key: %d", status)
	}
	if status, _, _ := do(t, hc, call{"GET", fake.HealthURL(), "", nil}); status != 200 {
		t.Errorf("health: %d", status)
	}
	if n := len(fake.Recorded()); n != 1 || len(rec.errors()) != 1 || fake.Calls() != 3 || fake.Probes() != 1 {
		t.Errorf("recorded %d, violations %q, calls %d, probes %d", n, rec.errors(), fake.Calls(), fake.Probes())
	}
}

func TestScriptedRepliesAndForbiddenValues(t *testing.T) {
	t.Parallel()
	rec := &recorder{TB: t}
	fake := providertest.NewCRM(rec, providertest.CRMOptions{})
	fake.Forbid("+14155550123")
	hc := client(t)
	body := `{"contact_id":"c1","status":"completed","script":"call +14155550123","providers":{},"step_ms":{},"completed_at":"2026-01-01T00:00:00Z"}`
	h := map[string]string{"Content-Type": "application/json", "Idempotency-Key": "c1"}

	fake.Enqueue(providertest.JSONReply(503, `{"error":"down"}`))
	fake.SetFault(providertest.Reply{Status: 502})
	if status, _, _ := do(t, hc, call{"GET", fake.HealthURL(), "", nil}); status != 502 {
		t.Errorf("probe during the fault: %d", status)
	}
	if status, _, _ := do(t, hc, call{"POST", fake.WebhookURL(), body, h}); status != 502 {
		t.Errorf("call during the fault: %d", status)
	}
	fake.ClearFault()
	if status, _, _ := do(t, hc, call{"GET", fake.HealthURL(), "", nil}); status != 200 {
		t.Errorf("probes do not take queued replies: %d", status)
	}
	if status, _, b := do(t, hc, call{"POST", fake.WebhookURL(), body, h}); status != 503 || b != `{"error":"down"}` {
		t.Errorf("queued reply: %d %s", status, b)
	}
	if status, _, _ := do(t, hc, call{"POST", fake.WebhookURL(), body, h}); status != 201 {
		t.Errorf("after the script: %d", status)
	}
	// Three posts carried the phone number.
	if errs := rec.errors(); len(errs) != 3 || !strings.Contains(errs[0], "forbidden value") {
		t.Errorf("violations = %q", errs)
	}
}

func TestFillerStreamsWithoutBuffering(t *testing.T) {
	t.Parallel()
	fake := providertest.NewCRM(t, providertest.CRMOptions{})
	fake.SetFault(providertest.Reply{Filler: 1 << 30})
	req, err := http.NewRequest(http.MethodGet, fake.HealthURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "call-agent/test")
	resp, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.CopyN(io.Discard, resp.Body, 4<<20)
	resp.Body.Close()
	if err != nil || n != 4<<20 {
		t.Errorf("read %d: %v", n, err)
	}
	if resp.ContentLength != -1 {
		t.Errorf("Content-Length = %d, want unknown (streamed)", resp.ContentLength)
	}
}
