package pagerduty_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/pagerduty"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/secret"
)

const fuzzRoutingKey = "e93facc04764012d7bfb002500d5d1a6"

// maxErrorLen bounds the error message: "PagerDuty answered HTTP 400: " (29), the detail
// (300 characters), the fix (at most about 110).
const maxErrorLen = 500

// fuzzWindow is the shortest piece of the routing key counted as a leak.
const fuzzWindow = 12

type fuzzAnswer struct {
	status     int
	body       string
	retryAfter string
}

// FuzzNotifyAnswer sends a trigger event to an Events API that answers with a fuzzed status,
// body and Retry-After. The body is raw (shape 0) or the Events API's error document built
// from fuzzed fields ({"status","message","errors":[…]}, the errors split on '|'). Where the
// answer holds \x01 the server puts the routing key, where it holds \x02 the whole request
// body, as an API that quotes the refused event would. Whatever the answer:
//   - Notify does not panic; a 2xx is success;
//   - a failure is a *fault.ServiceError for PagerDuty with the answer's status, a bounded
//     message, a wait that is not negative, and retry is what alert.RetryableKind says of
//     its kind; a 400 blaming the routing key waits for the operator (configuration);
//   - the routing key never appears in the error, whole or in part.
func FuzzNotifyAnswer(f *testing.F) {
	for _, s := range []struct {
		status          int
		shape           uint8
		st, msg, errs   string
		raw, retryAfter string
	}{
		{202, 0, "", "", "", `{"status":"success","message":"Event processed","dedup_key":"elevenlabs.down"}`, ""},
		{400, 1, "invalid event", "Event object is invalid", "Length of 'routing_key' is incorrect (should be 32 characters)", "", ""},
		{400, 1, "invalid event", "Event object is invalid", "Invalid routing key", "", ""},
		{400, 1, "invalid event", "Event object is invalid", "'payload.summary' is missing or blank|'payload.severity' is invalid", "", ""},
		{400, 1, "invalid event", "Event object is invalid", "Invalid routing key \x01", "", ""},
		{400, 1, "invalid event", "Could not parse event: \x02", "", "", ""},
		{401, 1, "", "Unauthorized", "", "", ""},
		{404, 0, "", "", "", "<html>Not Found</html>", ""},
		{429, 1, "throttle event", "Requests for this service are arriving too quickly.  Please retry later.", "", "", "60"},
		{500, 0, "", "", "", "", ""},
		{503, 1, "", strings.Repeat("busy ", 100), strings.Repeat("e|", 50), "", "Wed, 21 Oct 2015 07:28:00 GMT"},
		{307, 0, "", "", "", "", ""},
	} {
		f.Add(s.status, s.shape, s.st, s.msg, s.errs, s.raw, s.retryAfter)
	}

	var reply atomic.Pointer[fuzzAnswer]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := io.ReadAll(r.Body)
		rep := reply.Load()
		if fuzzValidHeaderValue(rep.retryAfter) {
			w.Header().Set("Retry-After", rep.retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, strings.NewReplacer("\x01", fuzzRoutingKey, "\x02", string(req)).Replace(rep.body))
	}))
	f.Cleanup(srv.Close)
	p, err := pagerduty.New(pagerduty.Options{RoutingKey: secret.Secret(fuzzRoutingKey), URL: srv.URL + "/v2/enqueue", Client: alerttest.HTTPClient(f)})
	if err != nil {
		f.Fatal(err)
	}
	n := alert.Notification{ID: "evt_1-opened", Type: alert.TypeOpened, Kind: alert.KindBreakerOpened, Severity: alert.SeverityCritical,
		Provider: "ElevenLabs", DedupKey: "elevenlabs.down", Title: "Circuit breaker OPENED for ElevenLabs",
		Message: "3 failures in a row", Time: time.Unix(1767225600, 0), Reporters: []string{"worker-a"}}

	f.Fuzz(func(t *testing.T, status int, shape uint8, st, msg, errs, raw, ra string) {
		if status < 200 || status > 599 {
			status = 200 + fuzzAbs(status)%400 // every answer but 1xx
		}
		body := raw
		if shape%2 == 1 {
			doc := map[string]any{"status": st, "message": msg}
			if errs != "" {
				doc["errors"] = strings.Split(errs, "|")
			}
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			// json.Marshal escapes the marks; put them back so the server sees them.
			body = strings.NewReplacer(`\u0001`, "\x01", `\u0002`, "\x02").Replace(string(b))
		}
		reply.Store(&fuzzAnswer{status: status, body: body, retryAfter: ra})

		retry, err := p.Notify(context.Background(), n)
		if err == nil {
			if status/100 != 2 || retry {
				t.Fatalf("HTTP %d taken as success (retry %v)", status, retry)
			}
			return
		}
		var se *fault.ServiceError
		if !errors.As(err, &se) {
			t.Fatalf("%v (%T) is not a *fault.ServiceError", err, err)
		}
		if se.Provider != pagerduty.Name || se.Status != status {
			t.Fatalf("provider %q status %d, want %s %d", se.Provider, se.Status, pagerduty.Name, status)
		}
		if retry != alert.RetryableKind(fault.KindOf(err)) {
			t.Fatalf("retry = %v for kind %v", retry, fault.KindOf(err))
		}
		if se.RetryAfter < 0 {
			t.Fatalf("negative wait %v", se.RetryAfter)
		}
		if shape%2 == 1 && status == http.StatusBadRequest && strings.Contains(strings.ToLower(msg+errs), "routing key") &&
			(se.Kind != fault.KindConfiguration || !retry) {
			t.Fatalf("a 400 blaming the routing key is %v (retry %v), want configuration, kept", se.Kind, retry)
		}
		text := err.Error()
		if n := utf8.RuneCountInString(text); n > maxErrorLen {
			t.Fatalf("error text of %d characters, more than %d: %.300q", n, maxErrorLen, text)
		}
		for i := 0; i+fuzzWindow <= len(fuzzRoutingKey); i++ {
			if w := fuzzRoutingKey[i : i+fuzzWindow]; strings.Contains(text, w) || strings.Contains(se.Code, w) {
				t.Fatalf("error %q (code %q) shows %q of the routing key", text, se.Code, w)
			}
		}
	})
}

// fuzzValidHeaderValue reports whether a server can send v as a header value as it is.
func fuzzValidHeaderValue(v string) bool {
	if v == "" || v != strings.TrimSpace(v) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func fuzzAbs(n int) int {
	if n < 0 {
		if n == -n { // math.MinInt
			return 0
		}
		return -n
	}
	return n
}
