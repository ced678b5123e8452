package pagerduty_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/pagerduty"
	"github.com/callagent/resilience/internal/fault"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const routingKey = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12"

// fakeEventsAPI answers like the Events API v2.
func fakeEventsAPI(t *testing.T) *alerttest.Recorder {
	srv := alerttest.NewRecorder(t)
	srv.Respond(func(r alerttest.Request) alerttest.Reply {
		var ev pagerduty.Event
		if err := json.Unmarshal(r.Body, &ev); err != nil || ev.RoutingKey != routingKey || ev.DedupKey == "" ||
			(ev.EventAction == "trigger" && (ev.Payload == nil || ev.Payload.Summary == "" || ev.Payload.Source == "")) {
			return alerttest.Reply{Status: 400, Body: `{"status":"invalid event","message":"Event object is invalid","errors":["bad"]}`}
		}
		return alerttest.Reply{Status: 202, Body: `{"status":"success","message":"Event processed","dedup_key":"` + ev.DedupKey + `"}`}
	})
	return srv
}

func newNotifier(t *testing.T, srv *alerttest.Recorder) *pagerduty.Notifier {
	t.Helper()
	p, err := pagerduty.New(pagerduty.Options{RoutingKey: routingKey, URL: srv.URL + "/v2/enqueue", Client: alerttest.HTTPClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTriggerAndResolveShareTheDedupKey(t *testing.T) {
	t.Parallel()
	srv := fakeEventsAPI(t)
	p := newNotifier(t, srv)
	base := alert.Notification{Kind: alert.KindBreakerOpened, Severity: alert.SeverityCritical, Provider: "ElevenLabs",
		DedupKey: "elevenlabs.down", Time: time.Unix(1700000000, 0), Count: 3, Reporters: []string{"w1"}}
	opened := base
	opened.ID, opened.Type, opened.Title, opened.Message = "evt_1-opened", alert.TypeOpened, "Circuit breaker OPENED for ElevenLabs", "calls fail fast"
	resolved := base
	resolved.ID, resolved.Type, resolved.Title = "evt_1-resolved", alert.TypeResolved, "RESOLVED: Circuit breaker OPENED for ElevenLabs after 2m0s"
	for _, n := range []alert.Notification{opened, resolved} {
		if retry, err := p.Notify(context.Background(), n); err != nil {
			t.Fatalf("Notify(%s) = %v, %v", n.Type, retry, err)
		}
	}
	reqs := srv.Requests()
	var evs []pagerduty.Event
	for _, r := range reqs {
		var ev pagerduty.Event
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
		if r.Path != "/v2/enqueue" {
			t.Errorf("path %q", r.Path)
		}
	}
	if evs[0].EventAction != "trigger" || evs[1].EventAction != "resolve" || evs[0].DedupKey != "elevenlabs.down" || evs[1].DedupKey != "elevenlabs.down" {
		t.Fatalf("events: %+v", evs)
	}
	pl := evs[0].Payload
	if pl.Severity != "critical" || pl.Source != pagerduty.DefaultSource || pl.Component != "ElevenLabs" || pl.Class != "breaker_opened" ||
		pl.Summary != "Circuit breaker OPENED for ElevenLabs: calls fail fast" || pl.Timestamp != "2023-11-14T22:13:20Z" {
		t.Errorf("payload: %+v", pl)
	}
	if evs[1].Payload != nil {
		t.Errorf("a resolve carries a payload: %+v", evs[1].Payload)
	}
	// A one-off alert gets a key of its own, so it does not merge into an incident.
	single := base
	single.ID, single.Type, single.Title, single.DedupKey = "evt_2-alert", alert.TypeAlert, "Call Failed for Contact 1", "elevenlabs.call_failed"
	if ev := p.Build(single); ev.DedupKey != "elevenlabs.call_failed.evt_2-alert" || ev.EventAction != "trigger" {
		t.Errorf("single alert: %+v", ev)
	}
	if ev := p.Build(alert.Notification{Title: "t", Message: strings.Repeat("x", 3000), DedupKey: strings.Repeat("k", 300), Type: alert.TypeOpened}); len(ev.Payload.Summary) > 1024*3 || len([]rune(ev.Payload.Summary)) > 1024 || len([]rune(ev.DedupKey)) > 255 {
		t.Errorf("limits: summary %d, dedup key %d", len([]rune(ev.Payload.Summary)), len([]rune(ev.DedupKey)))
	}
}

func TestNotifyRetryTable(t *testing.T) {
	t.Parallel()
	srv := fakeEventsAPI(t)
	p := newNotifier(t, srv)
	for _, c := range alerttest.RetryCases() {
		srv.Respond(func(alerttest.Request) alerttest.Reply {
			if c.Status/100 == 2 {
				return alerttest.Reply{Status: c.Status, Header: c.Header, Body: `{"status":"success"}`}
			}
			return alerttest.Reply{Status: c.Status, Header: c.Header, Body: `{"status":"error","message":"nope","errors":["e1"]}`}
		})
		retry, err := p.Notify(context.Background(), alert.Notification{ID: "x", Title: "t", Severity: alert.SeverityInfo, Type: alert.TypeOpened, DedupKey: "a.b"})
		c.Check(t, retry, err)
		if err != nil && c.Status/100 != 3 && !strings.Contains(err.Error(), "nope: e1") {
			t.Errorf("%s: the API's message is missing: %v", c.Name, err)
		}
	}
}

func TestRoutingKeyNeverInErrors(t *testing.T) {
	t.Parallel()
	if _, err := pagerduty.New(pagerduty.Options{}); err == nil || !strings.Contains(err.Error(), "RoutingKey is required") {
		t.Errorf("New without a key = %v", err)
	}
	srv := fakeEventsAPI(t)
	srv.Respond(func(r alerttest.Request) alerttest.Reply {
		// A careless API echoing the request must not put the key into our error.
		return alerttest.Reply{Status: 400, Body: string(r.Body)}
	})
	_, err := newNotifier(t, srv).Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
	if err == nil {
		t.Fatal("no error")
	}
	alerttest.AssertNoSecrets(t, "error", []byte(err.Error()), routingKey)
}

// eventsAPIErrors are Events API v2 refusals as PagerDuty documents them.
func eventsAPIErrors() []alerttest.RetryCase {
	invalid := func(name, errs string, kind fault.Kind, retry bool, want ...string) alerttest.RetryCase {
		return alerttest.RetryCase{Name: name, Status: 400,
			Body:    `{"status":"invalid event","message":"Event object is invalid","errors":[` + errs + `]}`,
			WantErr: true, WantRetry: retry, WantKind: kind,
			WantText: append([]string{"PagerDuty answered HTTP 400: Event object is invalid"}, want...)}
	}
	throttled := alerttest.RetryCase{Name: "throttled", Status: 429, Body: "", WantErr: true, WantRetry: true,
		WantKind: fault.KindRateLimited, WantText: []string{"PagerDuty answered HTTP 429"}}
	down := alerttest.RetryCase{Name: "down", Status: 503, Body: `{"status":"unavailable","message":"Service Unavailable"}`,
		WantErr: true, WantRetry: true, WantKind: fault.KindUnavailable, WantText: []string{"HTTP 503: Service Unavailable"}}
	wrongURL := alerttest.RetryCase{Name: "wrong URL", Status: 404, Body: "Not Found", WantErr: true, WantRetry: true,
		WantKind: fault.KindConfiguration, WantText: []string{"HTTP 404", "check PAGERDUTY_URL"}}
	return []alerttest.RetryCase{
		invalid("invalid routing key", `"Invalid routing key"`, fault.KindConfiguration, true,
			"Invalid routing key", "check PAGERDUTY_ROUTING_KEY"),
		invalid("routing key length", `"Length of 'routing_key' is incorrect (should be 32 characters)"`,
			fault.KindConfiguration, true, "check PAGERDUTY_ROUTING_KEY"),
		invalid("bad severity", `"'payload.severity' is invalid (must be one of: critical, error, warning, info)"`,
			fault.KindInvalidPayload, false, "payload.severity"),
		invalid("summary missing", `"'payload.summary' is missing or blank"`, fault.KindInvalidPayload, false),
		throttled, down, wrongURL,
	}
}

// TestNotifyEventsAPIErrors replays the Events API's refusals: a routing key it does not know
// is configuration (every event would be refused; the notification waits for the operator),
// any other invalid event is dropped, and throttling and outages are retried. The routing key
// never appears.
func TestNotifyEventsAPIErrors(t *testing.T) {
	t.Parallel()
	srv := fakeEventsAPI(t)
	p := newNotifier(t, srv)
	for _, c := range eventsAPIErrors() {
		srv.Respond(func(alerttest.Request) alerttest.Reply { return c.Reply() })
		retry, err := p.Notify(context.Background(), alert.Notification{ID: "x", Title: "t", Severity: alert.SeverityCritical, Type: alert.TypeOpened, DedupKey: "a.b"})
		c.Check(t, retry, err)
		if err != nil {
			alerttest.AssertNoSecrets(t, c.Name+" error", []byte(err.Error()), routingKey)
		}
	}
}

func TestNotifyDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	srv, other := fakeEventsAPI(t), alerttest.NewRecorder(t)
	c := alerttest.RedirectCase(other.URL)
	srv.Respond(func(alerttest.Request) alerttest.Reply { return c.Reply() })
	retry, err := newNotifier(t, srv).Notify(context.Background(), alert.Notification{ID: "x", Title: "t", Severity: alert.SeverityCritical, Type: alert.TypeOpened, DedupKey: "a.b"})
	c.Check(t, retry, err)
	if n := len(other.Requests()); n != 0 {
		t.Errorf("the redirect was followed (with the routing key): the other host got %d requests", n)
	}
}

// PAGERDUTY_URL may be a proxy's, with a token in its path or query: an answer quoting the
// request must not show it.
func TestErrorsHideTheURLsTokens(t *testing.T) {
	t.Parallel()
	const pathToken, sig = "Pq7Wm2Xr9Tn3Vb7Lc1Yd6Hf0", "Sg4Nd8Rt2Lp6Qw0Zx3Cv7Bm1"
	srv := alerttest.NewRecorder(t)
	srv.Respond(func(r alerttest.Request) alerttest.Reply {
		return alerttest.Reply{Status: 404, Body: `{"status":"not found","message":"no route ` + r.Path + "?" + r.Query + `"}`}
	})
	host := strings.TrimPrefix(srv.URL, "http://")
	alerttest.AssertURLsHidden(t, []string{
		"HTTP://" + host + "/relay/" + pathToken + "/v2/enqueue?sig=" + sig,
		"http://ops@" + host + "/relay/" + pathToken + "/v2/enqueue?sig=" + sig,
	}, func(raw string) (bool, error) {
		p, err := pagerduty.New(pagerduty.Options{RoutingKey: routingKey, URL: raw, Client: alerttest.HTTPClient(t)})
		if err != nil {
			return false, err
		}
		_, err = p.Notify(context.Background(), alert.Notification{Title: "t", Severity: alert.SeverityInfo})
		return true, err
	}, pathToken, sig, routingKey)
}
