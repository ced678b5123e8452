package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The fake providers are lean on purpose: a fixed chat completion and a fixed ~10 KB audio
// body, no validation, so that they cost little CPU. They run in a child process (see
// StartFakes) so their CPU and allocations stay out of the consumer's figures.

// Keys and the voice both consumers send. The fakes do not check them.
const (
	fakeLLMKey   = "sk-bench-llm-0123456789abcdef"
	fakeTTSKey   = "el-bench-key-9876543210fedcba"
	fakeVoice    = "voice-1"
	fakeTTSModel = "eleven_flash_v2_5"
	fakeLLMModel = "gpt-4o-mini"
)

// refMarker precedes the contact's index in a chat request: both consumers put the
// contact's id (c0000123) in a "ref" prompt variable, and the fake LLM reads it back to
// count scripts paid twice.
const refMarker = "ref: c"

// FakeStats are the fakes' counters since the last reset.
type FakeStats struct {
	LLMCalls int64 `json:"llm_calls"`
	// LLMRepeats are successful chat completions for a contact that already had one: a
	// script paid again.
	LLMRepeats int64 `json:"llm_repeats"`
	// LLMUnknown are chat requests without a readable contact ref (not counted for repeats).
	LLMUnknown int64 `json:"llm_unknown"`
	LLMProbes  int64 `json:"llm_probes"`
	TTSCalls   int64 `json:"tts_calls"`
	// TTSOutageCalls are text-to-speech calls (not probes) that arrived during the outage.
	TTSOutageCalls  int64 `json:"tts_outage_calls"`
	TTSProbes       int64 `json:"tts_probes"`
	TTSOutageProbes int64 `json:"tts_outage_probes"`
}

// fakeRun is one run's latencies, outage and counters.
type fakeRun struct {
	llmLatency, ttsLatency, outage time.Duration
	started                        atomic.Int64 // unix nanos of the start; 0 before it
	paid                           []atomic.Int32

	llmCalls, llmRepeats, llmUnknown, llmProbes          atomic.Int64
	ttsCalls, ttsOutageCalls, ttsProbes, ttsOutageProbes atomic.Int64
}

func (r *fakeRun) inOutage(now time.Time) bool {
	s := r.started.Load()
	return r.outage > 0 && s != 0 && now.UnixNano()-s < int64(r.outage)
}

func (r *fakeRun) stats() FakeStats {
	return FakeStats{
		LLMCalls: r.llmCalls.Load(), LLMRepeats: r.llmRepeats.Load(), LLMUnknown: r.llmUnknown.Load(),
		LLMProbes: r.llmProbes.Load(), TTSCalls: r.ttsCalls.Load(), TTSOutageCalls: r.ttsOutageCalls.Load(),
		TTSProbes: r.ttsProbes.Load(), TTSOutageProbes: r.ttsOutageProbes.Load(),
	}
}

// fakes serves the LLM (with the control endpoints under /_bench/) and the TTS.
type fakes struct {
	run        atomic.Pointer[fakeRun]
	completion []byte // the chat completion body
	audio      []byte // the text-to-speech body
	models     []byte
	outage503  []byte
	bufs       sync.Pool
}

// fakeScript is the assistant's answer: about the length of a real call opening.
const fakeScript = "Hello Alex, this is Maya calling from Harbor Dental on behalf of Doctor Reyes. " +
	"I am calling to confirm your cleaning appointment on Tuesday at half past ten, and to " +
	"let you know that parking is now available behind the building. Do you have a minute " +
	"to confirm, or would another day suit you better?"

