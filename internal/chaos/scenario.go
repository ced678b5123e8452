package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/provider/providertest"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/testwait"
)

// Credentials the workers get. The secret scan looks for every one of them (and every phone
// number enqueued) in everything the processes wrote.
const (
	llmKey        = "sk-chaos-llm-4f9c2e7a1b3d5f60"
	elKey         = "el-chaos-tts-8e1d3c5b7a9f2046"
	crmToken      = "crm-chaos-token-5a7c9e1b3d7f"
	webhookSecret = "whsec-chaos-2b4d6f8a0c1e3a5c"
)

// JetStream names: the workers run with the defaults.
const (
	contactsStream = "CONTACTS"
	consumerName   = "workers"
	// checkpointBucket holds each contact's progress and completed records (see
	// queue.ProgressKey and queue.CompletedKey).
	checkpointBucket = "contact-records"
	audioBucket      = "audio"
	deadLetterStream = "DEAD_LETTERS"
	alertsStream     = "ALERTS"
	incidentsBucket  = "alert-incidents"
)

// workerEnv is what every worker runs with besides its identity and provider URLs: real
// providers, short AckWait (the shortest accepted) and fast retries, breakers and health
// checks, so that a scenario recovers in seconds, not minutes.
var workerEnv = []string{
	"ENV_FILE=", "SIMULATE=", "LOG_LEVEL=debug", "METRICS_ADDR=127.0.0.1:0",
	"ACK_WAIT=3s", "WORKER_CONCURRENCY=4", "PULL_BATCH=4", "SHUTDOWN_GRACE=3s",
	"RETRY_INITIAL_DELAY=100ms", "RETRY_MAX_DELAY=1s", "RETRY_AFTER_CAP=1s", "RETRY_MAX_ATTEMPTS=3",
	"BREAKER_OPEN_TIMEOUT=1s", "HEALTH_CHECK_INTERVAL=1s", "HEALTH_CHECK_TIMEOUT=1s",
	// Generous call timeouts: a call the provider answered but the worker timed out on is
	// paid again, and a shared 2-core machine can stall the loopback for seconds. The hostile
	// scenario shortens them, to end its trickles.
	"LLM_TIMEOUT=15s", "ELEVENLABS_TIMEOUT=15s", "CRM_TIMEOUT=15s",
	"TTS_FALLBACK=none", "FLEET_TTL=3s", "SERVICE_DOWN_ALERT_AFTER=2s", "ALERT_SUMMARY_WINDOW=1s",
	"LLM_API_KEY=" + llmKey, "ELEVENLABS_API_KEY=" + elKey, "ELEVENLABS_VOICE_ID=voice-1", "CRM_TOKEN=" + crmToken,
}

// Contact is one line of the contacts file the publisher enqueues.
type Contact struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Phone     string            `json:"phone"`
	Variables map[string]string `json:"variables"`
}

// Worker is a worker slot: its proxies, and the process currently running in it (restarted
// after each kill, with the same id and proxies).
type Worker struct {
	Slot    int
	ID      string
	Proxies map[string]*Proxy
	PeakRSS int64 // the highest VmHWM of any process in the slot, read before it ended

	proc *Proc
	gen  int
}

// Scenario is one chaos run: a nats-server (or a cluster of them), the fakes behind
// per-worker proxies, the workers, and what happened to them.
type Scenario struct {
	T        *testing.T
	Name     string
	Dir      string
	LogDir   string
	Bins     Binaries
	NATS     *NATSServer // nil when the scenario runs on a cluster
	Cluster  *Cluster    // nil when it runs on one server
	NC       *nats.Conn
	JS       jetstream.JetStream
	Ledger   *Ledger
	Faults   map[string]*Faults
	LLM      *providertest.OpenAI
	TTS      *providertest.ElevenLabs
	CRM      *providertest.CRM
	Workers  []*Worker
	Redirect *HitCounter
	// Env is added to every worker's settings (after the suite's, so it overrides them).
	Env []string

	natsURL      string   // the client URL(s) every process gets as NATS_URL
	publisherEnv []string // added to the publisher's settings

	contacts    []Contact
	otherPhones []string             // in poison messages: never to be shown either
	enqueued    int                  // messages stored in the contacts stream, ours and poison
	poison      map[uint64]poisonMsg // by stream sequence
	kills       int
	natsKills   int
	inFlight    map[string]int // by step, at worker kills
	natsIn      map[string]int // by step, in flight at server kills (may be paid again)
	faultEnd    time.Time
	recovered   time.Duration
	drained     bool
	notes       []string
}

