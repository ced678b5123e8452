package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/daemon"
	"github.com/callagent/resilience/internal/logging"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

// Scenario is one of issue 12's workloads.
type Scenario struct {
	Key, Title  string
	Contacts    int
	Concurrency int
	LLMLatency  time.Duration
	TTSLatency  time.Duration
	// TTSOutage makes the TTS (text-to-speech and its probe) answer 503 for this long from
	// the start of consumption.
	TTSOutage time.Duration
}

// Scenarios are the three, at full size.
func Scenarios() []Scenario {
	return []Scenario{
		{Key: "a", Title: "providers answer at once, concurrency 64", Contacts: 20000, Concurrency: 64},
		{Key: "b", Title: "50 ms LLM + 50 ms TTS, concurrency 256", Contacts: 5000, Concurrency: 256,
			LLMLatency: 50 * time.Millisecond, TTSLatency: 50 * time.Millisecond},
		{Key: "c", Title: "20+20 ms, TTS answers 503 for 10 s from the start, concurrency 64", Contacts: 5000, Concurrency: 64,
			LLMLatency: 20 * time.Millisecond, TTSLatency: 20 * time.Millisecond, TTSOutage: 10 * time.Second},
	}
}

// Env is what every run shares: the server, the fakes and an admin connection.
type Env struct {
	Server     *NATSServer
	Fakes      *Fakes
	NC         *nats.Conn
	JS         jetstream.JetStream
	Dir        string
	LogFile    bool          // the worker also writes LOG_FILE (JSON lines) in Dir
	RunTimeout time.Duration // bound on one drain
	Breakdown  bool          // count client messages by kind (a ">" subscriber; skews CPU)
	// Progress, if set, gets one line per run.
	Progress func(format string, args ...any)
}

// enqueueWindow is PUBLISH_WINDOW's default.
const enqueueWindow = 256

// Connect opens the admin connection (enqueue, topology, counts).
func (e *Env) Connect() error {
	nc, err := nats.Connect(e.Server.URL(), nats.Name("bench-admin"))
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(enqueueWindow))
	if err != nil {
		nc.Close()
		return err
	}
	e.NC, e.JS = nc, js
	return nil
}

// Contacts are the scenario's data: the same for both consumers. Each has a "ref" variable
// (its id) that the fake LLM reads back.
func Contacts(n int) []contact.Contact {
	cs := make([]contact.Contact, n)
	for i := range cs {
		id := fmt.Sprintf("c%07d", i)
		cs[i] = contact.Contact{
			ID: id, Name: "Alex Morgan", Phone: fmt.Sprintf("+1415%07d", i), Language: "en-US",
			Variables: map[string]string{"clinic": "Harbor Dental", "appointment": "Tuesday 10:30", "ref": id},
		}
	}
	return cs
}

// Result is one consumer's run of one scenario.
type Result struct {
	Consumer  string // "bare" or "worker"
	Contacts  int
	Drained   bool
	Elapsed   time.Duration // start of consumption to an empty contacts stream (or the timeout)
	CPU       time.Duration // this process (the consumer; the fakes run elsewhere)
	ServerCPU time.Duration
	FakesCPU  time.Duration
	Alloc     uint64 // bytes
	Mallocs   uint64
	GCs       uint32
	APIReqs   uint64 // JetStream API requests ($JS.API.*)
	APIErrs   uint64
	InMsgs    uint64 // messages the server received from clients
	Completed int64
	Dead      int64
	Fakes     FakeStats
	// Breakdown counts what the consumer sent to the server, by kind (BENCH_BREAKDOWN=1 only).
	Breakdown map[string]int64
}

// PerContact divides v by the contacts.
func (r Result) PerContact(v float64) float64 { return v / float64(r.Contacts) }

// Rate is contacts per second.
func (r Result) Rate() float64 { return float64(r.Contacts) / r.Elapsed.Seconds() }

// snapshot is the counters at one end of the measured window.
type snapshot struct {
	at                       time.Time
	cpu, serverCPU, fakesCPU time.Duration
	alloc, mallocs           uint64
	gcs                      uint32
	apiReqs, apiErrs, inMsgs uint64
}

func (e *Env) snapshot() (snapshot, error) {
	var s snapshot
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.alloc, s.mallocs, s.gcs = ms.TotalAlloc, ms.Mallocs, ms.NumGC
	j, err := e.Server.JSZ()
	if err != nil {
		return s, err
	}
	v, err := e.Server.VarZ()
	if err != nil {
		return s, err
	}
	s.apiReqs, s.apiErrs, s.inMsgs = j.API.Total, j.API.Errors, v.InMsgs
	if s.serverCPU, err = procCPU(e.Server.Pid()); err != nil {
		return s, err
	}
	if s.fakesCPU, err = procCPU(e.Fakes.Pid()); err != nil {
		return s, err
	}
	s.cpu = selfCPU()
	s.at = time.Now()
	return s, nil
}

