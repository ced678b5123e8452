package sheets_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/resilience"
	"github.com/callagent/resilience/internal/sheets"
	"github.com/callagent/resilience/internal/testwait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counts is an Observer.
type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) SheetsRows(result string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[result] += n
}

func (c *counts) get(result string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[result]
}

// bundle is one sink wired to a fake token endpoint and a fake Sheets API.
type bundle struct {
	hook   *sheets.Hook
	tokens *tokenServer
	api    *sheetsServer
	obs    *counts
	logger *logrus.Logger // the application logger, with the sink as a hook
	diag   *logtest.Hook  // everything logged, the sink's own lines included
	cancel context.CancelFunc
	done   chan error
}

func setup(t *testing.T, o sheets.Options, script ...int) *bundle {
	t.Helper()
	b := &bundle{tokens: newTokenServer(t), api: newSheetsServer(t, script...), obs: &counts{}}
	b.logger, b.diag = logtest.NewNullLogger()
	b.logger.Level = logrus.DebugLevel
	_, pemKey := key(t)
	t.Cleanup(func() { // runs after the sink stopped: nothing it logged shows a credential
		for _, e := range b.diag.AllEntries() {
			text := e.Message + fmt.Sprint(e.Data)
			if strings.Contains(text, accessToken) || strings.Contains(text, pemKey[40:80]) || strings.Contains(text, spreadsheetID) {
				t.Errorf("a credential or the sheet id reached the log: %s", text)
			}
		}
	})
	hc, err := httpx.New(httpx.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	if o.CredentialsFile == "" {
		o.CredentialsFile = writeCredentials(t, b.tokens.URL())
	}
	o.SpreadsheetID = spreadsheetID
	o.Endpoint = b.api.URL
	o.HTTPClient = hc
	o.Observer = b.obs
	o.Logger = b.logger // the sink logs through the logger it is hooked into
	if o.Retry.InitialDelay == 0 {
		o.Retry.InitialDelay = time.Millisecond
	}
	hook, err := sheets.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b.hook = hook
	b.logger.AddHook(hook)
	return b
}

func (b *bundle) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.done = cancel, make(chan error, 1)
	go func() { b.done <- b.hook.Run(ctx) }()
	t.Cleanup(func() { b.stop(t) })
}

func (b *bundle) stop(t *testing.T) {
	t.Helper()
	if b.cancel == nil {
		return
	}
	b.cancel()
	select {
	case err := <-b.done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop within 10s")
	}
	b.cancel = nil
}

func (b *bundle) logged(substr string) int {
	n := 0
	for _, e := range b.diag.AllEntries() {
		if strings.Contains(e.Message, substr) {
			n++
		}
	}
	return n
}

