package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/natstest"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/fleet"
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/resilience"
	"github.com/callagent/resilience/internal/testwait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.IgnoreLibraryLeaks()...) }

// connect opens a connection of its own, as a separate process would.
func connect(t *testing.T, url, name string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func startServer(t *testing.T, opts natsembed.Options) *natsembed.Server {
	t.Helper()
	if opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	srv, err := natsembed.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// worker is one worker's breakers and reporter, on its own connection.
type worker struct {
	reporter *fleet.Reporter
	guards   map[string]*resilience.Guard
	cancel   context.CancelFunc
	done     chan error
}

func startWorker(t *testing.T, url, id string, bucket fleet.BucketConfig, c *clock.Mock, refresh time.Duration) *worker {
	t.Helper()
	js := connect(t, url, id)
	ctx := context.Background()
	kv, err := fleet.EnsureBucket(ctx, js, bucket)
	if err != nil {
		t.Fatal(err)
	}
	r := fleet.NewReporter(kv, id, fleet.ReporterOptions{Refresh: refresh})
	w := &worker{reporter: r, guards: map[string]*resilience.Guard{}, done: make(chan error, 1)}
	for _, p := range []string{"LLM", "ElevenLabs"} {
		g := resilience.NewGuard(p, resilience.GuardOptions{Clock: c, Listener: r})
		r.Watch(g)
		w.guards[p] = g
	}
	var rctx context.Context
	rctx, w.cancel = context.WithCancel(ctx)
	go func() { w.done <- r.Run(rctx) }()
	t.Cleanup(w.stop)
	return w
}

func (w *worker) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
	w.cancel = nil
}

// waitStatus polls Read until cond holds.
func waitStatus(t *testing.T, js jetstream.JetStream, bucket, what string, cond func(fleet.Status) bool) fleet.Status {
	t.Helper()
	var last fleet.Status
	testwait.Eventually(t, 10*time.Second, what, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := fleet.Read(ctx, js, bucket)
		last = st
		return err == nil && cond(st), fmt.Sprintf("status %+v, error %v", st, err)
	})
	return last
}

func provider(st fleet.Status, name string) fleet.ProviderStatus {
	for _, p := range st.Providers {
		if p.Provider == name {
			return p
		}
	}
	return fleet.ProviderStatus{}
}

func openBreaker(t *testing.T, g *resilience.Guard) {
	t.Helper()
	for g.State() != resilience.StateOpen {
		err := g.Do(context.Background(), func(context.Context) error {
			return fault.Classify(fault.Facts{Provider: g.Provider(), Status: 503})
		})
		if errors.Is(err, resilience.ErrBreakerOpen) {
			t.Fatal("refused before opening")
		}
	}
}