func (r *Result) measure(from, to snapshot) {
	r.Elapsed = to.at.Sub(from.at)
	r.CPU, r.ServerCPU, r.FakesCPU = to.cpu-from.cpu, to.serverCPU-from.serverCPU, to.fakesCPU-from.fakesCPU
	r.Alloc, r.Mallocs, r.GCs = to.alloc-from.alloc, to.mallocs-from.mallocs, to.gcs-from.gcs
	r.APIReqs, r.APIErrs, r.InMsgs = to.apiReqs-from.apiReqs, to.apiErrs-from.apiErrs, to.inMsgs-from.inMsgs
}

// clean deletes every stream (Key-Value and Object Store buckets are streams too), so each
// run starts on an empty server.
func (e *Env) clean(ctx context.Context) error {
	var names []string
	lister := e.JS.StreamNames(ctx)
	for n := range lister.Name() {
		names = append(names, n)
	}
	if err := lister.Err(); err != nil {
		return err
	}
	for _, n := range names {
		if err := e.JS.DeleteStream(ctx, n); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("delete stream %s: %w", n, err)
		}
	}
	return nil
}

// enqueue publishes the contacts with the project's Enqueuer.
func (e *Env) enqueue(ctx context.Context, subject string, cs []contact.Contact) error {
	enq := queue.NewEnqueuer(e.JS, subject, enqueueWindow)
	for _, c := range cs {
		if err := enq.Add(ctx, c); err != nil {
			return err
		}
	}
	st, err := enq.Flush(ctx)
	if err != nil {
		return err
	}
	if st.Enqueued != len(cs) {
		return fmt.Errorf("enqueued %d of %d contacts (%d duplicates)", st.Enqueued, len(cs), st.Duplicates)
	}
	return nil
}

// prepare cleans the server, enqueues the data and resets the fakes.
func (e *Env) prepare(ctx context.Context, sc Scenario, cs []contact.Contact, ensureStream func() error, subject string) error {
	if err := e.clean(ctx); err != nil {
		return err
	}
	if err := ensureStream(); err != nil {
		return err
	}
	if err := e.enqueue(ctx, subject, cs); err != nil {
		return err
	}
	if err := e.Fakes.Reset(ctx, len(cs), sc.LLMLatency, sc.TTSLatency, sc.TTSOutage); err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond) // let the server finish the enqueue's work before the window opens
	runtime.GC()
	return nil
}

// drainPoll is how often the drain poller reads the monitor.
const drainPoll = 25 * time.Millisecond

