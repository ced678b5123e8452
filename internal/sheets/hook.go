package sheets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/benbjohnson/clock"
	"github.com/sirupsen/logrus"
	"golang.org/x/oauth2"

	"github.com/callagent/resilience/internal/config/field"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/resilience"
)

// Defaults of Options.
const (
	DefaultRange         = "A1"
	DefaultBatchSize     = 50
	DefaultFlushInterval = 5 * time.Second
	DefaultBuffer        = 1000
	DefaultCloseTimeout  = 5 * time.Second
	// DefaultHTTPTimeout bounds each append and each access-token request.
	DefaultHTTPTimeout = 15 * time.Second
	// MaxCellChars caps one cell (the API refuses cells over 50,000 characters).
	MaxCellChars = 2000
)

// Columns are the sheet's columns, in order: the seed's JSON error record plus the level, the
// contact and the worker.
var Columns = []string{"timestamp", "level", "service", "error_category", "message", "retry_count",
	"circuit_state", "contact_id", "worker"}

// Observer counts rows; *metrics.Metrics satisfies it. result is "appended", "dropped_full" or
// "dropped_error".
type Observer interface {
	SheetsRows(result string, n int)
}

// Row results passed to the Observer.
const (
	ResultAppended     = "appended"
	ResultDroppedFull  = "dropped_full"
	ResultDroppedError = "dropped_error"
)

// ErrInvalidOptions is wrapped by New's errors about Options (credentials errors wrap
// ErrCredentials instead).
var ErrInvalidOptions = errors.New("invalid google sheets options")

// Options configures the sink. Zero fields take the defaults; CredentialsFile and
// SpreadsheetID are required.
type Options struct {
	// CredentialsFile is a Google service-account JSON key file (SHEETS_CREDENTIALS_FILE).
	// Its token_uri is the token endpoint. Share the sheet with its client_email.
	CredentialsFile string
	// SpreadsheetID is the id in the sheet's URL (SHEETS_SPREADSHEET_ID).
	SpreadsheetID string
	// Range is the A1 range whose table rows are appended to (SHEETS_RANGE, default "A1":
	// the first sheet; "Errors!A1" for a sheet named Errors).
	Range string
	// BatchSize is the most rows per request (SHEETS_BATCH_SIZE, default 50; at most 10000).
	BatchSize int
	// FlushInterval sends a partial batch after this long (SHEETS_FLUSH_INTERVAL, default 5s).
	FlushInterval time.Duration
	// Buffer is how many records wait for sending before new ones are dropped and counted
	// (SHEETS_BUFFER, default 1000).
	Buffer int
	// MinLevel is the least severe level sent (default warn: warnings, errors and worse). Its
	// zero value, logrus.PanicLevel, means the default.
	MinLevel logrus.Level
	// Worker fills the worker column when an entry has no worker field.
	Worker string
	// CloseTimeout bounds the last flush when Run stops (default 5s).
	CloseTimeout time.Duration

	// Retry is the in-process retry of one batch (default 3 attempts, 1s then 2s).
	Retry resilience.RetryPolicy
	// Breaker is the sink's own breaker (default the seed's: 3 failures, 30s open).
	Breaker resilience.BreakerSettings
	// Listener learns of the sink breaker's transitions (metrics, alerts); may be nil.
	Listener resilience.StateListener

	// Redactor masks phone numbers and secrets in every cell; nil means redact.New() (shapes
	// and phone numbers only): pass the logger's redactor so registered secrets are masked too.
	Redactor *redact.Redactor
	// Logger receives the sink's own diagnostics (buffer full, batches failing), tagged with
	// service "Google Sheets" so that the sink never sends them to itself; nil discards them.
	Logger *logrus.Logger
	// Observer counts rows; may be nil.
	Observer Observer
	// Endpoint is the API's base URL (default DefaultEndpoint); tests point it at a fake.
	Endpoint string
	// HTTPClient sends the API and token requests: the worker's outbound client (no
	// redirects, capped bodies). Nil makes a private one, whose idle connections Run closes
	// when it returns. Each request is bounded by DefaultHTTPTimeout.
	HTTPClient *httpx.Client
	// Clock drives the flush interval, the breaker and the retry waits; nil means real time.
	Clock clock.Clock
}

