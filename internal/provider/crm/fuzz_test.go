package crm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/secret"
)

// The CRM's credentials in the fuzz target: a bearer token, and a webhook URL that carries a
// token in its path and another in its query, as hosted webhooks (Zapier, Make) do.
const (
	fuzzToken     = "crmtok_Hh4Jj8Kk2Ll6Mm0Nn3Pp7Qq1Rr5Ss9"
	fuzzPathToken = "Pz8Kq2Wm5Xr9Tn3Vb7Lc1Yd6Hf"
	fuzzSig       = "Sg4Nd8Rt2Lp6Qw0Zx3Cv7Bm1Ka"
	fuzzWebhook   = "/hooks/catch/123/" + fuzzPathToken + "/?sig=" + fuzzSig
)

// The fuzz server echoes parts of the request where the fuzzed answer (body or request id)
// holds a mark, as a receiver that quotes the request would (Fastify's default 404,
// {"message":"Route POST:/hooks/… not found"}, quotes the path): \x01 the request URI (path
// and query), \x02 the Authorization header, \x03 the whole webhook URL. One byte each, so
// the fuzzer puts them anywhere.

// fuzzWindow is the shortest piece of a secret counted as a leak.
const fuzzWindow = 12

type fuzzAnswer struct {
	status        int
	body          string
	ct, rid, xrid string
}

