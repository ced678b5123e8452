package alert

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
)

// maxResponseBytes bounds what is kept of a channel's 2xx answer; error answers are kept up
// to httpx.ErrorBodyLimit.
const maxResponseBytes = 64 << 10

// Response is a channel's HTTP answer: its status, headers and (the start of) its body.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// ErrNoClient is returned by PostJSON without a client: every channel sends through the
// shared *httpx.Client, never a default one that would follow redirects.
var ErrNoClient = errors.New("alert: no HTTP client")

// PostJSON posts body as application/json to rawURL with the extra headers through client,
// the outbound client the provider clients use too: redirects are never followed (a 3xx is
// the answer, and CheckHTTP reports it), bodies are capped, and the User-Agent names the
// project.
//
// Once a status has arrived the error is nil: a 2xx body that is too large or broke off is
// dropped (the service accepted the notification; sending it again would duplicate it). A
// transport error names only the URL's scheme and host — channel URLs carry credentials in
// their path (Telegram's bot token, Slack's webhook key) — and wraps its cause, so
// fault.Classify still sees timeouts and resets.
func PostJSON(ctx context.Context, client *httpx.Client, rawURL string, header http.Header, body []byte) (Response, error) {
	if client == nil {
		return Response{}, ErrNoClient
	}
	req, err := httpx.NewRequest(ctx, http.MethodPost, rawURL, body)
	if err != nil { // not wrapped: the parse error quotes the whole URL
		return Response{}, fmt.Errorf("build request to %s: invalid URL", SafeURL(rawURL))
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req, maxResponseBytes)
	if resp == nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Response{}, fmt.Errorf("POST %s: %w", SafeURL(rawURL), err)
	}
	out := Response{Status: resp.Status, Header: resp.Header, Body: resp.Body}
	if err != nil && resp.OK() {
		out.Body = nil
	}
	return out, nil
}

// HTTPDefaults returns what an HTTP channel sends with when its options leave them unset:
// client, or a new outbound client with httpx's defaults, and now, or time.Now.
func HTTPDefaults(client *httpx.Client, now func() time.Time) (*httpx.Client, func() time.Time, error) {
	if client == nil {
		c, err := httpx.New(httpx.Options{})
		if err != nil {
			return nil, nil, err
		}
		client = c
	}
	if now == nil {
		now = time.Now
	}
	return client, now, nil
}

// URLProblem is the rule for a channel's URL, "" when raw follows it: present, and as
// httpx.URLProblem has it for an endpoint (absolute http or https with a host, no
// credentials, no fragment; a query is allowed). The configuration checks the channel URL
// settings with it, so each has this one rule. The problem never shows the URL: channel URLs
// carry tokens in their path.
func URLProblem(raw string) string {
	if strings.TrimSpace(raw) == "" {
		return "is required"
	}
	return httpx.URLProblem(raw, true)
}

// SafeURL returns scheme://host of rawURL (no user, path or query), or "<invalid URL>".
func SafeURL(rawURL string) string { return httpx.Origin(rawURL) }

// Verdict is what a channel read in its service's error answer, for CheckHTTP. The zero
// Verdict leaves everything to the status and the body.
type Verdict struct {
	// Detail is the service's own words (Telegram's description, PagerDuty's errors); empty
	// means the body as received.
	Detail string
	// Code is the service's error code ("channel_is_archived"); it becomes the error's Code.
	Code string
	// Kind, when set, replaces the kind the status gives a 4xx other than 408 and 429: a
	// Slack 404 channel_not_found or a Telegram 400 "chat not found" is configuration (an
	// operator must act; the notification waits), not a payload this notification could fix.
	Kind fault.Kind
	// Fix tells the operator what to do, in a few words naming the setting ("set
	// TELEGRAM_CHAT_ID to -1001234567890"). It must not hold a secret.
	Fix string
	// RetryAfter is the wait the body asked for (Telegram's parameters.retry_after); the
	// longer of it and the Retry-After header is kept.
	RetryAfter time.Duration
}

