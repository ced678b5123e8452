package queue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
)

func rawContact(i int) (string, []byte) {
	id := fmt.Sprintf("c-%05d", i)
	return id, fmt.Appendf(nil, `{"id":%q,  "phone":"+1415555%04d"}`, id, i%10000)
}

// enqueueStream starts a server with the contacts stream and returns its JetStream context.
func enqueueStream(t *testing.T, mutate func(*jetstream.StreamConfig)) (jetstream.JetStream, jetstream.Stream, config.Topology) {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	topo := config.Defaults().Topology
	cfg := queue.ContactsStreamConfig(topo)
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := js.CreateStream(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return js, s, topo
}

func streamCount(t *testing.T, s jetstream.Stream) uint64 {
	t.Helper()
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestEnqueuerPublishesRawRecordsWithTheirIDs(t *testing.T) {
	js, s, topo := enqueueStream(t, nil)
	ctx := context.Background()
	const n = 1000
	enq := queue.NewEnqueuer(js, topo.ContactsSubject, 64)
	for i := range n {
		id, payload := rawContact(i)
		if err := enq.AddRaw(ctx, id, payload); err != nil {
			t.Fatal(err)
		}
	}
	stats, err := enq.Flush(ctx)
	if err != nil || stats != (queue.EnqueueStats{Enqueued: n}) {
		t.Fatalf("Flush = %+v, %v; want %d enqueued", stats, err, n)
	}
	if got := streamCount(t, s); got != n {
		t.Fatalf("stream holds %d messages, want %d", got, n)
	}
	for _, seq := range []uint64{1, 500, n} {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		id, payload := rawContact(int(seq - 1))
		if got := m.Header.Get(jetstream.MsgIDHeader); got != id || string(m.Data) != string(payload) {
			t.Fatalf("message %d: id %q payload %s, want %q %s", seq, got, m.Data, id, payload)
		}
		if c, err := contact.Decode(m.Data); err != nil || c.ID != id {
			t.Fatalf("message %d decodes to %+v, %v", seq, c, err)
		}
	}

	// Again: the stream drops every one as a duplicate, and the counts say so.
	again := queue.NewEnqueuer(js, topo.ContactsSubject, 64)
	again.SetStreamLastSeq(n)
	for i := range n {
		id, payload := rawContact(i)
		if err := again.AddRaw(ctx, id, payload); err != nil {
			t.Fatal(err)
		}
	}
	if stats, err := again.Flush(ctx); err != nil || stats != (queue.EnqueueStats{Duplicates: n}) {
		t.Fatalf("second Flush = %+v, %v; want %d duplicates", stats, err, n)
	}
	if got := streamCount(t, s); got != n {
		t.Fatalf("stream holds %d messages, want %d", got, n)
	}
}

// TestEnqueuerRepublishesWhenAcksAreLost loses the acks of a window of messages (as a
// reconnect does): after the ack timeout they are published again, stored once, and counted
// as enqueued, not as duplicates, because their sequences are past the stream's start.
func TestEnqueuerRepublishesWhenAcksAreLost(t *testing.T) {
	defer queue.SetAckTimeout(queue.SetAckTimeout(200 * time.Millisecond))
	js, s, topo := enqueueStream(t, nil)
	ctx := context.Background()
	enq := queue.NewEnqueuer(js, topo.ContactsSubject, 16)
	enq.SetStreamLastSeq(0)
	id, payload := rawContact(0)
	if err := enq.AddRaw(ctx, id, payload); err != nil {
		t.Fatal(err)
	}
	restore := queue.LoseAcks(enq)
	type result struct {
		sub *nats.Subscription
		err error
	}
	restored := make(chan result, 1)
	time.AfterFunc(700*time.Millisecond, func() { // a few ack timeouts later
		sub, err := restore()
		restored <- result{sub, err}
	})
	for i := 1; i < 40; i++ { // the window fills with unacked messages: Add must wait
		id, payload := rawContact(i)
		if err := enq.AddRaw(ctx, id, payload); err != nil {
			t.Fatal(err)
		}
	}
	r := <-restored
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.sub.Unsubscribe()
	stats, err := enq.Flush(ctx)
	if err != nil || stats != (queue.EnqueueStats{Enqueued: 40}) {
		t.Fatalf("Flush = %+v, %v; want 40 enqueued", stats, err)
	}
	if got := streamCount(t, s); got != 40 {
		t.Fatalf("stream holds %d messages, want 40", got)
	}
}

// TestEnqueuerReportsARefusedPublish: an error ack (here the stream is full) is retried
// synchronously, then reported with the contact's id.
func TestEnqueuerReportsARefusedPublish(t *testing.T) {
	js, _, topo := enqueueStream(t, func(c *jetstream.StreamConfig) {
		c.MaxMsgs, c.Discard = 5, jetstream.DiscardNew
	})
	ctx := context.Background()
	enq := queue.NewEnqueuer(js, topo.ContactsSubject, 4)
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		id, payload := rawContact(i)
		err = enq.AddRaw(ctx, id, payload)
	}
	if err == nil {
		_, err = enq.Flush(ctx)
	}
	var pe *queue.PublishError
	var api *jetstream.APIError
	if !errors.As(err, &pe) || !strings.HasPrefix(pe.ContactID, "c-0000") || !errors.As(err, &api) {
		t.Fatalf("err = %v, want a PublishError of a contact wrapping the stream's APIError", err)
	}
	if st := enq.Stats(); st.Enqueued != 5 {
		t.Fatalf("stats %+v, want 5 enqueued", st)
	}
}

// TestEnqueuerStopsOnCancel: a cancelled context stops Add; a Flush with a live one then
// confirms everything that was published.
func TestEnqueuerStopsOnCancel(t *testing.T) {
	js, s, topo := enqueueStream(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	enq := queue.NewEnqueuer(js, topo.ContactsSubject, 32)
	added := 0
	var err error
	for i := range 10_000 {
		if i == 500 {
			cancel()
		}
		id, payload := rawContact(i)
		if err = enq.AddRaw(ctx, id, payload); err != nil {
			break
		}
		added++
	}
	if !errors.Is(err, context.Canceled) || added != 500 {
		t.Fatalf("Add stopped after %d with %v, want 500 and context.Canceled", added, err)
	}
	stats, err := enq.Flush(context.Background())
	if err != nil || stats.Enqueued != added || enq.Pending() != 0 {
		t.Fatalf("Flush = %+v, %v, %d pending; want %d enqueued", stats, err, enq.Pending(), added)
	}
	if got := streamCount(t, s); got != uint64(added) {
		t.Fatalf("stream holds %d messages, want %d", got, added)
	}
}

// TestEnqueuerBoundsBytesInFlight publishes contacts of 300 KB through a window of 1,000:
// the payloads in flight stay bounded (8 MiB), and all are stored.
func TestEnqueuerBoundsBytesInFlight(t *testing.T) {
	js, s, topo := enqueueStream(t, nil)
	ctx := context.Background()
	enq := queue.NewEnqueuer(js, topo.ContactsSubject, 1000)
	pad := strings.Repeat("x", 300_000)
	for i := range 60 {
		id := fmt.Sprintf("big-%d", i)
		payload := fmt.Appendf(nil, `{"id":%q,"phone":"+14155550100","variables":{"note":%q}}`, id, pad)
		if err := enq.AddRaw(ctx, id, payload); err != nil {
			t.Fatal(err)
		}
		if got := enq.Pending(); got > 8<<20/300_000+1 {
			t.Fatalf("%d messages of 300 KB in flight", got)
		}
	}
	if stats, err := enq.Flush(ctx); err != nil || stats.Enqueued != 60 {
		t.Fatalf("Flush = %+v, %v", stats, err)
	}
	if got := streamCount(t, s); got != 60 {
		t.Fatalf("stream holds %d messages, want 60", got)
	}
}

// TestEnqueuerAddEncodesTheContact: Add (used by tests and the benchmark harness) publishes
// the contact's JSON.
func TestEnqueuerAddEncodesTheContact(t *testing.T) {
	js, s, topo := enqueueStream(t, nil)
	ctx := context.Background()
	enq := queue.NewEnqueuer(js, topo.ContactsSubject, 8)
	c := contact.Contact{ID: "a-1", Name: "Ada", Phone: "+14155550100", Variables: map[string]string{"topic": "x"}}
	if err := enq.Add(ctx, c); err != nil {
		t.Fatal(err)
	}
	if stats, err := enq.Flush(ctx); err != nil || stats.Enqueued != 1 {
		t.Fatalf("Flush = %+v, %v", stats, err)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := contact.Decode(m.Data); err != nil || got.ID != c.ID || got.Variables["topic"] != "x" || m.Header.Get(jetstream.MsgIDHeader) != "a-1" {
		t.Fatalf("stored %s (%v) with id %q", m.Data, err, m.Header.Get(jetstream.MsgIDHeader))
	}
}