// NewScenario starts a nats-server, the fakes and one proxy per provider for each of workers
// slots (the workers themselves start with StartWorkers).
func NewScenario(t *testing.T, name string, bins Binaries, workers int) *Scenario {
	t.Helper()
	return newScenario(t, name, bins, workers, func(s *Scenario) {
		s.NATS = StartNATS(t, bins.NATSServer, s.Dir, s.LogDir)
		s.natsURL = s.NATS.URL()
	})
}

// newScenario is NewScenario with startNATS starting the server(s) and setting s.natsURL.
func newScenario(t *testing.T, name string, bins Binaries, workers int, startNATS func(s *Scenario)) *Scenario {
	t.Helper()
	dir := t.TempDir()
	s := &Scenario{
		T: t, Name: name, Dir: dir, LogDir: filepath.Join(dir, "logs"), Bins: bins,
		Ledger: NewLedger(), poison: map[uint64]poisonMsg{}, inFlight: map[string]int{}, natsIn: map[string]int{},
		Faults: map[string]*Faults{StepLLM: NewFaults(), StepTTS: NewFaults(), StepCRM: NewFaults()},
	}
	if err := os.MkdirAll(s.LogDir, 0o700); err != nil {
		t.Fatal(err)
	}
	startNATS(s)
	nc, err := nats.Connect(s.natsURL, nats.Name("chaos-observer"), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond), nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s.NC = nc
	if s.JS, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}

	s.LLM = providertest.NewOpenAI(t, providertest.OpenAIOptions{APIKey: llmKey})
	s.TTS = providertest.NewElevenLabs(t, providertest.ElevenLabsOptions{APIKey: elKey})
	s.CRM = providertest.NewCRM(t, providertest.CRMOptions{Path: "/hooks/" + webhookSecret, Token: crmToken})
	// No provider may see another's credential.
	s.LLM.Forbid(elKey, crmToken, webhookSecret)
	s.TTS.Forbid(llmKey, crmToken, webhookSecret)
	s.CRM.Forbid(llmKey, elKey)
	s.Redirect = NewHitCounter(t)

	upstream := map[string]string{StepLLM: s.LLM.URL(), StepTTS: s.TTS.URL(), StepCRM: s.CRM.URL()}
	for i := range workers {
		w := &Worker{Slot: i + 1, ID: fmt.Sprintf("w%d", i+1), Proxies: map[string]*Proxy{}}
		for step, up := range upstream {
			w.Proxies[step] = NewProxy(t, w.Slot, step, up, s.Faults[step], s.Ledger)
		}
		s.Workers = append(s.Workers, w)
	}
	t.Cleanup(func() {
		// The logs of a failed run are what explains it: keep them beside the report
		// (CHAOS_KEEP_LOGS keeps them after a pass too).
		keepLogs := t.Failed() || os.Getenv("CHAOS_KEEP_LOGS") != ""
		if dir := os.Getenv("CHAOS_REPORT_DIR"); keepLogs && dir != "" {
			keep := filepath.Join(dir, name+"-logs")
			_ = os.RemoveAll(keep)
			if err := os.CopyFS(keep, os.DirFS(s.LogDir)); err != nil {
				t.Logf("keeping the logs: %v", err)
			} else {
				t.Logf("%s: the processes' logs are kept in %s", name, keep)
			}
		}
	})
	return s
}

// StartWorkers starts a process in every slot.
func (s *Scenario) StartWorkers() {
	s.T.Helper()
	for _, w := range s.Workers {
		s.startWorker(w)
	}
}

// workerReady bounds a worker's start: build, connect, ensure the topology.
const workerReady = 30 * time.Second

