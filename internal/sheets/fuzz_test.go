package sheets

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/provider/providertest"
)

const (
	fuzzSpreadsheetID = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"
	fuzzAccessToken   = "ya29.a0AfB_byC8Qw3Er5Ty7Ui9Op1As2Df4Gh6Jk8Lz0Xc"
	fuzzAccount       = "call-agent@example-project.iam.gserviceaccount.com"
)

// maxRefusalLen bounds the error message: "Google Sheets: " (15), Google's message (300
// characters), " (HTTP 400, <status word>)", and the fix (at most about 130 with the range
// and the account).
const maxRefusalLen = 700

// fuzzWindow is the shortest piece of a credential counted as a leak.
const fuzzWindow = 12

// FuzzRefusal feeds arbitrary error answers of the Sheets API to the sink's client: refusal
// directly, and a real append against a server that sends the answer. The body is raw
// (shape 0) or Google's error document built from fuzzed fields ({"error":{"code",
// "message","status"}}). Where the answer holds \x01 the server puts the spreadsheet id, \x02
// the request URI, \x03 the access token, as an API that quotes the request would. Whatever
// the answer:
//   - nothing panics; a 2xx append succeeds;
//   - a refusal is a *fault.ServiceError for Google Sheets with the answer's status, a
//     bounded message and code, both free of control characters, and a wait that is not
//     negative; a 403 or 404 waits for the operator (configuration);
//   - neither the spreadsheet id (kept out of logs, as refusal promises) nor the access
//     token appears in the error, whole or in part.
func FuzzRefusal(f *testing.F) {
	for _, s := range []struct {
		status          int
		shape           uint8
		msg, word       string
		raw, retryAfter string
	}{
		{200, 0, "", "", `{"spreadsheetId":"x","updates":{"updatedRows":1}}`, ""},
		{400, 1, "Unable to parse range: Log!A1", "INVALID_ARGUMENT", "", ""},
		{400, 1, "This operation is not supported for this document", "FAILED_PRECONDITION", "", ""},
		{400, 1, "Invalid value at 'data.values[0]' (type.googleapis.com/google.protobuf.ListValue)", "INVALID_ARGUMENT", "", ""},
		{401, 1, "Request had invalid authentication credentials. Expected OAuth 2 access token.", "UNAUTHENTICATED", "", ""},
		{403, 1, "The caller does not have permission", "PERMISSION_DENIED", "", ""},
		{403, 1, "Google Sheets API has not been used in project 123 before or it is disabled.", "PERMISSION_DENIED", "", ""},
		{404, 1, "Requested entity was not found.", "NOT_FOUND", "", ""},
		{404, 1, "Spreadsheet \x01 not found", "NOT_FOUND", "", ""},
		{400, 1, "Invalid request \x02", "INVALID_ARGUMENT", "", ""},
		{401, 1, "Invalid Credentials", "UNAUTHENTICATED", "", ""},
		{429, 1, "Quota exceeded for quota metric 'Write requests'", "RESOURCE_EXHAUSTED", "", "30"},
		{500, 1, "Internal error encountered.", "INTERNAL", "", ""},
		{503, 1, "The service is currently unavailable.", "UNAVAILABLE", "", "Wed, 21 Oct 2015 07:28:00 GMT"},
		{502, 0, "", "", "<html><body>Bad Gateway</body></html>", ""},
		{500, 1, strings.Repeat("é", 400), strings.Repeat("W", 10), "", ""},
		{302, 0, "", "", "", ""},
	} {
		f.Add(s.status, s.shape, s.msg, s.word, s.raw, s.retryAfter)
	}

	srv := providertest.NewFuzzServer(f)
	c := &client{
		endpoint:      srv.URL,
		spreadsheetID: fuzzSpreadsheetID,
		rng:           "Log!A1",
		account:       fuzzAccount,
		hc:            providertest.HTTPClient(f, "fuzz"),
		timeout:       10 * time.Second,
		tokens:        oauth2.StaticTokenSource(&oauth2.Token{AccessToken: fuzzAccessToken, TokenType: "Bearer"}),
		now:           time.Now,
	}
	rows := [][]string{{"2026-01-01T00:00:00Z", "error", "ElevenLabs answered 503"}}

	f.Fuzz(func(t *testing.T, status int, shape uint8, msg, word, raw, ra string) {
		status = providertest.AnswerStatus(status)
		body := raw
		if shape%2 == 1 {
			b, err := json.Marshal(map[string]any{"error": map[string]any{"code": status, "message": msg, "status": word}})
			if err != nil {
				t.Fatal(err)
			}
			// json.Marshal escapes the marks; put them back so the server sees them.
			body = strings.NewReplacer(`\u0001`, "\x01", `\u0002`, "\x02", `\u0003`, "\x03").Replace(string(b))
		}

		if status/100 != 2 {
			h := http.Header{}
			if ra != "" {
				h.Set("Retry-After", ra)
			}
			resp := &httpx.Response{Status: status, Header: h, Body: []byte(fuzzEchoer(c.appendURL()[len(c.endpoint):]).Replace(body))}
			fuzzCheckRefusal(t, "refusal", c.refusal(resp, fuzzAccessToken), status)
		}

		srv.AnswerFunc(func(r *http.Request) providertest.Answer {
			return providertest.Answer{Status: status, Body: fuzzEchoer(r.URL.RequestURI()).Replace(body),
				Header: map[string]string{"Retry-After": ra, "Content-Type": "application/json; charset=UTF-8"}}
		})
		err := c.append(context.Background(), rows)
		if status/100 == 2 {
			if err != nil {
				t.Fatalf("HTTP %d: append failed: %v", status, err)
			}
			return
		}
		fuzzCheckRefusal(t, "append", err, status)
	})
}

// fuzzEchoer puts the request's parts where an answer holds the marks.
func fuzzEchoer(requestURI string) *strings.Replacer {
	return strings.NewReplacer("\x01", fuzzSpreadsheetID, "\x02", requestURI, "\x03", fuzzAccessToken)
}

func fuzzCheckRefusal(t *testing.T, what string, err error, status int) {
	t.Helper()
	se := providertest.FuzzServiceError(t, what, err, Provider, status)
	if se.RetryAfter < 0 {
		t.Fatalf("%s: wait %v, want a wait >= 0", what, se.RetryAfter)
	}
	if (status == http.StatusForbidden || status == http.StatusNotFound) && se.Kind != fault.KindConfiguration {
		t.Fatalf("%s: HTTP %d is %v, want configuration", what, status, se.Kind)
	}
	text := err.Error()
	for name, v := range map[string]string{"error text": text, "code": se.Code} {
		if n := utf8.RuneCountInString(v); n > maxRefusalLen {
			t.Fatalf("%s: %s of %d characters, more than %d: %.300q…", what, name, n, maxRefusalLen, v)
		}
		if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
			t.Fatalf("%s: %s holds a control character at byte %d: %q", what, name, i, v)
		}
		if w, sec := providertest.SecretPiece(fuzzWindow, v, fuzzSpreadsheetID, fuzzAccessToken); w != "" {
			t.Fatalf("%s: error %q (code %q) shows %q of %q", what, text, se.Code, w, sec)
		}
	}
}