// TestStatusShowsABreakerAnotherWorkerOpened: two workers report on their own connections; a
// reader on a third sees worker-a's open ElevenLabs breaker, its recovery, and worker-a's
// reports vanish as soon as it stops.
func TestStatusShowsABreakerAnotherWorkerOpened(t *testing.T) {
	srv := startServer(t, natsembed.Options{})
	bucket := fleet.BucketConfig{Name: "fleet_test"}
	mock := clock.NewMock()
	a := startWorker(t, srv.ClientURL(), "worker-a", bucket, mock, time.Hour)
	startWorker(t, srv.ClientURL(), "worker-b", bucket, mock, time.Hour)
	reader := connect(t, srv.ClientURL(), "publisher status")

	waitStatus(t, reader, bucket.Name, "both workers reporting both providers", func(st fleet.Status) bool {
		return len(st.Workers) == 2 && provider(st, "LLM").Workers == 2 && provider(st, "ElevenLabs").Workers == 2
	})

	openBreaker(t, a.guards["ElevenLabs"])
	retryAt := mock.Now().Add(resilience.DefaultOpenTimeout).UTC()
	st := waitStatus(t, reader, bucket.Name, "worker-a's open breaker", func(st fleet.Status) bool {
		return provider(st, "ElevenLabs").State == resilience.StateOpen
	})
	el := provider(st, "ElevenLabs")
	if fmt.Sprint(el.Open) != "[worker-a]" || el.Workers != 2 || len(el.HalfOpen) != 0 || !el.RetryAt.Equal(retryAt) ||
		!el.Since.Equal(mock.Now().UTC()) {
		t.Errorf("ElevenLabs = %+v, want OPEN on worker-a of 2, retry at %s", el, retryAt)
	}
	if llm := provider(st, "LLM"); llm.State != resilience.StateClosed || llm.Workers != 2 || len(llm.Open) != 0 {
		t.Errorf("LLM = %+v, want CLOSED on 2 workers", llm)
	}
	if len(st.Incidents) != 1 || st.Incidents[0].Worker != "worker-a" || st.Incidents[0].Provider != "ElevenLabs" ||
		st.Incidents[0].State != resilience.StateOpen {
		t.Errorf("incidents = %+v, want worker-a's ElevenLabs", st.Incidents)
	}

	// What `publisher status --json` prints.
	body, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"provider":"ElevenLabs","state":"OPEN","workers":2,"open":["worker-a"]`,
		`"incidents":[{"worker":"worker-a","provider":"ElevenLabs","state":"OPEN"`, `"workers":["worker-a","worker-b"]`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("JSON lacks %s:\n%s", want, body)
		}
	}
	var table bytes.Buffer
	if err := st.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 workers reporting", "ElevenLabs  OPEN", "1/2", "Open incidents (1)", "worker-a"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}

	// Recovery: half-open after the timeout, then closed.
	mock.Add(resilience.DefaultOpenTimeout)
	waitStatus(t, reader, bucket.Name, "half-open", func(st fleet.Status) bool {
		p := provider(st, "ElevenLabs")
		return p.State == resilience.StateHalfOpen && fmt.Sprint(p.HalfOpen) == "[worker-a]" && p.RetryAt.IsZero()
	})
	a.guards["ElevenLabs"].Reset()
	waitStatus(t, reader, bucket.Name, "recovered", func(st fleet.Status) bool {
		return provider(st, "ElevenLabs").State == resilience.StateClosed && len(st.Incidents) == 0
	})

	// A clean stop removes the worker's reports at once.
	a.stop()
	st = waitStatus(t, reader, bucket.Name, "worker-a gone", func(st fleet.Status) bool {
		return fmt.Sprint(st.Workers) == "[worker-b]"
	})
	if provider(st, "ElevenLabs").Workers != 1 {
		t.Errorf("after worker-a stopped: %+v", st)
	}
}

// TestDeadWorkerVanishesAfterTheTTL: a report nobody refreshes expires with the bucket's TTL,
// while a live reporter refreshing more often than the TTL stays.
func TestDeadWorkerVanishesAfterTheTTL(t *testing.T) {
	srv := startServer(t, natsembed.Options{})
	const ttl = time.Second
	bucket := fleet.BucketConfig{Name: "fleet_ttl", TTL: ttl}
	js := connect(t, srv.ClientURL(), "dead worker")
	kv, err := fleet.EnsureBucket(context.Background(), js, bucket)
	if err != nil {
		t.Fatal(err)
	}
	dead := fleet.Report{Worker: "worker-dead", Provider: "ElevenLabs", State: resilience.StateOpen,
		Since: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	body, _ := json.Marshal(dead)
	if _, err := kv.Put(context.Background(), dead.Key(), body); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	startWorker(t, srv.ClientURL(), "worker-live", bucket, clock.NewMock(), ttl/5)

	st := waitStatus(t, js, bucket.Name, "the dead worker's report to expire", func(st fleet.Status) bool {
		return !strings.Contains(fmt.Sprint(st.Workers), "worker-dead")
	})
	if since := time.Since(written); since < ttl {
		t.Fatalf("the dead report vanished after %s, before the %s TTL", since, ttl)
	}
	if fmt.Sprint(st.Workers) != "[worker-live]" {
		t.Fatalf("workers = %v, want the live one to survive the TTL by refreshing", st.Workers)
	}
}

// TestReporterSurvivesAServerRestart: writes fail while the server is down (logged once), and
// the reports are back after it returns.
func TestReporterSurvivesAServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.ClientURL()
	defer func() { srv.Shutdown() }()
	js := connect(t, url, "worker")
	kv, err := fleet.EnsureBucket(context.Background(), js, fleet.BucketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	logger, logs := logtest.NewNullLogger()
	r := fleet.NewReporter(kv, "worker-a", fleet.ReporterOptions{Refresh: 50 * time.Millisecond,
		WriteTimeout: 100 * time.Millisecond, Logger: logger})
	g := resilience.NewGuard("ElevenLabs", resilience.GuardOptions{Listener: r})
	r.Watch(g)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = r.Run(ctx)
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()
	waitStatus(t, js, fleet.DefaultBucket, "first report", func(st fleet.Status) bool { return len(st.Workers) == 1 })

	srv.Shutdown()
	testwait.True(t, 10*time.Second, "a write failure logged while the server is down", func() bool {
		return countMessages(logs, "Could not publish") > 0
	})
	time.Sleep(300 * time.Millisecond) // several refreshes fail meanwhile: still one line
	if n := countMessages(logs, "Could not publish"); n != 1 {
		t.Errorf("write failure logged %d times, want once per streak", n)
	}

	srv, err = natsembed.Start(natsembed.Options{URL: url, StoreDir: dir})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	waitStatus(t, js, fleet.DefaultBucket, "the report after the restart", func(st fleet.Status) bool {
		return len(st.Workers) == 1
	})
	testwait.True(t, 10*time.Second, "the recovery logged", func() bool {
		return countMessages(logs, "to the fleet bucket again") > 0
	})
}

func countMessages(h *logtest.Hook, substr string) int {
	n := 0
	for _, e := range h.AllEntries() {
		if strings.Contains(e.Message, substr) {
			n++
		}
	}
	return n
}

func TestReadWithoutBucket(t *testing.T) {
	srv := startServer(t, natsembed.Options{})
	js := connect(t, srv.ClientURL(), "reader")
	_, err := fleet.Read(context.Background(), js, "nobody")
	if !errors.Is(err, fleet.ErrNoReports) || !errors.Is(err, jetstream.ErrBucketNotFound) || !strings.Contains(err.Error(), "nobody") {
		t.Fatalf("Read without a bucket = %v, want ErrNoReports naming the bucket", err)
	}
}

func TestReadSkipsValuesThatAreNotReports(t *testing.T) {
	srv := startServer(t, natsembed.Options{})
	js := connect(t, srv.ClientURL(), "reader")
	ctx := context.Background()
	kv, err := fleet.EnsureBucket(ctx, js, fleet.BucketConfig{Name: "mixed"})
	if err != nil {
		t.Fatal(err)
	}
	for key, v := range map[string]string{
		"junk.x":   "not json",
		"bad.x":    `{"worker":"w","provider":"p","state":"MELTED"}`,
		"empty.x":  `{}`,
		"good.llm": `{"worker":"w1","provider":"LLM","state":"HALF_OPEN","since":"2026-01-30T00:17:02Z"}`,
	} {
		if _, err := kv.PutString(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "empty.x"); err != nil {
		t.Fatal(err)
	}
	st, err := fleet.Read(ctx, js, "mixed")
	if err != nil {
		t.Fatal(err)
	}
	if st.Invalid != 2 || len(st.Providers) != 1 || st.Providers[0].State != resilience.StateHalfOpen {
		t.Fatalf("status = %+v, want one HALF_OPEN provider and 2 invalid values (deleted keys ignored)", st)
	}
}

func TestAggregate(t *testing.T) {
	t0 := time.Date(2026, 1, 30, 0, 17, 0, 0, time.UTC)
	reports := []fleet.Report{
		{Worker: "w3", Provider: "ElevenLabs", State: resilience.StateOpen, Since: t0.Add(2 * time.Second), RetryAt: t0.Add(32 * time.Second)},
		{Worker: "w1", Provider: "ElevenLabs", State: resilience.StateHalfOpen, Since: t0.Add(time.Second)},
		{Worker: "w2", Provider: "ElevenLabs", State: resilience.StateOpen, Since: t0.Add(3 * time.Second), RetryAt: t0.Add(33 * time.Second)},
		{Worker: "w1", Provider: "LLM", State: resilience.StateClosed, Since: t0},
		{Worker: "w2", Provider: "LLM", State: resilience.StateClosed, Since: t0},
	}
	st := fleet.Aggregate(reports)
	if fmt.Sprint(st.Workers) != "[w1 w2 w3]" {
		t.Errorf("workers = %v", st.Workers)
	}
	el := provider(st, "ElevenLabs")
	if el.State != resilience.StateOpen || fmt.Sprint(el.Open) != "[w2 w3]" || fmt.Sprint(el.HalfOpen) != "[w1]" ||
		!el.Since.Equal(t0.Add(time.Second)) || !el.RetryAt.Equal(t0.Add(32*time.Second)) || el.Workers != 3 {
		t.Errorf("ElevenLabs = %+v", el)
	}
	if llm := provider(st, "LLM"); llm.State != resilience.StateClosed || !llm.Since.IsZero() || llm.Workers != 2 {
		t.Errorf("LLM = %+v", llm)
	}
	var order []string
	for _, r := range st.Incidents {
		order = append(order, r.Worker)
	}
	if fmt.Sprint(order) != "[w1 w3 w2]" {
		t.Errorf("incidents in order %v, want oldest first [w1 w3 w2]", order)
	}

	var b bytes.Buffer
	if err := st.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	want := `Circuit breakers (3 workers reporting)
  PROVIDER    STATE   OPEN/WORKERS  SINCE                 RETRY AT
  ElevenLabs  OPEN    2/3           2026-01-30T00:17:01Z  2026-01-30T00:17:32Z
  LLM         CLOSED  0/2           -                     -
Open incidents (3)
  WORKER  PROVIDER    STATE      SINCE                 RETRY AT
  w1      ElevenLabs  HALF_OPEN  2026-01-30T00:17:01Z  -
  w3      ElevenLabs  OPEN       2026-01-30T00:17:02Z  2026-01-30T00:17:32Z
  w2      ElevenLabs  OPEN       2026-01-30T00:17:03Z  2026-01-30T00:17:33Z
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}

	empty := fleet.Aggregate(nil)
	b.Reset()
	_ = empty.WriteTable(&b)
	if b.String() != "Circuit breakers (0 workers reporting)\n  no breaker reported\nOpen incidents: none\n" {
		t.Errorf("empty table:\n%q", b.String())
	}
	if j, _ := json.Marshal(empty); string(j) != `{"providers":[],"incidents":[],"workers":[]}` {
		t.Errorf("empty JSON = %s, want empty lists, not null", j)
	}
}

func TestKeys(t *testing.T) {
	for _, tt := range []struct{ worker, provider, want string }{
		{"host-1.2", "ElevenLabs", "host-1-2.ElevenLabs"},
		{"w_1", "Google Sheets", "w_1.Google-Sheets"},
		{"", "*", "-.-"},
	} {
		if got := fleet.Key(tt.worker, tt.provider); got != tt.want {
			t.Errorf("Key(%q, %q) = %q, want %q", tt.worker, tt.provider, got, tt.want)
		}
	}
}
