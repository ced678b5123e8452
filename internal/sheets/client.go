package sheets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
)

// Provider is the name the sink's errors, logs and breaker go by.
const Provider = "Google Sheets"

// DefaultEndpoint is the Sheets API's base URL.
const DefaultEndpoint = "https://sheets.googleapis.com"

// client appends rows with spreadsheets.values.append.
type client struct {
	endpoint      string // no trailing slash
	spreadsheetID string
	rng           string
	account       string // the service account's client_email, for the operator's fix
	hc            *httpx.Client
	timeout       time.Duration // bounds each append
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

// append sends one batch through the shared outbound client (no redirects, capped bodies).
// Errors are *fault.ServiceError for the Provider (or ctx's error).
func (c *client) append(ctx context.Context, rows [][]string) error {
	tok, err := c.tokens.Token()
	if err != nil {
		return tokenError(err)
	}
	body, err := json.Marshal(valueRange{Range: c.rng, MajorDimension: "ROWS", Values: rows})
	if err != nil {
		return fmt.Errorf("encode %d rows for %s: %w", len(rows), Provider, err)
	}
	reqCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := httpx.NewRequest(reqCtx, http.MethodPost, c.appendURL(), body)
	if err != nil {
		return fmt.Errorf("build the %s append request: invalid endpoint", Provider) // the URL holds the sheet id
	}
	req.Header.Set("Content-Type", "application/json")
	tok.SetAuthHeader(req)
	resp, err := c.hc.Do(req, 0) // the append's answer is not needed
	if resp == nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return ctx.Err() // the caller gave up; a timeout of the request itself is the API's
		}
		return fault.Classify(fault.Facts{Provider: Provider, Err: stripURL(err)})
	}
	if resp.OK() {
		return nil // a 2xx whose body broke off still appended the rows
	}
	return c.refusal(resp, tok.AccessToken)
}

// refusal classifies an error answer. Google's status words and message decide what an
// operator must fix, each a configuration error with the fix in the message (the batch is kept
// until then; see Hook.flush):
//
//	400 INVALID_ARGUMENT "Unable to parse range: …"     the range's sheet does not exist: SHEETS_RANGE
//	400 FAILED_PRECONDITION                           the file is not a Google Sheet: SHEETS_SPREADSHEET_ID
//	403 PERMISSION_DENIED                             the sheet is not shared with the service account,
//	                                                  or the Sheets API is disabled in its project
//	404 NOT_FOUND                                     no such spreadsheet: SHEETS_SPREADSHEET_ID
//
// 401 is authentication; 429 and 5xx are transient; 3xx (never followed) is bad_response; any
// other 400 is these rows' fault (invalid_payload: dropped).
//
// accessToken is the OAuth access token the request carried: an answer echoing the request's
// Authorization header must not show it. The status word is kept only when it looks like
// one (statusWordPattern).
func (c *client) refusal(resp *httpx.Response, accessToken string) error {
	facts := fault.Facts{
		Provider:   Provider,
		Status:     resp.Status,
		RetryAfter: fault.ParseRetryAfter(resp.Header, c.now()),
	}
	var doc apiError
	_ = json.Unmarshal(resp.Body, &doc)
	// Google's words may quote the request; keep the sheet id and the access token out of logs.
	message := httpx.CleanMessage(redact.New(c.spreadsheetID, accessToken), doc.Error.Message)
	word := doc.Error.Status
	if !statusWordPattern.MatchString(word) {
		word = "" // not one of Google's status words: a control character, a sentence, a token
	}
	switch {
	case message != "" && word != "":
		facts.Code = word
		facts.Message = fmt.Sprintf("%s: %s (HTTP %d, %s)", Provider, message, resp.Status, word)
	case message != "":
		facts.Message = fmt.Sprintf("%s: %s (HTTP %d)", Provider, message, resp.Status)
	default:
		facts.Message = fmt.Sprintf("%s: HTTP %d", Provider, resp.Status)
	}
	kind, fix := c.diagnose(resp.Status, word, strings.ToLower(message))
	if fix != "" {
		facts.Message += ": " + fix
	}
	err := fault.Classify(facts)
	var se *fault.ServiceError
	if kind != fault.KindUnknown && errors.As(err, &se) {
		se.Kind = kind
	}
	return err
}

// statusWordPattern is the shape of Google's status words (google.rpc.Code names such as
// PERMISSION_DENIED, RESOURCE_EXHAUSTED).
var statusWordPattern = regexp.MustCompile(`^[A-Z_]{1,64}$`)

// diagnose returns the kind that replaces the status's (KindUnknown: keep it) and what the
// operator should do, for the refusals in refusal's table.
func (c *client) diagnose(status int, word, message string) (fault.Kind, string) {
	switch {
	case status == http.StatusBadRequest && strings.Contains(message, "unable to parse range"):
		return fault.KindConfiguration, fmt.Sprintf("SHEETS_RANGE %q names no sheet of the spreadsheet: create that sheet (tab) or fix SHEETS_RANGE", c.rng)
	case status == http.StatusBadRequest && word == "FAILED_PRECONDITION":
		return fault.KindConfiguration, "SHEETS_SPREADSHEET_ID must name a Google Sheet (not an uploaded Excel or CSV file)"
	case status == http.StatusForbidden && (strings.Contains(message, "has not been used") || strings.Contains(message, "is disabled")):
		return fault.KindConfiguration, "enable the Google Sheets API in the service account's project"
	case status == http.StatusForbidden:
		return fault.KindConfiguration, "share the spreadsheet with " + c.account + " as an editor"
	case status == http.StatusNotFound:
		return fault.KindConfiguration, "no spreadsheet has the id in SHEETS_SPREADSHEET_ID, or it was deleted"
	}
	return fault.KindUnknown, ""
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
			if json.Unmarshal(re.Body, &body) == nil {
				code = body.Error
			}
		}
		if !httpx.ValidCode(code) {
			code = "" // not an OAuth error code: a control character, a sentence, a page
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
