package elevenlabs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/secret"
)

// fuzzKey has the shape of an ElevenLabs key (sk_ and 48 hex digits), with no long run of
// digits, so no window of it can be spelt by a number in a body.
const fuzzKey = "sk_3f9a61c0d84b27e5a1f03c96b8d4e27a0c5f19b3d6e84a72"

// fuzzWindow is the shortest piece of the key counted as a leak.
const fuzzWindow = 16

// maxRequestIDLen bounds the request id after redaction: requestID keeps 128 bytes, and
// redaction may lengthen a credential shape ("token=x" becomes "token=<redacted>").
const maxRequestIDLen = 3 * 128

// fuzzEcho stands for the API key in a fuzzed answer: the answer sent holds the key
// wherever the input holds this byte, as a server echoing the request would. One byte, so
// that the fuzzer puts the key anywhere (a raw control byte would not be valid JSON, the
// key is).
const fuzzEcho = "\x03"

func fuzzEchoKey(s string) string { return strings.ReplaceAll(s, fuzzEcho, fuzzKey) }

// fuzzAnswer is what the fuzz server answers.
type fuzzAnswer struct {
	status                     int
	body                       []byte
	requestID, xRequestID, ctt string
}

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
//   - the error is a *fault.ServiceError of the answer's status.
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

	var reply atomic.Pointer[fuzzAnswer]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rep := reply.Load()
		if rep.requestID != "" {
			w.Header().Set(RequestIDHeader, rep.requestID)
		}
		if rep.xRequestID != "" {
			w.Header().Set("X-Request-Id", rep.xRequestID)
		}
		if rep.ctt != "" {
			w.Header().Set("Content-Type", rep.ctt)
		}
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.body)
	}))
	f.Cleanup(srv.Close)
	hc, err := httpx.New(httpx.Options{Version: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(hc.CloseIdleConnections)
	c, err := New(Options{APIKey: secret.Secret(fuzzKey), VoiceID: "voice-1", BaseURL: srv.URL, HTTP: hc})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, status int, shape uint8, code, message, param, bodyID string, raw []byte, rid, xrid, ct string) {
		status = 300 + fuzzAbs(status)%300 // every answer that is not a 2xx and that a server can send
		// Echo into the fields before they are encoded (JSON escapes the mark).
		body := fuzzErrorDoc(shape, fuzzEchoKey(code), fuzzEchoKey(message), fuzzEchoKey(param), fuzzEchoKey(bodyID), []byte(fuzzEchoKey(string(raw))))
		rid, xrid = fuzzEchoKey(rid), fuzzEchoKey(xrid)
		_ = parseError(body) // must not panic on its own

		h := http.Header{}
		for k, v := range map[string]string{RequestIDHeader: rid, "X-Request-Id": xrid, "Content-Type": ct} {
			if v != "" {
				h.Set(k, v)
			}
		}
		facts, failed := c.failure(&httpx.Response{Status: status, Header: h, Body: body}, nil)
		if !failed {
			t.Fatalf("HTTP %d is not a failure", status)
		}
		inputs := []string{string(body), rid, xrid}
		fuzzCheckFacts(t, "facts", facts, inputs)
		fuzzCheckError(t, "classified facts", fault.Classify(facts), status, inputs)

		// The same answer through the wire. The server can only send valid header values.
		rep := &fuzzAnswer{status: status, body: body}
		if fuzzValidHeaderValue(rid) {
			rep.requestID = rid
		}
		if fuzzValidHeaderValue(xrid) {
			rep.xRequestID = xrid
		}
		if fuzzValidHeaderValue(ct) {
			rep.ctt = ct
		}
		reply.Store(rep)
		err := c.Probe(context.Background())
		fuzzCheckError(t, "Probe", err, status, inputs)
	})
}

