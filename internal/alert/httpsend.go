package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/redact"
)

// maxResponseBytes bounds what is read of a channel's answer.
const maxResponseBytes = 64 << 10

// maxDetailLen bounds the channel's own words kept in an error.
const maxDetailLen = 300

// Response is a channel's HTTP answer: its status, headers and (the start of) its body.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// PostJSON posts body as application/json to rawURL with the extra headers and reads the
// answer (at most 64 KiB of it). A transport error names only the URL's scheme and host:
// channel URLs carry credentials in their path (Telegram's bot token, Slack's webhook key).
// The error wraps the transport error, so fault.Classify still sees timeouts and resets.
func PostJSON(ctx context.Context, client *http.Client, rawURL string, header http.Header, body []byte) (Response, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return Response{}, fmt.Errorf("build request to %s: invalid URL", SafeURL(rawURL))
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "callagent-alerts/1")
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Response{}, fmt.Errorf("POST %s: %w", SafeURL(rawURL), err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	// Drain a little more so the connection can be reused; ignore what is left.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil && resp.StatusCode/100 != 2 {
		data = nil // an unreadable error body: the status says enough
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// SafeURL returns scheme://host of rawURL (no user, path or query), or "<invalid URL>".
func SafeURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "<invalid URL>"
	}
	return u.Scheme + "://" + u.Host
}

// CheckHTTP is the one table every HTTP channel applies to a channel's answer (Alertmanager's
// Retrier.Check): it returns (false, nil) for 2xx; otherwise a *fault.ServiceError for the
// channel, classified by status (fault.Classify), carrying detail (the channel's own words,
// or the body when detail is empty; redacted of secrets — pass the channel's credentials,
// a careless service may echo the request — and cut to 300 characters) and the longer of
// retryAfter and the Retry-After header; and retry, true when the notification should stay
// queued:
//
//	status                                   kind                 retry
//	2xx                                      (success)            -
//	408, 409, 429, 5xx                       transient            yes, with backoff in process
//	1xx, 3xx (unexpected)                    bad_response         yes
//	401, 403                                 authentication       yes, later: an operator fixes the key
//	404                                      configuration        yes, later: an operator fixes the URL
//	400, 413, 422, other 4xx                 invalid_payload      no: this notification is refused for good
func CheckHTTP(channel string, resp Response, detail string, retryAfter time.Duration, now time.Time, secrets ...string) (retry bool, err error) {
	if resp.Status >= 200 && resp.Status <= 299 {
		return false, nil
	}
	if ra := fault.ParseRetryAfter(resp.Header, now); ra > retryAfter {
		retryAfter = ra
	}
	if strings.TrimSpace(detail) == "" {
		detail = string(resp.Body)
	}
	detail = Truncate(strings.Join(strings.Fields(redact.Text(detail, secrets...)), " "), maxDetailLen)
	msg := fmt.Sprintf("%s answered HTTP %d", channel, resp.Status)
	if detail != "" {
		msg += ": " + detail
	}
	err = fault.Classify(fault.Facts{Provider: channel, Status: resp.Status, Message: msg, RetryAfter: retryAfter})
	return RetryableKind(fault.KindOf(err)), err
}

// RetryableKind reports whether a delivery that failed with kind should stay queued: every
// transient kind, plus authentication and configuration (an operator can fix those; the
// notification waits). Only invalid_payload and unknown are given up.
func RetryableKind(k fault.Kind) bool {
	return k.Transient() || k == fault.KindAuthentication || k == fault.KindConfiguration
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
