package chaos

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Steps of a call, as the worker names them.
const (
	StepLLM = "llm"
	StepTTS = "tts"
	StepCRM = "crm"
)

// Faults is the fault injection of one provider, shared by the proxies of every worker.
type Faults struct {
	mu         sync.Mutex
	latency    [2]time.Duration
	outage     *Hostile
	queue      []Hostile
	served     map[string]int
	lastServed time.Time
}

// NewFaults returns a provider without faults.
func NewFaults() *Faults { return &Faults{served: map[string]int{}} }

// SetLatency delays each forwarded request by a uniformly random time in [lo, hi], as a
// provider thinking would: the request is in flight all that time.
func (f *Faults) SetLatency(lo, hi time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = [2]time.Duration{lo, max(lo, hi)}
}

// SetOutage answers every request, health probes included, with h until ClearOutage.
func (f *Faults) SetOutage(h Hostile) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outage = &h
}

// ClearOutage ends SetOutage.
func (f *Faults) ClearOutage() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outage = nil
}

// Inject answers the next API calls (not probes), one each, with hs in order.
func (f *Faults) Inject(hs ...Hostile) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, hs...)
}

// Pending is how many injected answers are still waiting for a call.
func (f *Faults) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queue)
}

// LastServed is when the last injected answer was handed out (zero if none).
func (f *Faults) LastServed() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastServed
}

// Served counts the injected answers handed out, by name.
func (f *Faults) Served() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.served))
	for k, v := range f.served {
		out[k] = v
	}
	return out
}

// next picks what answers a request: an injected fault, or the provider after a delay.
func (f *Faults) next(probe bool) (h Hostile, injected bool, delay time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.outage != nil:
		return *f.outage, true, 0
	case !probe && len(f.queue) > 0:
		h = f.queue[0]
		f.queue = f.queue[1:]
		f.served[h.Name]++
		f.lastServed = time.Now()
		return h, true, 0
	}
	lo, hi := f.latency[0], f.latency[1]
	if hi > lo {
		return Hostile{}, false, lo + rand.N(hi-lo)
	}
	return Hostile{}, false, lo
}

// Proxy sits between one worker and one fake provider: it forwards requests, records each
// in the ledger with the contact it is for, and injects the provider's faults.
type Proxy struct {
	Slot int
	Step string

	upstream string
	faults   *Faults
	ledger   *Ledger
	srv      *httptest.Server
	client   *http.Client
	done     chan struct{}
}

// NewProxy starts a proxy on loopback for the test's lifetime.
func NewProxy(t testing.TB, slot int, step, upstream string, faults *Faults, ledger *Ledger) *Proxy {
	t.Helper()
	p := &Proxy{
		Slot: slot, Step: step, upstream: strings.TrimSuffix(upstream, "/"), faults: faults, ledger: ledger,
		client: &http.Client{
			Transport:     &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		done: make(chan struct{}),
	}
	p.srv = httptest.NewServer(p)
	t.Cleanup(func() {
		close(p.done) // ends trickles and stalls, which Close would otherwise wait for
		p.srv.Close()
		p.client.CloseIdleConnections()
	})
	return p
}

// URL is the proxy's root URL; a provider's base path is appended by the caller.
func (p *Proxy) URL() string { return p.srv.URL }

// contactPattern matches the ids the suite gives its contacts; the LLM prompt carries it in
// the contact's variables, the script (and so the TTS text) in the tag the proxy adds.
var contactPattern = regexp.MustCompile(`cx-[0-9]{6}`)

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	c := &Call{Slot: p.Slot, Step: p.Step, Probe: r.Method == http.MethodGet, Start: time.Now()}
	if p.Step == StepCRM {
		c.Contact = r.Header.Get("Idempotency-Key")
	} else {
		c.Contact = string(contactPattern.Find(body))
	}
	p.ledger.add(c)

	tw := &trackingWriter{ResponseWriter: w}
	h, injected, delay := p.faults.next(c.Probe)
	if injected {
		h.Serve(tw, r, secretOf(p.Step, r), p.done)
		// A hostile answer stops early when the worker hangs up: then it was cut.
		p.ledger.finish(c, tw.status, false, tw.flushed() && r.Context().Err() == nil, h.Name)
		return
	}
	status, ok, complete := p.forward(tw, r, body, c, delay)
	p.ledger.finish(c, status, ok, complete && tw.flushed(), "")
}

