package providertest

import (
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
)

// The fuzz harness the clients' fuzz targets share (provider/elevenlabs, provider/openai,
// provider/crm, sheets): a FuzzServer sends the fuzzed answer, the target replays it through
// the real client, and Invariants (or the checks it is made of) judge the error the client
// reports. Each target keeps only what is its own: the seed corpus, how to build the client
// and the answer, and the checks no other client shares.

// Answer is what a FuzzServer sends. A header value that a server cannot send as it is (see
// ValidHeaderValue) is left out, as is an empty one.
type Answer struct {
	Status int
	Header map[string]string
	Body   string
}

// FuzzServer is a loopback server that drains each request and answers it with the Answer it
// was last given.
type FuzzServer struct {
	// URL is the server's root URL, http://127.0.0.1:port.
	URL    string
	answer atomic.Pointer[func(*http.Request) Answer]
}

// NewFuzzServer starts a FuzzServer for the lifetime of tb (a *testing.F: one server serves
// every input).
func NewFuzzServer(tb testing.TB) *FuzzServer {
	tb.Helper()
	s := &FuzzServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		a := (*s.answer.Load())(r)
		for k, v := range a.Header {
			if ValidHeaderValue(v) {
				w.Header().Set(k, v)
			}
		}
		w.WriteHeader(a.Status)
		_, _ = io.WriteString(w, a.Body)
	}))
	tb.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Answer makes every request get a.
func (s *FuzzServer) Answer(a Answer) { s.AnswerFunc(func(*http.Request) Answer { return a }) }

// AnswerFunc makes every request get what f makes of it: an answer that quotes the request.
func (s *FuzzServer) AnswerFunc(f func(r *http.Request) Answer) { s.answer.Store(&f) }

// ErrorStatus maps a fuzzed number onto every status that a server can send and that is not
// a 2xx: 300 to 599.
func ErrorStatus(n int) int { return 300 + abs(n)%300 }

// AnswerStatus maps a fuzzed number onto every status but 1xx: n itself from 200 to 599.
func AnswerStatus(n int) int {
	if n < 200 || n > 599 {
		return 200 + abs(n)%400
	}
	return n
}

func abs(n int) int {
	if n < 0 {
		if n == -n { // math.MinInt
			return 0
		}
		return -n
	}
	return n
}

