// Package logging builds the logrus logger every binary uses: human lines on
// the console (the bare message, as the seed prints it) and one JSON object per
// line in a rotated file (logs/error_recovery.log by default). With the json
// format (Options.Format) the console carries the same JSON lines as the file
// instead of the human ones, for log collectors reading stdout (containers,
// Kubernetes); the file stays optional either way. Everything is redacted
// before it is written: phone numbers are masked and secrets removed, in the
// message and in every field, on every output.
package logging

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/callagent/resilience/internal/redact"
)

// JSON field names the seed requires in the log file. Callers set them with
// logger.WithField(logging.FieldService, "ElevenLabs") and they appear under
// exactly these keys.
const (
	FieldService       = "service"
	FieldErrorCategory = "error_category"
	FieldRetryCount    = "retry_count"
	FieldCircuitState  = "circuit_state"
	FieldContactID     = "contact_id"
	FieldWorker        = "worker"
)

// Keys written first on every JSON line. A logrus field with one of these
// names is written as "fields.<name>" instead, so it cannot overwrite them.
const (
	KeyTimestamp = "timestamp"
	KeyLevel     = "level"
	KeyMessage   = "message"
)

// MillGoroutine is the function lumberjack runs in a goroutine that lives
// until the process exits (lumberjack v2.2.1 never stops it, even on Close).
// Tests that check for leaked goroutines and log to a file pass it to
// goleak.IgnoreTopFunction.
const MillGoroutine = "gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"

// Levels are the accepted Options.Level values, least severe first.
var Levels = []string{"debug", "info", "warn", "error"}

// Values of Options.Format.
const (
	// FormatHuman writes the bare message on the console, as the seed prints it.
	FormatHuman = "human"
	// FormatJSON writes on the console the JSON lines the file receives.
	FormatJSON = "json"
)

// Formats are the accepted Options.Format values, the default first.
var Formats = []string{FormatHuman, FormatJSON}

// ErrInvalidOptions is wrapped by every error New returns for bad Options.
var ErrInvalidOptions = errors.New("invalid logging options")

// Options configure New. The zero value logs info and above to os.Stdout only.
type Options struct {
	// Console receives one line per entry, in Format. Nil means os.Stdout;
	// io.Discard silences the console.
	Console io.Writer
	// Format is what the console receives (case-insensitive): human, the bare
	// message (the seed's console), or json, the JSON object the file receives,
	// byte for byte (same keys, same redaction), one per line. Empty means
	// human. The file is always JSON, whatever the format.
	Format string
	// File receives one JSON object per line, e.g. "logs/error_recovery.log".
	// Its parent directory is created. Empty means no file.
	File string
	// Level is the least severe level written: debug, info, warn or error
	// (case-insensitive). Empty means info. It applies to both outputs.
	Level string
	// MaxSizeMB is the size at which the file is rotated; 0 means
	// lumberjack's default of 100.
	MaxSizeMB int
	// MaxBackups is how many rotated files are kept; 0 keeps all.
	MaxBackups int
	// MaxAgeDays is how many days rotated files are kept; 0 keeps them
	// regardless of age.
	MaxAgeDays int
	// Redactor is applied to the message and every field before anything is
	// written. Nil means redact.New(): phones and credential shapes only.
	Redactor *redact.Redactor
}

