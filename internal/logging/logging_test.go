package logging_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/logging"
	"github.com/callagent/resilience/internal/redact"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction(logging.MillGoroutine))
}

// syncBuffer is a console writer tests can read while loggers write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testBundle struct {
	logger  *logrus.Logger
	console *syncBuffer
	file    string
}

// setup builds a logger whose file lives in a directory that does not exist
// yet, and closes it when the test ends.
func setup(t *testing.T, opts logging.Options) *testBundle {
	t.Helper()
	b := &testBundle{console: &syncBuffer{}}
	if opts.File == "" {
		b.file = filepath.Join(t.TempDir(), "not", "yet", "error_recovery.log")
		opts.File = b.file
	}
	opts.Console = b.console
	logger, closer, err := logging.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := closer.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	b.logger = logger
	return b
}

// lines returns the JSON objects written to the file so far.
func (b *testBundle) lines(t *testing.T) []map[string]any {
	t.Helper()
	f, err := os.Open(b.file)
	if err != nil {
		t.Fatalf("open log file: %v", err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read log file: %v", err)
	}
	return out
}

func TestBothOutputsFromOneLogger(t *testing.T) {
	t.Parallel()
	b := setup(t, logging.Options{})
	if _, err := os.Stat(b.file); err != nil {
		t.Fatalf("log file not created by New: %v", err)
	}
	before := time.Now().UTC().Truncate(time.Microsecond)
	b.logger.WithFields(logrus.Fields{
		logging.FieldService:       "ElevenLabs",
		logging.FieldErrorCategory: "TRANSIENT_ERROR",
		logging.FieldRetryCount:    2,
		logging.FieldCircuitState:  "OPEN",
		logging.FieldContactID:     "c-1",
		logging.FieldWorker:        "w-1",
	}).Error("Circuit breaker OPENED for ElevenLabs")
	b.logger.Info("Processing contact: Contact 1")

	if got, want := b.console.String(), "Circuit breaker OPENED for ElevenLabs\nProcessing contact: Contact 1\n"; got != want {
		t.Errorf("console = %q, want %q", got, want)
	}
	lines := b.lines(t)
	if len(lines) != 2 {
		t.Fatalf("file has %d lines, want 2", len(lines))
	}
	first := lines[0]
	wantKeys := []string{"circuit_state", "contact_id", "error_category", "level", "message", "retry_count", "service", "timestamp", "worker"}
	if got := slices.Sorted(maps.Keys(first)); !slices.Equal(got, wantKeys) {
		t.Errorf("keys = %v, want %v", got, wantKeys)
	}
	wantValues := map[string]any{
		"level":          "ERROR",
		"message":        "Circuit breaker OPENED for ElevenLabs",
		"service":        "ElevenLabs",
		"error_category": "TRANSIENT_ERROR",
		"retry_count":    json.Number("2"),
		"circuit_state":  "OPEN",
		"contact_id":     "c-1",
		"worker":         "w-1",
	}
	for k, want := range wantValues {
		if first[k] != want {
			t.Errorf("%s = %#v, want %#v", k, first[k], want)
		}
	}
	ts, _ := first["timestamp"].(string)
	parsed, err := time.Parse(logging.TimestampFormat, ts)
	if err != nil {
		t.Fatalf("timestamp %q: %v", ts, err)
	}
	if !strings.HasSuffix(ts, "Z") || len(ts) != len("2026-01-30T00:17:01.123456Z") {
		t.Errorf("timestamp %q is not UTC RFC 3339 with microseconds", ts)
	}
	if parsed.Before(before) || parsed.After(time.Now().Add(time.Second)) {
		t.Errorf("timestamp %v not within the test's run (started %v)", parsed, before)
	}
	if got := slices.Sorted(maps.Keys(lines[1])); !slices.Equal(got, []string{"level", "message", "timestamp"}) {
		t.Errorf("second line keys = %v, want only timestamp, level, message", got)
	}
}

func TestLevelNamesAndFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level       string
		wantConsole string
		wantLevels  []string
	}{
		{"debug", "d\ni\nw\ne\n", []string{"DEBUG", "INFO", "WARNING", "ERROR"}},
		{"", "i\nw\ne\n", []string{"INFO", "WARNING", "ERROR"}},
		{"info", "i\nw\ne\n", []string{"INFO", "WARNING", "ERROR"}},
		{"WARN", "w\ne\n", []string{"WARNING", "ERROR"}},
		{"error", "e\n", []string{"ERROR"}},
	}
	for _, tt := range tests {
		t.Run("level="+tt.level, func(t *testing.T) {
			t.Parallel()
			b := setup(t, logging.Options{Level: tt.level})
			b.logger.Debug("d")
			b.logger.Info("i")
			b.logger.Warn("w")
			b.logger.Error("e")
			if got := b.console.String(); got != tt.wantConsole {
				t.Errorf("console = %q, want %q", got, tt.wantConsole)
			}
			var levels []string
			for _, l := range b.lines(t) {
				levels = append(levels, l["level"].(string))
			}
			if !slices.Equal(levels, tt.wantLevels) {
				t.Errorf("file levels = %v, want %v", levels, tt.wantLevels)
			}
		})
	}
}

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

