// Package providertest holds fake provider APIs for tests: ElevenLabs, an OpenAI-compatible
// API (chat completions, audio speech, models) and a CRM webhook. Each is a real HTTP server
// on loopback (httptest) that checks every request the way the real API's contract says
// (method, path, query, headers, JSON fields: no unknown fields, no nulls) and answers in the
// real API's shapes, byte for byte where the docs show them.
//
// A request that breaks the contract fails the test (t.Errorf) and gets the API's
// validation error. A wrong API key or an unknown voice or model is not a contract breach: it
// gets the API's real 401/404 answer, so tests can exercise those paths.
//
// Replies can be scripted: Enqueue answers the next API calls (not health probes) one each;
// SetFault answers every request, probes included, until ClearFault (an outage and its
// recovery). A Reply can stream a huge body without allocating it (Filler) or stall after
// its headers (Stall).
//
// The package also holds what the clients' tests share besides the fakes (clients.go: the
// shared classification table replayed through a client, a test's HTTP client) and the
// harness of their fuzz targets (fuzz.go: a server sending the fuzzed answer, and the
// invariants every client's error keeps).
package providertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Reply is one scripted response.
type Reply struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Header is sent as given.
	Header http.Header
	// Body is sent first.
	Body string
	// Filler is how many more bytes ('0') are streamed after Body, written in chunks, so a
	// hostile 1 GB body costs no memory. The stream stops when the client goes away.
	Filler int64
	// Stall, after Header and Body are flushed, blocks until the client goes away or the test
	// ends: a body that never finishes.
	Stall bool
	// Hang blocks before anything is sent, until the client goes away or the test ends: a
	// provider that never answers.
	Hang bool
}

// Request is a request a fake received.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	// Body is the request body (at most maxRequestBody bytes).
	Body []byte
	// Probe is true for health-check requests.
	Probe bool
}

const maxRequestBody = 1 << 20

// Server is the machinery every fake shares: the loopback server, the script and the
// record of requests. Its methods are safe for concurrent use.
type Server struct {
	t    testing.TB
	srv  *httptest.Server
	done chan struct{}

	mu        sync.Mutex
	queue     []Reply
	fault     *Reply
	requests  []Request
	forbidden []string
}

func newServer(t testing.TB, h func(s *Server, w http.ResponseWriter, r *http.Request, body []byte)) *Server {
	t.Helper()
	s := &Server{t: t, done: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
		if err != nil {
			return // the client went away
		}
		s.checkForbidden(r, body)
		h(s, w, r, body)
	}))
	t.Cleanup(func() {
		close(s.done) // releases stalled handlers, so Close does not wait for them
		s.srv.Close()
	})
	return s
}

// URL is the server's root URL, http://127.0.0.1:port.
func (s *Server) URL() string { return s.srv.URL }

// Enqueue scripts the answers to the next API calls, one each, in order; health probes are
// not affected. Checks of the request still come first.
func (s *Server) Enqueue(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, replies...)
}

// SetFault makes every request, probes included, get r until ClearFault (queued replies
// wait).
func (s *Server) SetFault(r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = &r
}

// ClearFault ends SetFault.
func (s *Server) ClearFault() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = nil
}

// Forbid fails the test if any request's headers or body (in any casing of JSON escaping)
// contains one of values: API keys of other providers, phone numbers.
func (s *Server) Forbid(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidden = append(s.forbidden, values...)
}

// Requests returns a copy of the requests received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// Calls counts the API calls received (probes excluded).
func (s *Server) Calls() int { return s.count(false) }

// Probes counts the health probes received.
func (s *Server) Probes() int { return s.count(true) }

func (s *Server) count(probe bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Probe == probe {
			n++
		}
	}
	return n
}

func (s *Server) record(r *http.Request, body []byte, probe bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body, Probe: probe,
	})
}

