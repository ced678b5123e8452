package health_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/natstest"

	"github.com/callagent/resilience/internal/health"
	"github.com/callagent/resilience/internal/testwait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.IgnoreLibraryLeaks()...) }

// serve runs s on a loopback port until the test ends and returns its base URL.
func serve(t *testing.T, s *health.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after cancel, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not stop within 10s of cancel")
		}
	})
	return "http://" + ln.Addr().String()
}

// get returns the status and body of a GET.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestProbesSayOnlyOKOrNotReady(t *testing.T) {
	reg := prometheus.NewRegistry()
	hits := prometheus.NewCounter(prometheus.CounterOpts{Name: "callagent_test_hits_total", Help: "Test counter."})
	reg.MustRegister(hits)
	hits.Add(7)

	const reason = "stream CONTACTS is not reachable: nats://user:hunter2@10.0.0.7:4222 refused"
	var failing atomic.Bool
	ready := func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("the ready check got no deadline")
		}
		if failing.Load() {
			return errors.New(reason)
		}
		return nil
	}
	logger, logs := logtest.NewNullLogger()
	base := serve(t, health.NewServer("unused", reg, ready, health.WithLogger(logger)))

	if code, body := get(t, base+"/healthz"); code != 200 || body != health.BodyOK {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || body != health.BodyOK {
		t.Errorf("/readyz while ready = %d %q, want 200 ok", code, body)
	}
	failing.Store(true)
	for range 3 {
		code, body := get(t, base+"/readyz")
		if code != 503 || body != health.BodyNotReady {
			t.Errorf("/readyz while not ready = %d %q, want 503 %q", code, body, health.BodyNotReady)
		}
	}
	if code, body := get(t, base+"/healthz"); code != 200 || body != health.BodyOK {
		t.Errorf("/healthz while not ready = %d %q, want 200: the process is alive", code, body)
	}
	failing.Store(false)
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz after recovery = %d, want 200", code)
	}

	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, "callagent_test_hits_total 7") {
		t.Errorf("/metrics = %d, body without the registered counter:\n%s", code, body)
	}
	if code, _ := get(t, base+"/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ = %d, want 404: nothing else is served", code)
	}
	resp, err := http.Post(base+"/readyz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /readyz = %d, want 405", resp.StatusCode)
	}

	// The reason is logged once per change, never served.
	var notReady, readyAgain int
	for _, e := range logs.AllEntries() {
		switch e.Message {
		case "Not ready":
			notReady++
			if err, _ := e.Data[logrus.ErrorKey].(error); err == nil || err.Error() != reason {
				t.Errorf("the not-ready log carries %v, want the reason", e.Data[logrus.ErrorKey])
			}
		case "Ready: the readiness check passes":
			readyAgain++
		}
	}
	if notReady != 1 || readyAgain != 2 {
		t.Errorf("logged not ready %d times and ready %d times, want 1 and 2 (once per change)", notReady, readyAgain)
	}
}

func TestReadyCheckTimesOut(t *testing.T) {
	slow := func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}
	base := serve(t, health.NewServer("unused", nil, slow, health.WithReadyTimeout(50*time.Millisecond)))
	start := time.Now()
	if code, _ := get(t, base+"/readyz"); code != 503 {
		t.Errorf("/readyz with a hanging check = %d, want 503", code)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("/readyz took %s, want about the 50ms timeout", took)
	}
	if code, _ := get(t, base+"/metrics"); code != 404 {
		t.Errorf("/metrics without a gatherer = %d, want 404", code)
	}
}

func TestRunListensAndStopsOnCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	s := health.NewServer(addr, prometheus.NewRegistry(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	testwait.Eventually(t, 5*time.Second, "Run to serve /healthz on "+addr, func() (bool, string) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return true, ""
	})

	// A second server on the same address fails to listen, naming it.
	err = health.NewServer(addr, nil, nil).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("second Run on %s = %v, want a listen error naming the address", addr, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("still serving after Run returned")
	}
}
