package crm

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/provider/providertest"
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

	srv := providertest.NewFuzzServer(f)
	hook := srv.URL + fuzzWebhook
	c, err := New(Options{WebhookURL: hook, Token: secret.Secret(fuzzToken), Timeout: 10 * time.Second, HTTP: providertest.HTTPClient(f, "fuzz")})
	if err != nil {
		f.Fatal(err)
	}
	// The URL as a whole; the tokens in any piece of 12 characters.
	inv := providertest.Invariants{Provider: DefaultName, Hidden: []string{hook},
		Secrets: []string{fuzzToken, fuzzPathToken, fuzzSig}, SecretWindow: 12}
	result := call.CallResult{ContactID: "c-42", Status: "completed", Script: "Hello", CompletedAt: time.Unix(1767225600, 0).UTC()}

	f.Fuzz(func(t *testing.T, status int, body, ct, rid, xrid string) {
		status = providertest.ErrorStatus(status)

		// Directly, with what the server would send for a POST to the webhook.
		echo := strings.NewReplacer("\x01", fuzzWebhook, "\x02", "Bearer "+fuzzToken, "\x03", hook).Replace
		h := http.Header{}
		for k, v := range map[string]string{"Content-Type": ct, "Request-Id": echo(rid), "X-Request-Id": echo(xrid)} {
			if v != "" {
				h.Set(k, v)
			}
		}
		resp := &httpx.Response{Status: status, Header: h, Body: []byte(echo(body))}
		if m := message(resp); m != "" && !strings.Contains(string(resp.Body), m) && !slices.Contains(providertest.JSONStrings(string(resp.Body)), m) {
			t.Fatalf("message(%q) = %q, which the body does not hold", resp.Body, m)
		}
		inv.Check(t, "check", c.check(resp, nil), status)

		// Through the wire.
		srv.AnswerFunc(func(r *http.Request) providertest.Answer {
			echo := strings.NewReplacer("\x01", r.URL.RequestURI(), "\x02", r.Header.Get("Authorization"),
				"\x03", "http://"+r.Host+r.URL.RequestURI()).Replace
			return providertest.Answer{Status: status, Body: echo(body),
				Header: map[string]string{"Content-Type": ct, "Request-Id": echo(rid), "X-Request-Id": echo(xrid)}}
		})
		inv.Check(t, "RecordCall", c.RecordCall(context.Background(), result), status)
	})
}
