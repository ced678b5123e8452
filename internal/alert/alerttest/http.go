package alerttest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/testwait"
)

// Request is one request a Recorder received, with the status it was answered.
type Request struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
	// Status is the answer's status code.
	Status int
}

// Accepted reports whether the request was answered 2xx.
func (r Request) Accepted() bool { return r.Status/100 == 2 }

// Reply is what a Recorder answers.
type Reply struct {
	Status int
	Header http.Header
	Body   string
}

// Recorder is a real HTTP server on loopback that records every request, failed deliveries
// included, and answers with its responder (200 "ok" by default). It closes when the test
// ends.
type Recorder struct {
	*httptest.Server

	mu        sync.Mutex
	reqs      []Request
	responder func(Request) Reply
}

// NewRecorder starts a Recorder.
func NewRecorder(t testing.TB) *Recorder {
	t.Helper()
	r := &Recorder{responder: func(Request) Reply { return Reply{Status: http.StatusOK, Body: "ok"} }}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *Recorder) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	rec := Request{Method: req.Method, Path: req.URL.Path, Query: req.URL.RawQuery, Header: req.Header.Clone(), Body: body}
	r.mu.Lock()
	respond := r.responder
	r.mu.Unlock()
	reply := respond(rec)
	if reply.Status == 0 {
		reply.Status = http.StatusOK
	}
	rec.Status = reply.Status
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	for k, vs := range reply.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(reply.Status)
	_, _ = io.WriteString(w, reply.Body)
}

// HTTPClient returns the outbound client channels send through, as the worker builds it,
// whose idle connections are closed when the test ends.
func HTTPClient(t testing.TB) *httpx.Client {
	t.Helper()
	c, err := httpx.New(httpx.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// Respond sets how the Recorder answers from now on.
func (r *Recorder) Respond(f func(Request) Reply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.responder = f
}

// Requests returns a copy of the requests received so far.
func (r *Recorder) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// WaitFor polls until cond holds for the requests received, failing the test after 10s.
func (r *Recorder) WaitFor(t testing.TB, what string, cond func([]Request) bool) []Request {
	t.Helper()
	return Eventually(t, what, func() ([]Request, bool) {
		reqs := r.Requests()
		return reqs, cond(reqs)
	})
}

// Eventually checks f until it reports true, failing the test after 10s (see
// testwait.True); it returns f's last value.
func Eventually[T any](t testing.TB, what string, f func() (T, bool)) T {
	t.Helper()
	var v T
	testwait.True(t, 10*time.Second, what, func() (ok bool) { v, ok = f(); return ok })
	return v
}
