package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/redact"
)

// TimestampFormat is the layout of the JSON "timestamp" key: RFC 3339 with
// microseconds, always in UTC ("2026-01-30T00:17:01.123456Z").
const TimestampFormat = "2006-01-02T15:04:05.000000Z07:00"

// Both formatters redact while they encode: the message once, and each field value as it
// is written, straight into the output buffer. Nothing copies the entry or its fields.
// What is written is the same, byte for byte, as when the entry was first redacted into a
// copy and then encoded with encoding/json (legacy_test.go keeps that implementation and
// the tests compare the two).

// consoleFormatter writes the redacted bare message, one line per entry, as the seed's
// console does: no timestamp, no level, no fields.
type consoleFormatter struct {
	red *redact.Redactor
}

// Format implements logrus.Formatter. It appends to the buffer logrus lends (entry.Buffer,
// pooled by logrus and reused once the line is written) and returns its bytes, so a line
// costs no allocation of its own; without a buffer it allocates the line.
func (f consoleFormatter) Format(e *logrus.Entry) ([]byte, error) {
	msg := strings.TrimSuffix(f.red.Text(e.Message), "\n")
	if b := e.Buffer; b != nil {
		b.Grow(len(msg) + 1)
		b.WriteString(msg)
		b.WriteByte('\n')
		return b.Bytes(), nil
	}
	b := make([]byte, 0, len(msg)+1)
	b = append(b, msg...)
	return append(b, '\n'), nil
}

// jsonFormatter writes one JSON object per line: timestamp, level and message first, then
// every field sorted by name, everything but the timestamp and the level redacted.
type jsonFormatter struct {
	red *redact.Redactor
}

// Format implements logrus.Formatter, appending to entry.Buffer when logrus lends one. The
// file hook does not use it: logrus lends no buffer to hooks, so the hook appends into a
// buffer of its own pool (see fileHook.Fire).
func (f jsonFormatter) Format(e *logrus.Entry) ([]byte, error) {
	if b := e.Buffer; b != nil {
		line, err := f.appendEntry(b.AvailableBuffer(), e)
		if err != nil {
			return nil, err
		}
		b.Write(line)
		return b.Bytes(), nil
	}
	return f.appendEntry(nil, e)
}

// field is one entry of logrus.Fields, for sorting.
type field struct {
	key string
	val any
}

// stackFields is how many fields are sorted without allocating; the project's lines have
// at most about eight.
const stackFields = 16

// appendEntry appends the JSON line of e, newline included, to dst.
func (f jsonFormatter) appendEntry(dst []byte, e *logrus.Entry) ([]byte, error) {
	dst = append(dst, `{"`+KeyTimestamp+`":"`...)
	dst = appendTimestamp(dst, e.Time)
	dst = append(dst, `","`+KeyLevel+`":"`...)
	dst = append(dst, levelName(e.Level)...)
	dst = append(dst, `","`+KeyMessage+`":`...)
	dst = appendString(dst, f.red.Text(e.Message))

	var stack [stackFields]field
	fields := stack[:0]
	for k, v := range e.Data {
		fields = append(fields, field{k, v})
	}
	slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.key, b.key) })
	for _, fl := range fields {
		dst = append(dst, ',')
		switch fl.key {
		case KeyTimestamp, KeyLevel, KeyMessage:
			dst = append(dst, `"fields.`...)
			dst = append(dst, fl.key...)
			dst = append(dst, '"')
		default:
			dst = appendString(dst, fl.key)
		}
		dst = append(dst, ':')
		var err error
		if dst, err = f.appendValue(dst, fl.key, fl.val); err != nil {
			return nil, fmt.Errorf("encode log field %q: %w", fl.key, err)
		}
	}
	return append(dst, "}\n"...), nil
}

