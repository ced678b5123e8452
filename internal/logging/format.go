package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/redact"
)

// TimestampFormat is the layout of the JSON "timestamp" key: RFC 3339 with
// microseconds, always in UTC ("2026-01-30T00:17:01.123456Z").
const TimestampFormat = "2006-01-02T15:04:05.000000Z07:00"

// sensitiveKey matches field names whose value is a credential whatever it
// looks like: api_key, xi-api-key, access_token, client_secret, password,
// authorization, ...
var sensitiveKey = regexp.MustCompile(`(?i)(api[_-]?key|token|secret|password|passwd|authorization)$`)

// redactingFormatter redacts a copy of the entry, then hands it to inner. The
// caller's entry is never modified.
type redactingFormatter struct {
	red    *redact.Redactor
	inner  logrus.Formatter
	fields bool // whether inner writes fields, so they need redacting too
}

// Format implements logrus.Formatter.
func (f *redactingFormatter) Format(e *logrus.Entry) ([]byte, error) {
	c := *e
	c.Message = f.red.Text(e.Message)
	if f.fields {
		c.Data = make(logrus.Fields, len(e.Data))
		for k, v := range e.Data {
			c.Data[k] = redactValue(f.red, k, v)
		}
	}
	return f.inner.Format(&c)
}

// redactValue returns v in a form that is safe to write and that encodes as
// JSON: strings, errors, Stringers and composite values are redacted text (or
// redacted JSON for composites); numbers and booleans stay as they are.
func redactValue(red *redact.Redactor, key string, v any) any {
	if v == nil {
		return nil
	}
	if sensitiveKey.MatchString(key) {
		return redact.Placeholder
	}
	switch x := v.(type) {
	case string:
		return red.Text(x)
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return x
	case float32:
		return finiteOrString(float64(x))
	case float64:
		return finiteOrString(x)
	case []byte:
		return red.Text(string(x))
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case error:
		return red.Text(x.Error())
	case fmt.Stringer:
		return red.Text(x.String())
	}
	b, err := marshal(v)
	if err != nil {
		return red.Text(fmt.Sprintf("%+v", v))
	}
	text := red.Text(string(b))
	if json.Valid([]byte(text)) {
		return json.RawMessage(text)
	}
	return text
}

// finiteOrString keeps finite floats as numbers; NaN and infinities, which JSON
// cannot encode, become their text.
func finiteOrString(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprint(f)
	}
	return f
}

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

// consoleFormatter writes the bare message, one line per entry, as the seed's
// console does: no timestamp, no level, no fields.
type consoleFormatter struct{}

// Format implements logrus.Formatter.
func (consoleFormatter) Format(e *logrus.Entry) ([]byte, error) {
	msg := strings.TrimSuffix(e.Message, "\n")
	b := make([]byte, 0, len(msg)+1)
	b = append(b, msg...)
	return append(b, '\n'), nil
}

// jsonFormatter writes one JSON object per line: timestamp, level and message
// first, then every field sorted by name.
type jsonFormatter struct{}

// Format implements logrus.Formatter.
func (jsonFormatter) Format(e *logrus.Entry) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	write := func(key string, v any) error {
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		k, err := marshal(key)
		if err != nil {
			return err
		}
		val, err := marshal(v)
		if err != nil {
			return fmt.Errorf("encode log field %q: %w", key, err)
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(val)
		return nil
	}
	if err := write(KeyTimestamp, e.Time.UTC().Format(TimestampFormat)); err != nil {
		return nil, err
	}
	if err := write(KeyLevel, levelName(e.Level)); err != nil {
		return nil, err
	}
	if err := write(KeyMessage, e.Message); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		name := k
		switch k {
		case KeyTimestamp, KeyLevel, KeyMessage:
			name = "fields." + k
		}
		if err := write(name, e.Data[k]); err != nil {
			return nil, err
		}
	}
	buf.WriteString("}\n")
	return buf.Bytes(), nil
}

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
