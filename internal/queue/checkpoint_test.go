package queue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/testwait"
)

func TestClaimsAreExclusiveUntilTheLeaseExpires(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	store, err := queue.EnsureCheckpoints(ctx, js, config.Defaults().Topology)
	if err != nil {
		t.Fatal(err)
	}
	const lease = 300 * time.Millisecond

	a, err := store.Claim(ctx, "c-1", "worker-a", lease)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx, func(cp *call.Checkpoint) { cp.Script = &call.Script{Text: "hello"} }); err != nil {
		t.Fatal(err)
	}
	_, err = store.Claim(ctx, "c-1", "worker-b", lease)
	var held *call.ClaimHeldError
	if !errors.As(err, &held) || !strings.HasPrefix(held.Owner, "worker-a/") {
		t.Fatalf("second claim while the lease is live: %v, want ClaimHeldError by worker-a", err)
	}

	// A second delivery of the same contact in the same worker is held off too.
	if _, err := store.Claim(ctx, "c-1", "worker-a", lease); !errors.As(err, &held) {
		t.Fatalf("the same worker claimed a contact it already holds: %v", err)
	}

	// worker-a stalls past its lease; worker-b takes over and sees the saved script.
	var b call.Claim
	testwait.Eventually(t, 10*time.Second, "worker-b to claim after the lease expired", func() (bool, string) {
		if b, err = store.Claim(ctx, "c-1", "worker-b", lease); err != nil && !errors.As(err, &held) {
			t.Fatal(err)
		}
		return b != nil, fmt.Sprint(err)
	})
	if got := b.Checkpoint().Script; got == nil || got.Text != "hello" {
		t.Fatalf("worker-b's checkpoint lacks the saved script: %+v", b.Checkpoint())
	}
	// worker-a wakes up: every write it tries is refused.
	if err := a.Renew(ctx); !errors.Is(err, call.ErrClaimLost) {
		t.Fatalf("stale worker renewed its claim: %v", err)
	}
	if err := a.Save(ctx, func(cp *call.Checkpoint) { cp.AudioRef = "audio/c-1" }); !errors.Is(err, call.ErrClaimLost) {
		t.Fatalf("stale worker saved a step: %v", err)
	}
	// A released claim stays released: a late heartbeat cannot take the contact back.
	if err := b.Release(ctx, time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	if err := b.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if cp, _, _ := store.Get(ctx, "c-1"); cp.Owner != "" {
		t.Fatalf("a renew after release took the contact back: owner %q", cp.Owner)
	}
	b, err = store.Claim(ctx, "c-1", "worker-b", lease)
	if err != nil {
		t.Fatal(err)
	}

	// Failures are recorded on release, the first one kept.
	first := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := b.Release(ctx, first, "ElevenLabs: 503 service unavailable"); err != nil {
		t.Fatal(err)
	}
	c, err := store.Claim(ctx, "c-1", "worker-c", lease)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx, first.Add(time.Minute), "ElevenLabs: timeout"); err != nil {
		t.Fatal(err)
	}
	cp, ok, err := store.Get(ctx, "c-1")
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	if !cp.FirstFailure.Equal(first) || !cp.LastFailure.Equal(first.Add(time.Minute)) || cp.Failures != 2 || cp.Owner != "" ||
		cp.LastError != "ElevenLabs: timeout" {
		t.Fatalf("checkpoint after two failed deliveries = %+v; want the last error kept", cp)
	}
}

// A contact's first claim is one write and nothing else (no read), and every later claim
// finds the completed record first.
func TestAFirstClaimIsOneWriteAndACompletedContactIsNeverClaimedAgain(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := natstest.Connect(t, srv)
	ctx := context.Background()
	topo := config.Defaults().Topology
	store, err := queue.EnsureCheckpoints(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	// The client's own count of what it published: exact when Claim returns (the server's
	// totals are summed later).
	outMsgs := func() uint64 { return nc.Stats().OutMsgs }
	before := outMsgs()
	a, err := store.Claim(ctx, "c-1", "worker-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if n := outMsgs() - before; n != 1 {
		t.Fatalf("a first claim sent %d messages to the server, want 1 (the write)", n)
	}
	// The progress record expires CHECKPOINT_TTL after its last write.
	stream, err := js.Stream(ctx, "KV_"+topo.CheckpointBucket)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetLastMsgForSubject(ctx, "$KV."+topo.CheckpointBucket+"."+queue.ProgressKey("c-1"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := raw.Header.Get("Nats-TTL"), fmt.Sprint(int64(topo.CheckpointTTL/time.Second)); got != want {
		t.Fatalf("progress record's Nats-TTL = %q, want %q", got, want)
	}

	if err := a.Complete(ctx, call.Record{ContactID: "c-1", Status: "completed"}); err != nil {
		t.Fatal(err)
	}
	// Completing twice is not an error, and the first record stays.
	if err := store.MarkCompleted(ctx, "c-1", call.Record{ContactID: "c-1", Status: "second"}); err != nil {
		t.Fatal(err)
	}
	if rec, ok, err := store.Completed(ctx, "c-1"); err != nil || !ok || rec.Status != "completed" {
		t.Fatalf("completed record = %+v (%v, %v), want the first", rec, ok, err)
	}
	if _, err := store.Claim(ctx, "c-1", "worker-b", time.Minute); !errors.Is(err, call.ErrCompleted) {
		t.Fatalf("claim of a completed contact = %v, want ErrCompleted", err)
	}
	// Also once its progress record is gone (expired).
	kv, err := js.KeyValue(ctx, topo.CheckpointBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, queue.ProgressKey("c-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Claim(ctx, "c-1", "worker-b", time.Minute); !errors.Is(err, call.ErrCompleted) {
		t.Fatalf("claim of a completed contact without progress = %v, want ErrCompleted", err)
	}

	// A lapsed claim is taken over, unless the contact was completed meanwhile.
	if _, err := store.Claim(ctx, "c-2", "worker-a", -time.Minute); err != nil {
		t.Fatal(err)
	}
	b, err := store.Claim(ctx, "c-2", "worker-b", time.Minute)
	if err != nil {
		t.Fatalf("take-over of a lapsed claim: %v", err)
	}
	if err := b.Complete(ctx, call.Record{ContactID: "c-2", Status: "completed"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c-3", "c-4"} {
		if _, err := store.Claim(ctx, id, "worker-a", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := queue.CountCompleted(ctx, js, topo); err != nil || n != 2 {
		t.Fatalf("CountCompleted = %d, %v; want 2 (c-1, c-2; not the claims of c-3, c-4)", n, err)
	}
	if st, err := queue.ReadStatus(ctx, js, topo); err == nil || st.Completed != 0 {
		// No contacts stream yet: ReadStatus says so before counting.
		t.Fatalf("ReadStatus without a contacts stream = %+v, %v", st, err)
	}
}