// ValidHeaderValue reports whether a server can send v as a header value as it is.
func ValidHeaderValue(v string) bool {
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

// OrNull is s, or nil (JSON null) when s is empty: for error documents built from fuzzed
// fields.
func OrNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// MustJSON is v encoded; it panics when v cannot be.
func MustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// JSONTexts returns the strings and numbers of a JSON document, keys included, as far as it
// parses.
func JSONTexts(s string) []string { return jsonTokens(s, true) }

// JSONStrings returns the strings of a JSON document, keys included, as far as it parses (a
// number beyond float64 ends it).
func JSONStrings(s string) []string { return jsonTokens(s, false) }

func jsonTokens(s string, numbers bool) []string {
	var out []string
	dec := json.NewDecoder(strings.NewReader(s))
	if numbers {
		dec.UseNumber()
	}
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

// KeyLeak returns the part of key that out shows: the whole key, or a piece of at least
// window characters that the inputs do not hold except inside a whole copy of the key (so the
// client cut the key before redacting it). The inputs count with every JSON string they hold
// decoded, and with the characters that cannot be in the key dropped, since a client decodes
// JSON and drops spaces and control characters.
func KeyLeak(key string, window int, out string, inputs ...string) string {
	if strings.Contains(out, key) {
		return key
	}
	onlyKeyChars := func(r rune) rune {
		if strings.ContainsRune(key, r) {
			return r
		}
		return -1
	}
	var ref strings.Builder
	for _, in := range inputs {
		for _, s := range append([]string{in}, JSONTexts(in)...) {
			ref.WriteString(strings.Map(onlyKeyChars, strings.ReplaceAll(s, key, "")))
		}
	}
	held := ref.String()
	for i := 0; i+window <= len(key); i++ {
		if w := key[i : i+window]; strings.Contains(out, w) && !strings.Contains(held, w) {
			return w
		}
	}
	return ""
}

// SecretPiece returns the first piece of window characters of one of secrets that text holds,
// and that secret; "", "" when it holds none.
func SecretPiece(window int, text string, secrets ...string) (piece, secret string) {
	for _, sec := range secrets {
		for i := 0; i+window <= len(sec); i++ {
			if w := sec[i : i+window]; strings.Contains(text, w) {
				return w, sec
			}
		}
	}
	return "", ""
}

// CheckText fails unless v is at most maxRunes characters of valid UTF-8 without a control
// character.
func CheckText(t testing.TB, what, v string, maxRunes int) {
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

// FuzzServiceError returns err as the *fault.ServiceError of provider and status it must be.
func FuzzServiceError(t testing.TB, what string, err error, provider string, status int) *fault.ServiceError {
	t.Helper()
	var se *fault.ServiceError
	if !errors.As(err, &se) {
		t.Fatalf("%s: %v (%T) is not a *fault.ServiceError", what, err, err)
	}
	if se.Status != status || se.Provider != provider {
		t.Fatalf("%s: status %d provider %q, want %d %q", what, se.Status, se.Provider, status, provider)
	}
	return se
}

// KeyMark stands for the API key in a fuzzed answer: Invariants.EchoKey puts the key wherever
// the input holds this byte, as a server echoing the request would. One byte, so that the
// fuzzer puts the key anywhere (a raw control byte would not be valid JSON, the key is).
const KeyMark = "\x03"

// Invariants is what a provider client's error for any error answer must be, whatever the
// answer: a *fault.ServiceError of Provider and the answer's status; code, message, param and
// request id bounded (httpx.MaxMessageLen characters) printable UTF-8; error text on one line;
// and no credential in it.
type Invariants struct {
	Provider string
	// NonNegativeWait requires the error's RetryAfter to be 0 or more.
	NonNegativeWait bool
	// RequestIDBytes, when not 0, bounds the request id in bytes instead of characters (a
	// client that cuts it before redacting, which may lengthen it).
	RequestIDBytes int
	// Key, when set, must not show in any field or in the error text, whole or as a piece of
	// KeyWindow characters that the answer did not itself hold (see KeyLeak).
	Key       string
	KeyWindow int
	// No piece of SecretWindow characters of Secrets, and none of Hidden whole, may show in
	// the error text.
	Secrets      []string
	SecretWindow int
	Hidden       []string
}

// EchoKey is s with Key wherever s holds KeyMark.
func (inv Invariants) EchoKey(s string) string { return strings.ReplaceAll(s, KeyMark, inv.Key) }

// Check checks err, the client's error for an answer of status; inputs are what the answer
// held (body, header values), which KeyLeak allows. It returns the error for the target's own
// checks.
func (inv Invariants) Check(t testing.TB, what string, err error, status int, inputs ...string) *fault.ServiceError {
	t.Helper()
	se := FuzzServiceError(t, what, err, inv.Provider, status)
	if inv.NonNegativeWait && se.RetryAfter < 0 {
		t.Fatalf("%s: retry-after %v, want a wait >= 0", what, se.RetryAfter)
	}
	inv.CheckFacts(t, what, fault.Facts{Code: se.Code, Message: se.Message, Param: se.Param, RequestID: se.RequestID}, inputs...)
	text := err.Error()
	if inv.Key != "" {
		if leak := KeyLeak(inv.Key, inv.KeyWindow, text, inputs...); leak != "" {
			t.Fatalf("%s: error text %q shows %q of the API key", what, text, leak)
		}
	}
	// One line: the provider's message (or kind, status and code) and the request id.
	if strings.ContainsAny(text, "\r\n") {
		t.Fatalf("%s: error text is not one line: %q", what, text)
	}
	for _, h := range inv.Hidden {
		if strings.Contains(text, h) {
			t.Fatalf("%s: error text %q shows %q", what, text, h)
		}
	}
	if w, sec := SecretPiece(inv.SecretWindow, text, inv.Secrets...); w != "" {
		t.Fatalf("%s: error text %q shows %q of the credential %q", what, text, w, sec)
	}
	return se
}

// CheckFacts checks the code, message, param and request id of f, as Check does those of an
// error.
func (inv Invariants) CheckFacts(t testing.TB, what string, f fault.Facts, inputs ...string) {
	t.Helper()
	for name, v := range map[string]string{"code": f.Code, "message": f.Message, "param": f.Param} {
		CheckText(t, what+": "+name, v, httpx.MaxMessageLen)
	}
	if inv.RequestIDBytes == 0 {
		CheckText(t, what+": request id", f.RequestID, httpx.MaxMessageLen)
	} else if len(f.RequestID) > inv.RequestIDBytes || !utf8.ValidString(f.RequestID) || strings.IndexFunc(f.RequestID, unicode.IsControl) >= 0 {
		t.Fatalf("%s: request id %q is not bounded, printable text", what, f.RequestID)
	}
	if inv.Key == "" {
		return
	}
	for name, v := range map[string]string{"code": f.Code, "message": f.Message, "param": f.Param, "request id": f.RequestID} {
		if leak := KeyLeak(inv.Key, inv.KeyWindow, v, inputs...); leak != "" {
			t.Fatalf("%s: %s %q shows %q of the API key", what, name, v, leak)
		}
	}
}