// forward sends the request to the fake and, delay later, its answer back, tagging a chat
// completion's script with the contact id so the text-to-speech request that reads it names
// the contact. The fake answers at once and the answer is held for the delay: like a real
// provider, it has done (and billed) the work while the answer is on its way, so a worker
// killed meanwhile has lost a paid answer.
//
// complete reports that the whole answer was written; the worker hanging up afterwards
// (closing its connection) does not make it less delivered.
func (p *Proxy) forward(w *trackingWriter, r *http.Request, body []byte, c *Call, delay time.Duration) (status int, ok, complete bool) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return http.StatusBadGateway, false, false
	}
	req.Header = r.Header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		if r.Context().Err() == nil {
			http.Error(w, "chaos proxy: "+err.Error(), http.StatusBadGateway)
		}
		return 0, false, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, false, false
	}
	ok = resp.StatusCode/100 == 2 && !c.Probe
	if ok && p.Step == StepLLM && c.Contact != "" {
		b = tagScript(b, c.Contact)
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return resp.StatusCode, ok, false
		case <-p.done:
			return resp.StatusCode, ok, false
		}
	}
	for k, vs := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = vs
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(resp.StatusCode)
	_, err = w.Write(b)
	return resp.StatusCode, ok, err == nil
}

// tagScript appends " (ref <id>)" to a chat completion's content; anything else is returned
// unchanged.
func tagScript(body []byte, id string) []byte {
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		return body
	}
	choices, _ := doc["choices"].([]any)
	if len(choices) == 0 {
		return body
	}
	choice, _ := choices[0].(map[string]any)
	msg, _ := choice["message"].(map[string]any)
	content, isText := msg["content"].(string)
	if !isText {
		return body
	}
	msg["content"] = content + " (ref " + id + ")"
	out, err := json.Marshal(doc)
	if err != nil {
		return body
	}
	return out
}

// secretOf is the credential a request carries, which hostile answers echo back.
func secretOf(step string, r *http.Request) string {
	switch step {
	case StepTTS:
		return r.Header.Get("xi-api-key")
	case StepCRM:
		// The webhook URL is a secret too: it may carry a token in its path.
		return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") + " " + r.URL.Path
	}
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

// trackingWriter remembers the status sent and whether any write failed.
type trackingWriter struct {
	http.ResponseWriter
	status int
	failed bool
}

func (w *trackingWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	if err != nil {
		w.failed = true
	}
	return n, err
}

// FlushError is what http.ResponseController.Flush calls: hostile answers that stream
// learn that the worker hung up.
func (w *trackingWriter) FlushError() error {
	err := http.NewResponseController(w.ResponseWriter).Flush()
	if err != nil {
		w.failed = true
	}
	return err
}

// flushed flushes what is buffered and reports whether every write reached the client's
// connection.
func (w *trackingWriter) flushed() bool {
	_ = w.FlushError()
	return !w.failed
}

// HitCounter is a server on another loopback host that counts the requests it gets: the
// target of a hostile redirect. A worker must never follow a provider's redirect (it would
// replay the request, API key included, to wherever Location points).
type HitCounter struct {
	URL  string
	hits atomic.Int64
}

// NewHitCounter listens on 127.0.0.2 (another host as far as an HTTP client can tell),
// falling back to 127.0.0.1 where that address is missing.
func NewHitCounter(t testing.TB) *HitCounter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	h := &HitCounter{URL: "http://" + l.Addr().String()}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.hits.Add(1)
			http.Error(w, "redirect target", http.StatusTeapot)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return h
}

// Hits is how many requests reached the redirect target.
func (h *HitCounter) Hits() int64 { return h.hits.Load() }
