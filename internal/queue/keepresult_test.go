package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
)

// testClock is the checkpoint store's clock: leases lapse when the test says so.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newStore(t *testing.T) (*queue.Checkpoints, jetstream.KeyValue, *testClock) {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	topo := config.Defaults().Topology
	store, err := queue.EnsureCheckpoints(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, topo.CheckpointBucket)
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	queue.SetClock(store, clock.Now)
	return store, kv, clock
}

// scriptResult is what the pipeline keeps after paying the LLM.
func scriptResult(text, provider string) call.Checkpoint {
	return call.Checkpoint{
		Script:     &call.Script{Text: text},
		Providers:  map[string]string{call.StepLLM: provider},
		StepMillis: map[string]int64{call.StepLLM: 1200},
		Spend:      map[string]call.Spend{call.StepLLM: {Provider: provider, PromptTokens: 100, CompletionTokens: 50}},
	}
}

func keep(store *queue.Checkpoints, id string, result call.Checkpoint) (bool, error) {
	return store.KeepResult(context.Background(), id, func(cp *call.Checkpoint) bool { return cp.TakeResults(result) })
}

func mustGet(t *testing.T, store *queue.Checkpoints, id string) call.Checkpoint {
	t.Helper()
	cp, ok, err := store.Get(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("checkpoint %s: ok %v, %v", id, ok, err)
	}
	return cp
}

