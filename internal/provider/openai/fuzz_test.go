package openai

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/provider/providertest"
)

// fuzzKey looks like a Groq key: no credential shape of package redact matches it, so only
// the registered secret can redact it; no long run of digits, so no number spells a piece.
const fuzzKey = "gsk_Rk3WpQ8nZt5XvL2mJc7YbH4dF9sG1aE6"

// fuzzEcho stands for the API key in a fuzzed answer (see fuzzInvariants.EchoKey).
const fuzzEcho = providertest.KeyMark

// fuzzInvariants are the checks of the shared harness; no piece of 16 characters of the key
// is counted as a leak.
var fuzzInvariants = providertest.Invariants{Provider: "LLM", NonNegativeWait: true, Key: fuzzKey, KeyWindow: 16}

// FuzzParseError feeds arbitrary error answers to an OpenAI-compatible client: parseError
// directly, then a real call (GET {base}/models, the probe) against a server that sends the
// answer with the fuzzed x-request-id, Retry-After and x-should-retry. The body is raw bytes
// (shape 0) or one of the error shapes built from fuzzed fields (see fuzzErrorDoc), so the fuzzer
// can reach every field. Whatever the answer:
//   - nothing panics;
//   - parseError only returns text the body holds;
//   - the classified error's code, message, param and request id are bounded
//     (httpx.MaxMessageLen characters), valid UTF-8 and free of control characters, its
//     text is one line, and its wait is not negative;
//   - the API key never appears in any field or in the error text, neither whole nor as a
//     piece the answer did not itself hold outside a whole copy of the key, wherever the
//     answer echoes it (fuzzEcho marks where).
func FuzzParseError(f *testing.F) {
	for _, s := range []struct {
		status                  int
		body                    string
		rid, retryAfter, should string
	}{
		{401, `{"error":{"message":"Incorrect API key provided: ` + fuzzKey + `.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, fuzzKey, "", ""},
		{400, `{"error":{"message":"m","type":"invalid_request_error","param":["model"],"code":null}}`, "", "", ""},
		{400, `{"object":"error","message":"m","type":"BadRequestError","param":"temperature","code":400}`, "", "", ""},
		{422, `{"detail":[{"loc":["body","model"],"msg":"field required"}]}`, "", "", ""},
		{503, `<html><body>upstream connect error</body></html>`, "edge-1", "Wed, 21 Oct 2015 07:28:00 GMT", ""},
		{500, ``, strings.Repeat("r", 400), "-5", "maybe"},
		{400, `{"error":{"message":"` + strings.Repeat("é", 400) + `\u0000\n\t","param":"` + fuzzKey[:24] + `"}}`, "", "1e9", ""},
		{400, `{"error":{"message":"bad surrogate \ud800","code":{"nested":true}},"message":"top"}`, "", "", ""},
		{400, `{"error": "` + fuzzKey + `", "message":"x"}`, "", "", ""},
		{302, ``, "", "", ""},
	} {
		f.Add(s.status, uint8(0), "", "", "", "", []byte(s.body), s.rid, s.retryAfter, s.should)
	}
	for _, s := range []struct {
		status                      int
		shape                       uint8
		code, typ, message, param   string
		rid, retryAfter, shouldRetr string
	}{
		{401, 1, "invalid_api_key", "invalid_request_error", "Incorrect API key provided: " + fuzzEcho + ".", "", "req-" + fuzzEcho, "", ""},
		{401, 1, "invalid_api_key", "invalid_request_error", "", "", strings.Repeat("r", 250) + fuzzEcho, "", ""},
		{429, 1, "", "insufficient_quota", "You exceeded your current quota", "", "req_123", "", "false"},
		{429, 1, "rate_limit_exceeded", "requests", "Rate limit reached", "", "req_1", "20", "true"},
		{400, 1, "", "invalid_request_error", "m", "max_tokens", "", "", ""},
		{400, 1, "unsupported_parameter", "invalid_request_error", "Unsupported parameter: 'max_tokens'", "max_tokens", "", "", ""},
		{404, 2, "", "", "model 'llama3' not found, try pulling it first", "", "", "", ""},
		{400, 3, "", "BadRequestError", "m", "temperature", "", "", ""},
		{422, 4, "", "", "Not Found", "", "", "", ""},
		{403, 1, "", "", "You have insufficient permissions for this operation. Missing scopes: api.model.read", "", "", "", ""},
	} {
		f.Add(s.status, s.shape, s.code, s.typ, s.message, s.param, []byte(nil), s.rid, s.retryAfter, s.shouldRetr)
	}

	srv := providertest.NewFuzzServer(f)
	a, err := newAPI("LLM", fuzzKey, srv.URL+"/v1", 10*time.Second, providertest.HTTPClient(f, "fuzz"), nil)
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, status int, shape uint8, code, typ, message, param string, raw []byte, rid, retryAfter, should string) {
		status = providertest.ErrorStatus(status)
		// Echo into the fields before they are encoded (JSON escapes the mark).
		echo := fuzzInvariants.EchoKey
		body := fuzzErrorDoc(shape, echo(code), echo(typ), echo(message), echo(param), []byte(echo(string(raw))))
		rid = echo(rid)

		e := parseError(body)
		for name, v := range map[string]string{"code": e.code, "message": e.message, "param": e.param} {
			// Every field is a JSON string of the body, decoded.
			if v != "" && !slices.Contains(providertest.JSONTexts(string(body)), v) {
				t.Fatalf("parseError(%q): %s %q is not a string of the body", body, name, v)
			}
		}

		srv.Answer(providertest.Answer{Status: status, Body: string(body), Header: map[string]string{
			"Content-Type": "application/json", "X-Request-Id": rid, "Retry-After": retryAfter, "X-Should-Retry": should}})
		fuzzInvariants.Check(t, "probe", a.probe(context.Background()), status, string(body), rid)
	})
}

// fuzzErrorDoc is raw (shape 0) or an error document of the given shape: 1 OpenAI's
// {"error":{…}}, 2 {"error":"…"}, 3 vLLM's top-level fields, 4 {"detail":"…"}. An empty code
// or param is null.
func fuzzErrorDoc(shape uint8, code, typ, message, param string, raw []byte) []byte {
	var doc any
	switch shape % 5 {
	case 0:
		return raw
	case 1:
		doc = map[string]any{"error": map[string]any{"message": message, "type": typ,
			"param": providertest.OrNull(param), "code": providertest.OrNull(code)}}
	case 2:
		doc = map[string]any{"error": message}
	case 3:
		doc = map[string]any{"object": "error", "message": message, "type": typ,
			"param": providertest.OrNull(param), "code": providertest.OrNull(code)}
	case 4:
		doc = map[string]any{"detail": message}
	}
	return providertest.MustJSON(doc)
}