// appendValue appends v, the value of field key, as redacted JSON: a credential key's
// value is the placeholder whatever it is; strings, errors, Stringers and []byte are
// redacted text; numbers, booleans and times are written as they are (they cannot hold a
// secret or a phone number); so are the strings of the few fields that hold names
// (nameField) when the redactor would leave them as they are. Other values (maps, structs,
// slices, named types) take the slow path: encoding/json, then the redactor over the JSON
// text.
func (f jsonFormatter) appendValue(dst []byte, key string, v any) ([]byte, error) {
	if v == nil {
		return append(dst, "null"...), nil
	}
	if sensitiveKey(key) {
		return appendString(dst, redact.Placeholder), nil
	}
	switch x := v.(type) {
	case string:
		if !nameField(key) || !f.red.Plain(x) {
			x = f.red.Text(x)
		}
		return appendString(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case uint:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case float32:
		return appendFloat(dst, float64(x)), nil
	case float64:
		return appendFloat(dst, x), nil
	case []byte:
		return appendString(dst, f.red.Text(string(x))), nil
	case time.Time:
		// RFC 3339 text holds nothing JSON escapes.
		dst = append(dst, '"')
		dst = x.UTC().AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"'), nil
	case error:
		return appendString(dst, f.red.Text(x.Error())), nil
	case fmt.Stringer:
		return appendString(dst, f.red.Text(x.String())), nil
	}
	return appendComposite(dst, f.red, v)
}

// appendComposite encodes v with encoding/json and redacts the JSON text. When the redacted
// text is still JSON it is written as JSON, else as a string; a value encoding/json refuses
// is written as its redacted %+v text.
func appendComposite(dst []byte, red *redact.Redactor, v any) ([]byte, error) {
	b, err := marshal(v)
	if err != nil {
		return appendString(dst, red.Text(fmt.Sprintf("%+v", v))), nil
	}
	text := red.Text(string(b))
	if !json.Valid([]byte(text)) {
		return appendString(dst, text), nil
	}
	raw, err := marshal(json.RawMessage(text))
	if err != nil {
		return nil, err
	}
	return append(dst, raw...), nil
}

// nameField reports whether key is one of the fields whose values are short names, not
// free text: provider names ("ElevenLabs", "LLM (fallback)", "Google Sheets"), error
// categories ("service_unavailable", "max_deliveries"), breaker states ("HALF_OPEN") and
// retry counts, which the project's code builds itself, and contact ids (letters, digits,
// '.', '_', '-', '=', from the contacts file). Their values skip the redactor when
// redact.Plain proves that it would leave them as they are, which costs a few comparisons
// per byte and per registered secret instead of the redactor's scans and searches. The
// proof is sound (TestPlainIsExact in internal/redact), so a value that could hold anything
// the redactor removes (a contact id "api_key=…" or "sk-proj-…", a registered secret, a
// '+' phone number, anything put under these names by mistake) still takes the redactor,
// and the output is the same as if every value took it. Free-text fields (error, message,
// provider bodies) always take the redactor: there the proof would fail at the first ':'
// or '+', a scan for nothing.
func nameField(key string) bool {
	switch key {
	case FieldService, FieldErrorCategory, FieldCircuitState, FieldRetryCount, FieldContactID:
		return true
	}
	return false
}

// sensitiveKeyPattern matches field names whose value is a credential whatever it looks
// like: api_key, xi-api-key, access_token, client_secret, password, authorization, ...
// sensitiveKey implements it without the regular expression for ASCII names.
var sensitiveKeyPattern = regexp.MustCompile(`(?i)(api[_-]?key|token|secret|password|passwd|authorization)$`)

// sensitiveKey reports whether sensitiveKeyPattern matches key.
func sensitiveKey(key string) bool {
	for i := 0; i < len(key); i++ {
		if key[i] >= utf8.RuneSelf {
			// (?i) folds 'k' with the Kelvin sign and 's' with the long s.
			return sensitiveKeyPattern.MatchString(key)
		}
	}
	if key == "" {
		return false
	}
	switch key[len(key)-1] | 0x20 {
	case 'y':
		return hasSuffixFold(key, "apikey") || hasSuffixFold(key, "api_key") || hasSuffixFold(key, "api-key")
	case 'n':
		return hasSuffixFold(key, "token") || hasSuffixFold(key, "authorization")
	case 't':
		return hasSuffixFold(key, "secret")
	case 'd':
		return hasSuffixFold(key, "password") || hasSuffixFold(key, "passwd")
	}
	return false
}

// hasSuffixFold reports whether s ends with suffix, ignoring ASCII case.
func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// appendFloat appends f as encoding/json writes a float64; NaN and the infinities, which
// JSON cannot hold, are written as strings of their text, as fmt prints them.
func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Inf"`...)
	}
	// encoding/json: 'f' format unless the magnitude is tiny or huge, and then exponents
	// without a leading zero ("1e-07" becomes "1e-7").
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendTimestamp appends t in TimestampFormat, as t.UTC().AppendFormat would, without
// parsing the layout for every line.
func appendTimestamp(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, TimestampFormat)
	}
	hour, minute, sec := t.Clock()
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, t.Nanosecond()/1000, 6)
	return append(dst, 'Z')
}

// appendDigits appends n, which is not negative and has at most width digits, zero-padded
// to width digits.
func appendDigits(dst []byte, n, width int) []byte {
	var buf [8]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return append(dst, buf[:width]...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string exactly as encoding/json writes it without HTML
// escaping: '"' and '\\' escaped, control characters as \b \f \n \r \t or \u00XX, invalid
// UTF-8 as \ufffd, U+2028 and U+2029 as \u2028 and \u2029, everything else as it is.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if plainJSON[b] {
			i++
			continue
		}
		if b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// plainJSON are the bytes appendString copies as they are: printable ASCII but '"' and
// '\\'.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// marshal encodes v as compact JSON without HTML escaping, so "<redacted>"
// stays readable.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// linePool holds the buffers the file hook encodes lines into.
var linePool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// maxPooledLine is the largest buffer put back into linePool, so that one huge line does
// not stay in memory.
const maxPooledLine = 64 << 10

// levelName is the seed's (Python's) name for a level: DEBUG, INFO, WARNING,
// ERROR, CRITICAL.
func levelName(l logrus.Level) string {
	switch l {
	case logrus.TraceLevel:
		return "TRACE"
	case logrus.DebugLevel:
		return "DEBUG"
	case logrus.InfoLevel:
		return "INFO"
	case logrus.WarnLevel:
		return "WARNING"
	case logrus.ErrorLevel:
		return "ERROR"
	default: // fatal, panic
		return "CRITICAL"
	}
}
