package logging

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/redact"
)

// benchRedactor knows secrets the way a worker's does: the provider keys read from the
// configuration.
func benchRedactor() *redact.Redactor {
	return redact.New("el-test-key-9876543210fedcba", "sk-proj-AbCdEfGhIjKlMnOpQrStUv0123", "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw")
}

// benchLines are the lines a worker logs for every contact: an info line of a step and, when
// a provider fails, the failure line with the seed's fields and the provider's error.
func benchLines() map[string]*logrus.Entry {
	logger := logrus.New()
	at := time.Date(2026, 1, 30, 0, 17, 1, 123456789, time.UTC)
	worker := logrus.NewEntry(logger).WithFields(logrus.Fields{
		FieldContactID: "c-000042",
		FieldService:   "ElevenLabs",
	})
	worker.Time, worker.Level, worker.Message = at, logrus.InfoLevel, "Step 2: Converting text to speech with ElevenLabs"
	failure := logrus.NewEntry(logger).WithFields(logrus.Fields{
		FieldContactID:     "c-000042",
		FieldErrorCategory: "service_unavailable",
		FieldService:       "ElevenLabs",
		FieldCircuitState:  "OPEN",
		FieldRetryCount:    3,
		logrus.ErrorKey: errors.New(`ElevenLabs: text to speech: HTTP 503 Service Unavailable: {"detail":{"status":"system_busy",` +
			`"message":"Our servers are experiencing heavy traffic right now. Please try again in a few minutes."}}`),
	})
	failure.Time, failure.Level, failure.Message = at, logrus.ErrorLevel, "Contact 42 failed after 3 attempts (service_unavailable)"
	return map[string]*logrus.Entry{"worker": worker, "failure": failure}
}

// BenchmarkConsole is the cost of one console line, formatted into the buffer logrus lends.
func BenchmarkConsole(b *testing.B) {
	red := benchRedactor()
	formatters := map[string]logrus.Formatter{
		"legacy": &legacyRedactingFormatter{red: red, inner: legacyConsoleFormatter{}},
		"new":    consoleFormatter{red: red},
	}
	lines := benchLines()
	for _, line := range []string{"worker", "failure"} {
		for _, impl := range []string{"legacy", "new"} {
			f := formatters[impl]
			b.Run(line+"/"+impl, func(b *testing.B) {
				c := *lines[line]
				e := &c
				e.Buffer = new(bytes.Buffer)
				b.ReportAllocs()
				for b.Loop() {
					e.Buffer.Reset()
					if _, err := f.Format(e); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkJSON is the cost of one line of the JSON file, formatted as the file hook
// formats it (logrus lends no buffer to hooks), without writing it: legacy is the redacting
// copy of the entry encoded by encoding/json, new is fileHook.Fire's encoding into a pooled
// buffer.
func BenchmarkJSON(b *testing.B) {
	red := benchRedactor()
	legacy := &legacyRedactingFormatter{red: red, inner: legacyJSONFormatter{}, fields: true}
	current := jsonFormatter{red: red}
	lines := benchLines()
	for _, line := range []string{"worker", "failure"} {
		e := lines[line]
		b.Run(line+"/legacy", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := legacy.Format(e); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(line+"/new", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf := linePool.Get().(*[]byte)
				out, err := current.appendEntry((*buf)[:0], e)
				if err != nil {
					b.Fatal(err)
				}
				*buf = out[:0]
				linePool.Put(buf)
			}
		})
	}
}

// BenchmarkLogger is the whole cost of one line through the logger New builds, as a worker
// logs it: logrus (which copies the entry's fields), the console (io.Discard here) and, in
// console+file, the JSON file (lumberjack, one write(2) per line). legacy swaps in the
// formatters and the file hook as they were.
func BenchmarkLogger(b *testing.B) {
	for _, out := range []string{"console", "console+file"} {
		for _, impl := range []string{"legacy", "new"} {
			b.Run(out+"/"+impl, func(b *testing.B) {
				red := benchRedactor()
				opts := Options{Console: io.Discard, Redactor: red}
				if out == "console+file" {
					opts.File = filepath.Join(b.TempDir(), "error_recovery.log")
				}
				logger, closer, err := New(opts)
				if err != nil {
					b.Fatal(err)
				}
				defer closer.Close()
				if impl == "legacy" {
					legacyLogger(logger, red)
				}
				base := logger.WithField(FieldContactID, "c-000042")
				b.ReportAllocs()
				for b.Loop() {
					base.WithField(FieldService, "ElevenLabs").Info("Step 2: Converting text to speech with ElevenLabs")
				}
			})
		}
	}
}