func (s *Scenario) startWorker(w *Worker) {
	s.T.Helper()
	w.gen++
	name := fmt.Sprintf("%s#%d", w.ID, w.gen)
	env := append([]string{
		"NATS_URL=" + s.natsURL, "WORKER_ID=" + w.ID,
		"LOG_FILE=" + filepath.Join(s.LogDir, fmt.Sprintf("%s-%d.jsonl", w.ID, w.gen)),
		"LLM_BASE_URL=" + w.Proxies[StepLLM].URL() + "/v1",
		"ELEVENLABS_BASE_URL=" + w.Proxies[StepTTS].URL(),
		"CRM_WEBHOOK_URL=" + w.Proxies[StepCRM].URL() + "/hooks/" + webhookSecret,
		"CRM_HEALTH_URL=" + w.Proxies[StepCRM].URL() + "/health",
	}, workerEnv...)
	env = append(env, s.Env...)
	w.proc = StartProc(s.T, name, s.Bins.Worker, nil, env, filepath.Join(s.LogDir, name+".out"))
	w.proc.awaitReady(s.T, workerReady, "consuming", func() bool { return strings.Contains(w.proc.Output(), " consuming ") })
}

// KillWorker SIGKILLs the worker in w, counts the calls it had in flight, and restarts it.
func (s *Scenario) KillWorker(w *Worker) {
	s.T.Helper()
	w.PeakRSS = max(w.PeakRSS, w.proc.PeakRSS())
	at := time.Now()
	if err := w.proc.Kill(); err != nil {
		s.T.Fatal(err)
	}
	s.kills++
	for step, n := range s.Ledger.AtKill(w.Slot, at, s.kept) {
		s.inFlight[step] += n
	}
	s.startWorker(w)
}

// KillNATS SIGKILLs the server, leaves it down for down, and restarts it on the same store
// and port. Calls in flight meanwhile are counted but not allowed to be paid again: a worker
// that got its answer must keep it however long the server is away.
func (s *Scenario) KillNATS(down time.Duration) {
	s.T.Helper()
	for step, n := range s.Ledger.AtServerKill(time.Now()) {
		s.natsIn[step] += n
	}
	s.NATS.Kill()
	s.natsKills++
	time.Sleep(down)
	s.NATS.Start()
}

// StopWorkers stops every worker with SIGTERM, reading its peak RSS first.
func (s *Scenario) StopWorkers() {
	s.T.Helper()
	for _, w := range s.Workers {
		if w.proc == nil {
			continue
		}
		w.PeakRSS = max(w.PeakRSS, w.proc.PeakRSS())
		if err := w.proc.Stop(procStopWait); err != nil {
			s.T.Errorf("%s did not stop cleanly: %v\n%s", w.proc.Name, err, tail(w.proc.Output(), 40))
		}
	}
}

// kept reports whether the result of step for contact survives its worker: the script in
// the checkpoint, the audio in the object store, or the contact recorded as completed.
func (s *Scenario) kept(step, contact string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := s.JS.KeyValue(ctx, checkpointBucket)
	if err != nil {
		return false
	}
	if _, err := kv.Get(ctx, queue.CompletedKey(contact)); err == nil {
		return true
	}
	switch step {
	case StepLLM:
		e, err := kv.Get(ctx, queue.ProgressKey(contact))
		if err != nil {
			return false
		}
		var cp struct {
			Script json.RawMessage `json:"script"`
		}
		return json.Unmarshal(e.Value(), &cp) == nil && len(cp.Script) > 0 && string(cp.Script) != "null"
	case StepTTS:
		obs, err := s.JS.ObjectStore(ctx, audioBucket)
		if err != nil {
			return false
		}
		_, err = obs.GetInfo(ctx, contact)
		return err == nil
	}
	return false
}

// NewContacts makes n contacts with ids and phone numbers unique in the scenario. The id is
// also a template variable, so the LLM request names its contact.
func (s *Scenario) NewContacts(n int) []Contact {
	cs := make([]Contact, n)
	for i := range cs {
		k := len(s.contacts) + i + 1
		id := fmt.Sprintf("cx-%06d", k)
		cs[i] = Contact{ID: id, Name: fmt.Sprintf("Chaos Person %d", k), Phone: fmt.Sprintf("+1415555%04d", k%10000),
			Variables: map[string]string{"ref": id}}
	}
	return cs
}