func TestRedactsBothOutputs(t *testing.T) {
	t.Parallel()
	const (
		phone      = "+14155550123"
		apiKey     = "el-key-0123456789abcdef"
		openAIKey  = "sk-proj-AbCdEfGhIjKlMnOpQrStUv"
		maskedForm = "+14*******23"
	)
	b := setup(t, logging.Options{Redactor: redact.New(apiKey)})
	b.logger.WithFields(logrus.Fields{
		"to":              phone,
		"body":            `{"xi-api-key":"` + apiKey + `"}`,
		logrus.ErrorKey:   fmt.Errorf("call %s with key %s: %w", phone, apiKey, errors.New("503")),
		"stringer":        stringer{"dialing " + phone},
		"bytes":           []byte(apiKey),
		"nested":          map[string]any{"key": apiKey, "phones": []string{phone}},
		"api_key":         "anything-at-all",
		"llm_key_unnamed": openAIKey,
	}).Warn("Calling " + phone + " using " + apiKey + " and " + openAIKey)

	console := b.console.String()
	raw, err := os.ReadFile(b.file)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"console": console, "file": string(raw)} {
		for _, leak := range []string{phone, apiKey, openAIKey, "anything-at-all", "0123456789abcdef"} {
			if strings.Contains(out, leak) {
				t.Errorf("%s contains %q:\n%s", name, leak, out)
			}
		}
		if !strings.Contains(out, maskedForm) {
			t.Errorf("%s lacks the masked phone %q:\n%s", name, maskedForm, out)
		}
	}
	lines := b.lines(t)
	if len(lines) != 1 {
		t.Fatalf("file has %d lines, want 1", len(lines))
	}
	got := lines[0]
	want := map[string]any{
		"message":         "Calling +14*******23 using <redacted> and <redacted>",
		"to":              maskedForm,
		"body":            `{"xi-api-key":"<redacted>"}`,
		"error":           "call +14*******23 with key <redacted>: 503",
		"stringer":        "dialing +14*******23",
		"bytes":           "<redacted>",
		"api_key":         "<redacted>",
		"llm_key_unnamed": "<redacted>",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
	nested, ok := got["nested"].(map[string]any)
	if !ok {
		t.Fatalf("nested = %#v, want a JSON object", got["nested"])
	}
	if nested["key"] != "<redacted>" || fmt.Sprint(nested["phones"]) != "["+maskedForm+"]" {
		t.Errorf("nested = %#v, want key and phones redacted", nested)
	}
	if want := "Calling +14*******23 using <redacted> and <redacted>\n"; console != want {
		t.Errorf("console = %q, want %q", console, want)
	}
}

