package webhook_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/webhook"
	"github.com/callagent/resilience/internal/fault"
	sec "github.com/callagent/resilience/internal/secret"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// specSecret is the Standard Webhooks test vector's secret.
const specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestSignMatchesTheSpecVector(t *testing.T) {
	t.Parallel()
	key, err := webhook.DecodeSecret(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	got := webhook.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	h := http.Header{}
	h.Set(webhook.HeaderID, "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set(webhook.HeaderTimestamp, "1614265330")
	h.Set(webhook.HeaderSignature, "v1,bm9wZQ== "+got) // several signatures: one matches
	if err := webhook.Verify(specSecret, h, []byte(`{"test": 2432232314}`), time.Unix(1614265330, 0), 0); err != nil {
		t.Fatalf("Verify of the spec vector: %v", err)
	}
}

func notification() alert.Notification {
	return alert.Notification{ID: "evt_1-opened", Type: alert.TypeOpened, Kind: alert.KindBreakerOpened,
		Severity: alert.SeverityCritical, Provider: "ElevenLabs", DedupKey: "elevenlabs.down",
		Title: "Circuit breaker OPENED for ElevenLabs", Message: "calls fail fast", Time: time.Unix(1700000000, 0).UTC()}
}

func TestNotifyIsSignedAndVerifiable(t *testing.T) {
	t.Parallel()
	srv := alerttest.NewRecorder(t)
	srv.Respond(func(r alerttest.Request) alerttest.Reply {
		if err := webhook.Verify(specSecret, r.Header, r.Body, time.Now(), 0); err != nil {
			return alerttest.Reply{Status: http.StatusUnauthorized, Body: err.Error()}
		}
		return alerttest.Reply{Status: http.StatusNoContent}
	})
	now := time.Now()
	w, err := webhook.New(webhook.Options{URL: srv.URL + "/hooks/alerts", Secret: specSecret, Client: alerttest.HTTPClient(t),
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	n := notification()
	if retry, err := w.Notify(context.Background(), n); err != nil {
		t.Fatalf("Notify = %v, %v", retry, err)
	}
	now = now.Add(3 * time.Second) // the retry of the same notification, a little later
	if _, err := w.Notify(context.Background(), n); err != nil {
		t.Fatalf("second Notify: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	for _, r := range reqs {
		if r.Method != http.MethodPost || r.Path != "/hooks/alerts" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request: %s %s %v", r.Method, r.Path, r.Header)
		}
		if r.Header.Get(webhook.HeaderID) != n.ID {
			t.Errorf("webhook-id = %q, want the notification id %q on every try", r.Header.Get(webhook.HeaderID), n.ID)
		}
		var got webhook.Event
		if err := json.Unmarshal(r.Body, &got); err != nil || got.Type != "alert.breaker_opened.opened" ||
			got.Timestamp != "2023-11-14T22:13:20Z" || got.Data.Title != n.Title || got.Data.DedupKey != n.DedupKey || got.Data.ID != n.ID {
			t.Errorf("body: %s (%v)", r.Body, err)
		}
		alerttest.AssertNoSecrets(t, "webhook body", r.Body, specSecret, strings.TrimPrefix(specSecret, "whsec_"))
		alerttest.AssertNoSecretsInHeader(t, "webhook", r.Header, specSecret, strings.TrimPrefix(specSecret, "whsec_"))
	}
	t0, _ := strconv.ParseInt(reqs[0].Header.Get(webhook.HeaderTimestamp), 10, 64)
	t1, _ := strconv.ParseInt(reqs[1].Header.Get(webhook.HeaderTimestamp), 10, 64)
	if t1-t0 != 3 || reqs[0].Header.Get(webhook.HeaderSignature) == reqs[1].Header.Get(webhook.HeaderSignature) {
		t.Errorf("retries must carry a fresh timestamp and signature: %d→%d", t0, t1)
	}
}

func TestNotifyRetryTable(t *testing.T) {
	t.Parallel()
	srv := alerttest.NewRecorder(t)
	w, err := webhook.New(webhook.Options{URL: srv.URL, Secret: specSecret, Client: alerttest.HTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range alerttest.RetryCases() {
		srv.Respond(func(alerttest.Request) alerttest.Reply {
			return alerttest.Reply{Status: c.Status, Header: c.Header, Body: `{"error":"nope"}`}
		})
		retry, err := w.Notify(context.Background(), notification())
		c.Check(t, retry, err)
	}
}

// receiverAnswers are what Standard Webhooks receivers answer, and what the operator reads.
func receiverAnswers() []alerttest.RetryCase {
	return []alerttest.RetryCase{
		{Name: "gone", Status: 410, Body: "Gone", WantErr: true, WantRetry: true, WantKind: fault.KindConfiguration,
			WantText: []string{"Webhook answered HTTP 410", "asks for no more webhooks", "WEBHOOK_ENABLED=false", "WEBHOOK_URL"}},
		{Name: "bad signature", Status: 401, Body: `{"error":"invalid signature"}`, WantErr: true, WantRetry: true,
			WantKind: fault.KindAuthentication, WantText: []string{"HTTP 401", "invalid signature", "WEBHOOK_SECRET"}},
		{Name: "no such endpoint", Status: 404, Body: "404 page not found", WantErr: true, WantRetry: true,
			WantKind: fault.KindConfiguration, WantText: []string{"HTTP 404", "check WEBHOOK_URL"}},
		{Name: "throttled", Status: 429, Header: http.Header{"Retry-After": {"12"}}, WantErr: true, WantRetry: true,
			WantKind: fault.KindRateLimited, WantRetryAfter: 12 * time.Second},
		{Name: "overloaded", Status: 503, Header: http.Header{"Retry-After": {"5"}}, WantErr: true, WantRetry: true,
			WantKind: fault.KindUnavailable, WantRetryAfter: 5 * time.Second},
		{Name: "too large", Status: 413, WantErr: true, WantRetry: false, WantKind: fault.KindInvalidPayload},
		{Name: "accepted", Status: 202},
	}
}

// TestNotifyReceiverAnswers replays receivers' answers: 410 Gone keeps the notification
// queued as a configuration error that tells the operator to disable the channel or fix the
// URL; nothing the receiver echoes shows the secret or the URL's path.
func TestNotifyReceiverAnswers(t *testing.T) {
	t.Parallel()
	srv := alerttest.NewRecorder(t)
	w, err := webhook.New(webhook.Options{URL: srv.URL + "/in/t0ken-in-path?key=qu3ry-secret", Secret: specSecret, Client: alerttest.HTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range receiverAnswers() {
		srv.Respond(func(r alerttest.Request) alerttest.Reply {
			reply := c.Reply()
			if c.Status/100 != 2 { // a careless receiver echoing the request
				reply.Body += " for " + r.Path + "?" + r.Query + " signed " + r.Header.Get(webhook.HeaderSignature)
			}
			return reply
		})
		retry, err := w.Notify(context.Background(), notification())
		c.Check(t, retry, err)
		if err != nil {
			alerttest.AssertNoSecrets(t, c.Name+" error", []byte(err.Error()), specSecret,
				strings.TrimPrefix(specSecret, "whsec_"), "t0ken-in-path", "qu3ry-secret")
		}
	}
}

func TestNotifyDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	srv, other := alerttest.NewRecorder(t), alerttest.NewRecorder(t)
	c := alerttest.RedirectCase(other.URL)
	srv.Respond(func(alerttest.Request) alerttest.Reply { return c.Reply() })
	w, err := webhook.New(webhook.Options{URL: srv.URL + "/alerts", Secret: specSecret, Client: alerttest.HTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := w.Notify(context.Background(), notification())
	c.Check(t, retry, err)
	if n := len(other.Requests()); n != 0 {
		t.Errorf("the redirect was followed: the other host got %d requests", n)
	}
}

// TestOfficialLibraryVerifies checks our signatures with the Standard Webhooks Go library,
// as a receiver would: each request, a retry's fresh timestamp, and a secret of each allowed
// length.
func TestOfficialLibraryVerifies(t *testing.T) {
	t.Parallel()
	for _, size := range []int{webhook.MinKeyLen, 32, webhook.MaxKeyLen} {
		key := make([]byte, size)
		for i := range key {
			key[i] = byte(i*37 + size)
		}
		secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
		receiver, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		srv := alerttest.NewRecorder(t)
		srv.Respond(func(r alerttest.Request) alerttest.Reply {
			if err := receiver.Verify(r.Body, r.Header); err != nil {
				return alerttest.Reply{Status: http.StatusUnauthorized, Body: err.Error()}
			}
			return alerttest.Reply{Status: http.StatusNoContent}
		})
		w, err := webhook.New(webhook.Options{URL: srv.URL + "/alerts", Secret: sec.Secret(secret), Client: alerttest.HTTPClient(t)})
		if err != nil {
			t.Fatalf("%d-byte key: %v", size, err)
		}
		n := notification()
		for range 2 {
			if retry, err := w.Notify(context.Background(), n); err != nil {
				t.Fatalf("%d-byte key: the library refused our signature: %v, %v", size, retry, err)
			}
		}
		for _, r := range srv.Requests() {
			var ev struct {
				Type      string          `json:"type"`
				Timestamp time.Time       `json:"timestamp"`
				Data      json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(r.Body, &ev); err != nil || ev.Type == "" || !ev.Timestamp.Equal(n.Time) || len(ev.Data) == 0 {
				t.Errorf("%d-byte key: body %s is not a Standard Webhooks event (%v)", size, r.Body, err)
			}
		}
	}
}

func TestEventType(t *testing.T) {
	t.Parallel()
	for want, n := range map[string]alert.Notification{
		"alert.breaker_opened.opened":   {Kind: alert.KindBreakerOpened, Type: alert.TypeOpened},
		"alert.breaker_opened.resolved": {Kind: alert.KindBreakerOpened, Type: alert.TypeResolved},
		"alert.service_down.escalated":  {Kind: alert.KindServiceDown, Type: alert.TypeEscalated},
		"alert.call_failed.summary":     {Kind: alert.KindCallFailed, Type: alert.TypeSummary},
		"alert.summary":                 {Type: alert.TypeSummary},
		"alert.odd_kind_.alert":         {Kind: "odd.kind!", Type: alert.TypeAlert},
	} {
		if got := webhook.EventType(n); got != want {
			t.Errorf("EventType(%s, %s) = %q, want %q", n.Kind, n.Type, got, want)
		}
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 500, time.UTC)
	if ev := webhook.NewEvent(alert.Notification{Type: alert.TypeAlert}, now); ev.Timestamp != "2026-05-01T12:00:00.0000005Z" {
		t.Errorf("a notification without a time: timestamp %q, want now", ev.Timestamp)
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	key, _ := webhook.DecodeSecret(specSecret)
	body := []byte(`{"a":1}`)
	now := time.Unix(1700000000, 0)
	signed := func() http.Header {
		h := http.Header{}
		h.Set(webhook.HeaderID, "msg_1")
		h.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		h.Set(webhook.HeaderSignature, webhook.Sign(key, "msg_1", now.Unix(), body))
		return h
	}
	if err := webhook.Verify(specSecret, signed(), body, now, 0); err != nil {
		t.Fatalf("valid: %v", err)
	}
	other := "whsec_" + strings.Repeat("QUJD", 8)
	cases := []struct {
		name   string
		secret string
		h      func() http.Header
		body   []byte
		now    time.Time
		want   error
	}{
		{"wrong secret", other, signed, body, now, webhook.ErrSignature},
		{"tampered body", specSecret, signed, []byte(`{"a":2}`), now, webhook.ErrSignature},
		{"old", specSecret, signed, body, now.Add(6 * time.Minute), webhook.ErrTimestamp},
		{"future", specSecret, signed, body, now.Add(-6 * time.Minute), webhook.ErrTimestamp},
		{"no id", specSecret, func() http.Header { h := signed(); h.Del(webhook.HeaderID); return h }, body, now, webhook.ErrMissingHeaders},
		{"other id", specSecret, func() http.Header { h := signed(); h.Set(webhook.HeaderID, "msg_2"); return h }, body, now, webhook.ErrSignature},
	}
	for _, c := range cases {
		if err := webhook.Verify(c.secret, c.h(), c.body, c.now, 0); !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

// TestNewValidates: WEBHOOK_SECRET must be exactly what the specification serializes:
// "whsec_" and the padded standard base64 of 24 to 64 bytes. Each error names the setting
// and the problem, and never the secret.
func TestNewValidates(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", n))) }
	cases := []struct {
		name, want string
		o          webhook.Options
	}{
		{"bad URL", "URL must be", webhook.Options{URL: "ftp://example.com", Secret: specSecret}},
		{"no prefix", "Secret must be whsec_ followed by the standard base64 of a 24 to 64 byte key; it does not start with whsec_",
			webhook.Options{URL: "https://example.com", Secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		{"other prefix", "does not start with whsec_", webhook.Options{URL: "https://example.com", Secret: sec.Secret("whsk_" + b64(32))}},
		{"nothing after the prefix", "nothing follows whsec_", webhook.Options{URL: "https://example.com", Secret: "whsec_"}},
		{"not base64", "is not standard padded base64", webhook.Options{URL: "https://example.com", Secret: "whsec_***"}},
		{"URL-safe base64", "is not standard padded base64", webhook.Options{URL: "https://example.com",
			Secret: sec.Secret("whsec_" + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xfb\xff", 16))))}},
		{"unpadded", "is not standard padded base64", webhook.Options{URL: "https://example.com",
			Secret: sec.Secret("whsec_" + base64.RawStdEncoding.EncodeToString([]byte(strings.Repeat("k", 25))))}},
		{"line break", "is not standard padded base64", webhook.Options{URL: "https://example.com",
			Secret: sec.Secret("whsec_" + b64(24)[:16] + "\n" + b64(24)[16:])}},
		{"too short", "the key is 16 bytes", webhook.Options{URL: "https://example.com", Secret: sec.Secret("whsec_" + b64(16))}},
		{"too long", "the key is 65 bytes", webhook.Options{URL: "https://example.com", Secret: sec.Secret("whsec_" + b64(65))}},
	}
	for _, c := range cases {
		_, err := webhook.New(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New = %v, want %q", c.name, err, c.want)
			continue
		}
		if secret := c.o.Secret.Reveal(); strings.TrimPrefix(secret, "whsec_") != "" {
			alerttest.AssertNoSecrets(t, c.name+" error", []byte(err.Error()), secret, strings.TrimPrefix(secret, "whsec_"))
		}
	}
	for _, n := range []int{webhook.MinKeyLen, 25, 26, webhook.MaxKeyLen} { // every padding
		if _, err := webhook.New(webhook.Options{URL: "https://example.com", Secret: sec.Secret(" whsec_" + b64(n) + "\n")}); err != nil {
			t.Errorf("a %d-byte key: %v", n, err)
		}
	}
}

// An answer quoting the request must not show the tokens of WEBHOOK_URL, whatever the case
// of the URL's scheme and with user info in it (trimming the URL's origin off it failed on
// both).
func TestErrorsHideTheURLsTokens(t *testing.T) {
	t.Parallel()
	const pathToken, sig = "Pq7Wm2Xr9Tn3Vb7Lc1Yd6Hf0", "Sg4Nd8Rt2Lp6Qw0Zx3Cv7Bm1"
	srv := alerttest.NewRecorder(t)
	srv.Respond(func(r alerttest.Request) alerttest.Reply {
		return alerttest.Reply{Status: 404, Body: `{"message":"Route POST:` + r.Path + "?" + r.Query + ` not found"}`}
	})
	host := strings.TrimPrefix(srv.URL, "http://")
	alerttest.AssertURLsHidden(t, []string{
		"HTTP://" + host + "/hooks/" + pathToken + "?sig=" + sig,
		"http://ops@" + host + "/hooks/" + pathToken + "?sig=" + sig,
	}, func(raw string) (bool, error) {
		w, err := webhook.New(webhook.Options{URL: raw, Secret: specSecret, Client: alerttest.HTTPClient(t)})
		if err != nil {
			return false, err
		}
		_, err = w.Notify(context.Background(), notification())
		return true, err
	}, pathToken, sig)
}