// scripted returns the reply that overrides the normal answer, if any: the fault, else (for
// calls) the next queued reply.
func (s *Server) scripted(probe bool) (Reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault != nil {
		return *s.fault, true
	}
	if probe || len(s.queue) == 0 {
		return Reply{}, false
	}
	r := s.queue[0]
	s.queue = s.queue[1:]
	return r, true
}

func (s *Server) checkForbidden(r *http.Request, body []byte) {
	s.mu.Lock()
	forbidden := append([]string(nil), s.forbidden...)
	s.mu.Unlock()
	var head bytes.Buffer
	_ = r.Header.Write(&head)
	for _, v := range forbidden {
		if v == "" {
			continue
		}
		esc, _ := json.Marshal(v)
		for _, form := range []string{v, string(esc[1 : len(esc)-1])} {
			if bytes.Contains(body, []byte(form)) || strings.Contains(head.String(), form) ||
				strings.Contains(r.URL.String(), form) {
				s.t.Errorf("providertest: %s %s carries a forbidden value (%d characters)", r.Method, r.URL.Path, len(v))
				break
			}
		}
	}
}

// violation fails the test for a request that breaks the API's contract.
func (s *Server) violation(r *http.Request, format string, args ...any) {
	s.t.Errorf("providertest: %s %s: %s", r.Method, r.URL.Path, fmt.Sprintf(format, args...))
}

// write sends rep, streaming Filler and honouring Stall and Hang.
func (s *Server) write(w http.ResponseWriter, r *http.Request, rep Reply) {
	if rep.Hang {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	for k, vs := range rep.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if rep.Filler == 0 && !rep.Stall && w.Header().Get("Content-Length") == "" {
		w.Header().Set("Content-Length", strconv.Itoa(len(rep.Body)))
	}
	status := rep.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	if _, err := io.WriteString(w, rep.Body); err != nil {
		return
	}
	if rep.Filler > 0 {
		chunk := bytes.Repeat([]byte{'0'}, 32<<10)
		for left := rep.Filler; left > 0; {
			n := min(left, int64(len(chunk)))
			if _, err := w.Write(chunk[:n]); err != nil {
				return // the client stopped reading and closed the connection
			}
			left -= n
			select {
			case <-r.Context().Done():
				return
			case <-s.done:
				return
			default:
			}
		}
	}
	if rep.Stall {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
	}
}

// JSONReply is a reply with a JSON body and its Content-Type.
func JSONReply(status int, body string) Reply {
	return Reply{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
}

// jsonFields decodes an object into its raw fields, reporting nulls anywhere in it.
func jsonFields(body []byte) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil {
		return nil, fmt.Errorf("body is not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("body has data after the JSON object")
	}
	if fields == nil {
		return nil, fmt.Errorf("body is null")
	}
	if path := findNull(fields, ""); path != "" {
		return nil, fmt.Errorf("field %s is null (the API rejects nulls: omit unset fields)", path)
	}
	return fields, nil
}

// findNull returns the path of the first null inside an object's fields, or "".
func findNull(fields map[string]json.RawMessage, prefix string) string {
	for k, raw := range fields {
		path := prefix + k
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			return path
		}
		var sub map[string]json.RawMessage
		if json.Unmarshal(raw, &sub) == nil && sub != nil {
			if p := findNull(sub, path+"."); p != "" {
				return p
			}
		}
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) == nil {
			for i, item := range list {
				var obj map[string]json.RawMessage
				if json.Unmarshal(item, &obj) == nil && obj != nil {
					if p := findNull(obj, fmt.Sprintf("%s[%d].", path, i)); p != "" {
						return p
					}
				}
			}
		}
	}
	return ""
}

// strict decodes body into v, refusing unknown fields.
func strict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// checkCommon checks what every provider request carries: the project's User-Agent and, with
// a body, a JSON Content-Type.
func (s *Server) checkCommon(r *http.Request, body []byte) {
	if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "call-agent/") {
		s.violation(r, "User-Agent is %q, want call-agent/<version>", ua)
	}
	if len(body) > 0 {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			s.violation(r, "Content-Type is %q, want application/json", ct)
		}
	}
}