// TestAppendsBatchesAsTheServiceAccount checks the requests: the token fetched once with a
// JWT signed by the file's key, the bearer header, the path with id and range, the query, and
// the rows in column order, redacted, formulas kept as text.
func TestAppendsBatchesAsTheServiceAccount(t *testing.T) {
	secret := "sk_0123456789abcdef0123456789abcdef"
	b := setup(t, sheets.Options{BatchSize: 4, FlushInterval: time.Hour, Range: "Errors!A1", Worker: "worker-a",
		Redactor: redact.New(secret)})
	b.start(t)
	log := b.logger
	at := time.Date(2026, 1, 30, 0, 17, 2, 345678000, time.UTC)

	log.WithTime(at).WithFields(logrus.Fields{
		"service": "ElevenLabs", "error_category": "service_unavailable", "retry_count": 2,
		"circuit_state": "OPEN", "contact_id": "c-1",
	}).Error("Transient error for Contact 1: Service temporarily unavailable")
	log.Info("Processing contact: Contact 2")                                            // below the level
	log.WithField("service", sheets.Provider).Error("about the sink itself: never sent") // no loop
	log.WithTime(at).WithField("contact_id", "c-2").Warn("Calling +14155550123 failed")
	log.WithTime(at).WithError(errors.New("401 xi-api-key " + secret)).Error("ElevenLabs refused the key")
	log.WithTime(at).Error(`=HYPERLINK("http://evil.example","click")`)
	log.WithTime(at).WithField("worker", "worker-z").Warn("from another worker field")
	log.WithTime(at).Error("sixth, sent at stop")

	testwait.True(t, 10*time.Second, "a full batch", func() bool { return len(b.api.got()) == 1 })
	b.stop(t)

	reqs := b.api.got()
	if len(reqs) != 2 || len(reqs[0].Body.Values) != 4 || len(reqs[1].Body.Values) != 2 {
		var sizes []int
		for _, r := range reqs {
			sizes = append(sizes, len(r.Body.Values))
		}
		t.Fatalf("requests of %v rows, want 2: a full batch of 4, then the 2 left at stop; log: %v", sizes, b.diag.AllEntries())
	}
	for i, r := range reqs {
		if want := "/v4/spreadsheets/" + spreadsheetID + "/values/Errors!A1:append"; r.Path != want {
			t.Errorf("request %d path %q, want %q", i, r.Path, want)
		}
		if r.Auth != "Bearer "+accessToken {
			t.Errorf("request %d Authorization %q, want the token from the token endpoint", i, r.Auth)
		}
		if r.ContentType != "application/json" {
			t.Errorf("request %d Content-Type %q", i, r.ContentType)
		}
		if fmt.Sprint(r.Query) != "map[insertDataOption:[INSERT_ROWS] valueInputOption:[RAW]]" {
			t.Errorf("request %d query %v, want RAW and INSERT_ROWS only", i, r.Query)
		}
		if r.Body.Range != "Errors!A1" || r.Body.MajorDimension != "ROWS" {
			t.Errorf("request %d body range %q, dimension %q", i, r.Body.Range, r.Body.MajorDimension)
		}
	}
	if n := b.tokens.check(t); n != 1 {
		t.Errorf("%d token requests, want 1 (the token is reused)", n)
	}

	rows := b.api.rows()
	want := [][]string{
		{"2026-01-30T00:17:02.345678Z", "ERROR", "ElevenLabs", "service_unavailable",
			"Transient error for Contact 1: Service temporarily unavailable", "2", "OPEN", "c-1", "worker-a"},
		{"2026-01-30T00:17:02.345678Z", "WARNING", "", "", "Calling +14*******23 failed", "", "", "c-2", "worker-a"},
		{"2026-01-30T00:17:02.345678Z", "ERROR", "", "", "ElevenLabs refused the key: 401 xi-api-key <redacted>", "", "", "", "worker-a"},
		{"2026-01-30T00:17:02.345678Z", "ERROR", "", "", `=HYPERLINK("http://evil.example","click")`, "", "", "", "worker-a"},
		{"2026-01-30T00:17:02.345678Z", "WARNING", "", "", "from another worker field", "", "", "", "worker-z"},
		{"2026-01-30T00:17:02.345678Z", "ERROR", "", "", "sixth, sent at stop", "", "", "", "worker-a"},
	}
	if fmt.Sprintf("%q", rows) != fmt.Sprintf("%q", want) {
		t.Errorf("rows:\n%q\nwant:\n%q", rows, want)
	}
	for _, r := range rows {
		if len(r) != len(sheets.Columns) {
			t.Errorf("row has %d cells, want %d columns", len(r), len(sheets.Columns))
		}
		if cells := strings.Join(r, " "); strings.Contains(cells, secret) || strings.Contains(cells, "4155550123") {
			t.Errorf("a secret or phone number reached the sheet: %q", r)
		}
	}
	if s := b.hook.Stats(); s != (sheets.Stats{Appended: 6}) || b.obs.get(sheets.ResultAppended) != 6 {
		t.Errorf("stats %+v, observer %d; want 6 appended", s, b.obs.get(sheets.ResultAppended))
	}
}

