package queue_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
)

// setUpQueue sets up the default topology on a fresh server and enqueues n contacts c-0…c-(n-1).
func setUpQueue(t *testing.T, n int) (jetstream.JetStream, config.Topology) {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	topo := config.Defaults().Topology
	ctx := context.Background()
	if _, err := queue.Setup(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		id := fmt.Sprintf("c-%d", i)
		m, err := queue.NewContactMsg(topo.ContactsSubject, id, contact.Contact{ID: id, Phone: "+14155550100"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	return js, topo
}

// take fetches n contacts as a worker would, without acking them.
func take(t *testing.T, js jetstream.JetStream, topo config.Topology, n int) []jetstream.Msg {
	t.Helper()
	cons, err := js.Consumer(context.Background(), topo.ContactsStream, topo.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != n {
		t.Fatalf("fetched %d contacts, want %d", len(msgs), n)
	}
	return msgs
}

func TestPauseStopsDeliveryUntilResumed(t *testing.T) {
	js, topo := setUpQueue(t, 2)
	ctx := context.Background()
	until, err := queue.Pause(ctx, js, topo, queue.PauseForever)
	if err != nil {
		t.Fatal(err)
	}
	if !until.Equal(queue.PauseForever) {
		t.Errorf("paused until %v", until)
	}
	st, err := queue.ReadConsumerState(ctx, js, topo)
	if err != nil || !st.Paused {
		t.Fatalf("state %+v, %v; want paused", st, err)
	}
	cons, err := js.Consumer(ctx, topo.ContactsStream, topo.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		t.Fatalf("a paused consumer delivered %s", m.Data())
	}
	if err := queue.Resume(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	if st, _ := queue.ReadConsumerState(ctx, js, topo); st.Paused {
		t.Fatal("still paused after resume")
	}
	take(t, js, topo, 2)
}

// A cancelled contact is never called: its record says cancelled (so a worker's claim is
// refused as for a completed contact) and its message leaves the stream. One a worker holds
// a live claim on is not cancelled.
func TestCancel(t *testing.T) {
	js, topo := setUpQueue(t, 3)
	ctx := context.Background()
	cps, err := queue.EnsureCheckpoints(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	held, err := cps.Claim(ctx, "c-1", "worker-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Release(ctx, time.Time{}, "") }()

	res, err := queue.Cancel(ctx, js, topo, []string{"c-0", "c-1", "c-9"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || !res[0].Cancelled || res[0].Removed != 1 || res[1].Cancelled || res[1].Removed != 0 {
		t.Fatalf("results %+v; want c-0 cancelled and removed, c-1 refused", res)
	}
	if !res[2].Cancelled || res[2].Removed != 0 {
		t.Errorf("unknown c-9: %+v; want cancelled ahead (never called if enqueued later), nothing removed", res[2])
	}
	if _, err := cps.Claim(ctx, "c-0", "worker-b", time.Minute); !errors.Is(err, call.ErrCompleted) || !errors.Is(err, queue.ErrCancelled) {
		t.Errorf("claim of a cancelled contact: %v; want ErrCancelled, which is an ErrCompleted", err)
	}
	again, err := queue.Cancel(ctx, js, topo, []string{"c-0"})
	if err != nil || again[0].Cancelled || again[0].Reason != "already cancelled" {
		t.Errorf("second cancel: %+v, %v", again, err)
	}
	// A worker whose lease lapsed (its renewals failed) may be cancelled under it: its next
	// write reports the claim lost, so it stops before paying another step.
	lapsed, err := cps.Claim(ctx, "c-2", "worker-c", -time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := queue.Cancel(ctx, js, topo, []string{"c-2"}); err != nil || !res[0].Cancelled {
		t.Fatalf("cancel of a lapsed claim: %+v, %v", res, err)
	}
	if err := lapsed.Renew(ctx); !errors.Is(err, call.ErrClaimLost) {
		t.Errorf("renewal after a cancel: %v; want ErrClaimLost", err)
	}
	st, err := queue.ReadStatus(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 1 || st.Cancelled != 3 || st.Completed != 0 {
		t.Errorf("status %+v after cancelling c-0, c-2 and (ahead) c-9; want 1 pending, 3 cancelled, 0 completed", st)
	}
	got, err := queue.InspectContact(ctx, js, topo, "c-0")
	if err != nil || got.State != queue.StatusCancelled {
		t.Errorf("inspect c-0: %+v, %v; want cancelled", got, err)
	}
	if got, _ := queue.InspectContact(ctx, js, topo, "c-1"); got.State != "in_progress" || got.Progress == nil || len(got.Queued) != 1 {
		t.Errorf("inspect c-1: state %q progress %v; want in_progress with its claim and its queued message", got.State, got.Progress)
	}
}

// purge --pending removes what no worker took, keeps what workers hold, and leaves the
// consumer as it found it.
func TestPurgePendingKeepsDeliveredContacts(t *testing.T) {
	js, topo := setUpQueue(t, 5)
	ctx := context.Background()
	held := take(t, js, topo, 2)
	n, err := queue.PurgePending(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("purged %d; want the 3 not taken", n)
	}
	st, err := queue.ReadStatus(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 || st.InProgress != 2 {
		t.Errorf("after purge: %+v; want 0 pending, 2 in progress", st)
	}
	if cs, _ := queue.ReadConsumerState(ctx, js, topo); cs.Paused {
		t.Error("purge left the consumer paused")
	}
	for _, m := range held {
		if err := m.DoubleAck(ctx); err != nil {
			t.Errorf("ack of a held contact after purge: %v", err)
		}
	}
	got, err := queue.InspectContact(ctx, js, topo, "c-4")
	if err != nil || got.State != "unknown" {
		t.Errorf("purged c-4: %+v, %v; want unknown", got, err)
	}
}