// FuzzErrorAnswer feeds arbitrary error answers (status, body, content type, request id
// headers) to the CRM client: message() and check() directly, and a real RecordCall against
// a server that sends the answer, echoing parts of the request where the answer asks for
// them. Whatever the answer:
//   - nothing panics, and the error is a *fault.ServiceError of the answer's status;
//   - message and request id are bounded (httpx.MaxMessageLen characters), valid UTF-8 and
//     free of control characters, and the error text is one line;
//   - no credential — the token, the webhook URL, its path token or its query signature —
//     appears in the error, even when the answer quotes the request.
func FuzzErrorAnswer(f *testing.F) {
	for _, s := range []struct {
		status             int
		body, ct, rid, xid string
	}{
		{400, `{"message":"contact_id is required"}`, "application/json", "", "req-1"},
		{401, `{"error":"token \x02 rejected for \x03"}`, "application/json", "", ""},
		{401, `{"error":{"message":"invalid bearer token"}}`, "application/json", "r-2", ""},
		{409, `{"detail":"a request with this Idempotency-Key is in progress"}`, "application/problem+json", "", ""},
		{422, `{"detail":[{"loc":["body","status"],"msg":"bad"}]}`, "application/json", "", ""},
		{404, `{"message":"Route POST:/hooks/catch/999/other not found","error":"Not Found","statusCode":404}`, "application/json", "", ""},
		{500, "Internal Server Error\n", "text/plain", "", ""},
		{500, "upstream said:\x00\x1b[31m red \u0085 next", "text/plain; charset=utf-8", "", ""},
		{502, "<html><body>Bad Gateway</body></html>", "text/html", "edge-42", ""},
		{503, strings.Repeat("x", 2000), "text/plain", strings.Repeat("r", 201), ""},
		{503, `{"message":"` + strings.Repeat("é", 400) + `"}`, "application/json", "", "rid \t with spaces"},
		{429, `{"message":"slow down"}`, "application/json", "", strings.Repeat("q", 150) + "\x02"},
		{301, ``, "", "", ""},
	} {
		f.Add(s.status, s.body, s.ct, s.rid, s.xid)
	}

	var reply atomic.Pointer[fuzzAnswer]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rep := reply.Load()
		echo := func(s string) string {
			return strings.NewReplacer("\x01", r.URL.RequestURI(), "\x02", r.Header.Get("Authorization"),
				"\x03", "http://"+r.Host+r.URL.RequestURI()).Replace(s)
		}
		for k, v := range map[string]string{"Content-Type": rep.ct, "Request-Id": echo(rep.rid), "X-Request-Id": echo(rep.xrid)} {
			if fuzzValidHeaderValue(v) {
				w.Header().Set(k, v)
			}
		}
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, echo(rep.body))
	}))
	f.Cleanup(srv.Close)
	hc, err := httpx.New(httpx.Options{Version: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(hc.CloseIdleConnections)
	hook := srv.URL + fuzzWebhook
	c, err := New(Options{WebhookURL: hook, Token: secret.Secret(fuzzToken), Timeout: 10 * time.Second, HTTP: hc})
	if err != nil {
		f.Fatal(err)
	}
	// The URL as a whole; the tokens in any piece of fuzzWindow characters.
	secrets := []string{fuzzToken, fuzzPathToken, fuzzSig}
	result := call.CallResult{ContactID: "c-42", Status: "completed", Script: "Hello", CompletedAt: time.Unix(1767225600, 0).UTC()}

	f.Fuzz(func(t *testing.T, status int, body, ct, rid, xrid string) {
		status = 300 + fuzzAbs(status)%300 // every answer that is not a 2xx and that a server can send

		// Directly, with what the server would send for a POST to the webhook.
		echo := strings.NewReplacer("\x01", fuzzWebhook, "\x02", "Bearer "+fuzzToken, "\x03", hook).Replace
		h := http.Header{}
		for k, v := range map[string]string{"Content-Type": ct, "Request-Id": echo(rid), "X-Request-Id": echo(xrid)} {
			if v != "" {
				h.Set(k, v)
			}
		}
		resp := &httpx.Response{Status: status, Header: h, Body: []byte(echo(body))}
		if m := message(resp); m != "" && !strings.Contains(string(resp.Body), m) && !fuzzContainsString(fuzzJSONTexts(string(resp.Body)), m) {
			t.Fatalf("message(%q) = %q, which the body does not hold", resp.Body, m)
		}
		fuzzCheckCRMError(t, "check", c.check(resp, nil), status, hook, secrets)

		// Through the wire.
		reply.Store(&fuzzAnswer{status: status, body: body, ct: ct, rid: rid, xrid: xrid})
		fuzzCheckCRMError(t, "RecordCall", c.RecordCall(context.Background(), result), status, hook, secrets)
	})
}

func fuzzCheckCRMError(t *testing.T, what string, err error, status int, hook string, secrets []string) {
	t.Helper()
	var se *fault.ServiceError
	if !errors.As(err, &se) {
		t.Fatalf("%s: %v (%T) is not a *fault.ServiceError", what, err, err)
	}
	if se.Status != status || se.Provider != DefaultName {
		t.Fatalf("%s: status %d provider %q, want %d %q", what, se.Status, se.Provider, status, DefaultName)
	}
	for name, v := range map[string]string{"message": se.Message, "request id": se.RequestID, "code": se.Code, "param": se.Param} {
		if n := utf8.RuneCountInString(v); n > httpx.MaxMessageLen {
			t.Fatalf("%s: %s has %d characters, more than %d", what, name, n, httpx.MaxMessageLen)
		}
		if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			t.Fatalf("%s: %s %q is not printable UTF-8 text", what, name, v)
		}
	}
	text := err.Error()
	if strings.ContainsAny(text, "\r\n") {
		t.Fatalf("%s: error text is not one line: %q", what, text)
	}
	if strings.Contains(text, hook) {
		t.Fatalf("%s: error text %q shows the webhook URL", what, text)
	}
	for _, sec := range secrets {
		for i := 0; i+fuzzWindow <= len(sec); i++ {
			if w := sec[i : i+fuzzWindow]; strings.Contains(text, w) {
				t.Fatalf("%s: error text %q shows %q of the credential %q", what, text, w, sec)
			}
		}
	}
}

func fuzzContainsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// fuzzJSONTexts returns the strings of a JSON document, keys included, as far as it parses.
func fuzzJSONTexts(s string) []string {
	var out []string
	dec := json.NewDecoder(strings.NewReader(s))
	for {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		if v, ok := tok.(string); ok {
			out = append(out, v)
		}
	}
}

// fuzzValidHeaderValue reports whether a server can send v as a header value as it is.
func fuzzValidHeaderValue(v string) bool {
	if v == "" || v != strings.TrimSpace(v) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func fuzzAbs(n int) int {
	if n < 0 {
		if n == -n { // math.MinInt
			return 0
		}
		return -n
	}
	return n
}