// CheckHTTP is the one table every HTTP channel applies to a channel's answer (Alertmanager's
// Retrier.Check): it returns (false, nil) for 2xx; otherwise a *fault.ServiceError for the
// channel and retry, true when the notification should stay queued:
//
//	status                                   kind                 retry
//	2xx                                      (success)            -
//	408, 409, 429, 5xx                       transient            yes, with backoff in process
//	1xx, 3xx (redirects are not followed)    bad_response         yes
//	401, 403                                 authentication       yes, later: an operator fixes the key
//	404, 410                                 configuration        yes, later: an operator fixes the URL
//	400, 413, 422, other 4xx                 invalid_payload      no: this notification is refused for good
//
// v.Kind replaces the kind of a 4xx other than 408 and 429 (see Verdict). The error's
// message reads "<channel> answered HTTP <status>: <detail> (<fix>)": the detail is v.Detail,
// or the body, or for a 3xx where it pointed; it is redacted of secrets (pass the channel's
// credentials: a careless service may echo the request), made one printable line of valid
// UTF-8 and cut to httpx.MaxMessageLen (300) characters (see httpx.CleanMessage). The
// error's RetryAfter is the longer of v.RetryAfter and the Retry-After header.
func CheckHTTP(channel string, resp Response, v Verdict, now time.Time, secrets ...string) (retry bool, err error) {
	if resp.Status >= 200 && resp.Status <= 299 {
		return false, nil
	}
	retryAfter := max(v.RetryAfter, fault.ParseRetryAfter(resp.Header, now))
	detail := v.Detail
	switch {
	case resp.Status >= 300 && resp.Status <= 399:
		detail = redirectDetail(resp.Header.Get("Location"))
	case strings.TrimSpace(detail) == "":
		detail = string(resp.Body)
	}
	// Raw body bytes may hold control characters, ANSI escapes, invalid UTF-8: cleaned like a
	// provider's message (redacted first, then cut).
	detail = httpx.CleanMessage(redact.New(secrets...), detail)
	msg := fmt.Sprintf("%s answered HTTP %d", channel, resp.Status)
	if detail != "" {
		msg += ": " + detail
	}
	if v.Fix != "" {
		msg += " (" + redact.Text(v.Fix, secrets...) + ")"
	}
	err = fault.Classify(fault.Facts{Provider: channel, Status: resp.Status, Code: v.Code, Message: msg, RetryAfter: retryAfter})
	var se *fault.ServiceError
	if v.Kind != fault.KindUnknown && resp.Status >= 400 && resp.Status <= 499 &&
		resp.Status != http.StatusRequestTimeout && resp.Status != http.StatusTooManyRequests && errors.As(err, &se) {
		se.Kind = v.Kind
	}
	return RetryableKind(fault.KindOf(err)), err
}

// redirectDetail says where a 3xx pointed, by scheme and host only (a Location can carry a
// token as well as the request URL can).
func redirectDetail(location string) string {
	if u, err := url.Parse(location); err == nil && u.Host != "" {
		return "redirect to " + httpx.Origin(location) + " not followed; set the URL to where it points"
	}
	return "redirect not followed; set the URL to where it points"
}

// RetryableKind reports whether a delivery that failed with kind should stay queued: every
// transient kind, plus authentication, permission and configuration (an operator can fix
// those; the notification waits). Only invalid_payload and unknown are given up.
func RetryableKind(k fault.Kind) bool {
	return k.Transient() || k == fault.KindAuthentication || k == fault.KindPermission || k == fault.KindConfiguration
}

// TransportError classifies an error that came without an answer (dial, TLS, timeout) for
// channel: a *fault.ServiceError, retryable unless the caller cancelled. It returns
// (false, err) unchanged for a cancellation.
func TransportError(channel string, err error) (retry bool, _ error) {
	if errors.Is(err, context.Canceled) {
		return false, err
	}
	c := fault.Classify(fault.Facts{Provider: channel, Err: err})
	var se *fault.ServiceError
	if errors.As(c, &se) && se.Kind == fault.KindUnknown {
		se.Kind = fault.KindNetwork // no answer at all: treat as the channel being away
	}
	return true, c
}
