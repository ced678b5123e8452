package alert_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/fault"
)

func TestCheckHTTPTable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)
	for _, c := range alerttest.RetryCases() {
		retry, err := alert.CheckHTTP("Test", alert.Response{Status: c.Status, Header: c.Header, Body: []byte("nope")}, alert.Verdict{}, now)
		c.Check(t, retry, err)
		if err != nil && !strings.HasPrefix(err.Error(), "Test answered HTTP ") {
			t.Errorf("%s: message %q", c.Name, err)
		}
	}
}

func TestCheckHTTPDetailIsRedactedAndBounded(t *testing.T) {
	t.Parallel()
	body := "bad token bot123456789:AAabcdefghijklmnopqrstuvwxyz0123456 for +14155550123 " + strings.Repeat("x", 1000)
	_, err := alert.CheckHTTP("Test", alert.Response{Status: 400, Header: http.Header{}, Body: []byte(body)}, alert.Verdict{}, time.Now())
	msg := err.Error()
	if strings.Contains(msg, "AAabcdefghij") || strings.Contains(msg, "4155550123") {
		t.Errorf("error leaks: %q", msg)
	}
	if len([]rune(msg)) > 400 {
		t.Errorf("error is %d characters long", len([]rune(msg)))
	}
	_, err = alert.CheckHTTP("Test", alert.Response{Status: 429, Header: http.Header{}}, alert.Verdict{Detail: "slow down", RetryAfter: 30 * time.Second}, time.Now())
	if fault.RetryAfterOf(err) != 30*time.Second {
		t.Errorf("retry after from the body: %s", fault.RetryAfterOf(err))
	}
}

// TestCheckHTTPVerdict: a channel's reading of its service's error replaces the kind of a 4xx
// (never of a 408, 429 or 5xx), and the fix and code reach the operator.
// A raw body goes into the error cleaned: no control characters (an ANSI escape would
// repaint the operator's terminal), valid UTF-8, one line; the secrets passed are redacted
// before the detail is cut.
func TestCheckHTTPDetailIsPrintable(t *testing.T) {
	t.Parallel()
	const secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ"
	for _, body := range []string{
		"upstream said:\x00\x1b[31m red \u0085 next\r\nline",
		"\xf4\xff\xfe bad bytes",
		strings.Repeat("x", 290) + secret,
	} {
		for _, v := range []alert.Verdict{{}, {Detail: body}} {
			_, err := alert.CheckHTTP("Test", alert.Response{Status: 500, Header: http.Header{}, Body: []byte(body)}, v, time.Now(), secret)
			msg := err.Error()
			if !utf8.ValidString(msg) || strings.ContainsFunc(msg, unicode.IsControl) {
				t.Errorf("error %q is not printable UTF-8", msg)
			}
			if strings.Contains(msg, secret[:12]) {
				t.Errorf("error %q shows the secret", msg)
			}
		}
	}
}

func TestCheckHTTPVerdict(t *testing.T) {
	t.Parallel()
	v := alert.Verdict{Code: "channel_is_archived", Kind: fault.KindConfiguration, Fix: "set SLACK_WEBHOOK_URL"}
	for _, c := range []struct {
		status    int
		wantKind  fault.Kind
		wantRetry bool
	}{
		{400, fault.KindConfiguration, true},
		{403, fault.KindConfiguration, true},
		{410, fault.KindConfiguration, true},
		{408, fault.KindTimeout, true},
		{429, fault.KindRateLimited, true},
		{503, fault.KindUnavailable, true},
		{302, fault.KindBadResponse, true},
	} {
		retry, err := alert.CheckHTTP("Slack", alert.Response{Status: c.status, Header: http.Header{}, Body: []byte("channel_is_archived")}, v, time.Now())
		if fault.KindOf(err) != c.wantKind || retry != c.wantRetry {
			t.Errorf("HTTP %d: kind %s, retry %v; want %s, %v", c.status, fault.KindOf(err), retry, c.wantKind, c.wantRetry)
		}
		var se *fault.ServiceError
		if !errors.As(err, &se) || se.Code != "channel_is_archived" || se.Status != c.status {
			t.Errorf("HTTP %d: service error %+v", c.status, se)
		}
		if c.status/100 == 4 && !strings.HasSuffix(err.Error(), "(set SLACK_WEBHOOK_URL)") {
			t.Errorf("HTTP %d: the fix is missing: %v", c.status, err)
		}
	}
	retry, err := alert.CheckHTTP("Slack", alert.Response{Status: 404, Header: http.Header{}}, alert.Verdict{Kind: fault.KindInvalidPayload}, time.Now())
	if retry || fault.KindOf(err) != fault.KindInvalidPayload {
		t.Errorf("a payload verdict on a 404: retry %v, kind %s", retry, fault.KindOf(err))
	}
}

