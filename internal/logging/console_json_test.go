package logging_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/logging"
	"github.com/callagent/resilience/internal/redact"
)

// consoleObjects parses out, the console's text, as one JSON object per line; any other
// line (a human line, a blank line, two objects on one line) fails the test.
func consoleObjects(t *testing.T, out string) []map[string]any {
	t.Helper()
	if out != "" && !strings.HasSuffix(out, "\n") {
		t.Errorf("console does not end with a newline: %q", out)
	}
	var objs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Bytes()
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("console line %q is not a JSON object: %v", line, err)
		}
		if dec.More() {
			t.Fatalf("console line %q holds more than one JSON value", line)
		}
		objs = append(objs, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return objs
}

// checkTimestamp fails unless v is a UTC RFC 3339 timestamp with microseconds, within the
// test's run.
func checkTimestamp(t *testing.T, v any, before time.Time) {
	t.Helper()
	ts, _ := v.(string)
	parsed, err := time.Parse(logging.TimestampFormat, ts)
	if err != nil || !strings.HasSuffix(ts, "Z") || len(ts) != len("2026-01-30T00:17:01.123456Z") {
		t.Errorf("timestamp %q is not UTC RFC 3339 with microseconds (%v)", ts, err)
		return
	}
	if parsed.Before(before) || parsed.After(time.Now().Add(time.Second)) {
		t.Errorf("timestamp %v not within the test's run (started %v)", parsed, before)
	}
}

// With the json format, the console carries exactly the lines the file carries: the
// seed's keys, the same redaction, one object per line, and no human line.
func TestJSONConsoleCarriesTheFileLines(t *testing.T) {
	t.Parallel()
	const (
		phone  = "+14155550123"
		apiKey = "el-key-0123456789abcdef"
		masked = "+14*******23"
	)
	b := setup(t, logging.Options{Format: logging.FormatJSON, Redactor: redact.New(apiKey)})
	before := time.Now().UTC().Truncate(time.Microsecond)
	b.logger.WithFields(logrus.Fields{
		logging.FieldService:       "ElevenLabs",
		logging.FieldErrorCategory: "TRANSIENT_ERROR",
		logging.FieldRetryCount:    2,
		logging.FieldCircuitState:  "OPEN",
		logging.FieldContactID:     "c-1",
		logging.FieldWorker:        "w-1",
		logrus.ErrorKey:            fmt.Errorf("call %s with key %s: 503", phone, apiKey),
		"api_key":                  "anything-at-all",
	}).Error("Circuit breaker OPENED for ElevenLabs")
	b.logger.Info("Processing contact " + phone)
	b.logger.Debug("filtered out at info")

	console := b.console.String()
	file, err := os.ReadFile(b.file)
	if err != nil {
		t.Fatal(err)
	}
	if console != string(file) {
		t.Errorf("console differs from the file:\nconsole: %q\nfile:    %q", console, file)
	}
	for _, human := range []string{"Circuit breaker OPENED for ElevenLabs\n", "Processing contact +14*******23\n"} {
		if strings.HasPrefix(console, human) || strings.Contains(console, "\n"+human) {
			t.Errorf("console has the human line %q:\n%s", human, console)
		}
	}
	for _, leak := range []string{phone, apiKey, "anything-at-all"} {
		if strings.Contains(console, leak) {
			t.Errorf("console contains %q:\n%s", leak, console)
		}
	}

	objs := consoleObjects(t, console)
	if len(objs) != 2 {
		t.Fatalf("console has %d JSON lines, want 2:\n%s", len(objs), console)
	}
	first := objs[0]
	wantKeys := []string{"api_key", "circuit_state", "contact_id", "error", "error_category", "level", "message", "retry_count", "service", "timestamp", "worker"}
	if got := slices.Sorted(maps.Keys(first)); !slices.Equal(got, wantKeys) {
		t.Errorf("keys = %v, want %v", got, wantKeys)
	}
	want := map[string]any{
		"level":          "ERROR",
		"message":        "Circuit breaker OPENED for ElevenLabs",
		"service":        "ElevenLabs",
		"error_category": "TRANSIENT_ERROR",
		"retry_count":    json.Number("2"),
		"circuit_state":  "OPEN",
		"contact_id":     "c-1",
		"worker":         "w-1",
		"error":          "call " + masked + " with key <redacted>: 503",
		"api_key":        "<redacted>",
	}
	for k, w := range want {
		if first[k] != w {
			t.Errorf("%s = %#v, want %#v", k, first[k], w)
		}
	}
	checkTimestamp(t, first["timestamp"], before)

	second := objs[1]
	if got := slices.Sorted(maps.Keys(second)); !slices.Equal(got, []string{"level", "message", "timestamp"}) {
		t.Errorf("second line keys = %v, want only timestamp, level, message", got)
	}
	if second["level"] != "INFO" || second["message"] != "Processing contact "+masked {
		t.Errorf("second line = %v", second)
	}
	checkTimestamp(t, second["timestamp"], before)
}

// The json format does not need the file: LOG_FILE stays optional. The format's name is
// case-insensitive.
func TestJSONConsoleWithoutFile(t *testing.T) {
	t.Parallel()
	console := &syncBuffer{}
	logger, closer, err := logging.New(logging.Options{Console: console, Format: " JSON ", Level: "warn"})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().UTC().Truncate(time.Microsecond)
	logger.WithField(logging.FieldContactID, "42").Warn("Skipping contact")
	logger.Info("below the level")
	if err := closer.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	objs := consoleObjects(t, console.String())
	if len(objs) != 1 {
		t.Fatalf("console has %d JSON lines, want 1:\n%s", len(objs), console)
	}
	got := objs[0]
	if got["level"] != "WARNING" || got["message"] != "Skipping contact" || got[logging.FieldContactID] != "42" {
		t.Errorf("line = %v", got)
	}
	checkTimestamp(t, got["timestamp"], before)
	if strings.Contains(console.String(), "\nSkipping contact\n") || strings.HasPrefix(console.String(), "Skipping contact\n") {
		t.Errorf("console has a human line:\n%s", console)
	}
}

// The human format, named or by default, keeps the console's bare messages; the file is
// JSON either way.
func TestHumanFormat(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"", "human", "Human"} {
		t.Run("format="+format, func(t *testing.T) {
			t.Parallel()
			b := setup(t, logging.Options{Format: format})
			b.logger.WithField(logging.FieldContactID, "c-1").Warn("Skipping contact")
			if got, want := b.console.String(), "Skipping contact\n"; got != want {
				t.Errorf("console = %q, want %q", got, want)
			}
			lines := b.lines(t)
			if len(lines) != 1 || lines[0]["message"] != "Skipping contact" || lines[0][logging.FieldContactID] != "c-1" {
				t.Errorf("file lines = %v", lines)
			}
		})
	}
}

// Lines written at once by many goroutines never interleave on the JSON console.
func TestJSONConsoleConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t, logging.Options{Format: logging.FormatJSON, File: filepath.Join(t.TempDir(), "app.log")})
	const goroutines, perG = 8, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				b.logger.WithField(logging.FieldWorker, fmt.Sprintf("w%d", g)).Infof("line %d %s", i, strings.Repeat("x", 200))
			}
		})
	}
	wg.Wait()
	objs := consoleObjects(t, b.console.String())
	if len(objs) != goroutines*perG {
		t.Fatalf("console has %d JSON lines, want %d", len(objs), goroutines*perG)
	}
}
