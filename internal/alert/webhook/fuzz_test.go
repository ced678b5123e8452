package webhook_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/webhook"
	"github.com/callagent/resilience/internal/secret"
)

// The webhook's credentials in the fuzz target: the signing secret, and a URL with a token
// in its path and another in its query.
const (
	fuzzSecret    = "whsec_Qm9vYXJ0Zm9yZXZlcnlvbmVoZXJlaXNhc2VjcmV0"
	fuzzPathToken = "Tk7Pw2Xz9Lq4Vr8Mn3Bc6Hd1"
	fuzzQueryTok  = "Qy5Jd8Ks2Wn7Fp1Rt4Gv9Lx3"
	fuzzHook      = "/hooks/" + fuzzPathToken + "?token=" + fuzzQueryTok
)

// FuzzNotifyAnswer posts a signed event to a receiver that answers with a fuzzed status,
// body and Retry-After. Where the body holds \x01 the server puts the request URI (path and
// query), \x02 the signing secret, \x03 the webhook-signature it received, as a receiver
// that quotes the request (or its own configuration) would. Whatever the answer,
// alerttest.AnswerFuzz.Check's invariants hold — the error message is at most 500
// characters: "Webhook answered HTTP 410: " (27), the detail (300), the fix (at most about
// 130); neither the secret, nor its key, nor the URL's path or query tokens show — and a 410
// waits for the operator.
func FuzzNotifyAnswer(f *testing.F) {
	for _, s := range []struct {
		status   int
		body, ra string
	}{
		{200, "", ""},
		{204, "", ""},
		{400, `{"error":"invalid payload"}`, ""},
		{401, `{"error":"signature \x03 does not match"}`, ""},
		{401, "bad secret \x02", ""},
		{404, "Cannot POST \x01", ""},
		{404, `{"message":"Route POST:\x01 not found","error":"Not Found","statusCode":404}`, ""},
		{410, "gone", ""},
		{413, strings.Repeat("too large ", 100), ""},
		{429, "slow down", "120"},
		{500, "<html><body>Internal Server Error</body></html>", ""},
		{503, "", "Wed, 21 Oct 2015 07:28:00 GMT"},
		{308, "", ""},
	} {
		f.Add(s.status, s.body, s.ra)
	}

	h := alerttest.NewAnswerFuzz(f, alerttest.AnswerFuzzOptions{
		Channel: webhook.Name,
		Marks: func(r *http.Request, _ []byte) []string {
			return []string{r.URL.RequestURI(), fuzzSecret, r.Header.Get(webhook.HeaderSignature)}
		},
		MaxErrorLen: 500,
		Secrets:     []string{fuzzSecret, strings.TrimPrefix(fuzzSecret, "whsec_"), fuzzPathToken, fuzzQueryTok},
		Retryable:   alert.RetryableKind,
	})
	wh, err := webhook.New(webhook.Options{URL: h.URL + fuzzHook, Secret: secret.Secret(fuzzSecret), Client: alerttest.HTTPClient(f)})
	if err != nil {
		f.Fatal(err)
	}
	n := alert.Notification{ID: "evt_1-resolved", Type: alert.TypeResolved, Kind: alert.KindBreakerOpened, Severity: alert.SeverityCritical,
		Provider: "ElevenLabs", DedupKey: "elevenlabs.down", Title: "RESOLVED: Circuit breaker OPENED for ElevenLabs after 2m0s",
		Message: "ElevenLabs answers again", Time: time.Unix(1767225600, 0), DurationSeconds: 120}

	f.Fuzz(func(t *testing.T, status int, body, ra string) {
		status = alerttest.FuzzStatus(status)
		fl := h.Check(t, status, body, ra, func(ctx context.Context) (bool, error) { return wh.Notify(ctx, n) })
		if fl != nil && status == http.StatusGone && !fl.Retry {
			t.Fatalf("HTTP 410 given up (kind %v), want it kept for the operator", fl.Service.Kind)
		}
	})
}

// decodeSecretErrors are the shapes of DecodeSecret's errors: they say what is wrong and
// never quote the secret.
var decodeSecretErrors = regexp.MustCompile(`^must be whsec_ followed by the standard base64 of a 24 to 64 byte key; ` +
	`(it does not start with whsec_|nothing follows whsec_|the part after whsec_ is not standard padded base64 ` +
	`\(only A-Z, a-z, 0-9, \+ and /, padded with = to a multiple of 4 characters\)|the part after whsec_ is not valid base64|` +
	`the key is [0-9]+ bytes)$`)