// fuzzErrorDoc is raw (shape 0) or an ElevenLabs error document of the given shape: 1 the
// current {"detail":{"type","code","message","param","request_id"}}, 2 the legacy
// {"detail":{"status","message"}}, 3 the 422 list {"detail":[{"loc":["body",param],"msg",
// "type"}]}, 4 {"detail":"…"}. An empty param or request id is null.
func fuzzErrorDoc(shape uint8, code, message, param, requestID string, raw []byte) []byte {
	orNull := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var doc any
	switch shape % 5 {
	case 0:
		return raw
	case 1:
		doc = map[string]any{"detail": map[string]any{"type": "validation_error", "code": code, "message": message,
			"param": orNull(param), "request_id": orNull(requestID)}}
	case 2:
		doc = map[string]any{"detail": map[string]any{"status": code, "message": message}}
	case 3:
		doc = map[string]any{"detail": []any{map[string]any{"loc": []any{"body", param}, "msg": message, "type": code}}}
	case 4:
		doc = map[string]any{"detail": message}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return b
}

func fuzzCheckFacts(t *testing.T, what string, f fault.Facts, inputs []string) {
	t.Helper()
	for name, v := range map[string]string{"code": f.Code, "message": f.Message, "param": f.Param} {
		fuzzCheckText(t, what+" "+name, v, httpx.MaxMessageLen)
	}
	if len(f.RequestID) > maxRequestIDLen || !utf8.ValidString(f.RequestID) || strings.IndexFunc(f.RequestID, unicode.IsControl) >= 0 {
		t.Fatalf("%s: request id %q is not bounded, printable text", what, f.RequestID)
	}
	for name, v := range map[string]string{"code": f.Code, "message": f.Message, "param": f.Param, "request id": f.RequestID} {
		if leak := fuzzKeyLeak(fuzzKey, v, inputs...); leak != "" {
			t.Fatalf("%s: %s %q shows %q of the API key", what, name, v, leak)
		}
	}
}

func fuzzCheckText(t *testing.T, what, v string, maxRunes int) {
	t.Helper()
	if n := utf8.RuneCountInString(v); n > maxRunes {
		t.Fatalf("%s has %d characters, more than %d: %.200q…", what, n, maxRunes, v)
	}
	if !utf8.ValidString(v) {
		t.Fatalf("%s is not valid UTF-8: %q", what, v)
	}
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		t.Fatalf("%s holds a control character at byte %d: %q", what, i, v)
	}
}

func fuzzCheckError(t *testing.T, what string, err error, status int, inputs []string) {
	t.Helper()
	var se *fault.ServiceError
	if !errors.As(err, &se) {
		t.Fatalf("%s: %v (%T) is not a *fault.ServiceError", what, err, err)
	}
	if se.Status != status || se.Provider != DefaultName {
		t.Fatalf("%s: status %d provider %q, want %d %q", what, se.Status, se.Provider, status, DefaultName)
	}
	fuzzCheckFacts(t, what, fault.Facts{Code: se.Code, Message: se.Message, Param: se.Param, RequestID: se.RequestID}, inputs)
	text := err.Error()
	if leak := fuzzKeyLeak(fuzzKey, text, inputs...); leak != "" {
		t.Fatalf("%s: error text %q shows %q of the API key", what, text, leak)
	}
	// One line: the provider's message (or kind, status and code) and the request id.
	if strings.ContainsAny(text, "\r\n") {
		t.Fatalf("%s: error text is not one line: %q", what, text)
	}
}

// fuzzKeyLeak returns the part of key that out shows: the whole key, or a piece of at least
// fuzzWindow characters that the inputs do not hold except inside a whole copy of the key
// (so the client cut the key before redacting it). The inputs count with every JSON string
// they hold decoded, and with the characters that cannot be in the key dropped, since the
// client decodes JSON and drops spaces and control characters.
func fuzzKeyLeak(key, out string, inputs ...string) string {
	if strings.Contains(out, key) {
		return key
	}
	var ref strings.Builder
	for _, in := range inputs {
		for _, s := range append([]string{in}, fuzzJSONTexts(in)...) {
			ref.WriteString(fuzzOnlyKeyChars(key, strings.ReplaceAll(s, key, "")))
		}
	}
	held := ref.String()
	for i := 0; i+fuzzWindow <= len(key); i++ {
		if w := key[i : i+fuzzWindow]; strings.Contains(out, w) && !strings.Contains(held, w) {
			return w
		}
	}
	return ""
}

// fuzzJSONTexts returns the strings and numbers of a JSON document, keys included, as far as it
// parses.
func fuzzJSONTexts(s string) []string {
	var out []string
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		switch v := tok.(type) {
		case string:
			out = append(out, v)
		case json.Number:
			out = append(out, v.String())
		}
	}
}

func fuzzOnlyKeyChars(key, s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(key, r) {
			return r
		}
		return -1
	}, s)
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
	return !bytes.ContainsAny([]byte(v), "\r\n")
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
