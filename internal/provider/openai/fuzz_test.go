package openai

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

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
)

// fuzzKey looks like a Groq key: no credential shape of package redact matches it, so only
// the registered secret can redact it; no long run of digits, so no number spells a piece.
const fuzzKey = "gsk_Rk3WpQ8nZt5XvL2mJc7YbH4dF9sG1aE6"

// fuzzWindow is the shortest piece of the key counted as a leak.
const fuzzWindow = 16

// fuzzEcho stands for the API key in a fuzzed answer: the answer sent holds the key
// wherever the input holds this byte, as a server echoing the request would. One byte, so
// that the fuzzer puts the key anywhere.
const fuzzEcho = "\x03"

func fuzzEchoKey(s string) string { return strings.ReplaceAll(s, fuzzEcho, fuzzKey) }

// fuzzAnswer is what the fuzz server answers.
type fuzzAnswer struct {
	status int
	body   []byte
	header http.Header
}

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

	var reply atomic.Pointer[fuzzAnswer]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rep := reply.Load()
		for k, vs := range rep.header {
			w.Header()[k] = vs
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
	a, err := newAPI("LLM", fuzzKey, srv.URL+"/v1", 10*time.Second, hc, nil)
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, status int, shape uint8, code, typ, message, param string, raw []byte, rid, retryAfter, should string) {
		status = 300 + fuzzAbs(status)%300 // every answer that is not a 2xx and that a server can send
		// Echo into the fields before they are encoded (JSON escapes the mark).
		body := fuzzErrorDoc(shape, fuzzEchoKey(code), fuzzEchoKey(typ), fuzzEchoKey(message), fuzzEchoKey(param), []byte(fuzzEchoKey(string(raw))))
		rid = fuzzEchoKey(rid)

		e := parseError(body)
		for name, v := range map[string]string{"code": e.code, "message": e.message, "param": e.param} {
			// Every field is a JSON string of the body, decoded.
			if v != "" && !fuzzContainsString(fuzzJSONTexts(string(body)), v) {
				t.Fatalf("parseError(%q): %s %q is not a string of the body", body, name, v)
			}
		}

		h := http.Header{"Content-Type": {"application/json"}}
		for k, v := range map[string]string{"X-Request-Id": rid, "Retry-After": retryAfter, "X-Should-Retry": should} {
			if fuzzValidHeaderValue(v) {
				h.Set(k, v)
			}
		}
		reply.Store(&fuzzAnswer{status: status, body: body, header: h})
		err := a.probe(context.Background())

		var se *fault.ServiceError
		if !errors.As(err, &se) {
			t.Fatalf("%v (%T) is not a *fault.ServiceError", err, err)
		}
		if se.Status != status || se.Provider != "LLM" || se.RetryAfter < 0 {
			t.Fatalf("status %d provider %q retry-after %v, want %d LLM and a wait >= 0", se.Status, se.Provider, se.RetryAfter, status)
		}
		inputs := []string{string(body), rid}
		for name, v := range map[string]string{"code": se.Code, "message": se.Message, "param": se.Param, "request id": se.RequestID} {
			if n := utf8.RuneCountInString(v); n > httpx.MaxMessageLen {
				t.Fatalf("%s has %d characters, more than %d: %.200q…", name, n, httpx.MaxMessageLen, v)
			}
			if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
				t.Fatalf("%s %q is not printable UTF-8 text", name, v)
			}
			if leak := fuzzKeyLeak(fuzzKey, v, inputs...); leak != "" {
				t.Fatalf("%s %q shows %q of the API key", name, v, leak)
			}
		}
		text := err.Error()
		if leak := fuzzKeyLeak(fuzzKey, text, inputs...); leak != "" {
			t.Fatalf("error text %q shows %q of the API key", text, leak)
		}
		if strings.ContainsAny(text, "\r\n") {
			t.Fatalf("error text is not one line: %q", text)
		}
	})
}

// fuzzErrorDoc is raw (shape 0) or an error document of the given shape: 1 OpenAI's
// {"error":{…}}, 2 {"error":"…"}, 3 vLLM's top-level fields, 4 {"detail":"…"}. An empty code
// or param is null.
func fuzzErrorDoc(shape uint8, code, typ, message, param string, raw []byte) []byte {
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
		doc = map[string]any{"error": map[string]any{"message": message, "type": typ, "param": orNull(param), "code": orNull(code)}}
	case 2:
		doc = map[string]any{"error": message}
	case 3:
		doc = map[string]any{"object": "error", "message": message, "type": typ, "param": orNull(param), "code": orNull(code)}
	case 4:
		doc = map[string]any{"detail": message}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return b
}

func fuzzContainsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
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
