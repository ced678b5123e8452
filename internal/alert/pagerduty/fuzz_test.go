package pagerduty_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/pagerduty"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/secret"
)

const fuzzRoutingKey = "e93facc04764012d7bfb002500d5d1a6"

// FuzzNotifyAnswer sends a trigger event to an Events API that answers with a fuzzed status,
// body and Retry-After. The body is raw (shape 0) or the Events API's error document built
// from fuzzed fields ({"status","message","errors":[…]}, the errors split on '|'). Where the
// answer holds \x01 the server puts the routing key, where it holds \x02 the whole request
// body, as an API that quotes the refused event would. Whatever the answer,
// alerttest.AnswerFuzz.Check's invariants hold — the error message is at most 500
// characters: "PagerDuty answered HTTP 400: " (29), the detail (300), the fix (at most about
// 110); the routing key never shows — and a 400 blaming the routing key waits for the
// operator (configuration).
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

	h := alerttest.NewAnswerFuzz(f, alerttest.AnswerFuzzOptions{
		Channel:     pagerduty.Name,
		ContentType: "application/json",
		Marks:       func(_ *http.Request, req []byte) []string { return []string{fuzzRoutingKey, string(req)} },
		MaxErrorLen: 500,
		Secrets:     []string{fuzzRoutingKey},
		Retryable:   alert.RetryableKind,
	})
	p, err := pagerduty.New(pagerduty.Options{RoutingKey: secret.Secret(fuzzRoutingKey), URL: h.URL + "/v2/enqueue", Client: alerttest.HTTPClient(f)})
	if err != nil {
		f.Fatal(err)
	}
	n := alert.Notification{ID: "evt_1-opened", Type: alert.TypeOpened, Kind: alert.KindBreakerOpened, Severity: alert.SeverityCritical,
		Provider: "ElevenLabs", DedupKey: "elevenlabs.down", Title: "Circuit breaker OPENED for ElevenLabs",
		Message: "3 failures in a row", Time: time.Unix(1767225600, 0), Reporters: []string{"worker-a"}}

	f.Fuzz(func(t *testing.T, status int, shape uint8, st, msg, errs, raw, ra string) {
		status = alerttest.FuzzStatus(status)
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
			body = alerttest.UnescapeMarks(string(b))
		}
		fl := h.Check(t, status, body, ra, func(ctx context.Context) (bool, error) { return p.Notify(ctx, n) })
		if fl != nil && shape%2 == 1 && status == http.StatusBadRequest && strings.Contains(strings.ToLower(msg+errs), "routing key") &&
			(fl.Service.Kind != fault.KindConfiguration || !fl.Retry) {
			t.Fatalf("a 400 blaming the routing key is %v (retry %v), want configuration, kept", fl.Service.Kind, fl.Retry)
		}
	})
}
