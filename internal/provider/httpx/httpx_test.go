package httpx_test

import (
	"bytes"
	"context"
	"errors"
	"github.com/callagent/resilience/internal/config/field"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/provider/providertest"
	"github.com/callagent/resilience/internal/redact"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup returns a client whose idle connections are closed when the test ends.
func setup(t *testing.T, o httpx.Options) *httpx.Client {
	t.Helper()
	c, err := httpx.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// server starts h on loopback; stop releases handlers blocked on it before the server closes.
func server(t *testing.T, h func(w http.ResponseWriter, r *http.Request, stop <-chan struct{})) *httptest.Server {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(w, r, stop) }))
	t.Cleanup(func() { close(stop); srv.Close() })
	return srv
}

func get(t *testing.T, ctx context.Context, url string) *http.Request {
	t.Helper()
	req, err := httpx.NewRequest(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// stream writes n bytes in chunks until the client goes away.
func stream(w http.ResponseWriter, r *http.Request, n int64) {
	chunk := bytes.Repeat([]byte{'x'}, 32<<10)
	for n > 0 && r.Context().Err() == nil {
		k := min(n, int64(len(chunk)))
		if _, err := w.Write(chunk[:k]); err != nil {
			return
		}
		n -= k
	}
}

func TestDoSetsUserAgentAndReadsBody(t *testing.T) {
	t.Parallel()
	var ua atomic.Value
	srv := server(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
		ua.Store(r.Header.Get("User-Agent"))
		_, _ = io.WriteString(w, "hello")
	})
	c := setup(t, httpx.Options{Version: "v1.2.3"})
	resp, err := c.Do(get(t, context.Background(), srv.URL), 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := ua.Load(); got != "call-agent/v1.2.3" || c.UserAgent() != got {
		t.Errorf("User-Agent = %v (client says %q), want call-agent/v1.2.3", got, c.UserAgent())
	}
	if resp.Status != 200 || string(resp.Body) != "hello" || resp.Truncated {
		t.Errorf("resp = %d %q truncated=%v", resp.Status, resp.Body, resp.Truncated)
	}
}

func TestDoBodyAtAndOverLimit(t *testing.T) {
	t.Parallel()
	srv := server(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
		_, _ = io.WriteString(w, "0123456789")
	})
	c := setup(t, httpx.Options{})
	resp, err := c.Do(get(t, context.Background(), srv.URL), 10)
	if err != nil || string(resp.Body) != "0123456789" {
		t.Fatalf("at the limit: %v, %q", err, resp.Body)
	}
	resp, err = c.Do(get(t, context.Background(), srv.URL), 9)
	var tl *httpx.TooLargeError
	if !errors.As(err, &tl) || tl.Limit != 9 || !errors.Is(err, httpx.ErrUnusableBody) {
		t.Fatalf("over the limit: err = %v, want *TooLargeError{9}", err)
	}
	if resp == nil || resp.Status != 200 || resp.Body != nil {
		t.Fatalf("over the limit: resp = %+v, want status and no body", resp)
	}
	if got := fault.KindOf(fault.Classify(httpx.Failure("P", resp, err))); got != fault.KindBadResponse {
		t.Errorf("over the limit classifies as %v, want bad_response", got)
	}
}

func TestDoHugeBodyStopsAtCap(t *testing.T) {
	t.Parallel()
	var wrote atomic.Int64
	srv := server(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
		w.WriteHeader(http.StatusOK)
		chunk := bytes.Repeat([]byte{'x'}, 32<<10)
		for i := int64(0); i < 1<<30/int64(len(chunk)); i++ {
			n, err := w.Write(chunk)
			wrote.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	c := setup(t, httpx.Options{})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Do(get(t, ctx, srv.URL), 1<<20)
	if !errors.Is(err, httpx.ErrUnusableBody) {
		t.Fatalf("err = %v, want a too-large error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v to give up on a 1 GB body", d)
	}
	if n := wrote.Load(); n >= 1<<30 {
		t.Errorf("the server wrote the whole body (%d bytes)", n)
	}
}

func TestDoErrorBodyIsTruncated(t *testing.T) {
	t.Parallel()
	srv := server(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
		w.WriteHeader(http.StatusServiceUnavailable)
		stream(w, r, 1<<30)
	})
	c := setup(t, httpx.Options{})
	resp, err := c.Do(get(t, context.Background(), srv.URL), 1)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 503 || !resp.Truncated || int64(len(resp.Body)) != httpx.ErrorBodyLimit {
		t.Errorf("resp = %d truncated=%v len=%d", resp.Status, resp.Truncated, len(resp.Body))
	}
}

func TestDoSlowBodyHonoursDeadline(t *testing.T) {
	t.Parallel()
	srv := server(t, func(w http.ResponseWriter, r *http.Request, stop <-chan struct{}) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	c := setup(t, httpx.Options{})
	// Long enough for the headers to arrive under -race on a loaded machine: the deadline
	// must fall while the body is read.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	resp, err := c.Do(get(t, ctx, srv.URL), 1<<20)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %v", d)
	}
	if resp == nil || resp.Status != 200 {
		t.Fatalf("resp = %+v, want the 200 that broke off", resp)
	}
	if got := fault.KindOf(fault.Classify(httpx.Failure("P", resp, err))); got != fault.KindTimeout {
		t.Errorf("classified as %v, want timeout", got)
	}
}

func TestDoDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var hit atomic.Bool
	other := server(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) { hit.Store(true) })
	srv := server(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	})
	c := setup(t, httpx.Options{})
	resp, err := c.Do(get(t, context.Background(), srv.URL), 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusTemporaryRedirect || hit.Load() {
		t.Errorf("status %d, redirect followed: %v", resp.Status, hit.Load())
	}
}