// WithDefaults returns o with zero fields set.
func (o Options) WithDefaults() Options {
	if o.Range == "" {
		o.Range = DefaultRange
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.Buffer == 0 {
		o.Buffer = DefaultBuffer
	}
	if o.MinLevel == 0 {
		o.MinLevel = logrus.WarnLevel
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.Retry.MaxAttempts == 0 {
		o.Retry.MaxAttempts = 3
	}
	if o.Retry.InitialDelay == 0 {
		o.Retry.InitialDelay = time.Second
	}
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	if o.Clock == nil {
		o.Clock = clock.New()
	}
	if o.Redactor == nil {
		o.Redactor = redact.New()
	}
	return o
}

// Validate reports every bad field of o (after WithDefaults), each a *field.Error naming
// it, and checks the credentials file (readable, a service-account key): internal/config
// runs it when the configuration is loaded, so a bad file is reported with the other
// settings instead of when the worker starts.
func (o Options) Validate() error {
	errs := []error{o.validateFields()}
	if _, err := loadCredentials(o.CredentialsFile); err != nil {
		errs = append(errs, &field.Error{Field: "CredentialsFile", Problem: err.Error()})
	}
	return errors.Join(errs...)
}

// validateFields is Validate without reading the credentials file (New reads it once, for
// the token flow).
func (o Options) validateFields() error {
	var l field.List
	l.Required("SpreadsheetID", o.SpreadsheetID, "is empty")
	if o.BatchSize < 1 || o.BatchSize > 10000 {
		l.Addf("BatchSize", "is %d, must be 1 to 10000", o.BatchSize)
	}
	if o.FlushInterval <= 0 {
		l.Addf("FlushInterval", "is %s, must be > 0", o.FlushInterval)
	}
	if o.Buffer < 1 {
		l.Addf("Buffer", "is %d, must be at least 1", o.Buffer)
	}
	if !strings.HasPrefix(o.Endpoint, "https://") && !strings.HasPrefix(o.Endpoint, "http://") {
		l.Addf("Endpoint", "%q is not an http(s) URL", o.Endpoint)
	}
	if err := o.Retry.Validate(); err != nil {
		l.Addf("Retry", "%v", err)
	}
	if err := (resilience.GuardOptions{Breaker: o.Breaker}).Validate(); err != nil {
		l.Addf("Breaker", "%v", err)
	}
	return l.Err()
}

// Stats counts the sink's rows.
type Stats struct {
	// Appended rows reached the sheet.
	Appended uint64
	// DroppedFull records were dropped because the buffer was full.
	DroppedFull uint64
	// DroppedError rows were dropped because the API refused them for good, or they were
	// still unsent when Run stopped.
	DroppedError uint64
}

// record is what Fire keeps of an entry: text only, so later changes to the caller's values
// cannot race with the sender.
type record struct {
	time    time.Time
	level   logrus.Level
	message string
	fields  map[string]string
}

// Hook is a logrus hook that appends warning and error records to a Google Sheet in batches.
// Fire never blocks and never fails: records wait in a bounded buffer for Run, which sends
// them; a full buffer drops the record, counts it and logs the count. Safe for concurrent use.
type Hook struct {
	opts    Options
	ownHTTP bool // New made opts.HTTPClient: Run closes its idle connections
	levels  []logrus.Level
	client  *client
	guard   *resilience.Guard
	retrier *resilience.Retrier
	log     *logrus.Entry
	ch      chan record

	mu      sync.RWMutex // Fire holds it shared; Run takes it to stop accepting records
	stopped bool

	appended, droppedFull, droppedError atomic.Uint64
	reportedFull                        uint64 // droppedFull already logged; Run's goroutine only
	failing                             bool   // a batch is failing; Run's goroutine only
}

// New builds the sink from o: it reads and checks the credentials file and the options, and
// starts nothing. Add it with logger.AddHook and run Run in a goroutine you wait for.
func New(o Options) (*Hook, error) {
	o = o.WithDefaults()
	jc, err := loadCredentials(o.CredentialsFile)
	if err != nil {
		return nil, err
	}
	if err := o.validateFields(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	ownHTTP := o.HTTPClient == nil
	if ownHTTP {
		if o.HTTPClient, err = httpx.New(httpx.Options{}); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
	}
	// The token flow needs an *http.Client: the shared transport's, with no redirects. The
	// token source's context carries it and must outlive every request.
	tokenHTTP := o.HTTPClient.HTTPClient()
	tokenHTTP.Timeout = DefaultHTTPTimeout
	tokenCtx := context.WithValue(context.Background(), oauth2.HTTPClient, tokenHTTP)
	log := logrus.New()
	log.Out = io.Discard
	if o.Logger != nil {
		log = o.Logger
	}
	h := &Hook{
		opts:    o,
		ownHTTP: ownHTTP,
		client: &client{
			endpoint:      strings.TrimRight(o.Endpoint, "/"),
			spreadsheetID: o.SpreadsheetID,
			rng:           o.Range,
			account:       jc.Email,
			hc:            o.HTTPClient,
			timeout:       DefaultHTTPTimeout,
			tokens:        jc.TokenSource(tokenCtx),
			now:           o.Clock.Now,
		},
		guard: resilience.NewGuard(Provider, resilience.GuardOptions{
			Breaker: o.Breaker, MaxConcurrency: 1, Clock: o.Clock, Listener: o.Listener, Logger: log,
		}),
		retrier: resilience.NewRetrier(o.Retry, o.Clock, log),
		log:     log.WithField("service", Provider),
		ch:      make(chan record, o.Buffer),
	}
	for _, l := range logrus.AllLevels {
		if l <= o.MinLevel {
			h.levels = append(h.levels, l)
		}
	}
	return h, nil
}

// Levels implements logrus.Hook: MinLevel and more severe.
func (h *Hook) Levels() []logrus.Level { return h.levels }

// Fire implements logrus.Hook. It queues the entry without blocking and always returns nil;
// entries about the sink itself (service "Google Sheets") are skipped, so a failing sheet
// cannot feed itself.
func (h *Hook) Fire(e *logrus.Entry) error {
	if s, _ := e.Data["service"].(string); s == Provider {
		return nil
	}
	r := record{time: e.Time, level: e.Level, message: e.Message, fields: make(map[string]string, 8)}
	for _, k := range []string{"service", "error_category", "retry_count", "circuit_state", "contact_id", "worker", logrus.ErrorKey} {
		if v, ok := e.Data[k]; ok && v != nil {
			r.fields[k] = fmt.Sprint(v)
		}
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.stopped {
		select {
		case h.ch <- r:
			return nil
		default:
		}
	}
	h.droppedFull.Add(1)
	if h.opts.Observer != nil {
		h.opts.Observer.SheetsRows(ResultDroppedFull, 1)
	}
	return nil
}

// Stats returns the row counters.
func (h *Hook) Stats() Stats {
	return Stats{Appended: h.appended.Load(), DroppedFull: h.droppedFull.Load(), DroppedError: h.droppedError.Load()}
}

// Run sends the queued records until ctx ends: a batch as soon as BatchSize records wait, and
// whatever waits every FlushInterval. A batch that fails transiently (or meets the open
// breaker), or that an operator must fix (credentials refused, the sheet not shared, a
// missing sheet or range), is kept and tried again at the next interval while new records
// wait in the buffer; only rows the API refuses as such are dropped, counted and logged.
//
// When ctx ends, Run stops accepting records and sends what is left; an append already in
// flight is not cut off (a cancelled request may have landed, and sending it again would
// duplicate the rows). All of that is bounded by CloseTimeout after ctx ends; what could not
// be sent is counted and logged. Run returns nil. Call it once.
func (h *Hook) Run(ctx context.Context) error {
	if h.ownHTTP {
		defer h.opts.HTTPClient.CloseIdleConnections()
	}
	// Requests run on sendCtx, which ends CloseTimeout after ctx does.
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	stopAfter := context.AfterFunc(ctx, func() { h.opts.Clock.AfterFunc(h.opts.CloseTimeout, cancelSend) })
	defer stopAfter()

	ticker := h.opts.Clock.Ticker(h.opts.FlushInterval)
	defer ticker.Stop()
	var pending [][]string
	for {
		in := h.ch
		if len(pending) >= h.opts.BatchSize {
			in = nil // a full batch waits to be sent; new records wait in the buffer
		}
		select {
		case <-ctx.Done():
			h.close(sendCtx, pending)
			return nil
		case r := <-in:
			pending = append(pending, h.row(r))
			if len(pending) >= h.opts.BatchSize {
				pending = h.flush(sendCtx, pending)
			}
		case <-ticker.C:
			h.reportFull()
			if len(pending) > 0 {
				pending = h.flush(sendCtx, pending)
			}
		}
		if ctx.Err() != nil {
			h.close(sendCtx, pending)
			return nil
		}
	}
}

// flush sends up to one batch from rows and returns the rows still to send.
func (h *Hook) flush(ctx context.Context, rows [][]string) [][]string {
	n := min(len(rows), h.opts.BatchSize)
	batch := rows[:n]
	err := h.retrier.Run(ctx, h.log, h.guard, func(ctx context.Context) error { return h.client.append(ctx, batch) })
	switch {
	case err == nil:
		h.count(ResultAppended, n)
		if h.failing {
			h.failing = false
			h.log.Infof("Appending error records to %s again", Provider)
		}
		return rows[n:]
	case ctx.Err() != nil:
		return rows // past the close timeout: close counts them
	case fault.IsTransient(err) || errors.Is(err, resilience.ErrBreakerOpen) || isDeferred(err):
		if !h.failing {
			h.failing = true
			h.log.WithError(err).Warnf("Could not append %d error records to %s; keeping them and trying again", n, Provider)
		}
		return rows
	case operatorMustFix(err):
		// Every batch would fail the same way until the settings or the sheet's sharing are
		// fixed, and some can be fixed without a restart: keep the rows (the buffer bounds
		// what waits) and say once what to do. The breaker spaces the tries.
		if !h.failing {
			h.failing = true
			h.log.WithField("error_category", fault.KindOf(err).String()).WithError(err).
				Errorf("%s refused %d error records; keeping them until this is fixed", Provider, n)
		}
		return rows
	default:
		h.count(ResultDroppedError, n)
		h.log.WithField("error_category", fault.KindOf(err).String()).WithError(err).
			Errorf("%s refused %d error records; dropped them", Provider, n)
		return rows[n:]
	}
}

// operatorMustFix reports whether err needs an operator (credentials, sharing, settings)
// rather than time, or is a bad answer (a redirect) that a setting must fix.
func operatorMustFix(err error) bool {
	switch fault.KindOf(err) {
	case fault.KindAuthentication, fault.KindPermission, fault.KindConfiguration, fault.KindBadResponse:
		return true
	}
	return false
}

// close stops accepting records, then sends the pending rows and the buffer while ctx (which
// ends CloseTimeout after Run's) lives; what is still unsent is counted and logged.
func (h *Hook) close(ctx context.Context, pending [][]string) {
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	for {
		select {
		case r := <-h.ch:
			pending = append(pending, h.row(r))
			continue
		default:
		}
		break
	}
	h.reportFull()
	for len(pending) > 0 && ctx.Err() == nil {
		before := len(pending)
		pending = h.flush(ctx, pending)
		if len(pending) == before {
			break // failing: no point hammering until the timeout
		}
	}
	if n := len(pending); n > 0 {
		h.count(ResultDroppedError, n)
		h.log.Errorf("Stopping: %d error records were not appended to %s", n, Provider)
	}
}

// reportFull logs how many records a full buffer dropped since the last report.
func (h *Hook) reportFull() {
	total := h.droppedFull.Load()
	if total == h.reportedFull {
		return
	}
	h.log.Warnf("The %s log buffer (%d records) was full: dropped %d error records (%d in all)",
		Provider, h.opts.Buffer, total-h.reportedFull, total)
	h.reportedFull = total
}

func (h *Hook) count(result string, n int) {
	switch result {
	case ResultAppended:
		h.appended.Add(uint64(n))
	case ResultDroppedError:
		h.droppedError.Add(uint64(n))
	}
	if h.opts.Observer != nil {
		h.opts.Observer.SheetsRows(result, n)
	}
}

// row turns a record into the sheet's cells, in Columns order, every cell redacted.
func (h *Hook) row(r record) []string {
	msg := r.message
	if e := r.fields[logrus.ErrorKey]; e != "" {
		msg += ": " + e
	}
	worker := r.fields["worker"]
	if worker == "" {
		worker = h.opts.Worker
	}
	cells := []string{
		r.time.UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
		levelName(r.level),
		r.fields["service"],
		r.fields["error_category"],
		msg,
		r.fields["retry_count"],
		r.fields["circuit_state"],
		r.fields["contact_id"],
		worker,
	}
	for i, c := range cells {
		c = h.opts.Redactor.Text(c)
		if utf8.RuneCountInString(c) > MaxCellChars {
			c = string([]rune(c)[:MaxCellChars]) + "…"
		}
		cells[i] = c
	}
	return cells
}

// levelName spells the level as the JSON log file does (the seed's Python names).
func levelName(l logrus.Level) string {
	switch l {
	case logrus.WarnLevel:
		return "WARNING"
	case logrus.ErrorLevel:
		return "ERROR"
	case logrus.FatalLevel, logrus.PanicLevel:
		return "CRITICAL"
	case logrus.InfoLevel:
		return "INFO"
	case logrus.DebugLevel:
		return "DEBUG"
	}
	return "TRACE"
}

func isDeferred(err error) bool {
	var d *resilience.DeferError
	return errors.As(err, &d)
}
