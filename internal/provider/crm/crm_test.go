package crm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/fault/faulttest"
	"github.com/callagent/resilience/internal/provider/crm"
	"github.com/callagent/resilience/internal/provider/providertest"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "crm-token-9f8e7d6c5b4a39281706"

var result = call.CallResult{
	ContactID:   "c-42",
	Status:      "completed",
	Script:      "Hello Ada, this is a courtesy call.",
	AudioRef:    "audio/c-42",
	AudioFormat: "mp3_44100_128",
	Providers:   map[string]string{"llm": "LLM", "tts": "ElevenLabs (fallback)"},
	StepMillis:  map[string]int64{"llm": 812, "tts": 1490},
	CompletedAt: time.Date(2026, 1, 30, 0, 17, 2, 0, time.UTC),
}

type bundle struct {
	fake   *providertest.CRM
	client *crm.Client
}

// setup starts a fake CRM and a client for it; edit adjusts the options, which already
// hold the fake's webhook URL (and its health URL when withHealth is set).
func setup(t *testing.T, withHealth bool, edit func(*crm.Options)) *bundle {
	t.Helper()
	fake := providertest.NewCRM(t, providertest.CRMOptions{Token: token})
	o := crm.Options{WebhookURL: fake.WebhookURL(), Token: secret.Secret(token), HTTP: providertest.HTTPClient(t, "test")}
	if withHealth {
		o.HealthURL = fake.HealthURL()
	}
	if edit != nil {
		edit(&o)
	}
	c, err := crm.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{fake: fake, client: c}
}

func TestRecordCallSendsTheResultWithItsIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := setup(t, false, nil)
	if err := b.client.RecordCall(context.Background(), result); err != nil {
		t.Fatal(err)
	}
	reqs := b.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/hooks/calls" || r.RawQuery != "" {
		t.Errorf("request line = %s %s?%s", r.Method, r.Path, r.RawQuery)
	}
	for k, want := range map[string]string{
		"Idempotency-Key": "c-42", "Content-Type": "application/json", "Authorization": "Bearer " + token,
		"User-Agent": "call-agent/test",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	want := `{"contact_id":"c-42","status":"completed","script":"Hello Ada, this is a courtesy call.",` +
		`"audio_ref":"audio/c-42","audio_format":"mp3_44100_128","providers":{"llm":"LLM","tts":"ElevenLabs (fallback)"},` +
		`"step_ms":{"llm":812,"tts":1490},"completed_at":"2026-01-30T00:17:02Z"}`
	if string(r.Body) != want {
		t.Errorf("body = %s\nwant   %s", r.Body, want)
	}
	if got := b.fake.Recorded(); len(got) != 1 || got[0].ContactID != "c-42" || got[0].Providers["tts"] != "ElevenLabs (fallback)" {
		t.Errorf("recorded = %+v", got)
	}
}

func TestEvery2xxIsSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t, false, nil)
	for _, status := range []int{200, 201, 202, 204} {
		b.fake.Enqueue(providertest.Reply{Status: status})
		if err := b.client.RecordCall(context.Background(), result); err != nil {
			t.Errorf("HTTP %d: %v", status, err)
		}
	}
}

// retryLoop runs RecordCall the way the pipeline's retry loop does, up to attempts times
// while the error is retryable, and returns the waits it would have taken (the provider's
// Retry-After, else 1ms: the schedule is not under test) and the last error.
func retryLoop(t *testing.T, c *crm.Client, attempts int) ([]time.Duration, error) {
	t.Helper()
	var waits []time.Duration
	for n := 1; ; n++ {
		err := c.RecordCall(context.Background(), result)
		if err == nil || n == attempts || !fault.Retryable(err, n) {
			return waits, err
		}
		waits = append(waits, max(fault.RetryAfterOf(err), time.Millisecond))
	}
}