func TestFlushIntervalSendsAPartialBatch(t *testing.T) {
	mock := clock.NewMock()
	b := setup(t, sheets.Options{BatchSize: 50, FlushInterval: 5 * time.Second, Clock: mock})
	b.start(t)
	b.logger.Error("one")
	b.logger.Error("two")
	// Advance until Run has taken both and the interval fires; each step is one interval.
	testwait.True(t, 10*time.Second, "the interval flush", func() bool {
		mock.Add(5 * time.Second)
		return len(b.api.rows()) == 2
	})
	// The clock may fire between the two records, so one or two requests are both right; what
	// matters is that rows far short of BatchSize went out on the interval.
	if reqs := b.api.got(); len(reqs) < 1 || len(reqs) > 2 {
		t.Fatalf("%d requests for 2 rows, want 1 or 2", len(reqs))
	}
}

// TestTransientFailureKeepsTheBatch: a 503 is retried in process, then the batch waits for
// the next interval instead of being dropped; the sink logs the trouble once, through the
// logger it is hooked into, without sending that line to itself.
func TestTransientFailureKeepsTheBatch(t *testing.T) {
	b := setup(t, sheets.Options{BatchSize: 1, FlushInterval: 20 * time.Millisecond,
		Retry: resilience.RetryPolicy{MaxAttempts: 2}, Breaker: resilience.BreakerSettings{FailureThreshold: 10}},
		503, 503, 503, 503)
	b.start(t)
	b.logger.WithField("contact_id", "c-9").Error("the record")
	testwait.True(t, 10*time.Second, "the row after the outage", func() bool { return len(b.api.rows()) == 1 })
	b.stop(t)

	if reqs := b.api.got(); len(reqs) != 5 {
		t.Errorf("%d requests, want 4 refused and 1 accepted", len(reqs))
	}
	for _, r := range b.api.rows() {
		if r[4] != "the record" {
			t.Errorf("sent %q: the sink's own warnings must not reach the sheet", r)
		}
	}
	if n := b.logged("Could not append 1 error records to Google Sheets"); n != 1 {
		t.Errorf("failure logged %d times, want once", n)
	}
	if b.logged("Appending error records to Google Sheets again") != 1 {
		t.Error("the recovery was not logged")
	}
	if s := b.hook.Stats(); s != (sheets.Stats{Appended: 1}) {
		t.Errorf("stats %+v, want 1 appended and nothing dropped", s)
	}
}

// TestRowsRefusedAsSuchAreDropped: a 400 about the values themselves is these rows' fault:
// they are dropped, counted and logged, and the next rows go through.
func TestRowsRefusedAsSuchAreDropped(t *testing.T) {
	t.Parallel()
	b := setup(t, sheets.Options{BatchSize: 1, FlushInterval: time.Hour}, http.StatusBadRequest)
	b.api.answer(http.StatusBadRequest, `{"error":{"code":400,"message":"Invalid values[0][4]: list_value {\n}\n","status":"INVALID_ARGUMENT"}}`)
	b.start(t)
	b.logger.Error("refused one")
	testwait.True(t, 10*time.Second, "the drop", func() bool { return b.hook.Stats().DroppedError == 1 })
	b.logger.Error("accepted one")
	testwait.True(t, 10*time.Second, "the next row", func() bool { return b.hook.Stats().Appended == 1 })
	if len(b.api.got()) != 2 {
		t.Errorf("%d requests, want 2: an invalid payload is not retried", len(b.api.got()))
	}
	var entry *logrus.Entry
	for _, e := range b.diag.AllEntries() {
		if strings.Contains(e.Message, "refused 1 error records; dropped them") {
			entry = e
		}
	}
	if entry == nil || entry.Data["error_category"] != "invalid_payload" ||
		!strings.Contains(fmt.Sprint(entry.Data[logrus.ErrorKey]), "Invalid values[0][4]") {
		t.Errorf("refusal log = %+v, want error_category invalid_payload and the API's message", entry)
	}
	if b.obs.get(sheets.ResultDroppedError) != 1 {
		t.Errorf("observer dropped_error = %d, want 1", b.obs.get(sheets.ResultDroppedError))
	}
}