// TestCheckHTTPRedirectNamesOnlyTheHost: a 3xx is reported with where it pointed, by host
// only; its body and the Location's path are not shown.
func TestCheckHTTPRedirectNamesOnlyTheHost(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("Location", "https://evil.example:8443/collect?token=s3cr3t-in-location")
	retry, err := alert.CheckHTTP("Webhook", alert.Response{Status: 307, Header: h, Body: []byte("see /collect?token=s3cr3t-in-location")}, alert.Verdict{}, time.Now())
	if !retry || fault.KindOf(err) != fault.KindBadResponse {
		t.Fatalf("retry %v, kind %s", retry, fault.KindOf(err))
	}
	if want := "Webhook answered HTTP 307: redirect to https://evil.example:8443 not followed"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
	alerttest.AssertNoSecrets(t, "error", []byte(err.Error()), "s3cr3t-in-location", "/collect")
	h.Set("Location", "/elsewhere")
	if _, err := alert.CheckHTTP("Webhook", alert.Response{Status: 301, Header: h}, alert.Verdict{}, time.Now()); !strings.Contains(err.Error(), "redirect not followed") {
		t.Errorf("a relative redirect: %v", err)
	}
}

func TestPostJSONErrorsHideThePath(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens any more
	client := alerttest.HTTPClient(t)
	const token = "123456789:secret-token-in-the-path"
	_, err := alert.PostJSON(context.Background(), client, base+"/bot"+token+"/sendMessage?key=abc", nil, []byte("{}"))
	if err == nil {
		t.Fatal("PostJSON to a closed server succeeded")
	}
	if strings.Contains(err.Error(), "secret-token") || strings.Contains(err.Error(), "key=abc") {
		t.Errorf("error leaks the path: %v", err)
	}
	retry, cerr := alert.TransportError("Test", err)
	if !retry || fault.KindOf(cerr) != fault.KindNetwork {
		t.Errorf("TransportError = %v, %v (kind %s)", retry, cerr, fault.KindOf(cerr))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = alert.PostJSON(ctx, client, base, nil, nil)
	if retry, cerr := alert.TransportError("Test", err); retry || !errors.Is(cerr, context.Canceled) {
		t.Errorf("a cancelled post: retry %v, %v", retry, cerr)
	}
	if _, err := alert.PostJSON(context.Background(), client, "http://a b/"+token, nil, nil); err == nil || strings.Contains(err.Error(), "secret-token") {
		t.Errorf("a bad URL: %v", err)
	}
	if _, err := alert.PostJSON(context.Background(), nil, base, nil, nil); !errors.Is(err, alert.ErrNoClient) {
		t.Errorf("no client: %v", err)
	}
	if got := alert.SafeURL("https://user:pw@hooks.example.com/services/T/B/X?x=1"); got != "https://hooks.example.com" {
		t.Errorf("SafeURL = %q", got)
	}
}

// TestPostJSONSendsThroughTheSharedClient: the shared client's User-Agent and headers go out,
// a redirect is the answer (the other host receives nothing), and a 2xx body over the cap is
// dropped without failing the delivery.
func TestPostJSONSendsThroughTheSharedClient(t *testing.T) {
	t.Parallel()
	srv, other := alerttest.NewRecorder(t), alerttest.NewRecorder(t)
	client := alerttest.HTTPClient(t)
	h := http.Header{}
	h.Set("X-Extra", "1")
	resp, err := alert.PostJSON(context.Background(), client, srv.URL+"/in", h, []byte(`{"a":1}`))
	if err != nil || resp.Status != 200 || string(resp.Body) != "ok" {
		t.Fatalf("PostJSON = %+v, %v", resp, err)
	}
	req := srv.Requests()[0]
	if req.Header.Get("User-Agent") != client.UserAgent() || req.Header.Get("Content-Type") != "application/json" ||
		req.Header.Get("X-Extra") != "1" || string(req.Body) != `{"a":1}` {
		t.Errorf("request %+v", req)
	}

	srv.Respond(func(alerttest.Request) alerttest.Reply { return alerttest.RedirectCase(other.URL).Reply() })
	resp, err = alert.PostJSON(context.Background(), client, srv.URL+"/in", nil, []byte(`{}`))
	if err != nil || resp.Status != http.StatusFound || len(other.Requests()) != 0 {
		t.Errorf("redirect: %d, %v; the other host got %d requests", resp.Status, err, len(other.Requests()))
	}

	srv.Respond(func(alerttest.Request) alerttest.Reply {
		return alerttest.Reply{Status: 200, Body: strings.Repeat("x", 128<<10)}
	})
	resp, err = alert.PostJSON(context.Background(), client, srv.URL+"/in", nil, []byte(`{}`))
	if err != nil || resp.Status != 200 || resp.Body != nil {
		t.Errorf("an oversized 2xx body: %d, %d bytes, %v", resp.Status, len(resp.Body), err)
	}
}