func newFakes() *fakes {
	f := &fakes{
		bufs:      sync.Pool{New: func() any { return new(bytes.Buffer) }},
		models:    []byte(`{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"}]}`),
		outage503: []byte(`{"detail":{"status":"service_unavailable","message":"Service temporarily unavailable"}}`),
	}
	f.completion, _ = json.Marshal(map[string]any{
		"id": "chatcmpl-bench", "object": "chat.completion", "created": 1721172741, "model": fakeLLMModel + "-2024-07-18",
		"choices": []any{map[string]any{
			"index": 0, "message": map[string]any{"role": "assistant", "content": fakeScript, "refusal": nil},
			"logprobs": nil, "finish_reason": "stop",
		}},
		"usage": map[string]any{"prompt_tokens": 180, "completion_tokens": 70, "total_tokens": 250},
	})
	// 10 KiB of MP3-looking bytes: a frame header, then noise (incompressible, like audio).
	f.audio = make([]byte, 10<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range f.audio {
		f.audio[i] = byte(rng.Uint32())
	}
	copy(f.audio, []byte{0xFF, 0xFB, 0x90, 0x64})
	f.run.Store(&fakeRun{})
	return f
}

// sleep waits d (the scenario's provider latency); 0 returns at once.
func sleep(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}

// readBody reads the request body into a pooled buffer; put it back with f.bufs.Put.
func (f *fakes) readBody(r *http.Request) *bytes.Buffer {
	buf := f.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	_, _ = buf.ReadFrom(r.Body)
	return buf
}

func (f *fakes) llm(w http.ResponseWriter, r *http.Request) {
	run := f.run.Load()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		run.llmProbes.Add(1)
		sleep(run.llmLatency)
		writeJSON(w, http.StatusOK, f.models, "req_bench_probe")
	case r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions":
		buf := f.readBody(r)
		idx := contactRef(buf.Bytes())
		f.bufs.Put(buf)
		run.llmCalls.Add(1)
		sleep(run.llmLatency)
		if idx < 0 || idx >= len(run.paid) {
			run.llmUnknown.Add(1)
		} else if run.paid[idx].Add(1) > 1 {
			run.llmRepeats.Add(1)
		}
		writeJSON(w, http.StatusOK, f.completion, "req_bench")
	default:
		http.NotFound(w, r)
	}
}

func (f *fakes) tts(w http.ResponseWriter, r *http.Request) {
	run := f.run.Load()
	const ttsPrefix = "/v1/text-to-speech/"
	probe := r.Method == http.MethodGet && (r.URL.Path == "/v1/models" || r.URL.Path == "/v1/user")
	if !probe && (r.Method != http.MethodPost || len(r.URL.Path) <= len(ttsPrefix) || r.URL.Path[:len(ttsPrefix)] != ttsPrefix) {
		http.NotFound(w, r)
		return
	}
	if !probe {
		f.bufs.Put(f.readBody(r))
	}
	outage := run.inOutage(time.Now()) // judged on arrival
	switch {
	case probe:
		run.ttsProbes.Add(1)
		if outage {
			run.ttsOutageProbes.Add(1)
		}
	default:
		run.ttsCalls.Add(1)
		if outage {
			run.ttsOutageCalls.Add(1)
		}
	}
	sleep(run.ttsLatency)
	switch {
	case outage:
		writeJSON(w, http.StatusServiceUnavailable, f.outage503, "req-bench-503")
	case probe:
		writeJSON(w, http.StatusOK, []byte(`[{"model_id":"eleven_flash_v2_5","can_do_text_to_speech":true}]`), "req-bench-probe")
	default:
		h := w.Header()
		h["Content-Type"] = []string{"audio/mpeg"}
		h["Content-Length"] = []string{strconv.Itoa(len(f.audio))}
		h["Character-Cost"] = []string{strconv.Itoa(len(fakeScript))}
		h["Request-Id"] = []string{"req-bench"}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(f.audio)
	}
}

func writeJSON(w http.ResponseWriter, status int, body []byte, requestID string) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["X-Request-Id"] = []string{requestID}
	h["Request-Id"] = []string{requestID}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// contactRef is the contact index after refMarker in a chat request body, or -1.
func contactRef(body []byte) int {
	i := bytes.Index(body, []byte(refMarker))
	if i < 0 {
		return -1
	}
	n, digits := 0, 0
	for _, c := range body[i+len(refMarker):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
		digits++
	}
	if digits == 0 {
		return -1
	}
	return n
}