// Enqueue writes cs to an NDJSON file and enqueues it with the publisher process.
func (s *Scenario) Enqueue(cs []Contact) {
	s.T.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	phones := make([]string, 0, len(cs))
	for _, c := range cs {
		if err := enc.Encode(c); err != nil {
			s.T.Fatal(err)
		}
		phones = append(phones, c.Phone)
	}
	// A phone number reaches no provider: the prompt never carries it.
	s.LLM.Forbid(phones...)
	s.TTS.Forbid(phones...)
	s.CRM.Forbid(phones...)
	file := filepath.Join(s.Dir, fmt.Sprintf("contacts-%d.ndjson", len(s.contacts)))
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		s.T.Fatal(err)
	}
	s.contacts = append(s.contacts, cs...)
	s.enqueued += len(cs)
	// Enqueuing is idempotent (Nats-Msg-Id = contact id), so a publisher run that a busy
	// server timed out is simply run again, as an operator would.
	var out string
	var err error
	for attempt := 1; attempt <= enqueueAttempts; attempt++ {
		out, err = Run("publisher", s.Bins.Publisher, []string{"enqueue", file},
			append([]string{"NATS_URL=" + s.natsURL, "ENV_FILE=", "LOG_LEVEL=debug",
				"LOG_FILE=" + filepath.Join(s.LogDir, "publisher.jsonl")}, s.publisherEnv...),
			filepath.Join(s.LogDir, "publisher.out"), time.Minute)
		if err == nil {
			return
		}
		s.Note("publisher attempt %d of %d failed: %v: %s", attempt, enqueueAttempts, err, tail(out, 1))
	}
	s.T.Fatalf("%v\n%s", err, out)
}

// enqueueAttempts bounds the publisher runs of one Enqueue.
const enqueueAttempts = 3

// PublishPoison publishes data on the contacts subject directly (with msgID as Nats-Msg-Id
// when not empty), bypassing the publisher's validation. It returns false when the stream
// dropped it as a duplicate.
func (s *Scenario) PublishPoison(what string, data []byte, msgID string) bool {
	s.T.Helper()
	m := nats.NewMsg("contacts.queue")
	m.Data = data
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := s.JS.PublishMsg(ctx, m)
	if err != nil {
		s.T.Fatalf("publish poison %q (%d bytes): %v", what, len(data), err)
	}
	if ack.Duplicate {
		return false
	}
	s.poison[ack.Sequence] = poisonMsg{what: what, id: payloadID(data)}
	s.enqueued++
	return true
}

// poisonMsg is a message published around the publisher.
type poisonMsg struct {
	what string
	id   string // the contact id it carries, if any: a worker may accept it as a contact
}

// payloadID is the "id" string of a JSON object, or "".
func payloadID(data []byte) string {
	var v struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	id, _ := v.ID.(string)
	return id
}

// WatchPhones adds phone numbers (of poison messages) to the secret scan.
func (s *Scenario) WatchPhones(phones ...string) { s.otherPhones = append(s.otherPhones, phones...) }

// Completed counts completed contacts.
func (s *Scenario) Completed() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := queue.CountCompleted(ctx, s.JS, config.Topology{CheckpointBucket: checkpointBucket})
	if err != nil {
		return 0
	}
	return int(n)
}

// CompletedOf counts the contacts of cs that are recorded as completed.
func (s *Scenario) CompletedOf(cs []Contact) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := s.JS.KeyValue(ctx, checkpointBucket)
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range cs {
		if _, err := kv.Get(ctx, queue.CompletedKey(c.ID)); err == nil {
			n++
		}
	}
	return n
}

// Pending is how many contacts wait in the stream (delivered or not).
func (s *Scenario) Pending() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.JS.Stream(ctx, contactsStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// FaultEnded marks when the scenario's fault ended; time to recover counts from here.
func (s *Scenario) FaultEnded(at time.Time) { s.faultEnd = at }

// WaitDrained waits up to d for the contacts stream to empty (every message completed or
// dead-lettered) and records the time to recover from the fault's end.
func (s *Scenario) WaitDrained(d time.Duration) bool {
	s.T.Helper()
	if s.faultEnd.IsZero() {
		s.faultEnd = time.Now()
	}
	var last error
	s.drained = testwait.Until(d, 200*time.Millisecond, func() bool {
		n, err := s.Pending()
		last = err
		return err == nil && n == 0
	})
	if s.drained {
		s.recovered = time.Since(s.faultEnd)
	} else {
		n, _ := s.Pending()
		s.Note("stuck: %d messages still in the stream %s after the fault ended (last error: %v)", n, d, last)
	}
	return s.drained
}

// Note adds a line under the scenario's table.
func (s *Scenario) Note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
}

// errorsIsNotFound reports the "does not exist" errors of streams and buckets.
func errorsIsNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) ||
		errors.Is(err, jetstream.ErrKeyNotFound)
}
