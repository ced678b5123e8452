package logging

// This file keeps the formatters as they were before they were rewritten to encode into
// reused buffers (issue 12), verbatim but for the names. They are the reference the new
// formatters are compared with, byte for byte (TestMatchesLegacy, FuzzMatchesLegacy), and the
// "before" of the benchmarks. They are compiled only into the tests.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/callagent/resilience/internal/redact"
)

// legacySensitiveKey matches field names whose value is a credential whatever it
// looks like: api_key, xi-api-key, access_token, client_secret, password,
// authorization, ...
var legacySensitiveKey = regexp.MustCompile(`(?i)(api[_-]?key|token|secret|password|passwd|authorization)$`)

// legacyRedactingFormatter redacts a copy of the entry, then hands it to inner. The
// caller's entry is never modified.
type legacyRedactingFormatter struct {
	red    *redact.Redactor
	inner  logrus.Formatter
	fields bool // whether inner writes fields, so they need redacting too
}

// Format implements logrus.Formatter.
func (f *legacyRedactingFormatter) Format(e *logrus.Entry) ([]byte, error) {
	c := *e
	c.Message = f.red.Text(e.Message)
	if f.fields {
		c.Data = make(logrus.Fields, len(e.Data))
		for k, v := range e.Data {
			c.Data[k] = legacyRedactValue(f.red, k, v)
		}
	}
	return f.inner.Format(&c)
}

// legacyRedactValue returns v in a form that is safe to write and that encodes as
// JSON: strings, errors, Stringers and composite values are redacted text (or
// redacted JSON for composites); numbers and booleans stay as they are.
func legacyRedactValue(red *redact.Redactor, key string, v any) any {
	if v == nil {
		return nil
	}
	if legacySensitiveKey.MatchString(key) {
		return redact.Placeholder
	}
	switch x := v.(type) {
	case string:
		return red.Text(x)
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return x
	case float32:
		return legacyFiniteOrString(float64(x))
	case float64:
		return legacyFiniteOrString(x)
	case []byte:
		return red.Text(string(x))
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case error:
		return red.Text(x.Error())
	case fmt.Stringer:
		return red.Text(x.String())
	}
	b, err := legacyMarshal(v)
	if err != nil {
		return red.Text(fmt.Sprintf("%+v", v))
	}
	text := red.Text(string(b))
	if json.Valid([]byte(text)) {
		return json.RawMessage(text)
	}
	return text
}

// legacyFiniteOrString keeps finite floats as numbers; NaN and infinities, which JSON
// cannot encode, become their text.
func legacyFiniteOrString(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprint(f)
	}
	return f
}

// legacyMarshal encodes v as compact JSON without HTML escaping, so "<redacted>"
// stays readable.
func legacyMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// legacyConsoleFormatter writes the bare message, one line per entry, as the seed's
// console does: no timestamp, no level, no fields.
type legacyConsoleFormatter struct{}

// Format implements logrus.Formatter.
func (legacyConsoleFormatter) Format(e *logrus.Entry) ([]byte, error) {
	msg := strings.TrimSuffix(e.Message, "\n")
	b := make([]byte, 0, len(msg)+1)
	b = append(b, msg...)
	return append(b, '\n'), nil
}

// legacyJSONFormatter writes one JSON object per line: timestamp, level and message
// first, then every field sorted by name.
type legacyJSONFormatter struct{}

// Format implements logrus.Formatter.
func (legacyJSONFormatter) Format(e *logrus.Entry) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	write := func(key string, v any) error {
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		k, err := legacyMarshal(key)
		if err != nil {
			return err
		}
		val, err := legacyMarshal(v)
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
	if err := write(KeyLevel, legacyLevelName(e.Level)); err != nil {
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

// legacyLevelName is the seed's (Python's) name for a level: DEBUG, INFO, WARNING,
// ERROR, CRITICAL.
func legacyLevelName(l logrus.Level) string {
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

// legacyFileHook is the file hook as it was: the formatter's fresh line, written under
// the hook's lock.
type legacyFileHook struct {
	formatter logrus.Formatter

	mu  sync.Mutex
	out *lumberjack.Logger
}

func (h *legacyFileHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *legacyFileHook) Fire(e *logrus.Entry) error {
	line, err := h.formatter.Format(e)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.out.Write(line); err != nil {
		return fmt.Errorf("write log file %q: %w", h.out.Filename, err)
	}
	return nil
}

// legacyLogger turns a logger New built into one that formats as before: the legacy
// console formatter, and the legacy hook writing to the same file.
func legacyLogger(logger *logrus.Logger, red *redact.Redactor) {
	logger.SetFormatter(&legacyRedactingFormatter{red: red, inner: legacyConsoleFormatter{}})
	hooks := logger.ReplaceHooks(logrus.LevelHooks{})
	if hs := hooks[logrus.InfoLevel]; len(hs) == 1 {
		logger.AddHook(&legacyFileHook{
			formatter: &legacyRedactingFormatter{red: red, inner: legacyJSONFormatter{}, fields: true},
			out:       hs[0].(*fileHook).out,
		})
	}
}
