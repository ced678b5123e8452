package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/redact"
)

// trickyStrings exercise every branch of appendString and of the redactor.
var trickyStrings = []string{
	"", "plain", `quote " and backslash \`, "<html> & 'apos'", "tab\there\nnewline\r\x00\x01\x1f\x7f",
	"\b\f\v\x1b[31mred", "é ü 日本語 🎉", "\u2028\u2029", "\ufffd", "\xff", "a\xc3", "\xc3\x28", "\xed\xa0\x80",
	"\xf4\x90\x80\x80", "\xe2\x80", "\xe2\x80\xa8x", "+14155550123", "call +14155550123 now",
	"Authorization: Bearer abc.def-ghi", `{"xi-api-key":"el-key-0123456789abcdef"}`, "sk-proj-AbCdEfGhIjKlMnOpQrStUv",
	"https://user:pa55@example.com/x", "bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage",
	"el-key-0123456789abcdef", "ElevenLabs", "LLM (fallback)", "service_unavailable", "OPEN",
	strings.Repeat("x", 100), "ſecret=1234 K", "Step 2: Converting text to speech with ElevenLabs\n",
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	cases := append([]string(nil), trickyStrings...)
	for b := range 256 {
		cases = append(cases, string([]byte{byte(b)}), "a"+string([]byte{byte(b)})+"z")
	}
	for _, r := range []rune{0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x10ffff, 0x2027, 0x2028, 0x2029, 0x202a} {
		cases = append(cases, string(r), "x"+string(r)+"y")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		checkString(t, s)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s)
	}
	f.Fuzz(checkString)
}

func checkString(t *testing.T, s string) {
	t.Helper()
	want, err := marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendString(nil, s); !bytes.Equal(got, want) {
		t.Errorf("appendString(%q) = %s, encoding/json writes %s", s, got, want)
	}
}

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	cases := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-6, 9.99999e-7, 1e-7, 1e20, 1e21, 123456789e13, 1.5,
		math.MaxFloat64, math.SmallestNonzeroFloat64, -math.MaxFloat64, math.NaN(), math.Inf(1), math.Inf(-1),
		float64(float32(0.1)), 1e-10, 1.2345e-300, 5e-324}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		cases = append(cases, math.Float64frombits(rng.Uint64()), rng.NormFloat64()*math.Pow(10, float64(rng.IntN(60)-30)))
	}
	for _, f := range cases {
		checkFloat(t, f)
	}
}

func FuzzAppendFloat(f *testing.F) {
	f.Add(0.1)
	f.Add(1e21)
	f.Add(1e-7)
	f.Fuzz(checkFloat)
}

func checkFloat(t *testing.T, f float64) {
	t.Helper()
	want, err := marshal(legacyFiniteOrString(f))
	if err != nil {
		t.Fatal(err)
	}
	if got := appendFloat(nil, f); !bytes.Equal(got, want) {
		t.Errorf("appendFloat(%v) = %s, want %s", f, got, want)
	}
}

func TestAppendTimestamp(t *testing.T) {
	t.Parallel()
	east := time.FixedZone("east", 5*3600+30*60)
	cases := []time.Time{
		{}, time.Now(), time.Unix(0, 0), time.Date(2026, 1, 30, 0, 17, 1, 123456789, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, east), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 5000 {
		cases = append(cases, time.Unix(rng.Int64N(400e9)-200e9, rng.Int64N(1e9)).In(east))
	}
	for _, tm := range cases {
		want := tm.UTC().AppendFormat(nil, TimestampFormat)
		if got := appendTimestamp(nil, tm); !bytes.Equal(got, want) {
			t.Errorf("appendTimestamp(%v) = %s, want %s", tm, got, want)
		}
	}
}

func TestSensitiveKeyMatchesPattern(t *testing.T) {
	t.Parallel()
	keys := []string{"", "api_key", "API-KEY", "xi-api-key", "apikey", "x_ApiKey", "api key", "apiKEYs", "access_token",
		"TOKEN", "tokens", "client_secret", "secret_name", "password", "PASSWD", "passwd1", "Authorization",
		"authorisation", "key", "y", "n", "t", "d", "service", "contact_id", "api_\u212aey", "ſecret", "tokén", "api__key"}
	for _, k := range keys {
		checkSensitiveKey(t, k)
	}
}

func FuzzSensitiveKey(f *testing.F) {
	f.Add("api_key")
	f.Add("api_\u212aey")
	f.Fuzz(checkSensitiveKey)
}

func checkSensitiveKey(t *testing.T, key string) {
	t.Helper()
	if got, want := sensitiveKey(key), legacySensitiveKey.MatchString(key); got != want {
		t.Errorf("sensitiveKey(%q) = %v, the pattern says %v", key, got, want)
	}
}

type named string

type namedInt int

type point struct {
	X, Y int
	Note string
}

type textStringer struct{ s string }

func (s textStringer) String() string { return s.s }

type errStringer struct{}

func (errStringer) Error() string  { return "error text +14155550123" }
func (errStringer) String() string { return "stringer text" }

type jsonValue struct{}

func (jsonValue) MarshalJSON() ([]byte, error) { return []byte(`{"token": "abc", "n": 1}`), nil }

type badJSON struct{}

func (badJSON) MarshalJSON() ([]byte, error) { return nil, errors.New("refused") }

const testSecret = "el-key-0123456789abcdef"

// legacyFormats formats e as the formatters did before, for comparison.
func legacyFormats(t *testing.T, red *redact.Redactor, e *logrus.Entry) (console, line []byte) {
	t.Helper()
	console, err := (&legacyRedactingFormatter{red: red, inner: legacyConsoleFormatter{}}).Format(e)
	if err != nil {
		t.Fatalf("legacy console: %v", err)
	}
	line, err = (&legacyRedactingFormatter{red: red, inner: legacyJSONFormatter{}, fields: true}).Format(e)
	if err != nil {
		t.Fatalf("legacy JSON: %v", err)
	}
	return console, line
}

// compareWithLegacy checks that the new formatters write e exactly as the legacy ones,
// with and without a buffer lent by logrus.
func compareWithLegacy(t *testing.T, red *redact.Redactor, e *logrus.Entry) {
	t.Helper()
	wantConsole, wantLine := legacyFormats(t, red, e)
	for _, lend := range []bool{false, true} {
		c := *e
		e := &c
		if lend {
			e.Buffer = new(bytes.Buffer)
		}
		console, err := consoleFormatter{red: red}.Format(e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(console, wantConsole) {
			t.Errorf("console (buffer lent %v) = %q, legacy %q", lend, console, wantConsole)
		}
		if lend {
			e.Buffer.Reset()
		}
		line, err := jsonFormatter{red: red}.Format(e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(line, wantLine) {
			t.Errorf("JSON (buffer lent %v) =\n%s\nlegacy\n%s", lend, line, wantLine)
		}
	}
	line, err := jsonFormatter{red: red}.appendEntry([]byte("prefix"), e)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(line, []byte("prefix")) || !bytes.Equal(line[len("prefix"):], wantLine) {
		t.Errorf("appendEntry wrote %s, want prefix then %s", line, wantLine)
	}
}

func newEntry(level logrus.Level, msg string, data logrus.Fields) *logrus.Entry {
	e := logrus.NewEntry(logrus.New()).WithFields(data)
	e.Time, e.Level, e.Message = time.Date(2026, 1, 30, 0, 17, 1, 123456789, time.UTC), level, msg
	return e
}

func TestMatchesLegacy(t *testing.T) {
	t.Parallel()
	red := redact.New(testSecret)
	var nilMap map[string]int
	all := logrus.Fields{
		"string": "plain", "phone": "+14155550123", "secret": testSecret, "body": `{"xi-api-key":"` + testSecret + `"}`,
		"bytes": []byte("to +14155550123"), "error": fmt.Errorf("call +14155550123: %w", errors.New("503")),
		"stringer": textStringer{"dial +14155550123"}, "both": errStringer{}, "duration": 5 * time.Second,
		"time": time.Date(2026, 1, 30, 1, 2, 3, 4, time.FixedZone("x", 3600)), "zero_time": time.Time{},
		"bool": true, "int": -3, "int8": int8(-8), "int16": int16(16), "int32": int32(-32), "int64": int64(math.MinInt64),
		"uint": uint(3), "uint8": uint8(255), "uint16": uint16(16), "uint32": uint32(32), "uint64": uint64(math.MaxUint64),
		"float32": float32(0.1), "float64": 1e21, "tiny": 1e-7, "negzero": math.Copysign(0, -1), "nan": math.NaN(),
		"inf": math.Inf(1), "ninf": float32(math.Inf(-1)), "nil": nil, "nil_map": nilMap, "nil_ptr": (*point)(nil),
		"named": named("OPEN"), "named_int": namedInt(7), "map": map[string]any{"key": testSecret, "phones": []string{"+14155550123"}},
		"struct": point{1, 2, "Bearer abc"}, "slice": []any{1, "a", nil}, "raw": json.RawMessage(`{"a": [1, 2]}`),
		"number": json.Number("12.50"), "marshaler": jsonValue{}, "bad_marshaler": badJSON{}, "chan": make(chan int),
		"func": func() {}, "html": "<b>&</b>", "api_key": "anything", "Authorization": 42, "client_secret": nil,
		"message": "m +14155550123", "level": "l", "timestamp": time.Unix(0, 0), "fields.message": "x",
		"unicode_\u2028key": "v", "quote\"key": "\x00\xff", "service": "ElevenLabs", "error_category": "service_unavailable",
		"circuit_state": "HALF_OPEN", "retry_count": 3, "contact_id": "c-1", "worker": "w-1",
	}
	for _, level := range []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel, logrus.InfoLevel, logrus.DebugLevel, logrus.TraceLevel} {
		compareWithLegacy(t, red, newEntry(level, "Calling +14155550123 using "+testSecret+"\n", all))
	}
	for _, msg := range trickyStrings {
		compareWithLegacy(t, red, newEntry(logrus.InfoLevel, msg, logrus.Fields{"v": msg, "service": msg, "contact_id": msg}))
	}
	compareWithLegacy(t, red, newEntry(logrus.InfoLevel, "no fields", nil))
	compareWithLegacy(t, nil, newEntry(logrus.InfoLevel, "nil redactor +14155550123", logrus.Fields{"a": "+14155550123"}))
	// More fields than are sorted on the stack.
	many := logrus.Fields{}
	for i := range 40 {
		many[fmt.Sprintf("k%02d", 39-i)] = i
	}
	compareWithLegacy(t, red, newEntry(logrus.InfoLevel, "many", many))
}

// The name fields skip the redactor only for the values it would leave alone: a phone, a
// credential pair, a key or a registered secret under their names is redacted.
func TestNameFieldsAreRedactedWhenNeeded(t *testing.T) {
	t.Parallel()
	red := redact.New(testSecret)
	for _, key := range []string{FieldService, FieldErrorCategory, FieldCircuitState, FieldRetryCount, FieldContactID} {
		if !nameField(key) {
			t.Errorf("nameField(%q) = false", key)
		}
		for _, v := range []string{"+14155550123", "api_key=" + testSecret, testSecret, "x " + testSecret + " y", "https://u:p@h/",
			"bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", `x"` + testSecret, strings.Repeat("a", redact.MaxPlainLen) + testSecret,
			"sk-proj-AbCdEfGhIjKlMnOpQrStUv", "sk_0123456789abcdef0123", "Bearer abcdef", "basic abcdef", "é " + testSecret} {
			line, err := jsonFormatter{red: red}.appendEntry(nil, newEntry(logrus.InfoLevel, "m", logrus.Fields{key: v}))
			if err != nil {
				t.Fatal(err)
			}
			for _, leak := range []string{testSecret, "4155550", "AAHdqTcv", ":p@", "AbCdEfGh", "0123456789abcdef0123", "abcdef\""} {
				if bytes.Contains(line, []byte(leak)) {
					t.Errorf("%s=%q leaked %q: %s", key, v, leak, line)
				}
			}
		}
	}
	for _, key := range []string{FieldWorker, "error", "message", "to", "body"} {
		if nameField(key) {
			t.Errorf("nameField(%q) = true; free text must always take the redactor", key)
		}
	}
}