// A 409 to a POST with an Idempotency-Key means a request with the same key is still in
// progress: retried with the same key, and the retry that meets the finished record succeeds.
func TestConflictIsInProgressAndRetriedWithTheSameKey(t *testing.T) {
	t.Parallel()
	b := setup(t, false, nil)
	b.fake.Enqueue(providertest.Reply{Status: http.StatusConflict,
		Header: http.Header{"Content-Type": {"application/json"}, "Retry-After": {"2"}, "X-Request-Id": {"req_7Hq2"}},
		Body:   `{"error":{"message":"A request with this Idempotency-Key is being processed"}}`})

	err := b.client.RecordCall(context.Background(), result)
	se := providertest.ServiceError(t, err)
	if se.Kind != fault.KindUnavailable || !fault.IsTransient(err) || se.Status != http.StatusConflict ||
		se.RetryAfter != 2*time.Second || se.RequestID != "req_7Hq2" ||
		se.Message != "A request with this Idempotency-Key is being processed" {
		t.Fatalf("409: %v %v HTTP %d, retry after %v, request id %q, message %q", se.Kind, fault.IsTransient(err),
			se.Status, se.RetryAfter, se.RequestID, se.Message)
	}
	if !strings.Contains(err.Error(), "req_7Hq2") {
		t.Errorf("the error does not show the request id: %v", err)
	}

	b.fake.Enqueue(providertest.Reply{Status: http.StatusConflict, Header: http.Header{"Retry-After": {"1"}}})
	waits, err := retryLoop(t, b.client, 3)
	if err != nil {
		t.Fatalf("after the key's first request finished: %v", err)
	}
	if len(waits) != 1 || waits[0] != time.Second {
		t.Errorf("waits = %v, want the Retry-After of the 409 (1s)", waits)
	}
	reqs := b.fake.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if k := r.Header.Get(crm.IdempotencyHeader); k != "c-42" || string(r.Body) != string(reqs[0].Body) {
			t.Errorf("request %d: Idempotency-Key %q, body %s", i, k, r.Body)
		}
	}
	if got := b.fake.Recorded(); len(got) != 1 || got[0].ContactID != "c-42" {
		t.Errorf("recorded = %+v", got)
	}
}

// A key that stays in progress is a transient failure on every attempt, never a success.
func TestConflictForeverIsTransient(t *testing.T) {
	t.Parallel()
	b := setup(t, false, nil)
	b.fake.SetFault(providertest.JSONReply(http.StatusConflict, `{"error":"request in progress"}`))
	waits, err := retryLoop(t, b.client, 4)
	se := providertest.ServiceError(t, err)
	if se.Kind != fault.KindUnavailable || !fault.IsTransient(err) || se.Message != "request in progress" {
		t.Errorf("after %d attempts: %v (%v)", len(waits)+1, err, se.Kind)
	}
	if n := b.fake.Calls(); n != 4 {
		t.Errorf("%d calls, want 4", n)
	}
	if got := b.fake.Recorded(); len(got) != 0 {
		t.Errorf("recorded = %+v", got)
	}
}

func TestRequestIDIsReported(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		header http.Header
		want   string
	}{
		"x-request-id":      {http.Header{"X-Request-Id": {" req_abc "}}, "req_abc"},
		"request-id":        {http.Header{"Request-Id": {"req_def"}}, "req_def"},
		"x-request-id wins": {http.Header{"X-Request-Id": {"req_x"}, "Request-Id": {"req_y"}}, "req_x"},
		"none":              {http.Header{}, ""},
		"too long":          {http.Header{"X-Request-Id": {strings.Repeat("r", 201)}}, ""},
		"token redacted":    {http.Header{"X-Request-Id": {token}}, redact.Placeholder},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, false, nil)
			b.fake.Enqueue(providertest.Reply{Status: 503, Header: tc.header})
			if se := providertest.ServiceError(t, b.client.RecordCall(context.Background(), result)); se.RequestID != tc.want {
				t.Errorf("RequestID = %q, want %q", se.RequestID, tc.want)
			}
		})
	}
}