func TestDoReusesConnectionsAfterDraining(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte{'x'}, 8<<10)) // read by nobody: limit 0
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := setup(t, httpx.Options{})
	for range 3 {
		if _, err := c.Do(get(t, context.Background(), srv.URL), 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 sequential requests, want 1 (bodies drained and reused)", n)
	}
}

func TestTransportErrorHidesURLDetails(t *testing.T) {
	t.Parallel()
	addr := providertest.ClosedAddr(t)
	c := setup(t, httpx.Options{})
	req, err := httpx.NewRequest(context.Background(), http.MethodPost,
		"http://"+addr+"/hooks/s3cr3t-path?token=t0ps3cr3t", []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req, 0)
	if resp != nil || err == nil {
		t.Fatalf("resp = %v, err = %v; want a transport error", resp, err)
	}
	for _, leak := range []string{"s3cr3t-path", "t0ps3cr3t", "hooks"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q contains %q", err, leak)
		}
	}
	if !strings.Contains(err.Error(), "http://"+addr) {
		t.Errorf("error %q does not name the host", err)
	}
	if got := fault.KindOf(fault.Classify(httpx.Failure("P", nil, err))); got != fault.KindNetwork {
		t.Errorf("classified as %v, want network", got)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []httpx.Options{
		{Version: "1.0 beta"},
		{Version: "v1\n"},
		{DialTimeout: -1},
		{ResponseHeaderTimeout: -time.Second},
		{MaxIdleConnsPerHost: -1},
		{MaxInFlightBytes: -1},
	} {
		if _, err := httpx.New(o); err == nil {
			t.Errorf("New(%+v) accepted bad options", o)
		}
	}
}

func TestSettingsListEveryProblem(t *testing.T) {
	t.Parallel()
	s := httpx.NewSettings()
	s.Required("APIKey", " ")
	s.Required("VoiceID", "v")
	if got := s.BaseURL("BaseURL", "https://api.example.com/v1/"); got != "https://api.example.com/v1" {
		t.Errorf("BaseURL trimmed to %q", got)
	}
	s.BaseURL("OtherURL", "ftp://x")
	s.BaseURL("QURL", "https://x/v1?a=b")
	s.BaseURL("UserURL", "https://u:p@x/v1")
	s.EndpointURL("HookURL", "https://x/hook?token=abc", false) // queries are fine for endpoints
	s.EndpointURL("HealthURL", "", true)
	s.EndpointURL("SecretURL", "https://x/#t0ps3cr3t", false)
	err := s.Err()
	want := "APIKey is required when SIMULATE is unset\n" +
		"OtherURL must be an absolute http:// or https:// URL with a host\n" +
		"QURL must not contain a query (?…)\n" +
		"UserURL must not contain credentials (user:password@)\n" +
		"SecretURL must not contain a fragment (#…)"
	if err == nil || err.Error() != want {
		t.Fatalf("err =\n%v\nwant\n%s", err, want)
	}
	var se *field.Error
	if !errors.As(err, &se) || se.Field != "APIKey" || !errors.Is(err, field.ErrInvalid) {
		t.Errorf("errors.As gave %+v", se)
	}
	if httpx.NewSettings().Err() != nil {
		t.Error("no problems should give a nil error")
	}
}

func TestCleanMessage(t *testing.T) {
	t.Parallel()
	r := redact.New("xi-secret-key-123")
	got := httpx.CleanMessage(r, "Invalid key\n\t xi-secret-key-123 for +14155550123\x00")
	if want := "Invalid key " + redact.Placeholder + " for +14*******23"; got != want {
		t.Errorf("CleanMessage = %q, want %q", got, want)
	}
	long := httpx.CleanMessage(nil, strings.Repeat("é", 1000))
	if n := len([]rune(long)); n != httpx.MaxMessageLen || !strings.HasSuffix(long, "…") {
		t.Errorf("long message cut to %d runes (%q…)", n, long[:10])
	}
	if httpx.CleanMessage(r, "") != "" {
		t.Error("empty message should stay empty")
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{1 << 20: "1 MiB", 50 << 20: "50 MiB", 64 << 10: "64 KiB", 1000: "1000 B"} {
		if got := httpx.FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestHTTPClientSharesPolicy(t *testing.T) {
	t.Parallel()
	var hit atomic.Bool
	other := server(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) { hit.Store(true) })
	var ua atomic.Value
	srv := server(t, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
		ua.Store(r.Header.Get("User-Agent"))
		http.Redirect(w, r, other.URL+"/token", http.StatusFound)
	})
	c := setup(t, httpx.Options{Version: "v9"})
	hc := c.HTTPClient()
	req := get(t, context.Background(), srv.URL)
	req.Header.Set("User-Agent", "someone-else")
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusFound || hit.Load() {
		t.Errorf("status %d, redirect followed: %v", res.StatusCode, hit.Load())
	}
	if got := ua.Load(); got != "call-agent/v9" {
		t.Errorf("User-Agent = %v, want call-agent/v9", got)
	}
	if req.Header.Get("User-Agent") != "someone-else" {
		t.Error("the caller's request was modified")
	}
	if c.HTTPClient() == hc {
		t.Error("HTTPClient must return a new client each time, so callers may set its Timeout")
	}
}
