package sheets

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"

	"golang.org/x/oauth2"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
)

// Google's status word goes into the message and the code only when it looks like one, and an
// echoed access token is redacted. Fuzz crashers d0f547cd64952741 and f7b9c44ca831b918 (a DEL
// as the status word).
func TestRefusalCleansTheStatusWordAndToken(t *testing.T) {
	t.Parallel()
	const (
		id    = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"
		token = "ya29.a0AfB_byC8Qw3Er5Ty7Ui9Op1As2Df4Gh6Jk8Lz0Xc"
	)
	c := &client{spreadsheetID: id, rng: "Log!A1", account: "bot@p.iam.gserviceaccount.com", now: time.Now}
	for _, tt := range []struct {
		name    string
		status  int
		msg     string
		word    string
		code    string // the error's code
		inText  string // the error text must hold it
		outText string // and must not
	}{
		{"DEL as status word", 400, "0", "\x7f", "", "(HTTP 400)", "\x7f"},
		{"DEL as status word, 403", 403, "0", "\x7f", "", "share the spreadsheet", "\x7f"},
		{"lower case", 400, "m", "invalid_argument", "", "(HTTP 400)", "invalid_argument"},
		{"too long", 400, "m", strings.Repeat("A", 65), "", "(HTTP 400)", strings.Repeat("A", 65)},
		{"the token as a word", 400, "m", token, "", "(HTTP 400)", token[:12]},
		{"ansi escape", 500, "m", "\x1b[2J", "", "(HTTP 500)", "\x1b"},
		{"status word kept", 403, "The caller does not have permission", "PERMISSION_DENIED", "PERMISSION_DENIED", "(HTTP 403, PERMISSION_DENIED)", ""},
		{"precondition still diagnosed", 400, "not supported", "FAILED_PRECONDITION", "FAILED_PRECONDITION", "must name a Google Sheet", ""},
		{"echoed access token", 401, "Invalid Credentials: Bearer " + token + " for " + id, "UNAUTHENTICATED", "UNAUTHENTICATED", "Invalid Credentials", token[:12]},
		{"echoed bare access token", 400, "token " + token + " refused", "INVALID_ARGUMENT", "INVALID_ARGUMENT", "token <redacted> refused", token[:12]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body, err := json.Marshal(map[string]any{"error": map[string]any{"code": tt.status, "message": tt.msg, "status": tt.word}})
			if err != nil {
				t.Fatal(err)
			}
			err = c.refusal(&httpx.Response{Status: tt.status, Header: http.Header{}, Body: body}, token)
			var se *fault.ServiceError
			if !errors.As(err, &se) {
				t.Fatalf("%v is not a *fault.ServiceError", err)
			}
			text := err.Error()
			if se.Code != tt.code {
				t.Errorf("code %q, want %q", se.Code, tt.code)
			}
			if strings.ContainsFunc(text, unicode.IsControl) || !strings.Contains(text, tt.inText) ||
				(tt.outText != "" && strings.Contains(text, tt.outText)) || strings.Contains(text, id) {
				t.Errorf("error text %q: want %q in it, not %q, no control character, no sheet id", text, tt.inText, tt.outText)
			}
		})
	}
}

// The token endpoint's error code is kept only when it looks like an OAuth error code.
func TestTokenErrorCleansTheCode(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"error":"invalid_grant"}`:                   "invalid_grant",
		`{"error":"\u001b[31minvalid\u0000"}`:         "",
		`{"error":"not a code at all"}`:               "",
		`{"error":"` + strings.Repeat("x", 65) + `"}`: "",
	} {
		err := tokenError(&oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, Body: []byte(body)})
		text := err.Error()
		if strings.ContainsFunc(text, unicode.IsControl) || (want != "" && !strings.Contains(text, ", "+want+")")) ||
			(want == "" && strings.Contains(text, ", ")) {
			t.Errorf("body %s: error %q, want code %q", body, text, want)
		}
	}
}
