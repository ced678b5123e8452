// Package alerttest is the test kit of the alert channels: the shared status→retry table every
// HTTP channel is checked against, a recording HTTP server, the harness of the HTTP channels'
// FuzzNotifyAnswer targets, a real SMTP server with STARTTLS on loopback, checks that no
// secret reached a payload or an error, and Start, which runs a service until the test ends.
// It does not import package alert, so that package's own tests can use it.
package alerttest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/fault"
)

// RetryCase is one answer a channel's service may give and what Notify must report for it.
type RetryCase struct {
	// Name identifies the row.
	Name string
	// Status, Header and Body are the answer. RetryCases leaves Body empty: each channel
	// adds its service's error body; a channel's own table of real answers fills it.
	Status int
	Header http.Header
	Body   string
	// WantErr is false only for success.
	WantErr bool
	// WantRetry is Notify's retry when WantErr.
	WantRetry bool
	// WantKind is the fault kind of the error when WantErr.
	WantKind fault.Kind
	// WantRetryAfter is the error's RetryAfter (from the Retry-After header or the body).
	WantRetryAfter time.Duration
	// WantText are what the operator must read in the error: the problem and the setting
	// to fix.
	WantText []string
}

// RetryCases returns the table (alert.CheckHTTP's), freshly built so callers may modify it.
func RetryCases() []RetryCase {
	row := func(status int, retry bool, kind fault.Kind) RetryCase {
		return RetryCase{Name: fmt.Sprintf("HTTP %d", status), Status: status, Header: http.Header{},
			WantErr: true, WantRetry: retry, WantKind: kind}
	}
	ok := func(status int) RetryCase {
		return RetryCase{Name: fmt.Sprintf("HTTP %d", status), Status: status, Header: http.Header{}}
	}
	limited := row(429, true, fault.KindRateLimited)
	limited.Name = "HTTP 429 with Retry-After"
	limited.Header.Set("Retry-After", "7")
	limited.WantRetryAfter = 7 * time.Second
	return []RetryCase{
		ok(200), ok(202), ok(204),
		row(301, true, fault.KindBadResponse),
		row(302, true, fault.KindBadResponse),
		row(307, true, fault.KindBadResponse),
		row(308, true, fault.KindBadResponse),
		row(400, false, fault.KindInvalidPayload),
		row(401, true, fault.KindAuthentication),
		row(403, true, fault.KindAuthentication),
		row(404, true, fault.KindConfiguration),
		row(408, true, fault.KindTimeout),
		row(409, true, fault.KindUnavailable),
		row(410, true, fault.KindConfiguration),
		row(413, false, fault.KindInvalidPayload),
		row(422, false, fault.KindInvalidPayload),
		row(429, true, fault.KindRateLimited),
		limited,
		row(500, true, fault.KindUnavailable),
		row(502, true, fault.KindUnavailable),
		row(503, true, fault.KindUnavailable),
		row(504, true, fault.KindUnavailable),
	}
}

// RedirectCase is a 302 to target (another server): Notify must not follow it, and must
// report a bad_response that stays queued and says the redirect was not followed.
func RedirectCase(target string) RetryCase {
	h := http.Header{}
	h.Set("Location", target+"/collect?token=stolen")
	return RetryCase{Name: "HTTP 302 to another host", Status: http.StatusFound, Header: h,
		Body: `<a href="` + target + `/collect?token=stolen">Found</a>.`, WantErr: true, WantRetry: true,
		WantKind: fault.KindBadResponse, WantText: []string{"answered HTTP 302", "redirect to ", "not followed"}}
}

// Reply is the row's answer, for Recorder.Respond.
func (c RetryCase) Reply() Reply { return Reply{Status: c.Status, Header: c.Header, Body: c.Body} }

// Check verifies a Notify result against the row.
func (c RetryCase) Check(t testing.TB, retry bool, err error) {
	t.Helper()
	if !c.WantErr {
		if err != nil {
			t.Errorf("%s: Notify error = %v, want none", c.Name, err)
		}
		return
	}
	if err == nil {
		t.Fatalf("%s: Notify error = nil, want one", c.Name)
	}
	if retry != c.WantRetry {
		t.Errorf("%s: retry = %v, want %v (err %v)", c.Name, retry, c.WantRetry, err)
	}
	if k := fault.KindOf(err); k != c.WantKind {
		t.Errorf("%s: kind = %s, want %s (err %v)", c.Name, k, c.WantKind, err)
	}
	if c.WantRetryAfter > 0 {
		if ra := fault.RetryAfterOf(err); ra != c.WantRetryAfter {
			t.Errorf("%s: retry after = %s, want %s", c.Name, ra, c.WantRetryAfter)
		}
	}
	for _, want := range c.WantText {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not say %q", c.Name, err, want)
		}
	}
}

// AssertNoSecrets fails the test if any secret (at least 4 characters) occurs in data; where
// names the payload in the failure.
func AssertNoSecrets(t testing.TB, where string, data []byte, secrets ...string) {
	t.Helper()
	s := string(data)
	for _, sec := range secrets {
		if len(sec) >= 4 && strings.Contains(s, sec) {
			t.Errorf("%s contains a secret (%.3s…)", where, sec)
		}
	}
}

// AssertNoSecretsInHeader checks every header value.
func AssertNoSecretsInHeader(t testing.TB, where string, h http.Header, secrets ...string) {
	t.Helper()
	for k, vs := range h {
		for _, v := range vs {
			AssertNoSecrets(t, where+" header "+k, []byte(v), secrets...)
		}
	}
}

// AssertURLsHidden checks what a channel does with each of urls, its setting written in
// ways that once slipped past the redaction (an upper-case scheme, user info): send builds
// the channel for the URL and, when New accepts it, sends a notification that the server
// refuses, quoting the request. New must refuse a URL with user info ("@"); the other URLs
// must fail to send. Neither New's refusal nor the failure may show a secret.
func AssertURLsHidden(t testing.TB, urls []string, send func(rawURL string) (sent bool, err error), secrets ...string) {
	t.Helper()
	for _, raw := range urls {
		sent, err := send(raw)
		if strings.Contains(raw, "@") { // credentials in the URL: refused, without showing it
			if sent || err == nil {
				t.Fatalf("%s: accepted a URL with credentials", raw)
			}
			AssertNoSecrets(t, raw+" refusal", []byte(err.Error()), secrets...)
			continue
		}
		if !sent {
			t.Fatal(err)
		}
		if err == nil {
			t.Fatalf("%s: Notify succeeded", raw)
		}
		AssertNoSecrets(t, raw+" error", []byte(err.Error()), secrets...)
	}
}