func TestReservedFieldNamesDoNotOverwrite(t *testing.T) {
	t.Parallel()
	b := setup(t, logging.Options{})
	b.logger.WithFields(logrus.Fields{"message": "m", "level": "l", "timestamp": "t", "n": 1.5, "d": 5 * time.Second}).Info("real")
	got := b.lines(t)[0]
	want := map[string]any{
		"message": "real", "level": "INFO",
		"fields.message": "m", "fields.level": "l", "fields.timestamp": "t",
		"n": json.Number("1.5"), "d": "5s",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
}

func TestConcurrentLogging(t *testing.T) {
	t.Parallel()
	b := setup(t, logging.Options{})
	const goroutines, perG = 8, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				b.logger.WithField(logging.FieldWorker, fmt.Sprintf("w%d", g)).Infof("line %d", i)
			}
		})
	}
	wg.Wait()
	lines := b.lines(t)
	if len(lines) != goroutines*perG {
		t.Fatalf("file has %d lines, want %d", len(lines), goroutines*perG)
	}
	if n := strings.Count(b.console.String(), "\n"); n != goroutines*perG {
		t.Fatalf("console has %d lines, want %d", n, goroutines*perG)
	}
	perWorker := map[string]int{}
	for _, l := range lines {
		perWorker[l[logging.FieldWorker].(string)]++
	}
	for g := range goroutines {
		if n := perWorker[fmt.Sprintf("w%d", g)]; n != perG {
			t.Errorf("worker w%d wrote %d lines, want %d", g, n, perG)
		}
	}
}

func TestCloseStopsFileOutput(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "app.log")
	console := &syncBuffer{}
	logger, closer, err := logging.New(logging.Options{File: file, Console: console})
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("before")
	if err := closer.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := closer.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	logger.Info("after")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "after") || !strings.Contains(string(raw), "before") {
		t.Errorf("file after Close = %q, want only the line logged before", raw)
	}
	if got := console.String(); got != "before\nafter\n" {
		t.Errorf("console = %q, want both lines", got)
	}
}

func TestNoFile(t *testing.T) {
	t.Parallel()
	console := &syncBuffer{}
	logger, closer, err := logging.New(logging.Options{Console: console})
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("only console")
	if err := closer.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := console.String(); got != "only console\n" {
		t.Errorf("console = %q", got)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notADir := filepath.Join(dir, "plain")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		opts     logging.Options
		wantIs   error
		wantPath bool
		wantMsg  string
	}{
		{name: "unknown level", opts: logging.Options{Level: "verbose"}, wantIs: logging.ErrInvalidOptions,
			wantMsg: `invalid logging options: unknown level "verbose"; one of: debug, info, warn, error`},
		{name: "unknown format", opts: logging.Options{Format: "logfmt"}, wantIs: logging.ErrInvalidOptions,
			wantMsg: `invalid logging options: unknown format "logfmt"; one of: human, json`},
		{name: "negative size", opts: logging.Options{MaxSizeMB: -1}, wantIs: logging.ErrInvalidOptions,
			wantMsg: "invalid logging options: MaxSizeMB is -1, must not be negative"},
		{name: "negative backups", opts: logging.Options{MaxBackups: -2}, wantIs: logging.ErrInvalidOptions,
			wantMsg: "invalid logging options: MaxBackups is -2, must not be negative"},
		{name: "negative age", opts: logging.Options{MaxAgeDays: -3}, wantIs: logging.ErrInvalidOptions,
			wantMsg: "invalid logging options: MaxAgeDays is -3, must not be negative"},
		{name: "parent is a file", opts: logging.Options{File: filepath.Join(notADir, "sub", "x.log")}, wantPath: true},
		{name: "file is a directory", opts: logging.Options{File: dir}, wantPath: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opts.Console = &syncBuffer{}
			_, _, err := logging.New(tt.opts)
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			var pe *fs.PathError
			if tt.wantPath && !errors.As(err, &pe) {
				t.Errorf("error %v is not a *fs.PathError", err)
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Errorf("error = %q, want %q", err, tt.wantMsg)
			}
		})
	}
}