// FuzzSignVerify checks the signing scheme with any key, id, timestamp and body:
//   - DecodeSecret round-trips "whsec_" + base64(key) for every allowed key length, and for
//     any other text fails with an error of a known shape that never holds the secret;
//   - what Sign produces, Verify accepts (within the tolerance, among other signatures);
//   - Verify refuses a changed body, a changed id, another key and a timestamp outside the
//     tolerance, with the documented errors, and never panics on any header values.
func FuzzSignVerify(f *testing.F) {
	f.Add([]byte("0123456789abcdef01234567"), "msg_p5jXN8AQM9LWM0D4loKWxJek", int64(1614265330), []byte(`{"test": 2432232314}`), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	f.Add([]byte(strings.Repeat("k", 64)), "evt_1-opened", int64(1767225600), []byte(`{"type":"alert.breaker_opened.opened"}`), "whsec_", "v1,AAAA v2,BBBB")
	f.Add([]byte(strings.Repeat("k", 23)), "", int64(0), []byte(nil), "whsec_not base64!", "")
	f.Add([]byte(strings.Repeat("k", 65)), "id with spaces", int64(-1), []byte("x"), "whsec_YWJj\n", "v1, v1,")
	f.Add([]byte("short"), "id", int64(9223372036854775807), []byte{0, 1, 2}, "sk_not_a_webhook_secret", " v1,x  ")
	f.Fuzz(func(t *testing.T, key []byte, id string, ts int64, body []byte, otherSecret, extraSigs string) {
		// Any text as a secret: an error of a known shape, never the secret itself.
		if _, err := webhook.DecodeSecret(otherSecret); err != nil {
			if !decodeSecretErrors.MatchString(err.Error()) {
				t.Fatalf("DecodeSecret(%q): unexpected error %q", otherSecret, err)
			}
		}
		if err := webhook.Verify(otherSecret, http.Header{}, body, time.Unix(0, 0), 0); err == nil {
			t.Fatalf("Verify accepted a request without headers")
		}

		secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
		got, err := webhook.DecodeSecret(secret)
		if len(key) < webhook.MinKeyLen || len(key) > webhook.MaxKeyLen {
			if err == nil {
				t.Fatalf("DecodeSecret accepted a %d-byte key", len(key))
			}
			return
		}
		if err != nil || string(got) != string(key) {
			t.Fatalf("DecodeSecret(%q) = %x, %v; want %x", secret, got, err, key)
		}
		if ts < -1<<40 || ts > 1<<40 {
			return // time.Unix is only meaningful for plausible seconds
		}
		now := time.Unix(ts, 0).Add(time.Minute)
		sig := webhook.Sign(key, id, ts, body)
		header := func(id, sigs string) http.Header {
			h := http.Header{}
			h.Set(webhook.HeaderID, id)
			h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
			h.Set(webhook.HeaderSignature, sigs)
			return h
		}
		err = webhook.Verify(secret, header(id, extraSigs+" "+sig), body, now, 0)
		switch {
		case id == "":
			if !errors.Is(err, webhook.ErrMissingHeaders) {
				t.Fatalf("Verify without an id: %v, want ErrMissingHeaders", err)
			}
			return
		case err != nil:
			t.Fatalf("Verify refused its own signature %q (among %q): %v", sig, extraSigs, err)
		}
		if err := webhook.Verify(secret, header(id, sig), append(append([]byte(nil), body...), 'x'), now, 0); !errors.Is(err, webhook.ErrSignature) {
			t.Fatalf("Verify of a changed body: %v, want ErrSignature", err)
		}
		if err := webhook.Verify(secret, header(id+"x", sig), body, now, 0); !errors.Is(err, webhook.ErrSignature) {
			t.Fatalf("Verify of a changed id: %v, want ErrSignature", err)
		}
		other := append([]byte(nil), key...)
		other[0] ^= 1
		if err := webhook.Verify("whsec_"+base64.StdEncoding.EncodeToString(other), header(id, sig), body, now, 0); !errors.Is(err, webhook.ErrSignature) {
			t.Fatalf("Verify with another key: %v, want ErrSignature", err)
		}
		if err := webhook.Verify(secret, header(id, sig), body, now.Add(webhook.DefaultTolerance+time.Minute), 0); !errors.Is(err, webhook.ErrTimestamp) {
			t.Fatalf("Verify of an old timestamp: %v, want ErrTimestamp", err)
		}
	})
}