// googleRefusals are the Sheets API's answers when the setup is wrong, as Google sends them,
// with what the operator must read in the log.
var googleRefusals = []struct {
	name   string
	status int
	body   string
	kind   string
	want   []string
}{
	{"range names no sheet", 400,
		`{"error":{"code":400,"message":"Unable to parse range: Errors!A1","status":"INVALID_ARGUMENT"}}`,
		"configuration", []string{"Unable to parse range: Errors!A1", `SHEETS_RANGE "Errors!A1" names no sheet`}},
	{"not a Google Sheet", 400,
		`{"error":{"code":400,"message":"This operation is not supported for this document","status":"FAILED_PRECONDITION"}}`,
		"configuration", []string{"not supported for this document", "SHEETS_SPREADSHEET_ID must name a Google Sheet"}},
	{"not shared", 403,
		`{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}`,
		"configuration", []string{"The caller does not have permission (HTTP 403, PERMISSION_DENIED)", "share the spreadsheet with " + clientEmail}},
	{"API disabled", 403,
		`{"error":{"code":403,"message":"Google Sheets API has not been used in project 123456 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/sheets.googleapis.com/overview?project=123456 then retry.","status":"PERMISSION_DENIED"}}`,
		"configuration", []string{"has not been used in project 123456", "enable the Google Sheets API"}},
	{"no such spreadsheet", 404,
		`{"error":{"code":404,"message":"Requested entity was not found: spreadsheet ` + spreadsheetID + `","status":"NOT_FOUND"}}`,
		"configuration", []string{"Requested entity was not found", "SHEETS_SPREADSHEET_ID"}},
	{"token not accepted", 401,
		`{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`,
		"authentication", []string{"invalid authentication credentials"}},
}

// TestSetupErrorsKeepTheRows replays Google's answers to a wrong setup: each is logged once
// as an error an operator can act on (the fix named, the sheet id never), the rows are kept
// rather than dropped, and they go out once the setup is fixed (here: the next answer is 200).
func TestSetupErrorsKeepTheRows(t *testing.T) {
	t.Parallel()
	for _, c := range googleRefusals {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// A setup error may open the sink's breaker at once; a short open time lets the
			// test see the recovery.
			b := setup(t, sheets.Options{BatchSize: 1, FlushInterval: 10 * time.Millisecond, Range: "Errors!A1",
				Breaker: resilience.BreakerSettings{FailureThreshold: 100, OpenTimeout: 20 * time.Millisecond}}, c.status, c.status)
			b.api.answer(c.status, c.body)
			b.start(t)
			b.logger.Error("kept until fixed")
			testwait.True(t, 10*time.Second, "the row once fixed", func() bool { return b.hook.Stats().Appended == 1 })
			b.stop(t)
			if s := b.hook.Stats(); s != (sheets.Stats{Appended: 1}) {
				t.Errorf("stats %+v, want the row appended and nothing dropped", s)
			}
			var entries []*logrus.Entry
			for _, e := range b.diag.AllEntries() {
				if strings.Contains(e.Message, "refused 1 error records; keeping them until this is fixed") {
					entries = append(entries, e)
				}
			}
			if len(entries) != 1 {
				t.Fatalf("%d refusal lines, want 1", len(entries))
			}
			if e := entries[0]; e.Level != logrus.ErrorLevel || e.Data["error_category"] != c.kind {
				t.Errorf("refusal logged at %s with category %v, want error and %s", e.Level, e.Data["error_category"], c.kind)
			}
			text := fmt.Sprint(entries[0].Data[logrus.ErrorKey])
			for _, want := range c.want {
				if !strings.Contains(text, want) {
					t.Errorf("the error %q does not say %q", text, want)
				}
			}
			if b.logged("Appending error records to Google Sheets again") != 1 {
				t.Error("the recovery was not logged")
			}
		})
	}
}

