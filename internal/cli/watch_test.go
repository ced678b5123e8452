package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/cli"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/fleet"
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/resilience"
	"github.com/callagent/resilience/internal/testwait"
)

// syncBuffer is a buffer a running command writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runWithContext runs `publisher args...` against srv with ctx as its context.
func runWithContext(ctx context.Context, srv *natsembed.Server, stdin io.Reader, stdout, stderr io.Writer, args ...string) int {
	vars := map[string]string{"LOG_FILE": "", "ENV_FILE": "", "NATS_URL": srv.ClientURL()}
	cmd := cli.NewPublisherCommand(env(vars), stdout, stderr)
	cmd.SetIn(stdin)
	cmd.SetContext(ctx)
	return cli.Execute(cmd, args, stderr)
}

// running is a publisher command running in the background.
type running struct {
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan int // the exit code
}

// startPublisher runs `publisher args...` against srv in the background with stdin as its
// input, until it ends or stop is called.
func startPublisher(t *testing.T, srv *natsembed.Server, stdin io.Reader, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() { r.done <- runWithContext(ctx, srv, stdin, r.stdout, r.stderr, args...) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Errorf("publisher %v did not stop", args)
		}
	})
	return r
}

// stop interrupts the command (as Ctrl-C does) and returns its exit code.
func (r *running) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.done:
		r.done <- code // for the cleanup
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("the command did not stop\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
		return 0
	}
}

// frames splits the output of status --watch into its complete refreshes.
func frames(out string) []string {
	var done []string
	for _, f := range strings.Split(out, "Refreshed ")[1:] {
		if strings.Contains(f, "Alert incidents: none open\n") {
			done = append(done, f)
		}
	}
	return done
}

// waitFrame waits for a refresh after the first skip ones that passes ok, and returns its index.
func waitFrame(t *testing.T, r *running, skip int, what string, ok func(frame string) bool) int {
	t.Helper()
	found := -1
	testwait.Eventually(t, 30*time.Second, what, func() (bool, string) {
		fs := frames(r.stdout.String())
		for i := skip; i < len(fs); i++ {
			if ok(fs[i]) {
				found = i
				return true, ""
			}
		}
		if len(fs) == 0 {
			return false, "no refresh yet; stderr: " + r.stderr.String()
		}
		return false, "last refresh:\n" + fs[len(fs)-1]
	})
	return found
}

// status --watch shows when it refreshed, the rate contacts complete at and an ETA, and says
// plainly when no worker is reporting, and why.
func TestStatusWatchShowsRateETAAndMissingWorkers(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if r := publisher(t, srv, "enqueue", writeFile(t, "c.json", validArray)); r.code != 0 {
		t.Fatal(r.stderr)
	}
	ctx := context.Background()
	topo := config.Defaults().Topology
	cps, err := queue.EnsureCheckpoints(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}

	w := startPublisher(t, srv, strings.NewReader(""), "status", "--watch", "--interval", "100ms")
	first := waitFrame(t, w, 0, "a first refresh", func(f string) bool { return true })
	f := frames(w.stdout.String())[first]
	for _, want := range []string{"every 100ms (Ctrl-C to stop)", "Rate: measuring", "3 left (pending + in progress)",
		"No worker is reporting: the fleet bucket fleet does not exist", "; 3 contact(s) wait"} {
		if !strings.Contains(f, want) {
			t.Errorf("first refresh lacks %q:\n%s", want, f)
		}
	}

	// A contact completes: the next refresh has a rate and an ETA for the 3 left.
	if err := cps.MarkCompleted(ctx, "c1", call.Record{ContactID: "c1", Status: "completed", CompletedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	i := waitFrame(t, w, first+1, "a refresh with a rate and an ETA", func(f string) bool {
		return strings.Contains(f, "contacts/s completed over the last") && strings.Contains(f, "left (pending + in progress), ETA ") &&
			!strings.Contains(f, "ETA unknown")
	})
	// Then nothing completes: no rate, no ETA.
	waitFrame(t, w, i+1, "a refresh without progress", func(f string) bool {
		return strings.Contains(f, "Rate: 0 contacts/s completed") && strings.Contains(f, "ETA unknown: none finished in the last")
	})

	// A worker reports its breakers: the warning goes.
	kv, err := fleet.EnsureBucket(ctx, js, fleet.BucketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	report := fleet.Report{Worker: "w-1", Provider: "ElevenLabs", State: resilience.StateClosed, Since: time.Now(), UpdatedAt: time.Now()}
	body, _ := json.Marshal(report)
	if _, err := kv.Put(ctx, report.Key(), body); err != nil {
		t.Fatal(err)
	}
	i = waitFrame(t, w, 0, "a refresh with the worker", func(f string) bool {
		return strings.Contains(f, "(1 worker reporting)") && !strings.Contains(f, "No worker is reporting")
	})
	// Its report goes (as when it expires): the warning is back, with the other cause.
	if err := kv.Delete(ctx, report.Key()); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, w, i+1, "a refresh saying the reports expired", func(f string) bool {
		return strings.Contains(f, "No worker is reporting: the fleet bucket fleet holds no report: the workers stopped")
	})

	if code := w.stop(t); code != 0 {
		t.Fatalf("status --watch ended with %d\nstderr: %s", code, w.stderr)
	}
}

// status --watch --json prints one object a refresh, with the fields of status --json and
// when it was read, the completion rate (from the second refresh) and the ETA when known;
// status --json has none of these.
func TestStatusWatchJSON(t *testing.T) {
	srv := natstest.Start(t)
	if r := publisher(t, srv, "enqueue", writeFile(t, "c.json", validArray)); r.code != 0 {
		t.Fatal(r.stderr)
	}
	w := startPublisher(t, srv, strings.NewReader(""), "status", "--watch", "--json", "--interval", "100ms")
	testwait.True(t, 30*time.Second, "two refreshes", func() bool { return strings.Count(w.stdout.String(), "\n") >= 2 })
	if code := w.stop(t); code != 0 {
		t.Fatalf("exit %d: %s", code, w.stderr)
	}
	lines := strings.Split(strings.TrimSpace(w.stdout.String()), "\n")
	for i, line := range lines[:2] {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("refresh %d is not JSON: %q", i, line)
		}
		for _, k := range []string{"pending", "in_progress", "completed", "dead_lettered", "breakers", "incidents", "workers", "alert_incidents", "refreshed_at"} {
			if _, ok := got[k]; !ok {
				t.Errorf("refresh %d lacks %s: %s", i, k, line)
			}
		}
		if _, ok := got["eta_seconds"]; ok {
			t.Errorf("refresh %d has an ETA with nothing finishing: %s", i, line)
		}
		if _, ok := got["completion_rate"]; ok != (i > 0) {
			t.Errorf("refresh %d: completion_rate present %v: %s", i, ok, line)
		}
	}

	r := publisher(t, srv, "status", "--json")
	for _, k := range []string{"refreshed_at", "completion_rate", "eta_seconds"} {
		if strings.Contains(r.stdout, k) {
			t.Errorf("status --json has %s: %s", k, r.stdout)
		}
	}
}