// takeOver has worker-a claim id, stall past its lease, and worker-b claim it; one failed
// delivery is on record before.
func takeOver(t *testing.T, store *queue.Checkpoints, clock *testClock, id string) (a, b call.Claim) {
	t.Helper()
	ctx := context.Background()
	first, err := store.Claim(ctx, id, "worker-0", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Release(ctx, clock.Now(), ""); err != nil {
		t.Fatal(err)
	}
	if a, err = store.Claim(ctx, id, "worker-a", time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if b, err = store.Claim(ctx, id, "worker-b", time.Minute); err != nil {
		t.Fatalf("worker-b could not take over after worker-a's lease lapsed: %v", err)
	}
	return a, b
}

// The bug of issue #11: worker-a paid for a script, but its claim lapsed and worker-b took the
// contact before the script was saved. The script is kept in worker-b's checkpoint without
// touching worker-b's claim, and worker-b's own writes do not erase it.
func TestAScriptPaidAfterALostClaimIsKeptForTheNewHolder(t *testing.T) {
	store, _, clock := newStore(t)
	ctx := context.Background()
	a, b := takeOver(t, store, clock, "c-1")
	held := mustGet(t, store, "c-1")

	paid := scriptResult("from a", "OpenAI")
	if err := a.Save(ctx, func(cp *call.Checkpoint) { cp.TakeResults(paid) }); !errors.Is(err, call.ErrClaimLost) {
		t.Fatalf("worker-a saved after losing the claim: %v", err)
	}
	kept, err := keep(store, "c-1", paid)
	if err != nil || !kept {
		t.Fatalf("KeepResult = %v, %v; want kept", kept, err)
	}
	cp := mustGet(t, store, "c-1")
	if cp.Script == nil || cp.Script.Text != "from a" || cp.Spend[call.StepLLM] != paid.Spend[call.StepLLM] ||
		cp.Providers[call.StepLLM] != "OpenAI" || cp.StepMillis[call.StepLLM] != 1200 {
		t.Fatalf("checkpoint after KeepResult = %+v: worker-a's paid script is not there", cp)
	}
	if cp.Owner != held.Owner || !cp.LeaseUntil.Equal(held.LeaseUntil) || cp.Failures != 1 ||
		!cp.FirstFailure.Equal(held.FirstFailure) || !cp.LastFailure.Equal(held.LastFailure) {
		t.Fatalf("KeepResult changed the holder's claim or failures: %+v, was %+v", cp, held)
	}

	// The claim is still exclusive: worker-a stays out, a third worker is held off.
	if err := a.Renew(ctx); !errors.Is(err, call.ErrClaimLost) {
		t.Fatalf("worker-a renewed a claim it lost: %v", err)
	}
	var heldErr *call.ClaimHeldError
	if _, err := store.Claim(ctx, "c-1", "worker-c", time.Minute); !errors.As(err, &heldErr) || heldErr.Owner != held.Owner {
		t.Fatalf("worker-c's claim while worker-b holds the contact: %v", err)
	}

	// worker-b's copy predates the kept script; its heartbeat and its next step must not
	// erase it, and it learns it.
	if b.Checkpoint().Script != nil {
		t.Fatal("test setup: worker-b's copy already has the script")
	}
	if err := b.Renew(ctx); err != nil {
		t.Fatalf("worker-b's renewal after the merge: %v", err)
	}
	if err := b.Save(ctx, func(cp *call.Checkpoint) { cp.AudioRef, cp.AudioFormat = "audio/c-1", "mp3" }); err != nil {
		t.Fatalf("worker-b's save after the merge: %v", err)
	}
	cp = mustGet(t, store, "c-1")
	if cp.Script == nil || cp.Script.Text != "from a" || cp.Spend[call.StepLLM] != paid.Spend[call.StepLLM] || cp.AudioRef != "audio/c-1" {
		t.Fatalf("checkpoint after worker-b's writes = %+v: the kept script was erased", cp)
	}
	if got := b.Checkpoint(); got.Script == nil || got.Script.Text != "from a" || got.Owner != held.Owner {
		t.Fatalf("worker-b's checkpoint = %+v, want the kept script under its claim", got)
	}
	// Releasing keeps it too.
	if err := b.Release(ctx, time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	if cp = mustGet(t, store, "c-1"); cp.Script == nil || cp.Script.Text != "from a" || cp.Owner != "" {
		t.Fatalf("checkpoint after worker-b released = %+v", cp)
	}
}

// A holder that took its claim a while ago refreshes before paying and sees the kept script.
func TestRefreshTakesInAKeptResult(t *testing.T) {
	store, _, clock := newStore(t)
	ctx := context.Background()
	_, b := takeOver(t, store, clock, "c-1")
	if _, err := keep(store, "c-1", scriptResult("from a", "OpenAI")); err != nil {
		t.Fatal(err)
	}
	cp, err := b.Refresh(ctx)
	if err != nil || cp.Script == nil || cp.Script.Text != "from a" {
		t.Fatalf("Refresh = %+v, %v; want the kept script", cp, err)
	}
	if got := b.Checkpoint(); got.Script == nil || got.Spend[call.StepLLM].Provider != "OpenAI" {
		t.Fatalf("Checkpoint after Refresh = %+v", got)
	}
	// The refreshed claim writes on the current revision without a conflict.
	if err := b.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	// A claim that was taken over learns it on Refresh.
	clock.Advance(2 * time.Minute)
	if _, err := store.Claim(ctx, "c-1", "worker-c", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Refresh(ctx); !errors.Is(err, call.ErrClaimLost) {
		t.Fatalf("Refresh of a claim taken over = %v, want ErrClaimLost", err)
	}
}

// The result already in the checkpoint wins: worker-a's is not written over worker-b's.
func TestKeepResultNeverReplacesAResultThere(t *testing.T) {
	store, _, clock := newStore(t)
	ctx := context.Background()
	_, b := takeOver(t, store, clock, "c-1")
	if err := b.Save(ctx, func(cp *call.Checkpoint) { cp.TakeResults(scriptResult("from b", "Anthropic")) }); err != nil {
		t.Fatal(err)
	}
	before := mustGet(t, store, "c-1")
	kept, err := keep(store, "c-1", scriptResult("from a", "OpenAI"))
	if err != nil || kept {
		t.Fatalf("KeepResult over worker-b's script = %v, %v; want not kept", kept, err)
	}
	cp := mustGet(t, store, "c-1")
	if cp.Script.Text != "from b" || cp.Spend[call.StepLLM].Provider != "Anthropic" || cp.Providers[call.StepLLM] != "Anthropic" {
		t.Fatalf("checkpoint = %+v: worker-b's script was replaced", cp)
	}
	if cp.Owner != before.Owner || !cp.LeaseUntil.Equal(before.LeaseUntil) {
		t.Fatalf("claim changed: %+v, was %+v", cp, before)
	}
	// Audio it lacks is still kept next to it.
	kept, err = keep(store, "c-1", call.Checkpoint{AudioRef: "audio/c-1", AudioFormat: "mp3",
		Spend: map[string]call.Spend{call.StepTTS: {Provider: "ElevenLabs", Characters: 6}}})
	if err != nil || !kept {
		t.Fatalf("KeepResult of audio = %v, %v", kept, err)
	}
	if cp := mustGet(t, store, "c-1"); cp.Script.Text != "from b" || cp.AudioRef != "audio/c-1" ||
		cp.Spend[call.StepTTS].Characters != 6 || cp.Spend[call.StepLLM].Provider != "Anthropic" {
		t.Fatalf("checkpoint after keeping the audio = %+v", cp)
	}
}

// With no checkpoint (expired or deleted), KeepResult creates one holding just the result,
// which the next claim finds.
func TestKeepResultCreatesAMissingCheckpoint(t *testing.T) {
	store, kv, _ := newStore(t)
	ctx := context.Background()
	if kept, err := keep(store, "never", scriptResult("from a", "OpenAI")); err != nil || !kept {
		t.Fatalf("KeepResult with no checkpoint = %v, %v", kept, err)
	}
	cp := mustGet(t, store, "never")
	if cp.Script == nil || cp.Script.Text != "from a" || cp.Owner != "" || cp.Failures != 0 {
		t.Fatalf("created checkpoint = %+v", cp)
	}
	c, err := store.Claim(ctx, "never", "worker-b", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Checkpoint(); got.Script == nil || got.Script.Text != "from a" {
		t.Fatalf("the next claim's checkpoint = %+v", got)
	}

	// A deleted checkpoint: the claim on it is lost, the result is kept all the same.
	a, err := store.Claim(ctx, "deleted", "worker-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, queue.ProgressKey("deleted")); err != nil {
		t.Fatal(err)
	}
	paid := scriptResult("from a", "OpenAI")
	if err := a.Save(ctx, func(cp *call.Checkpoint) { cp.TakeResults(paid) }); !errors.Is(err, call.ErrClaimLost) {
		t.Fatalf("save into a deleted checkpoint = %v, want ErrClaimLost", err)
	}
	if kept, err := keep(store, "deleted", paid); err != nil || !kept {
		t.Fatalf("KeepResult into a deleted checkpoint = %v, %v", kept, err)
	}
	if cp := mustGet(t, store, "deleted"); cp.Script == nil || cp.Script.Text != "from a" || cp.Owner != "" {
		t.Fatalf("re-created checkpoint = %+v", cp)
	}
	// The old claim stays lost: the re-created record is not its.
	if err := a.Renew(ctx); !errors.Is(err, call.ErrClaimLost) {
		t.Fatalf("renewal of a claim on a re-created checkpoint = %v", err)
	}
}

// The holder's writes and a lost worker's KeepResult race; both compare-and-swap loops retry
// on the other's revision and neither result is lost.
func TestKeepResultAndTheHoldersWritesRace(t *testing.T) {
	store, _, _ := newStore(t)
	ctx := context.Background()
	const contacts = 20
	var wg sync.WaitGroup
	errs := make(chan error, 3*contacts)
	claims := make([]call.Claim, contacts)
	for i := range contacts {
		id := fmt.Sprintf("c-%d", i)
		c, err := store.Claim(ctx, id, "holder", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		claims[i] = c
		wg.Add(3)
		go func() {
			defer wg.Done()
			if kept, err := keep(store, id, scriptResult("kept", "OpenAI")); err != nil || !kept {
				errs <- fmt.Errorf("%s: KeepResult = %v, %v", id, kept, err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := c.Save(ctx, func(cp *call.Checkpoint) { cp.AudioRef, cp.AudioFormat = "audio/"+id, "mp3" }); err != nil {
				errs <- fmt.Errorf("%s: holder's save: %w", id, err)
			}
		}()
		go func() {
			defer wg.Done()
			for range 3 {
				if err := c.Renew(ctx); err != nil {
					errs <- fmt.Errorf("%s: holder's renewal: %w", id, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, c := range claims {
		id := fmt.Sprintf("c-%d", i)
		cp := mustGet(t, store, id)
		if cp.Script == nil || cp.Script.Text != "kept" || cp.AudioRef != "audio/"+id || cp.Owner != c.Checkpoint().Owner {
			t.Errorf("%s: checkpoint = %+v", id, cp)
		}
	}
}