// TestRedirectIsNotFollowed: a 3xx from the API is never followed (the bearer token would go
// with it); the other host receives nothing and the rows are kept.
func TestRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	other := newSheetsServer(t)
	b := setup(t, sheets.Options{BatchSize: 1, FlushInterval: time.Hour, Breaker: resilience.BreakerSettings{FailureThreshold: 100}})
	b.api.always, b.api.location = http.StatusFound, other.URL+"/v4/stolen"
	b.start(t)
	b.logger.Error("not sent elsewhere")
	testwait.True(t, 10*time.Second, "the refusal", func() bool { return b.logged("refused 1 error records; keeping them") == 1 })
	b.stop(t)
	if n := len(other.got()); n != 0 {
		t.Errorf("the redirect was followed: the other host got %d requests", n)
	}
	if n := len(b.api.got()); n != 4 {
		t.Errorf("%d requests, want 4: a bad response is tried twice, then twice more at stop", n)
	}
	if s := b.hook.Stats(); s.DroppedError != 1 || s.Appended != 0 {
		t.Errorf("stats %+v, want the row kept until stop, then counted", s)
	}
}

func TestTokenRefusalIsAnAuthenticationError(t *testing.T) {
	t.Parallel()
	b := setup(t, sheets.Options{BatchSize: 1, FlushInterval: 10 * time.Millisecond, Breaker: resilience.BreakerSettings{FailureThreshold: 100}})
	b.tokens.setRefuse(true)
	b.start(t)
	b.logger.Error("sent once the key is accepted")
	testwait.True(t, 10*time.Second, "the refusal", func() bool { return b.logged("refused 1 error records; keeping them") == 1 })
	if len(b.api.got()) != 0 {
		t.Error("the API was called without a token")
	}
	var found bool
	for _, e := range b.diag.AllEntries() {
		if strings.Contains(e.Message, "refused 1 error records") && e.Data["error_category"] == "authentication" &&
			strings.Contains(fmt.Sprint(e.Data[logrus.ErrorKey]), "invalid_grant") {
			found = true
		}
	}
	if !found {
		t.Errorf("no authentication refusal logged: %v", b.logged("refused"))
	}
	b.tokens.setRefuse(false) // the service account is enabled again: no restart needed
	testwait.True(t, 10*time.Second, "the row", func() bool { return b.hook.Stats().Appended == 1 })
	if s := b.hook.Stats(); s.DroppedError != 0 {
		t.Errorf("stats %+v: nothing should be dropped", s)
	}
}

