package sheets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/callagent/resilience/internal/fault"
)

// Provider is the name the sink's errors, logs and breaker go by.
const Provider = "Google Sheets"

// DefaultEndpoint is the Sheets API's base URL.
const DefaultEndpoint = "https://sheets.googleapis.com"

// errorBodyLimit caps what is read of an error response.
const errorBodyLimit = 64 << 10

// client appends rows with spreadsheets.values.append.
type client struct {
	endpoint      string // no trailing slash
	spreadsheetID string
	rng           string
	hc            *http.Client
	tokens        oauth2.TokenSource
	now           func() time.Time
}

// appendURL is POST {endpoint}/v4/spreadsheets/{id}/values/{range}:append with RAW input (a
// logged "=cmd()" stays text, never a formula) and new rows inserted after the table.
func (c *client) appendURL() string {
	q := url.Values{}
	q.Set("valueInputOption", "RAW")
	q.Set("insertDataOption", "INSERT_ROWS")
	return c.endpoint + "/v4/spreadsheets/" + url.PathEscape(c.spreadsheetID) +
		"/values/" + url.PathEscape(c.rng) + ":append?" + q.Encode()
}

// valueRange is the request body.
type valueRange struct {
	Range          string     `json:"range"`
	MajorDimension string     `json:"majorDimension"`
	Values         [][]string `json:"values"`
}

// apiError is Google's error document: {"error":{"code":403,"message":"…","status":"PERMISSION_DENIED"}}.
type apiError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

// append sends one batch. Errors are *fault.ServiceError for the Provider (or ctx's error).
func (c *client) append(ctx context.Context, rows [][]string) error {
	tok, err := c.tokens.Token()
	if err != nil {
		return tokenError(err)
	}
	body, err := json.Marshal(valueRange{Range: c.rng, MajorDimension: "ROWS", Values: rows})
	if err != nil {
		return fmt.Errorf("encode %d rows for %s: %w", len(rows), Provider, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.appendURL(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build the %s append request: %w", Provider, err)
	}
	req.Header.Set("Content-Type", "application/json")
	tok.SetAuthHeader(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return ctx.Err()
		}
		return fault.Classify(fault.Facts{Provider: Provider, Err: stripURL(err)})
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, errorBodyLimit))
		return nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	facts := fault.Facts{
		Provider:   Provider,
		Status:     resp.StatusCode,
		RetryAfter: fault.ParseRetryAfter(resp.Header, c.now()),
	}
	var doc apiError
	if json.Unmarshal(raw, &doc) == nil && doc.Error.Message != "" {
		facts.Code = doc.Error.Status
		facts.Message = fmt.Sprintf("%s: %s (HTTP %d, %s)", Provider, doc.Error.Message, resp.StatusCode, doc.Error.Status)
	} else {
		facts.Message = fmt.Sprintf("%s: HTTP %d", Provider, resp.StatusCode)
	}
	return fault.Classify(facts)
}

// tokenError classifies a failed access-token request. The token endpoint answers 400
// (invalid_grant: a revoked, disabled or wrong key) or 401/403 when the service account is
// refused: permanent authentication errors. Its 5xx and 429 are transient like any provider's.
// Anything else got no answer (golang.org/x/oauth2/jwt flattens transport errors to text), so
// it is reported as a network error, which is transient.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		status := re.Response.StatusCode
		if status == http.StatusBadRequest {
			status = http.StatusUnauthorized
		}
		code := re.ErrorCode
		if code == "" { // golang.org/x/oauth2/jwt leaves the body unparsed
			var body struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(re.Body, &body) == nil && len(body.Error) <= 64 {
				code = body.Error
			}
		}
		msg := fmt.Sprintf("%s: the token endpoint refused the service account (HTTP %d", Provider, re.Response.StatusCode)
		if code != "" {
			msg += ", " + code
		}
		return fault.Classify(fault.Facts{Provider: Provider, Status: status, Message: msg + ")"})
	}
	return fault.Classify(fault.Facts{Provider: Provider, Err: tokenFetchError{err}})
}

// tokenFetchError is a token request that got no usable answer. It reports itself as a
// net.Error so that fault.Classify sees a network failure (or a timeout).
type tokenFetchError struct{ err error }

// Error says the token could not be fetched, and why.
func (e tokenFetchError) Error() string { return "fetch an access token: " + e.err.Error() }

// Unwrap returns the token source's error.
func (e tokenFetchError) Unwrap() error { return e.err }

// Timeout reports whether the client gave up waiting.
func (e tokenFetchError) Timeout() bool {
	s := e.err.Error()
	return strings.Contains(s, "Client.Timeout") || strings.Contains(s, "deadline exceeded") || strings.Contains(s, "i/o timeout")
}

// Temporary is part of net.Error; a token request that got no answer may succeed later.
func (e tokenFetchError) Temporary() bool { return true }

// stripURL removes the request URL from a transport error: it holds the spreadsheet id.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s request: %w", Provider, strings.ToLower(ue.Op), ue.Err)
	}
	return err
}
