package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
)

// An operator's session: setup, a laptop's different settings shown as drift and never
// applied, pause seen by status, inspect, cancel, purge, and a re-enqueue of completed
// contacts reported as such and recalled on demand.
func TestOperatorControls(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	topo := config.Defaults().Topology

	r := publisher(t, srv, "setup")
	if r.code != 0 || !strings.Contains(r.stdout, "created stream CONTACTS") || !strings.Contains(r.stdout, "matches the configuration") {
		t.Fatalf("setup: %+v", r)
	}
	laptop := publisherEnv(t, srv, map[string]string{"DEDUPE_WINDOW": "1m"}, "", "status")
	if !strings.Contains(laptop.stdout, "Topology drift (2)") || !strings.Contains(laptop.stdout, "configured 1m0s (DEDUPE_WINDOW), server has 6h0m0s") {
		t.Errorf("status with another dedupe window shows no drift:\n%s", laptop.stdout)
	}
	enq := publisherEnv(t, srv, map[string]string{"DEDUPE_WINDOW": "1m"}, "", "enqueue", writeFile(t, "c.json", validArray))
	if enq.code != 0 {
		t.Fatalf("enqueue: %+v", enq)
	}
	s, err := js.Stream(ctx, topo.ContactsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Duplicates; got != topo.DedupeWindow {
		t.Errorf("enqueue with DEDUPE_WINDOW=1m changed the stream's window to %v", got)
	}
	r = publisherEnv(t, srv, map[string]string{"DEDUPE_WINDOW": "1m"}, "", "setup", "--json")
	var plan queue.Plan
	if r.code != 3 || json.Unmarshal([]byte(r.stdout), &plan) != nil || len(plan.Drift) != 2 {
		t.Errorf("setup with drift: exit %d, %s; want exit 3 and 2 drift entries", r.code, r.stdout)
	}

	// Pause: status shows it; resume clears it.
	if r = publisher(t, srv, "pause", "--until", "1h"); r.code != 0 || !strings.Contains(r.stdout, "until 20") {
		t.Fatalf("pause: %+v", r)
	}
	if r = publisher(t, srv, "status"); !strings.Contains(r.stdout, "PAUSED until") {
		t.Errorf("status does not show the pause:\n%s", r.stdout)
	}
	if r = publisher(t, srv, "pause", "--until", "-5m"); r.code != 2 {
		t.Errorf("pause --until -5m: exit %d; want 2", r.code)
	}
	if r = publisher(t, srv, "resume"); r.code != 0 {
		t.Fatalf("resume: %+v", r)
	}
	if r = publisher(t, srv, "status", "--json"); strings.Contains(r.stdout, `"paused":true`) {
		t.Errorf("still paused after resume: %s", r.stdout)
	}

	// Inspect and cancel.
	if r = publisher(t, srv, "inspect", "c1"); r.code != 0 || !strings.Contains(r.stdout, "contact c1: pending") {
		t.Errorf("inspect c1: %+v", r)
	}
	if r = publisher(t, srv, "inspect", "nobody"); r.code != 4 {
		t.Errorf("inspect of an unknown id: exit %d; want 4", r.code)
	}
	if r = publisherWithInput(t, srv, "n\n", "cancel", "c1"); r.code != 1 {
		t.Errorf("declined cancel: exit %d; want 1", r.code)
	}
	if r = publisher(t, srv, "cancel", "--yes", "c1"); r.code != 0 || !strings.Contains(r.stdout, "c1: cancelled, 1 message(s) removed") {
		t.Errorf("cancel c1: %+v", r)
	}
	if r = publisher(t, srv, "inspect", "c1", "--json"); !strings.Contains(r.stdout, `"state": "cancelled"`) {
		t.Errorf("inspect after cancel: %s", r.stdout)
	}

	// Purge what is left (c2, c3); nothing is pending after.
	if r = publisher(t, srv, "purge", "--pending", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "purged 2 pending") {
		t.Errorf("purge: %+v", r)
	}
	if n := streamMsgs(t, js); n != 0 {
		t.Errorf("%d contacts left after purge", n)
	}

	// c2 completed since: enqueueing the file again skips it and c1 (cancelled), saying so,
	// and c3 (purged) is a duplicate within DEDUPE_WINDOW; --recall enqueues c1 and c2 under
	// new delivery ids.
	cps, err := queue.EnsureCheckpoints(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	if err := cps.MarkCompleted(ctx, "c2", call.Record{ContactID: "c2", Status: "completed", CompletedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, "again.json", validArray)
	r = publisher(t, srv, "enqueue", file)
	if r.code != 0 || !strings.Contains(r.stdout, "2 already completed") || !strings.Contains(r.stderr, "c2: already completed; not enqueued") ||
		!strings.Contains(r.stderr, "c1: already cancelled") {
		t.Fatalf("re-enqueue: %+v", r)
	}
	if n := streamMsgs(t, js); n != 0 || !strings.Contains(r.stdout, "1 duplicates") {
		t.Errorf("%d contacts in the stream after re-enqueue (%s); want none: c3 was purged within the dedupe window", n, r.stdout)
	}
	r = publisher(t, srv, "enqueue", "--recall", file)
	if r.code != 0 || !strings.Contains(r.stdout, "(2 of them recalled)") {
		t.Fatalf("recall: %+v", r)
	}
	if n := streamMsgs(t, js); n != 2 {
		t.Errorf("%d contacts after recall; want the two recalled", n)
	}
}

// publisherEnv runs the publisher with extra settings in its environment.
func publisherEnv(t *testing.T, srv interface{ ClientURL() string }, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	all := map[string]string{"LOG_FILE": "", "NATS_URL": srv.ClientURL()}
	for k, v := range vars {
		all[k] = v
	}
	return runPublisher(t, all, stdin, args...)
}