// TestPrivateClient: without an HTTPClient the sink makes its own and closes it when Run
// returns (goleak checks no connection outlives the tests).
func TestPrivateClient(t *testing.T) {
	t.Parallel()
	tokens, api := newTokenServer(t), newSheetsServer(t)
	hook, err := sheets.New(sheets.Options{CredentialsFile: writeCredentials(t, tokens.URL()), SpreadsheetID: spreadsheetID,
		Endpoint: api.URL, BatchSize: 1, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	log, _ := logtest.NewNullLogger()
	log.AddHook(hook)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hook.Run(ctx) }()
	log.Error("one")
	testwait.True(t, 10*time.Second, "the row", func() bool { return len(api.rows()) == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ua := api.got()[0].UserAgent; !strings.HasPrefix(ua, httpx.Product+"/") {
		t.Errorf("User-Agent %q, want the shared client's", ua)
	}
}

// TestFullBufferIsCountedAndLogged: Fire never blocks; what does not fit is counted at once
// and logged at the next flush.
func TestFullBufferIsCountedAndLogged(t *testing.T) {
	b := setup(t, sheets.Options{Buffer: 2, BatchSize: 10, FlushInterval: 10 * time.Millisecond})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			b.logger.Errorf("record %d", i) // Run is not started: only 2 fit
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("logging blocked on a full buffer")
	}
	if s := b.hook.Stats(); s.DroppedFull != 3 || b.obs.get(sheets.ResultDroppedFull) != 3 {
		t.Fatalf("stats %+v, observer %d; want 3 dropped for a full buffer", s, b.obs.get(sheets.ResultDroppedFull))
	}
	b.start(t)
	testwait.True(t, 10*time.Second, "the drop report", func() bool { return b.logged("was full: dropped 3 error records (3 in all)") == 1 })
	testwait.True(t, 10*time.Second, "the buffered rows", func() bool { return len(b.api.rows()) == 2 })
	if got := b.api.rows(); got[0][4] != "record 0" || got[1][4] != "record 1" {
		t.Errorf("rows %q, want the first two records", got)
	}
}

// TestBreakerOpensAndStopCountsTheUnsent: repeated 503s open the sink's own breaker; then no
// request is made, and what is unsent at stop is counted and logged, not lost silently.
func TestBreakerOpensAndStopCountsTheUnsent(t *testing.T) {
	opened := make(chan struct{})
	var once sync.Once
	l := listenerFunc(func(_ string, _, to resilience.State, _ time.Time) {
		if to == resilience.StateOpen {
			once.Do(func() { close(opened) })
		}
	})
	b := setup(t, sheets.Options{BatchSize: 1, FlushInterval: 5 * time.Millisecond, Listener: l,
		Retry:   resilience.RetryPolicy{MaxAttempts: 1},
		Breaker: resilience.BreakerSettings{FailureThreshold: 2, OpenTimeout: time.Hour}})
	b.api.always = http.StatusServiceUnavailable
	b.start(t)
	b.logger.Error("first")
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("the sink's breaker never opened")
	}
	before := len(b.api.got())
	b.logger.Error("second")
	b.logger.Error("third")
	b.stop(t)
	if after := len(b.api.got()); after != before || before != 2 {
		t.Errorf("requests: %d when the breaker opened, %d at the end; want 2 and no more", before, after)
	}
	if s := b.hook.Stats(); s.DroppedError != 3 || s.Appended != 0 {
		t.Errorf("stats %+v, want the 3 unsent records counted as dropped", s)
	}
	if b.logged("Stopping: 3 error records were not appended to Google Sheets") != 1 {
		t.Error("the unsent records were not logged at stop")
	}
	b.logger.Error("after stop")
	if s := b.hook.Stats(); s.DroppedFull != 1 {
		t.Errorf("a record logged after stop: stats %+v, want it counted", s)
	}
}

// TestStopLetsTheAppendInFlightFinish: cancelling Run while an append is in flight does not
// cut it off and send the rows again (they may have landed): the request completes once.
func TestStopLetsTheAppendInFlightFinish(t *testing.T) {
	b := setup(t, sheets.Options{BatchSize: 1, FlushInterval: time.Hour})
	b.api.gate = make(chan struct{})
	b.start(t)
	b.logger.Error("in flight at stop")
	testwait.True(t, 10*time.Second, "the request", func() bool { return len(b.api.got()) == 1 })
	b.cancel()
	time.AfterFunc(50*time.Millisecond, func() { close(b.api.gate) })
	b.stop(t)
	if n := len(b.api.got()); n != 1 || b.hook.Stats() != (sheets.Stats{Appended: 1}) {
		t.Fatalf("%d requests, stats %+v; want the one append to finish, nothing sent twice or dropped", n, b.hook.Stats())
	}
}

// TestUnreachableAPIIsTransientAndHidesTheURL: a refused connection keeps the batch, and the
// logged error does not carry the request URL (it holds the spreadsheet id).
func TestUnreachableAPIIsTransientAndHidesTheURL(t *testing.T) {
	b := setup(t, sheets.Options{BatchSize: 1, FlushInterval: time.Hour, Retry: resilience.RetryPolicy{MaxAttempts: 1}})
	b.api.Close()
	b.start(t)
	b.logger.Error("kept while the API is unreachable")
	testwait.True(t, 10*time.Second, "the failure", func() bool { return b.logged("Could not append 1 error records") == 1 })
	for _, e := range b.diag.AllEntries() {
		if strings.Contains(e.Message, "Could not append") &&
			!strings.Contains(fmt.Sprint(e.Data[logrus.ErrorKey]), "Google Sheets post request") {
			t.Errorf("error = %v, want the transport error without the URL", e.Data[logrus.ErrorKey])
		}
	}
	b.stop(t)
	if s := b.hook.Stats(); s.DroppedError != 1 {
		t.Errorf("stats %+v: the unsent record must be counted at stop", s)
	}
}

type listenerFunc func(provider string, from, to resilience.State, at time.Time)

func (f listenerFunc) BreakerStateChanged(p string, from, to resilience.State, at time.Time) {
	f(p, from, to, at)
}

func TestCredentialsAndOptionsErrors(t *testing.T) {
	_, pemKey := key(t)
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := func(mut func(m map[string]string)) string {
		m := map[string]string{"type": "service_account", "client_email": clientEmail, "private_key": pemKey,
			"token_uri": "https://oauth2.example/token"}
		mut(m)
		var parts []string
		for k, v := range m {
			parts = append(parts, fmt.Sprintf("%q:%q", k, v))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	missing := filepath.Join(dir, "nope.json")
	tests := []struct {
		name, path, want string
		opts             func(*sheets.Options)
		wantErr          error
	}{
		{"no file given", "", "invalid google service account credentials: no credentials file given", nil, sheets.ErrCredentials},
		{"missing", missing, "read " + missing, nil, os.ErrNotExist},
		{"not json", file("a.json", `{"private_key": "-----BEGIN`), "is not a JSON key file: syntax error at byte", nil, sheets.ErrCredentials},
		{"wrong type", file("b.json", good(func(m map[string]string) { m["type"] = "authorized_user" })),
			`type is "authorized_user", want "service_account"`, nil, sheets.ErrCredentials},
		{"no email", file("c.json", good(func(m map[string]string) { delete(m, "client_email") })),
			"client_email is empty", nil, sheets.ErrCredentials},
		{"bad key", file("d.json", good(func(m map[string]string) {
			m["private_key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
		})),
			"private_key: not a PKCS#8 or PKCS#1 RSA private key", nil, sheets.ErrCredentials},
		{"bad token uri", file("e.json", good(func(m map[string]string) { m["token_uri"] = "ftp://x" })),
			`token_uri "ftp://x" is not an http(s) URL`, nil, sheets.ErrCredentials},
		{"no sheet", file("f.json", good(func(map[string]string) {})), "SpreadsheetID is empty",
			func(o *sheets.Options) { o.SpreadsheetID = " " }, sheets.ErrInvalidOptions},
		{"batch too big", file("g.json", good(func(map[string]string) {})), "BatchSize is 10001, must be 1 to 10000",
			func(o *sheets.Options) { o.BatchSize = 10001 }, sheets.ErrInvalidOptions},
		{"negative buffer", file("h.json", good(func(map[string]string) {})), "Buffer is -1, must be at least 1",
			func(o *sheets.Options) { o.Buffer = -1 }, sheets.ErrInvalidOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := sheets.Options{CredentialsFile: tt.path, SpreadsheetID: spreadsheetID}
			if tt.opts != nil {
				tt.opts(&o)
			}
			_, err := sheets.New(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("New = %v, want an error containing %q and matching %v", err, tt.want, tt.wantErr)
			}
			if strings.Contains(err.Error(), "BEGIN") || strings.Contains(err.Error(), pemKey[40:80]) {
				t.Fatalf("the error shows key material: %v", err)
			}
		})
	}
}