// waitDrained polls the monitor until stream holds no message; false at the timeout.
func (e *Env) waitDrained(stream string, start time.Time) (bool, error) {
	deadline := start.Add(e.RunTimeout)
	for {
		j, err := e.Server.JSZ()
		if err != nil {
			return false, err
		}
		if n, ok := j.streamMsgs()[stream]; ok && n == 0 {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(drainPoll)
	}
}

// streamMsgs counts the messages in stream (0 when it does not exist).
func (e *Env) streamMsgs(ctx context.Context, name string) (int64, error) {
	s, err := e.JS.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int64(info.State.Msgs), nil
}

// WorkerConfig is the worker's configuration in a scenario: the project's defaults (retry,
// breaker, health checks, hold policy, pull batch), real clients pointed at the fakes, no
// fallback, no CRM (the bare consumer has none), no metrics endpoint, and the scenario's
// concurrency for the pool, every bulkhead and MAX_ACK_PENDING (at least its default).
func (e *Env) WorkerConfig(sc Scenario) config.Config {
	cfg := config.Defaults()
	cfg.NATS.URL = e.Server.URL()
	cfg.Worker.ID = "bench-worker"
	cfg.Worker.Concurrency = sc.Concurrency
	cfg.Topology.MaxAckPending = max(cfg.Topology.MaxAckPending, sc.Concurrency)
	cfg.Bulkhead.LLM, cfg.Bulkhead.TTS, cfg.Bulkhead.CRM = sc.Concurrency, sc.Concurrency, sc.Concurrency
	cfg.Sim.Scenario = ""
	cfg.LLM.APIKey, cfg.LLM.BaseURL = secret.Secret(fakeLLMKey), e.Fakes.LLMURL+"/v1"
	cfg.ElevenLabs.APIKey, cfg.ElevenLabs.VoiceID, cfg.ElevenLabs.BaseURL = secret.Secret(fakeTTSKey), fakeVoice, e.Fakes.TTSURL
	cfg.TTSFallback.Kind = config.TTSFallbackNone
	cfg.CRM.WebhookURL, cfg.CRM.HealthURL = "", ""
	cfg.Log.File = ""
	cfg.Metrics.Addr = ""
	return cfg
}

// RunWorker runs the project's worker in process on the scenario's contacts.
func (e *Env) RunWorker(ctx context.Context, sc Scenario, cs []contact.Contact) (Result, error) {
	res := Result{Consumer: "worker", Contacts: len(cs)}
	cfg := e.WorkerConfig(sc)
	err := e.prepare(ctx, sc, cs, func() error {
		_, err := queue.EnsureContactsStream(ctx, e.JS, cfg.Topology)
		return err
	}, cfg.Topology.ContactsSubject)
	if err != nil {
		return res, err
	}

	red := redact.New()
	log, closer, err := e.workerLogger(red, sc)
	if err != nil {
		return res, err
	}
	defer closer.Close()

	var bd *breakdown
	if e.Breakdown {
		if bd, err = e.startBreakdown(); err != nil {
			return res, err
		}
		defer bd.stop()
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	started := make(chan snapshot, 1)
	startErr := make(chan error, 1)
	go func() {
		done <- daemon.Run(wctx, daemon.Options{Config: cfg, Logger: log, Redactor: red, Version: "bench",
			// Ready is called just before the worker starts consuming: the window opens here.
			Ready: func(string) {
				runtime.GC()
				bd.reset()
				s, err := e.snapshot()
				if err == nil {
					err = e.Fakes.Start(ctx)
				}
				if err != nil {
					startErr <- err
					return
				}
				started <- s
			}})
	}()
	var from snapshot
	select {
	case from = <-started:
	case err := <-startErr:
		stop()
		<-done
		return res, err
	case err := <-done:
		return res, fmt.Errorf("the worker stopped before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		stop()
		return res, errors.New("the worker was not ready after 60s")
	}
	drained, werr := e.waitDrained(cfg.Topology.ContactsStream, from.at)
	to, serr := e.snapshot()
	res.Drained = drained
	res.measure(from, to)
	res.Breakdown = bd.stop()

	stop()
	select {
	case err := <-done:
		if err != nil {
			return res, fmt.Errorf("worker: %w", err)
		}
	case <-time.After(60 * time.Second):
		return res, errors.New("the worker did not stop within 60s")
	}
	if err := errors.Join(werr, serr); err != nil {
		return res, err
	}
	if res.Dead, err = e.streamMsgs(ctx, cfg.Topology.DeadLetterStream); err != nil {
		return res, err
	}
	completed, err := queue.CountCompleted(ctx, e.JS, cfg.Topology)
	if err != nil {
		return res, err
	}
	res.Completed = int64(completed)
	res.Fakes, err = e.Fakes.Stats(ctx)
	return res, err
}

// workerLogger is the worker binary's logger: the console at the default level (info),
// written to /dev/null so the formatting and the write are paid but nothing floods the
// benchmark's output; unless BENCH_LOG_FILE=0 also the JSON log file, as by default.
func (e *Env) workerLogger(red *redact.Redactor, sc Scenario) (*logrus.Logger, interface{ Close() error }, error) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, nil, err
	}
	opts := logging.Options{Console: devNull, Level: "info", Redactor: red}
	if e.LogFile {
		opts.File = filepath.Join(e.Dir, "logs", "worker-"+sc.Key+".log")
	}
	log, closer, err := logging.New(opts)
	if err != nil {
		devNull.Close()
		return nil, nil, err
	}
	return log, closers{closer, devNull}, nil
}

type closers []interface{ Close() error }

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// RunBare runs the bare consumer on the scenario's contacts.
func (e *Env) RunBare(ctx context.Context, sc Scenario, cs []contact.Contact) (Result, error) {
	res := Result{Consumer: "bare", Contacts: len(cs)}
	var cons jetstream.Consumer
	maxAckPending := max(config.Defaults().Topology.MaxAckPending, sc.Concurrency)
	err := e.prepare(ctx, sc, cs, func() (err error) {
		cons, err = ensureBareTopology(ctx, e.JS, maxAckPending)
		return err
	}, bareSubject)
	if err != nil {
		return res, err
	}
	nc, err := nats.Connect(e.Server.URL(), nats.Name("bench-bare"))
	if err != nil {
		return res, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return res, err
	}
	// The consumer handle on the bare connection, so its pulls and acks travel there.
	if cons, err = js.Consumer(ctx, bareStream, bareConsumer); err != nil {
		return res, err
	}
	b := newBare(js, e.Fakes, sc.Concurrency)
	defer b.hc.CloseIdleConnections()

	var bd *breakdown
	if e.Breakdown {
		if bd, err = e.startBreakdown(); err != nil {
			return res, err
		}
		defer bd.stop()
	}
	runtime.GC()
	from, err := e.snapshot()
	if err != nil {
		return res, err
	}
	if err := e.Fakes.Start(ctx); err != nil {
		return res, err
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopConsume, err := b.consume(bctx, cons, sc.Concurrency)
	if err != nil {
		return res, err
	}
	drained, werr := e.waitDrained(bareStream, from.at)
	to, serr := e.snapshot()
	res.Drained = drained
	res.measure(from, to)
	res.Breakdown = bd.stop()
	cancel()
	stopConsume()
	if err := errors.Join(werr, serr); err != nil {
		return res, err
	}
	res.Completed, res.Dead = b.completed.Load(), b.dead.Load()
	res.Fakes, err = e.Fakes.Stats(ctx)
	return res, err
}

// breakdown counts what clients send to the server, by kind, through a subscriber on ">"
// (BENCH_BREAKDOWN=1). The subscriber doubles the server's fan-out, so a run with it is for
// the counts, not for CPU or rate.
type breakdown struct {
	nc     *nats.Conn
	mu     sync.Mutex
	counts map[string]int64
}

func (e *Env) startBreakdown() (*breakdown, error) {
	nc, err := nats.Connect(e.Server.URL(), nats.Name("bench-breakdown"))
	if err != nil {
		return nil, err
	}
	bd := &breakdown{nc: nc, counts: map[string]int64{}}
	sub, err := nc.Subscribe(">", func(m *nats.Msg) {
		kind := messageKind(m)
		if kind == "" {
			return
		}
		bd.mu.Lock()
		bd.counts[kind]++
		bd.mu.Unlock()
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, err
	}
	return bd, nil
}

// reset forgets what was counted so far (the window opens).
func (bd *breakdown) reset() {
	if bd == nil {
		return
	}
	bd.mu.Lock()
	clear(bd.counts)
	bd.mu.Unlock()
}

// stop returns the counts once every message sent so far has been seen.
func (bd *breakdown) stop() map[string]int64 {
	if bd == nil {
		return nil
	}
	if bd.nc.IsClosed() {
		bd.mu.Lock()
		defer bd.mu.Unlock()
		return maps.Clone(bd.counts)
	}
	_ = bd.nc.Flush()
	time.Sleep(100 * time.Millisecond)
	bd.nc.Close()
	bd.mu.Lock()
	defer bd.mu.Unlock()
	return maps.Clone(bd.counts)
}

// messageKind classifies a message a client sent; "" for what the server sends (replies,
// consumer deliveries, advisories).
func messageKind(m *nats.Msg) string {
	s := m.Subject
	tok := strings.Split(s, ".")
	switch {
	case strings.HasPrefix(s, "_INBOX.") || strings.HasPrefix(s, "$JS.EVENT.") || strings.HasPrefix(s, "$SYS."):
		return ""
	case strings.HasPrefix(m.Reply, "$JS.ACK."):
		return "" // a consumer's delivery to its client
	case strings.HasPrefix(s, "$JS.API.CONSUMER.MSG.NEXT."):
		return "pull request ($JS.API.CONSUMER.MSG.NEXT)"
	case strings.HasPrefix(s, "$JS.API.DIRECT.GET."):
		return "direct get ($JS.API.DIRECT.GET, KV read)"
	case strings.HasPrefix(s, "$JS.API."):
		verb := strings.Join(tok[2:min(len(tok), 4)], ".")
		return "JetStream API $JS.API." + verb
	case strings.HasPrefix(s, "$JS.ACK."):
		kind := "ack"
		switch {
		case bytes.HasPrefix(m.Data, []byte("-NAK")):
			kind = "nak"
		case bytes.HasPrefix(m.Data, []byte("+WPI")):
			kind = "in-progress"
		case bytes.HasPrefix(m.Data, []byte("+TERM")):
			kind = "term"
		}
		if m.Reply != "" {
			kind += " (awaiting confirmation)"
		}
		return kind
	case strings.HasPrefix(s, "$KV.") && len(tok) > 1:
		return "KV write " + tok[1]
	case strings.HasPrefix(s, "$O.") && len(tok) > 2:
		return map[string]string{"C": "Object Store chunk ", "M": "Object Store meta "}[tok[2]] + tok[1]
	}
	return "publish " + strings.Join(tok[:min(len(tok), 2)], ".")
}