// control serves /_bench/reset?contacts=&llm=&tts=&outage=, /_bench/start and /_bench/stats.
func (f *fakes) control(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_bench/reset":
		q := r.URL.Query()
		n, err := strconv.Atoi(q.Get("contacts"))
		if err != nil || n < 0 {
			http.Error(w, "contacts", http.StatusBadRequest)
			return
		}
		run := &fakeRun{paid: make([]atomic.Int32, n)}
		for name, d := range map[string]*time.Duration{"llm": &run.llmLatency, "tts": &run.ttsLatency, "outage": &run.outage} {
			if v := q.Get(name); v != "" {
				if *d, err = time.ParseDuration(v); err != nil {
					http.Error(w, name, http.StatusBadRequest)
					return
				}
			}
		}
		f.run.Store(run)
	case "/_bench/start":
		f.run.Load().started.Store(time.Now().UnixNano())
	case "/_bench/stats":
		b, _ := json.Marshal(f.run.Load().stats())
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
		return
	default:
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fakesEnv makes the test binary serve the fakes instead of running tests (see ServeFakes).
const fakesEnv = "BENCH_FAKES_CHILD"

// fakesAddrs is the child's first line on stdout.
type fakesAddrs struct {
	LLM string `json:"llm"`
	TTS string `json:"tts"`
}

// IsFakesChild reports whether this process was started by StartFakes.
func IsFakesChild() bool { return os.Getenv(fakesEnv) == "1" }

// ServeFakes runs the fake providers until stdin closes (the parent ended or stopped it).
// It prints the two base URLs as one JSON line on stdout first.
func ServeFakes() error {
	f := newFakes()
	llmMux := http.NewServeMux()
	llmMux.HandleFunc("/_bench/", f.control)
	llmMux.HandleFunc("/", f.llm)
	var addrs fakesAddrs
	var servers []*http.Server
	for _, h := range []struct {
		h   http.Handler
		url *string
	}{{llmMux, &addrs.LLM}, {http.HandlerFunc(f.tts), &addrs.TTS}} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: h.h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(l) }()
		*h.url = "http://" + l.Addr().String()
	}
	line, _ := json.Marshal(addrs)
	fmt.Println(string(line))
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, s := range servers {
		_ = s.Close()
	}
	return nil
}

// Fakes is the parent's handle on the fake providers' process.
type Fakes struct {
	LLMURL, TTSURL string // base URLs, without /v1

	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	http  *http.Client
}

// StartFakes re-executes this binary (a test binary whose TestMain calls ServeFakes when
// IsFakesChild) as the fake providers' process.
func StartFakes() (*Fakes, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), fakesEnv+"=1")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the fake providers: %w", err)
	}
	f := &Fakes{cmd: cmd, stdin: stdin, done: make(chan struct{}), http: &http.Client{Timeout: 10 * time.Second}}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		_ = cmd.Wait()
		close(f.done)
	}()
	select {
	case line, ok := <-lines:
		var a fakesAddrs
		if !ok || json.Unmarshal([]byte(line), &a) != nil || a.LLM == "" || a.TTS == "" {
			f.Stop()
			return nil, fmt.Errorf("the fake providers did not report their addresses (got %q)", line)
		}
		f.LLMURL, f.TTSURL = a.LLM, a.TTS
		return f, nil
	case <-time.After(30 * time.Second):
		f.Stop()
		return nil, errors.New("the fake providers did not start within 30s")
	}
}

// Pid is the fakes' process id.
func (f *Fakes) Pid() int { return f.cmd.Process.Pid }

// Stop closes the child's stdin (it exits) and kills it if it lingers.
func (f *Fakes) Stop() {
	_ = f.stdin.Close()
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-f.Pid(), syscall.SIGKILL)
		<-f.done
	}
}

func (f *Fakes) post(ctx context.Context, path string, q url.Values) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.LLMURL+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("fakes %s: %s", path, resp.Status)
	}
	return nil
}

// Reset starts a new run: fresh counters, the scenario's latencies and outage (the outage
// clock starts at Start).
func (f *Fakes) Reset(ctx context.Context, contacts int, llm, tts, outage time.Duration) error {
	return f.post(ctx, "/_bench/reset", url.Values{"contacts": {strconv.Itoa(contacts)},
		"llm": {llm.String()}, "tts": {tts.String()}, "outage": {outage.String()}})
}

// Start starts the run's clock: the outage lasts from now.
func (f *Fakes) Start(ctx context.Context) error { return f.post(ctx, "/_bench/start", nil) }

// Stats reads the run's counters.
func (f *Fakes) Stats(ctx context.Context) (FakeStats, error) {
	var s FakeStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.LLMURL+"/_bench/stats", nil)
	if err != nil {
		return s, err
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}