func TestErrorsClassifyLikeTheSharedTable(t *testing.T) {
	t.Parallel()
	providertest.RunTable(t, "CRM", func(t *testing.T, tc faulttest.Case, rep providertest.Reply) {
		b := setup(t, false, nil)
		b.fake.Enqueue(rep)
		check := func(what string, err error) {
			se := providertest.ServiceError(t, err)
			if se.Kind != tc.Want || se.Provider != "CRM" || se.Status != tc.Facts.Status || se.RetryAfter != tc.Facts.RetryAfter {
				t.Errorf("%s: got %v %q HTTP %d %v, want %v CRM HTTP %d %v", what, se.Kind, se.Provider, se.Status, se.RetryAfter,
					tc.Want, tc.Facts.Status, tc.Facts.RetryAfter)
			}
		}
		check("RecordCall", b.client.RecordCall(context.Background(), result))

		h := setup(t, true, nil)
		h.fake.SetFault(rep)
		check("Probe", h.client.Probe(context.Background()))
	})
}

func TestErrorBodiesAndRetryAfter(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		reply      providertest.Reply
		kind       fault.Kind
		message    string
		retryAfter time.Duration
	}{
		"json message": {providertest.JSONReply(422, `{"message":"status is not allowed"}`), fault.KindInvalidPayload, "status is not allowed", 0},
		"error string": {providertest.JSONReply(400, `{"error":"bad contact"}`), fault.KindInvalidPayload, "bad contact", 0},
		"error object": {providertest.JSONReply(503, `{"error":{"message":"maintenance"}}`), fault.KindUnavailable, "maintenance", 0},
		"plain text":   {providertest.Reply{Status: 502, Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, Body: "upstream\ndown"}, fault.KindUnavailable, "upstream down", 0},
		"html":         {providertest.Reply{Status: 500, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<h1>oops</h1>"}, fault.KindUnavailable, "", 0},
		"429 retry":    {providertest.Reply{Status: 429, Header: http.Header{"Retry-After": {"3"}}}, fault.KindRateLimited, "", 3 * time.Second},
		"429 no retry": {providertest.Reply{Status: 429}, fault.KindRateLimited, "", 0},
		"huge body":    {providertest.Reply{Status: 500, Filler: 1 << 30}, fault.KindUnavailable, "", 0},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, false, nil)
			b.fake.Enqueue(tc.reply)
			start := time.Now()
			se := providertest.ServiceError(t, b.client.RecordCall(context.Background(), result))
			if se.Kind != tc.kind || se.Message != tc.message || se.RetryAfter != tc.retryAfter {
				t.Errorf("got %v %q %v, want %v %q %v", se.Kind, se.Message, se.RetryAfter, tc.kind, tc.message, tc.retryAfter)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestSecretsNeverAppearInErrors(t *testing.T) {
	t.Parallel()
	// The webhook URL carries a token in its path and query, like many hosted webhooks.
	var hook string
	b := setup(t, false, func(o *crm.Options) {
		o.WebhookURL += "?sig=whsec-0a1b2c3d4e5f6a7b8c9d"
		hook = o.WebhookURL
	})
	c := b.client
	b.fake.Enqueue(providertest.JSONReply(401, `{"error":"token `+token+` rejected for `+hook+`"}`))
	err := c.RecordCall(context.Background(), result)
	se := providertest.ServiceError(t, err)
	for _, leak := range []string{token, "whsec-0a1b2c3d4e5f6a7b8c9d"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q leaks %q", err, leak)
		}
	}
	if se.Kind != fault.KindAuthentication || !strings.Contains(se.Message, redact.Placeholder) {
		t.Errorf("got %v %q", se.Kind, se.Message)
	}

	// A transport error names the host only.
	c, err = crm.New(crm.Options{WebhookURL: "http://" + providertest.ClosedAddr(t) + "/hooks/catch/123/s3cr3tp4th/?sig=whsec-zz"})
	if err != nil {
		t.Fatal(err)
	}
	err = c.RecordCall(context.Background(), result)
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindNetwork || strings.Contains(err.Error(), "s3cr3tp4th") || strings.Contains(err.Error(), "whsec") {
		t.Errorf("transport error: %v (%v)", err, se.Kind)
	}
}

// A receiver that quotes the request (Fastify's default 404 names the route with its path
// and query; a request id header echoing the URI) must not show the webhook's tokens: the
// whole URL is not what it quotes. Fuzz crasher 2a4d5c930afcbb99.
func TestReceiverQuotingTheRequestURIDoesNotLeakTheWebhookTokens(t *testing.T) {
	t.Parallel()
	const (
		pathToken = "Pz8Kq2Wm5Xr9Tn3Vb7Lc1Yd6Hf"
		sig       = "Sg4Nd8Rt2Lp6Qw0Zx3Cv7Bm1Ka"
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uri := r.URL.RequestURI()
		w.Header().Set("Request-Id", uri)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = fmt.Fprintf(w, `{"message":"Route POST:%s not found","error":"Not Found","statusCode":404}`, uri)
	}))
	t.Cleanup(srv.Close)
	hc := providertest.HTTPClient(t, "test")
	for _, hook := range []string{
		srv.URL + "/hooks/catch/123/" + pathToken + "/?sig=" + sig,
		strings.Replace(srv.URL, "http://", "HTTP://", 1) + "/hooks/catch/123/" + pathToken + "/?sig=" + sig,
	} {
		c, err := crm.New(crm.Options{WebhookURL: hook, Token: secret.Secret(token), HTTP: hc})
		if err != nil {
			t.Fatal(err)
		}
		err = c.RecordCall(context.Background(), result)
		se := providertest.ServiceError(t, err)
		for _, leak := range []string{pathToken, sig, pathToken[:12], sig[:12]} {
			if strings.Contains(err.Error(), leak) || strings.Contains(se.RequestID, leak) {
				t.Errorf("%s: error %q (request id %q) leaks %q", hook, err, se.RequestID, leak)
			}
		}
		if !strings.Contains(se.Message, redact.Placeholder) {
			t.Errorf("%s: message %q, want the route redacted", hook, se.Message)
		}
	}
}

func TestSlowResponseHonoursTheTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, false, func(o *crm.Options) { o.Timeout = 100 * time.Millisecond })
	b.fake.Enqueue(providertest.Reply{Hang: true})
	start := time.Now()
	err := b.client.RecordCall(context.Background(), result)
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindTimeout {
		t.Errorf("kind = %v (%v)", se.Kind, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("returned after %v", d)
	}
}

func TestProbe(t *testing.T) {
	t.Parallel()
	b := setup(t, false, nil)
	if err := b.client.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(b.fake.Requests()); n != 0 {
		t.Errorf("probe without CRM_HEALTH_URL sent %d requests", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.client.Probe(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("probe with a cancelled context: %v", err)
	}

	h := setup(t, true, nil)
	if err := h.client.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := h.fake.Requests()[0]
	if r.Method != http.MethodGet || r.Path != "/health" || !r.Probe || r.Header.Get("Authorization") != "Bearer "+token {
		t.Errorf("probe = %s %s", r.Method, r.Path)
	}
}

func TestRefusesAResultWithoutContactID(t *testing.T) {
	t.Parallel()
	b := setup(t, false, nil)
	err := b.client.RecordCall(context.Background(), call.CallResult{Status: "completed"})
	if se := providertest.ServiceError(t, err); se.Kind != fault.KindInvalidPayload || !errors.Is(err, crm.ErrNoContactID) {
		t.Errorf("err = %v", err)
	}
	if n := b.fake.Calls(); n != 0 {
		t.Errorf("%d calls made", n)
	}
}

func TestNewNamesTheBadSettings(t *testing.T) {
	t.Parallel()
	_, err := crm.New(crm.Options{})
	if want := "WebhookURL is required to record calls in the CRM"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	_, err = crm.New(crm.Options{WebhookURL: "hooks.example.com/x?token=abc", HealthURL: "https://u:p@crm/health", Timeout: -time.Second})
	want := "WebhookURL must be an absolute http:// or https:// URL with a host\n" +
		"HealthURL must not contain credentials (user:password@)\n" +
		"Timeout is -1s, must not be negative"
	if err == nil || err.Error() != want {
		t.Errorf("err =\n%v\nwant\n%s", err, want)
	}
	if strings.Contains(err.Error(), "abc") {
		t.Error("the webhook URL's token is in the error")
	}
}
