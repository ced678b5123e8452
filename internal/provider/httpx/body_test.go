package httpx_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
)

// countingServer starts h on loopback and counts the connections opened to it.
func countingServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request, stop <-chan struct{})) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	stop := make(chan struct{})
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(w, r, stop) }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(func() { close(stop); srv.Close() })
	return srv, &conns
}

// declareAndHold answers status with a Content-Length of 100 MB, writes the first prefix
// bytes, then holds the rest back until the client goes away (closing gone) or the test ends.
// A client that reads more than prefix bytes waits for its deadline.
func declareAndHold(status int, prefix int64, gone chan<- struct{}) func(http.ResponseWriter, *http.Request, <-chan struct{}) {
	return func(w http.ResponseWriter, r *http.Request, stop <-chan struct{}) {
		if r.URL.Path == "/small" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(100_000_000))
		w.WriteHeader(status)
		_, _ = w.Write(bytes.Repeat([]byte{'x'}, int(prefix)))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			close(gone)
		case <-stop:
		}
	}
}

// within fails the test unless ch is closed before a generous bound: a condition the code
// under test makes true at once, bounded only so a regression fails instead of hanging.
func within(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not happen", what)
	}
}

// TestDoRefusesDeclaredLengthUnread: a 2xx declaring 100 MB against a 1 MiB limit is refused
// from its headers. The server sends 64 KiB and holds the rest back, so reading any of the
// body would wait for the deadline (the old path read limit+1 bytes, then drained); and the
// connection is closed, not drained for reuse.
func TestDoRefusesDeclaredLengthUnread(t *testing.T) { // not parallel: measures the heap
	gone := make(chan struct{})
	srv, conns := countingServer(t, declareAndHold(http.StatusOK, 64<<10, gone))
	c := setup(t, httpx.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := c.Do(get(t, ctx, srv.URL), 1<<20)
	runtime.ReadMemStats(&after)

	var tl *httpx.TooLargeError
	if !errors.As(err, &tl) || tl.Limit != 1<<20 || tl.Declared != 100_000_000 {
		t.Fatalf("err = %v, want a *TooLargeError for the declared length", err)
	}
	if want := "response body is larger than the 1 MiB limit (Content-Length 100000000)"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if resp == nil || resp.Status != 200 || resp.Body != nil {
		t.Fatalf("resp = %+v, want the status and no body", resp)
	}
	if got := fault.KindOf(fault.Classify(httpx.Failure("P", resp, err))); got != fault.KindBadResponse {
		t.Errorf("classified as %v, want bad_response", got)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 256<<10 {
		t.Errorf("allocated %d bytes to refuse a body by its Content-Length", d)
	}
	within(t, gone, "the server seeing the connection closed")
	if _, err := c.Do(get(t, ctx, srv.URL+"/small"), 10); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the refused body's connection must not be reused", n)
	}
	if n := c.InFlightBytes(); n != 0 {
		t.Errorf("%d bytes of the budget still held", n)
	}
}

// TestDoChunkedHugeBodyStopsAtTheLimit: a 100 MB body without a length is read to limit+1
// bytes, having allocated about the limit once (the old io.ReadAll path allocated its chunks
// and then a copy of limit+1 bytes: over twice the limit).
func TestDoChunkedHugeBodyStopsAtTheLimit(t *testing.T) { // not parallel: measures the heap
	const limit = 8 << 20
	var wrote atomic.Int64
	srv := server(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
		w.WriteHeader(http.StatusOK)
		chunk := bytes.Repeat([]byte{'x'}, 32<<10)
		for left := 100_000_000; left > 0 && r.Context().Err() == nil; left -= len(chunk) {
			n, err := w.Write(chunk)
			wrote.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	c := setup(t, httpx.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := c.Do(get(t, ctx, srv.URL), limit)
	runtime.ReadMemStats(&after)

	var tl *httpx.TooLargeError
	if !errors.As(err, &tl) || tl.Limit != limit || tl.Declared != -1 {
		t.Fatalf("err = %v, want a *TooLargeError found by reading", err)
	}
	if resp == nil || resp.Status != 200 || resp.Body != nil {
		t.Fatalf("resp = %+v, want the status and no body", resp)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d >= limit+limit/2 {
		t.Errorf("allocated %d bytes (%.2f× the limit) to refuse a body over %d", d, float64(d)/limit, limit)
	}
	if n := wrote.Load(); n >= 100_000_000 {
		t.Errorf("the whole body was sent (%d bytes): the client read on", n)
	}
	if n := c.InFlightBytes(); n != 0 {
		t.Errorf("%d bytes of the budget still held", n)
	}
}

// TestDoErrorBodyDeclaredOverTheCap: a 503 declaring 100 MB is read to ErrorBodyLimit and
// no further (the old path read one byte more and then tried to drain DrainLimit more, which
// this server holds back: it waited for the deadline).
func TestDoErrorBodyDeclaredOverTheCap(t *testing.T) {
	t.Parallel()
	gone := make(chan struct{})
	srv, _ := countingServer(t, declareAndHold(http.StatusServiceUnavailable, httpx.ErrorBodyLimit+httpx.DrainLimit/2, gone))
	c := setup(t, httpx.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Do(get(t, ctx, srv.URL), 1<<20)
	if err != nil {
		t.Fatalf("err = %v (context: %v)", err, ctx.Err())
	}
	if resp.Status != 503 || !resp.Truncated || int64(len(resp.Body)) != httpx.ErrorBodyLimit || int64(cap(resp.Body)) != httpx.ErrorBodyLimit {
		t.Errorf("resp = %d truncated=%v len=%d cap=%d", resp.Status, resp.Truncated, len(resp.Body), cap(resp.Body))
	}
	within(t, gone, "the server seeing the connection closed")
}

// TestDoTrickleEndsWithTheContext: a body sent a byte at a time, with or without a declared
// length, ends with the request's context and leaves nothing reserved.
func TestDoTrickleEndsWithTheContext(t *testing.T) {
	t.Parallel()
	for _, declare := range []bool{false, true} {
		t.Run("declared="+strconv.FormatBool(declare), func(t *testing.T) {
			t.Parallel()
			trickle(t, declare)
		})
	}
}

// trickle runs TestDoTrickleEndsWithTheContext with or without a declared length.
func trickle(t *testing.T, declare bool) {
	t.Helper()
	srv := server(t, func(w http.ResponseWriter, r *http.Request, stop <-chan struct{}) {
		if declare {
			w.Header().Set("Content-Length", strconv.Itoa(1<<20))
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		tick := time.NewTicker(20 * time.Millisecond) // the hostile pace under test
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if _, err := w.Write([]byte{'x'}); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			case <-stop:
				return
			}
		}
	})
	c := setup(t, httpx.Options{})
	// Long enough for the headers to arrive under -race on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	start := time.Now()
	resp, err := c.Do(get(t, ctx, srv.URL), 2<<20)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("declared %v: err = %v, want the deadline", declare, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("declared %v: returned after %v", declare, d)
	}
	if resp == nil || resp.Status != 200 || resp.Body != nil {
		t.Errorf("declared %v: resp = %+v, want the 200 without a body", declare, resp)
	}
	if got := fault.KindOf(fault.Classify(httpx.Failure("P", resp, err))); got != fault.KindTimeout {
		t.Errorf("declared %v: classified as %v, want timeout", declare, got)
	}
	if n := c.InFlightBytes(); n != 0 {
		t.Errorf("declared %v: %d bytes of the budget still held", declare, n)
	}
}

// TestDoInFlightBudget: 12 parallel 2 MiB bodies against an 8 MiB budget. Each server sends
// half its body and holds the rest until a call has failed, so the calls hold their halves
// at once: some must fail with a *BudgetError, none waits for its deadline, the budget is
// never exceeded and is whole again afterwards.
func TestDoInFlightBudget(t *testing.T) {
	t.Parallel()
	const (
		budget = 8 << 20
		half   = 1 << 20
		calls  = 12
	)
	release := make(chan struct{})
	body := bytes.Repeat([]byte("0123456789abcdef"), 2*half/16)
	srv := server(t, func(w http.ResponseWriter, r *http.Request, stop <-chan struct{}) {
		if r.URL.Path == "/whole" { // exactly the whole budget, declared
			w.Header().Set("Content-Length", strconv.Itoa(budget))
			_, _ = w.Write(bytes.Repeat([]byte{'x'}, budget))
			return
		}
		w.WriteHeader(http.StatusOK)
		if _, err := w.Write(body[:half]); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-stop:
			return
		}
		_, _ = w.Write(body[half:])
	})
	c := setup(t, httpx.Options{MaxInFlightBytes: budget})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	type result struct {
		resp *httpx.Response
		err  error
	}
	results := make(chan result, calls)
	var wg sync.WaitGroup
	for range calls {
		req := get(t, ctx, srv.URL)
		wg.Go(func() {
			resp, err := c.Do(req, 4<<20)
			results <- result{resp, err}
		})
	}
	// Nothing can finish before the release: the first result is a call the budget refused.
	first := <-results
	close(release)
	wg.Wait()
	close(results)

	var refused, whole int
	for _, r := range append([]result{first}, drain(results)...) {
		switch {
		case r.err == nil && bytes.Equal(r.resp.Body, body):
			whole++
		case errors.Is(r.err, httpx.ErrBudgetExhausted):
			refused++
			checkBudgetError(t, r.resp, r.err, budget)
		default:
			t.Errorf("a call ended with %v (response %+v), want its body or a budget error", r.err, r.resp)
		}
	}
	if !errors.Is(first.err, httpx.ErrBudgetExhausted) {
		t.Errorf("the first call to end failed with %v, want a budget error", first.err)
	}
	t.Logf("%d calls read their body, %d were refused by the budget", whole, refused)
	if peak := httpx.PeakInFlightBytes(c); peak > budget {
		t.Errorf("the calls held %d bytes at once, over the %d budget", peak, budget)
	}
	if n := c.InFlightBytes(); n != 0 {
		t.Errorf("%d bytes of the budget still held after every call returned", n)
	}
	resp, err := c.Do(get(t, ctx, srv.URL+"/whole"), budget)
	if err != nil || len(resp.Body) != budget {
		t.Errorf("a body the size of the whole budget: %v; the budget was not fully released", err)
	}
}

func drain[T any](ch <-chan T) []T {
	var out []T
	for v := range ch {
		out = append(out, v)
	}
	return out
}

func checkBudgetError(t *testing.T, resp *httpx.Response, err error, budget int64) {
	t.Helper()
	var be *httpx.BudgetError
	if !errors.As(err, &be) || be.Budget != budget || be.Need <= 0 || errors.Is(err, httpx.ErrUnusableBody) {
		t.Errorf("err = %#v, want a *BudgetError of the %d budget (not an unusable body)", err, budget)
	}
	if resp == nil || resp.Status != 200 || resp.Body != nil {
		t.Errorf("resp = %+v, want the status and no body", resp)
	}
	classified := fault.Classify(httpx.Failure("P", resp, err))
	var se *fault.ServiceError
	if !errors.As(classified, &se) || se.Kind != fault.KindUnavailable || se.Status != 0 || !fault.IsTransient(classified) ||
		!fault.Retryable(classified, 2) || !errors.Is(classified, httpx.ErrBudgetExhausted) {
		t.Errorf("classified as %#v, want a transient service_unavailable without a status", classified)
	}
}

func TestBudgetErrorText(t *testing.T) {
	t.Parallel()
	for e, want := range map[*httpx.BudgetError]string{
		{Need: 1 << 20, Budget: 48 << 20}: "response body not read: no room for 1 MiB in the 48 MiB in-flight response budget" +
			" (a limit of this worker, not of the provider)",
		{Need: 16 << 20, Budget: 48 << 20, Waited: true}: "response body not read: no room for 16 MiB in the 48 MiB" +
			" in-flight response budget before the call's deadline (a limit of this worker, not of the provider)",
		{Need: 64 << 20, Budget: 48 << 20}: "response body not read: it needs 64 MiB, more than the whole 48 MiB in-flight response budget",
	} {
		if got := e.Error(); got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	}
}

// TestDoBudgetWaitEndsWithTheContext: a call that finds the budget held by another waits
// for room, and fails with a *BudgetError at its deadline; the budget is whole once the
// holder leaves.
func TestDoBudgetWaitEndsWithTheContext(t *testing.T) {
	t.Parallel()
	const budget = 1 << 20
	srv := server(t, func(w http.ResponseWriter, r *http.Request, stop <-chan struct{}) {
		w.Header().Set("Content-Length", strconv.Itoa(budget))
		w.WriteHeader(http.StatusOK)
		if r.URL.Path == "/hold" { // a byte, then nothing: the call holds the whole budget
			_, _ = w.Write([]byte{'x'})
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		_, _ = w.Write(bytes.Repeat([]byte{'x'}, budget))
	})
	c := setup(t, httpx.Options{MaxInFlightBytes: budget})
	holdCtx, stopHolding := context.WithCancel(context.Background())
	defer stopHolding()
	held := make(chan error, 1)
	holdReq := get(t, holdCtx, srv.URL+"/hold")
	go func() {
		_, err := c.Do(holdReq, budget)
		held <- err
	}()
	for c.InFlightBytes() != budget { // the condition itself: the holder has reserved
		select {
		case err := <-held:
			t.Fatalf("the holder ended early: %v", err)
		default:
			runtime.Gosched()
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // headers arrive well within it
	defer cancel()
	resp, err := c.Do(get(t, ctx, srv.URL), budget)
	var be *httpx.BudgetError
	if !errors.As(err, &be) || !be.Waited || be.Need != budget {
		t.Errorf("at the deadline: err = %v, want a *BudgetError after waiting", err)
	} else {
		checkBudgetError(t, resp, err, budget)
	}

	stopHolding()
	if err := <-held; !errors.Is(err, context.Canceled) {
		t.Errorf("holder: %v", err)
	}
	if n := c.InFlightBytes(); n != 0 {
		t.Errorf("%d bytes still held", n)
	}
	if _, err := c.Do(get(t, context.Background(), srv.URL), budget); err != nil {
		t.Errorf("after the holder left: %v", err)
	}
}
