package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/webhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// specSecret is the Standard Webhooks test vector's secret.
const specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestSignMatchesTheSpecVector(t *testing.T) {
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
	srv := alerttest.NewRecorder(t)
	srv.Respond(func(r alerttest.Request) alerttest.Reply {
		if err := webhook.Verify(specSecret, r.Header, r.Body, time.Now(), 0); err != nil {
			return alerttest.Reply{Status: http.StatusUnauthorized, Body: err.Error()}
		}
		return alerttest.Reply{Status: http.StatusNoContent}
	})
	now := time.Now()
	w, err := webhook.New(webhook.Options{URL: srv.URL + "/hooks/alerts", Secret: specSecret, Client: srv.Client(),
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
		var got alert.Notification
		if err := json.Unmarshal(r.Body, &got); err != nil || got.Title != n.Title || got.DedupKey != n.DedupKey {
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
	srv := alerttest.NewRecorder(t)
	w, err := webhook.New(webhook.Options{URL: srv.URL, Secret: specSecret, Client: srv.Client()})
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

func TestVerifyRejects(t *testing.T) {
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

func TestNewValidates(t *testing.T) {
	cases := map[string]webhook.Options{
		"WEBHOOK_URL must be":            {URL: "ftp://example.com", Secret: specSecret},
		"WEBHOOK_SECRET: must be whsec_": {URL: "https://example.com", Secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		"want at least 16":               {URL: "https://example.com", Secret: "whsec_c2hvcnQ="},
		"is not base64":                  {URL: "https://example.com", Secret: "whsec_***"},
	}
	for want, o := range cases {
		_, err := webhook.New(o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: New = %v", want, err)
		}
		if err != nil && strings.Contains(err.Error(), o.Secret.Reveal()) {
			t.Errorf("%s: the error shows the secret", want)
		}
	}
}
