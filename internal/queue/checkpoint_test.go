package queue_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
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
	deadline := time.Now().Add(10 * time.Second)
	var b call.Claim
	for b == nil {
		if time.Now().After(deadline) {
			t.Fatal("worker-b could not claim after the lease expired")
		}
		if b, err = store.Claim(ctx, "c-1", "worker-b", lease); err != nil && !errors.As(err, &held) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	if err := b.Release(ctx, time.Time{}); err != nil {
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
	if err := b.Release(ctx, first); err != nil {
		t.Fatal(err)
	}
	c, err := store.Claim(ctx, "c-1", "worker-c", lease)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx, first.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	cp, ok, err := store.Get(ctx, "c-1")
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	if !cp.FirstFailure.Equal(first) || !cp.LastFailure.Equal(first.Add(time.Minute)) || cp.Failures != 2 || cp.Owner != "" {
		t.Fatalf("checkpoint after two failed deliveries = %+v", cp)
	}
}
