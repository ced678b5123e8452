package elevenlabs

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/provider/providertest"
	"github.com/callagent/resilience/internal/secret"
)

// fuzzKey has the shape of an ElevenLabs key (sk_ and 48 hex digits), with no long run of
// digits, so no window of it can be spelt by a number in a body.
const fuzzKey = "sk_3f9a61c0d84b27e5a1f03c96b8d4e27a0c5f19b3d6e84a72"

// fuzzEcho stands for the API key in a fuzzed answer (see fuzzInvariants.EchoKey).
const fuzzEcho = providertest.KeyMark

// fuzzInvariants are the checks of the shared harness: no piece of 16 characters of the key
// is counted as a leak; the request id is bounded after redaction, since requestID keeps 128
// bytes and redaction may lengthen a credential shape ("token=x" becomes "token=<redacted>").
var fuzzInvariants = providertest.Invariants{Provider: DefaultName, RequestIDBytes: 3 * 128, Key: fuzzKey, KeyWindow: 16}

// FuzzParseError feeds arbitrary error answers (status, body, request id headers) to the
// client: parseError directly, the client's failure facts, and a real Probe against a server
// that sends the answer. The body is raw bytes (shape 0) or one of ElevenLabs' error shapes
// built from fuzzed fields (see fuzzErrorDoc), so the fuzzer can reach every field. Whatever the
// answer:
//   - nothing panics;
//   - code, message and param are bounded (MaxMessageLen characters), valid UTF-8 and free of
//     control characters, and the request id is bounded;
//   - the API key never appears in any field or in the error text, neither whole nor as a
//     piece the answer did not itself hold outside a whole copy of the key (a key cut before
//     it was redacted), wherever the answer echoes it (fuzzEcho marks where);
//   - the error is a *fault.ServiceError of the answer's status, its text on one line.
func FuzzParseError(f *testing.F) {
	for _, s := range []struct {
		status        int
		body          string
		rid, xrid, ct string
	}{
		{401, `{"detail":{"status":"invalid_api_key","message":"Invalid API key: ` + fuzzKey + `"}}`, "req-1", "", "application/json"},
		{401, `{"detail":{"status":"invalid_api_key","message":"Invalid API key: ` + fuzzEcho + ` (xi-api-key=` + fuzzEcho + `)","request_id":"r-` + fuzzEcho + `"}}`, "", "", "application/json"},
		{401, `{"detail":{"type":"authentication_error","code":"invalid_api_key","message":"Invalid API key","param":null,"request_id":"` + fuzzKey + `"}}`, "", "", "application/json"},
		{422, `{"detail":[{"loc":["body","text"],"msg":"field required","type":"value_error.missing"},{"loc":["body",0],"msg":"bad","type":"x"}]}`, "", "", "application/json"},
		{422, `{"detail":[{"loc":["header","xi-api-key"],"msg":"key ` + fuzzKey + ` is malformed","input":"` + fuzzKey + `"}]}`, "", "", "application/json"},
		{400, `{"detail":{"type":"validation_error","code":"invalid_parameters","status":"invalid_parameters","message":"The model eleven_v3 does not support output format ulaw_8000.","request_id":"3c807fc4c3a1705f9638ecc764a91c01","param":"model_id"}}`, "", "", "application/json"},
		{400, `{"detail":{"code":"bad","message":"m","param":3}}`, "", "", "application/json"},
		{429, `{"detail":{"code":"concurrent_limit_exceeded","status":"rate_limit_exceeded","message":"Too many"}}`, "from-header", "", "application/json"},
		{402, `{"detail":{"status":"payment_required","message":"Free users cannot use library voices via the API."}}`, "", "", "application/json"},
		{404, `{"detail":"Not Found"}`, "", "", "application/json"},
		{401, `{"detail":{"code":"invalid_api_key","message":""}}`, "", "", "application/json"},
		{429, `{"detail":{"type":"rate_limit_error","status":"","code":null}}`, "req_" + fuzzKey[3:30], "", "application/json"},
		{502, `<html>bad gateway</html>`, "", "edge-42", "text/html"},
		{503, ``, "a\tb" + strings.Repeat("r", 300), "", ""},
		{503, ``, strings.Repeat("r", 40) + fuzzEcho + strings.Repeat("r", 40), "", ""},
		{503, `{"detail":{"message":"` + strings.Repeat("é", 400) + `\u0000\n\t"}}`, "", "", "application/json"},
		{500, `{"detail":{"message":"\ud800 bad surrogate \\u0000","param":{"a":1}}}`, "Root=1-67891233-abcdef012345678912345678;Parent=463ac35c9f6413ad;Sampled=1", "", "application/json"},
		{401, `{"detail":{"status":"invalid_api_key","message":"xi-api-key=` + fuzzKey[:20] + `"}}`, "", "", "application/json"},
		{301, ``, "", "", ""},
		{400, `{"detail":[]}`, "", "", "application/json"},
		{400, `{"DETAIL":{"Code":"x","Message":"upper-case keys"},"detail":null}`, "", "", "application/json"},
		{418, `{"detail":[{"loc":[["nested"],{"k":"v"},null,1.5e300],"msg":"odd loc"}]}`, "", "", "application/json"},
	} {
		f.Add(s.status, uint8(0), "", "", "", "", []byte(s.body), s.rid, s.xrid, s.ct)
	}
	for _, s := range []struct {
		status                      int
		shape                       uint8
		code, message, param, bodID string
		rid                         string
	}{
		{401, 1, "invalid_api_key", "Invalid API key: " + fuzzEcho, "", "r-" + fuzzEcho, ""},
		{401, 1, "invalid_api_key", "", "", "", strings.Repeat("r", 100)},
		{400, 1, "invalid_parameters", "The model eleven_v3 does not support output format ulaw_8000.", "model_id", "3c807fc4c3a1705f9638ecc764a91c01", ""},
		{429, 1, "concurrent_limit_exceeded", "Too many concurrent requests", "", "", "req-9"},
		{401, 2, "invalid_api_key", "Invalid API key", "", "", ""},
		{402, 2, "payment_required", "Free users cannot use library voices via the API.", "", "", ""},
		{422, 3, "value_error.missing", "field required", "text", "", ""},
		{422, 3, "enum", "Input should be 'mp3_44100_128' or 'ulaw_8000'", "output_format", "", ""},
		{404, 4, "", "Not Found", "", "", ""},
	} {
		f.Add(s.status, s.shape, s.code, s.message, s.param, s.bodID, []byte(nil), s.rid, "", "application/json")
	}

	srv := providertest.NewFuzzServer(f)
	c, err := New(Options{APIKey: secret.Secret(fuzzKey), VoiceID: "voice-1", BaseURL: srv.URL, HTTP: providertest.HTTPClient(f, "fuzz")})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, status int, shape uint8, code, message, param, bodyID string, raw []byte, rid, xrid, ct string) {
		status = providertest.ErrorStatus(status)
		// Echo into the fields before they are encoded (JSON escapes the mark).
		echo := fuzzInvariants.EchoKey
		body := fuzzErrorDoc(shape, echo(code), echo(message), echo(param), echo(bodyID), []byte(echo(string(raw))))
		rid, xrid = echo(rid), echo(xrid)
		_ = parseError(body) // must not panic on its own

		h := http.Header{}
		headers := map[string]string{RequestIDHeader: rid, "X-Request-Id": xrid, "Content-Type": ct}
		for k, v := range headers {
			if v != "" {
				h.Set(k, v)
			}
		}
		facts, failed := c.failure(&httpx.Response{Status: status, Header: h, Body: body}, nil)
		if !failed {
			t.Fatalf("HTTP %d is not a failure", status)
		}
		inputs := []string{string(body), rid, xrid}
		fuzzInvariants.CheckFacts(t, "facts", facts, inputs...)
		fuzzInvariants.Check(t, "classified facts", fault.Classify(facts), status, inputs...)

		// The same answer through the wire.
		srv.Answer(providertest.Answer{Status: status, Header: headers, Body: string(body)})
		fuzzInvariants.Check(t, "Probe", c.Probe(context.Background()), status, inputs...)
	})
}

// fuzzErrorDoc is raw (shape 0) or an ElevenLabs error document of the given shape: 1 the
// current {"detail":{"type","code","message","param","request_id"}}, 2 the legacy
// {"detail":{"status","message"}}, 3 the 422 list {"detail":[{"loc":["body",param],"msg",
// "type"}]}, 4 {"detail":"…"}. An empty param or request id is null.
func fuzzErrorDoc(shape uint8, code, message, param, requestID string, raw []byte) []byte {
	var doc any
	switch shape % 5 {
	case 0:
		return raw
	case 1:
		doc = map[string]any{"detail": map[string]any{"type": "validation_error", "code": code, "message": message,
			"param": providertest.OrNull(param), "request_id": providertest.OrNull(requestID)}}
	case 2:
		doc = map[string]any{"detail": map[string]any{"status": code, "message": message}}
	case 3:
		doc = map[string]any{"detail": []any{map[string]any{"loc": []any{"body", param}, "msg": message, "type": code}}}
	case 4:
		doc = map[string]any{"detail": message}
	}
	return providertest.MustJSON(doc)
}