// New returns a logger that writes to the console (human or JSON lines, as
// opts.Format says) and, when opts.File is set, to a rotated JSON-lines file,
// plus a Closer that closes the file (a no-op closer when there is none). The
// file is created at once so that an unwritable path fails here, not on the
// first log line. The logger is safe for concurrent use. Errors wrap ErrInvalidOptions for bad options, or the
// os.PathError from creating the directory or file.
func New(opts Options) (*logrus.Logger, io.Closer, error) {
	level, err := parseLevel(opts.Level)
	if err != nil {
		return nil, nil, err
	}
	jsonConsole, err := parseFormat(opts.Format)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"MaxSizeMB", opts.MaxSizeMB}, {"MaxBackups", opts.MaxBackups}, {"MaxAgeDays", opts.MaxAgeDays}} {
		if n.v < 0 {
			return nil, nil, fmt.Errorf("%w: %s is %d, must not be negative", ErrInvalidOptions, n.name, n.v)
		}
	}
	red := opts.Redactor
	if red == nil {
		red = redact.New()
	}
	console := opts.Console
	if console == nil {
		console = os.Stdout
	}

	logger := logrus.New()
	logger.SetOutput(console)
	logger.SetLevel(level)
	if jsonConsole {
		logger.SetFormatter(jsonFormatter{red: red})
	} else {
		logger.SetFormatter(consoleFormatter{red: red})
	}

	if opts.File == "" {
		return logger, nopCloser{}, nil
	}
	if err := os.MkdirAll(filepath.Dir(opts.File), 0o755); err != nil {
		return nil, nil, fmt.Errorf("create log directory for %q: %w", opts.File, err)
	}
	f, err := os.OpenFile(opts.File, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open log file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, nil, fmt.Errorf("close log file %q after creating it: %w", opts.File, err)
	}
	hook := &fileHook{
		formatter: jsonFormatter{red: red},
		out: &lumberjack.Logger{
			Filename:   opts.File,
			MaxSize:    opts.MaxSizeMB,
			MaxBackups: opts.MaxBackups,
			MaxAge:     opts.MaxAgeDays,
		},
	}
	logger.AddHook(hook)
	return logger, hook, nil
}

// parseLevel maps one of Levels to its logrus level; empty means info.
func parseLevel(s string) (logrus.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return logrus.DebugLevel, nil
	case "", "info":
		return logrus.InfoLevel, nil
	case "warn":
		return logrus.WarnLevel, nil
	case "error":
		return logrus.ErrorLevel, nil
	}
	return 0, fmt.Errorf("%w: unknown level %q; one of: %s", ErrInvalidOptions, s, strings.Join(Levels, ", "))
}

// parseFormat reports whether s, one of Formats, is FormatJSON; empty means
// FormatHuman.
func parseFormat(s string) (isJSON bool, err error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", FormatHuman:
		return false, nil
	case FormatJSON:
		return true, nil
	}
	return false, fmt.Errorf("%w: unknown format %q; one of: %s", ErrInvalidOptions, s, strings.Join(Formats, ", "))
}

// fileHook writes every entry that passes the logger's level filter to the
// rotated file. Logrus fires hooks without holding its own lock, so the hook
// serialises writes itself.
type fileHook struct {
	formatter jsonFormatter

	mu     sync.Mutex
	out    *lumberjack.Logger
	closed bool
}

// Levels reports that the hook wants every level; the logger filters first.
func (h *fileHook) Levels() []logrus.Level { return logrus.AllLevels }

// Fire formats the entry as a JSON line and appends it to the file. After
// Close it drops the entry, so a late log line cannot reopen the file. The line
// is encoded into a pooled buffer, reused once the line is written.
func (h *fileHook) Fire(e *logrus.Entry) error {
	buf := linePool.Get().(*[]byte)
	line, err := h.formatter.appendEntry((*buf)[:0], e)
	if err != nil {
		linePool.Put(buf)
		return err
	}
	err = h.write(line)
	if cap(line) <= maxPooledLine {
		*buf = line[:0]
		linePool.Put(buf)
	}
	return err
}

// write appends one line to the file, unless the hook is closed.
func (h *fileHook) write(line []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	if _, err := h.out.Write(line); err != nil {
		return fmt.Errorf("write log file %q: %w", h.out.Filename, err)
	}
	return nil
}

// Close closes the file; later entries are dropped. It is idempotent.
func (h *fileHook) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	if err := h.out.Close(); err != nil {
		return fmt.Errorf("close log file %q: %w", h.out.Filename, err)
	}
	return nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