func FuzzMatchesLegacy(f *testing.F) {
	f.Add("Calling +14155550123", "to", "+14155550123", []byte(testSecret), int64(3), 0.5, uint8(0))
	f.Add("Step 2: Converting text to speech with ElevenLabs", "service", "ElevenLabs", []byte("x"), int64(-1), 1e21, uint8(3))
	f.Add("api_key=abc Bearer xyz", "api_key", "sk-proj-AbCdEfGhIjKlMnOpQrStUv", []byte("\xff"), int64(0), math.Inf(1), uint8(5))
	red := redact.New(testSecret, "another-secret-value")
	f.Fuzz(func(t *testing.T, msg, key, s string, b []byte, n int64, x float64, kind uint8) {
		var v any
		switch kind % 8 {
		case 0:
			v = s
		case 1:
			v = b
		case 2:
			v = errors.New(s)
		case 3:
			v = textStringer{s}
		case 4:
			v = map[string]any{s: s, "n": n}
		case 5:
			v = []any{s, x, n}
		case 6:
			v = x
		case 7:
			v = n
		}
		data := logrus.Fields{key: v, "s": s, "b": b, "n": n, "x": x, FieldContactID: s, FieldService: s, FieldCircuitState: msg}
		compareWithLegacy(t, red, newEntry(logrus.WarnLevel, msg, data))
	})
}

// The typical lines cost no allocation on any output: the file, the human console and the
// JSON console.
func TestNoAllocations(t *testing.T) {
	red := benchRedactor()
	buf := make([]byte, 0, 4096)
	lent := new(bytes.Buffer)
	lent.Grow(4096)
	for name, e := range benchLines() {
		c := *e
		e := &c
		if n := testing.AllocsPerRun(100, func() {
			if _, err := (jsonFormatter{red: red}).appendEntry(buf[:0], e); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: JSON line: %v allocations, want 0", name, n)
		}
		e.Buffer = lent
		if n := testing.AllocsPerRun(100, func() {
			lent.Reset()
			if _, err := (consoleFormatter{red: red}).Format(e); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: console line: %v allocations, want 0", name, n)
		}
		if n := testing.AllocsPerRun(100, func() {
			lent.Reset()
			if _, err := (jsonFormatter{red: red}).Format(e); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: JSON console line (LOG_FORMAT=json): %v allocations, want 0", name, n)
		}
	}
}
