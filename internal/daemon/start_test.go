package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/daemon"
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/provider/sim"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/testwait"
)

// A worker whose metrics and probe port is taken must not run blind: it stops at start and
// names the setting.
func TestTakenMetricsPortStopsTheWorkerAtStart(t *testing.T) {
	srv := natstest.Start(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := testConfig(srv, "w-port")
	cfg.Metrics.Addr = taken.Addr().String()
	out := &syncBuffer{}
	err = daemon.Run(context.Background(), daemon.Options{Config: cfg, Logger: quietLogger(out),
		Providers: simProviders(sim.Options{}, nil, nil)})
	if err == nil || !strings.Contains(err.Error(), "METRICS_ADDR="+cfg.Metrics.Addr) {
		t.Fatalf("Run = %v; want an error naming METRICS_ADDR=%s", err, cfg.Metrics.Addr)
	}
	if strings.Contains(out.String(), "consuming") {
		t.Error("the worker consumed before failing on its port")
	}
}

// Started before NATS (Kubernetes gives no order), the worker waits, answers /readyz with
// 503 meanwhile, and runs once the server is up.
func TestWorkerWaitsForNATSAndIsNotReadyMeanwhile(t *testing.T) {
	addr := freeAddr(t)
	natsAddr := freeAddr(t)
	cfg := testConfigAt("nats://"+natsAddr, "w-patient")
	cfg.NATS.ConnectTimeout = time.Minute
	cfg.Metrics.Addr = addr
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Config: cfg, Logger: quietLogger(out),
			Providers: simProviders(sim.Options{}, nil, nil), Ready: func(string) { close(ready) }})
	}()
	readyz := func() int {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	testwait.Eventually(t, 10*time.Second, "/readyz 503 and a logged retry while NATS is down", func() (bool, string) {
		return readyz() == http.StatusServiceUnavailable && strings.Contains(out.String(), "not reachable yet"), out.String()
	})

	srv, err := natsembed.Start(natsembed.Options{URL: cfg.NATS.URL, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("worker stopped instead of waiting for NATS: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("worker not consuming 30s after NATS came up; log:\n%s", out.String())
	}
	testwait.Eventually(t, 10*time.Second, "/readyz 200 once connected", func() (bool, string) {
		code := readyz()
		return code == http.StatusOK, http.StatusText(code)
	})
	// What an operator's first scrape shows: the build, the pause state, the queue's age,
	// and every outcome counter at 0 so increase() sees the first burst.
	want := map[string]bool{"callagent_build_info": false, "callagent_consumer_paused": false,
		"callagent_oldest_pending_age_seconds": false, `callagent_contacts_processed_total{outcome="completed"}`: false,
		`callagent_dead_letters_total{reason="max_deliveries"}`: false}
	for sample, v := range scrape(t, addr) {
		for name := range want {
			if strings.HasPrefix(sample, name) && (v == 0 || name == "callagent_build_info") {
				want[name] = true
			}
		}
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("first scrape lacks %s (at 0, or 1 for build_info)", name)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("worker stopped with %v", err)
	}
}

// With NATS_CONNECT_TIMEOUT=0 the worker tries once and says where it tried.
func TestWorkerWithoutWaitFailsAtOnce(t *testing.T) {
	cfg := testConfigAt("nats://"+freeAddr(t), "w-impatient")
	cfg.NATS.ConnectTimeout = 0
	err := daemon.Run(context.Background(), daemon.Options{Config: cfg, Logger: quietLogger(&syncBuffer{}),
		Providers: simProviders(sim.Options{}, nil, nil)})
	if err == nil || !strings.Contains(err.Error(), cfg.NATS.URL) {
		t.Fatalf("Run = %v; want a connection error naming %s", err, cfg.NATS.URL)
	}
}

// The worker runs with a compatible stream someone else made (reporting the differences) and
// refuses one it cannot work with, saying exactly what.
func TestWorkerReportsDriftAndRefusesAnIncompatibleStream(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "w-drift")
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: cfg.Topology.ContactsStream, Subjects: []string{cfg.Topology.ContactsSubject},
		Retention: jetstream.WorkQueuePolicy, Duplicates: time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	startWorker(t, cfg, simProviders(sim.Options{}, nil, nil), out).stop(t)
	if log := out.String(); !strings.Contains(log, "duplicate_window: configured 6h0m0s (DEDUPE_WINDOW), server has 1m0s") {
		t.Errorf("no drift line for the duplicate window; log:\n%s", log)
	}
	s, err := js.Stream(ctx, cfg.Topology.ContactsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Duplicates; got != time.Minute {
		t.Errorf("the worker changed the stream's duplicate window to %v", got)
	}

	other := testConfig(srv, "w-limits")
	other.Topology.ContactsStream = "LIMITS"
	other.Topology.ContactsSubject = "limits.contacts"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LIMITS", Subjects: []string{"limits.contacts"}}); err != nil {
		t.Fatal(err)
	}
	err = daemon.Run(ctx, daemon.Options{Config: other, Logger: quietLogger(&syncBuffer{}),
		Providers: simProviders(sim.Options{}, nil, nil)})
	if err == nil || !strings.Contains(err.Error(), "stream LIMITS retention: configured WorkQueue, server has Limits") {
		t.Fatalf("Run = %v; want a refusal naming the retention", err)
	}
}

// A contact an operator cancelled is never called: the worker skips it as completed.
func TestCancelledContactIsNotCalled(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "w-cancel")
	ctx := context.Background()
	if _, err := queue.Setup(ctx, js, cfg.Topology); err != nil {
		t.Fatal(err)
	}
	if res, err := queue.Cancel(ctx, js, cfg.Topology, []string{"c-0001"}); err != nil || !res[0].Cancelled {
		t.Fatalf("cancel: %+v, %v", res, err)
	}
	enqueue(t, js, cfg, 3)
	var llm, tts calls
	startWorker(t, cfg, simProviders(sim.Options{Scenario: sim.Healthy}, &llm, &tts), io.Discard)
	testwait.Eventually(t, 30*time.Second, "the two others completed and the queue idle", func() (bool, string) {
		st := statusOf(t, js, cfg)
		return st.Completed == 2 && st.Cancelled == 1 && st.Idle(), fmt.Sprintf("%+v", st)
	})
	if llm.get("c-0001") != 0 || tts.get("c-0001") != 0 || llm.get("c-0000") != 1 {
		t.Errorf("calls: cancelled c-0001 LLM %d TTS %d, c-0000 LLM %d; want 0, 0, 1", llm.get("c-0001"), tts.get("c-0001"), llm.get("c-0000"))
	}
}
