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
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
)

// inOrderEnqueuer returns an Enqueuer told about the stream s, as the publisher does.
func inOrderEnqueuer(t *testing.T, js jetstream.JetStream, s jetstream.Stream, subject string, window int) *queue.Enqueuer {
	t.Helper()
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	enq := queue.NewEnqueuer(js, subject, window)
	enq.SetStream(info)
	if !queue.InOrder(enq) {
		t.Fatal("an Enqueuer of a stream of one replica on the server it is connected to does not match acks in order")
	}
	return enq
}

// TestEnqueuerInOrder: with a stream on its own server, acks are matched by order to the
// end; enqueuing again, the first duplicate ack ends the in-order mode, and every contact is
// counted as a duplicate all the same.
func TestEnqueuerInOrder(t *testing.T) {
	js, s, topo := enqueueStream(t, nil)
	ctx := context.Background()
	const n = 3000
	enq := inOrderEnqueuer(t, js, s, topo.ContactsSubject, 64)
	for i := range n {
		id, payload := rawContact(i)
		if err := enq.AddRaw(ctx, id, payload); err != nil {
			t.Fatal(err)
		}
	}
	stats, err := enq.Flush(ctx)
	if err != nil || stats != (queue.EnqueueStats{Enqueued: n}) || !queue.InOrder(enq) {
		t.Fatalf("Flush = %+v, %v (in order: %v); want %d enqueued in order", stats, err, queue.InOrder(enq), n)
	}
	if got := streamCount(t, s); got != n {
		t.Fatalf("stream holds %d messages, want %d", got, n)
	}
	for _, seq := range []uint64{1, n / 2, n} {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if id, payload := rawContact(int(seq - 1)); m.Header.Get(jetstream.MsgIDHeader) != id || string(m.Data) != string(payload) {
			t.Fatalf("message %d: id %q payload %s", seq, m.Header.Get(jetstream.MsgIDHeader), m.Data)
		}
	}

	again := inOrderEnqueuer(t, js, s, topo.ContactsSubject, 64)
	for i := range n {
		id, payload := rawContact(i)
		if err := again.AddRaw(ctx, id, payload); err != nil {
			t.Fatal(err)
		}
	}
	if stats, err := again.Flush(ctx); err != nil || stats != (queue.EnqueueStats{Duplicates: n}) || queue.InOrder(again) {
		t.Fatalf("second Flush = %+v, %v (in order: %v); want %d duplicates, no longer in order", stats, err, queue.InOrder(again), n)
	}
	if got := streamCount(t, s); got != n {
		t.Fatalf("stream holds %d messages, want %d", got, n)
	}
}

// TestEnqueuerInOrderHalfDuplicates: a file half enqueued before (every other contact):
// duplicates and new contacts are told apart exactly.
func TestEnqueuerInOrderHalfDuplicates(t *testing.T) {
	js, s, topo := enqueueStream(t, nil)
	ctx := context.Background()
	const n = 2000
	first := inOrderEnqueuer(t, js, s, topo.ContactsSubject, 32)
	for i := 0; i < n; i += 2 {
		id, payload := rawContact(i)
		if err := first.AddRaw(ctx, id, payload); err != nil {
			t.Fatal(err)
		}
	}
	if stats, err := first.Flush(ctx); err != nil || stats.Enqueued != n/2 {
		t.Fatalf("Flush = %+v, %v", stats, err)
	}
	all := inOrderEnqueuer(t, js, s, topo.ContactsSubject, 32)
	for i := range n {
		id, payload := rawContact(i)
		if err := all.AddRaw(ctx, id, payload); err != nil {
			t.Fatal(err)
		}
	}
	if stats, err := all.Flush(ctx); err != nil || stats != (queue.EnqueueStats{Enqueued: n / 2, Duplicates: n / 2}) {
		t.Fatalf("Flush = %+v, %v; want %d enqueued, %d duplicates", stats, err, n/2, n/2)
	}
	if got := streamCount(t, s); got != n {
		t.Fatalf("stream holds %d messages, want %d", got, n)
	}
}

// TestEnqueuerInOrderRefusedPublish: an error ack ends the in-order mode; the refused
// contact is retried synchronously, then reported.
func TestEnqueuerInOrderRefusedPublish(t *testing.T) {
	js, s, topo := enqueueStream(t, func(c *jetstream.StreamConfig) {
		c.MaxMsgs, c.Discard = 5, jetstream.DiscardNew
	})
	ctx := context.Background()
	enq := inOrderEnqueuer(t, js, s, topo.ContactsSubject, 4)
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
	if st := enq.Stats(); st.Enqueued != 5 || queue.InOrder(enq) {
		t.Fatalf("stats %+v (in order: %v), want 5 enqueued", st, queue.InOrder(enq))
	}
}

// TestEnqueuerInOrderLostAcks: acks lost in the in-order mode (as with a connection) are
// found missing after the ack timeout; the messages are published again, stored once.
func TestEnqueuerInOrderLostAcks(t *testing.T) {
	defer queue.SetAckTimeout(queue.SetAckTimeout(200 * time.Millisecond))
	js, s, topo := enqueueStream(t, nil)
	ctx := context.Background()
	enq := inOrderEnqueuer(t, js, s, topo.ContactsSubject, 16)
	for i := range 5 {
		id, payload := rawContact(i)
		if err := enq.AddRaw(ctx, id, payload); err != nil {
			t.Fatal(err)
		}
	}
	restore := queue.LoseAcks(enq)
	restored := make(chan *nats.Subscription, 1)
	time.AfterFunc(700*time.Millisecond, func() {
		sub, err := restore()
		if err != nil {
			t.Error(err)
		}
		restored <- sub
	})
	for i := 5; i < 40; i++ {
		id, payload := rawContact(i)
		if err := enq.AddRaw(ctx, id, payload); err != nil {
			t.Fatal(err)
		}
	}
	defer (<-restored).Unsubscribe()
	stats, err := enq.Flush(ctx)
	if err != nil || stats != (queue.EnqueueStats{Enqueued: 40}) {
		t.Fatalf("Flush = %+v, %v; want 40 enqueued", stats, err)
	}
	if got := streamCount(t, s); got != 40 {
		t.Fatalf("stream holds %d messages, want 40", got)
	}
}

// TestEnqueuerInOrderAnotherPublisher: a message of another publisher between ours leaves a
// gap in the sequences of the acks, which ends the in-order mode; the counts stay exact.
func TestEnqueuerInOrderAnotherPublisher(t *testing.T) {
	js, s, topo := enqueueStream(t, nil)
	ctx := context.Background()
	const n = 2000
	enq := inOrderEnqueuer(t, js, s, topo.ContactsSubject, 64)
	for i := range n {
		if i == n/2 {
			if _, err := js.Publish(ctx, topo.ContactsSubject, []byte(`{"id":"other","phone":"+14155550100"}`)); err != nil {
				t.Fatal(err)
			}
		}
		id, payload := rawContact(i)
		if err := enq.AddRaw(ctx, id, payload); err != nil {
			t.Fatal(err)
		}
	}
	stats, err := enq.Flush(ctx)
	if err != nil || stats != (queue.EnqueueStats{Enqueued: n}) || queue.InOrder(enq) {
		t.Fatalf("Flush = %+v, %v (in order: %v); want %d enqueued, no longer in order", stats, err, queue.InOrder(enq), n)
	}
	if got := streamCount(t, s); got != n+1 {
		t.Fatalf("stream holds %d messages, want %d", got, n+1)
	}
}

// TestEnqueuerInOrderReconnect cuts the publisher's connection while it publishes: acks
// that come through the new connection are not matched by order, and every contact is
// stored once and counted as enqueued.
func TestEnqueuerInOrderReconnect(t *testing.T) {
	// A window of messages whose acks were lost with the connection waits for the timeout.
	defer queue.SetAckTimeout(queue.SetAckTimeout(300 * time.Millisecond))
	for _, cutAfter := range []int{1, 500, 3000} {
		t.Run(fmt.Sprint(cutAfter), func(t *testing.T) {
			srv := natstest.Start(t)
			nc, err := nats.Connect(srv.ClientURL(), nats.ReconnectWait(20*time.Millisecond), nats.MaxReconnects(-1))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			_, s, topo := streamOn(t, js)
			ctx := context.Background()
			const n = 6000
			enq := inOrderEnqueuer(t, js, s, topo.ContactsSubject, 256)
			for i := range n {
				if i == cutAfter {
					cut(t, srv, nc)
				}
				id, payload := rawContact(i)
				if err := enq.AddRaw(ctx, id, payload); err != nil {
					t.Fatal(err)
				}
			}
			stats, err := enq.Flush(ctx)
			if err != nil || stats != (queue.EnqueueStats{Enqueued: n}) {
				t.Fatalf("Flush = %+v, %v (in order: %v); want %d enqueued", stats, err, queue.InOrder(enq), n)
			}
			if got := streamCount(t, s); got != n {
				t.Fatalf("stream holds %d messages, want %d", got, n)
			}
			if nc.Stats().Reconnects == 0 || queue.InOrder(enq) {
				t.Fatalf("%d reconnects, in order: %v", nc.Stats().Reconnects, queue.InOrder(enq))
			}
		})
	}
}

func streamOn(t *testing.T, js jetstream.JetStream) (jetstream.JetStream, jetstream.Stream, config.Topology) {
	t.Helper()
	topo := config.Defaults().Topology
	s, err := queue.EnsureContactsStream(context.Background(), js, topo)
	if err != nil {
		t.Fatal(err)
	}
	return js, s, topo
}

// cut closes nc's connection on the server's side.
func cut(t *testing.T, srv *natsembed.Server, nc *nats.Conn) {
	t.Helper()
	id, err := nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Raw().DisconnectClientByID(id); err != nil {
		t.Fatal(err)
	}
}

// TestStoredAck reads the sequence of plain stored acks only.
func TestStoredAck(t *testing.T) {
	for data, want := range map[string]uint64{
		`{"stream":"CONTACTS","seq":12}`:                   12,
		`{"stream":"CONTACTS","domain":"hub","seq":7}`:     7,
		`{"stream":"CONTACTS","seq":18446744073709551615}`: 18446744073709551615,
		`{"stream":"seq\":1","seq":3}`:                     3,
	} {
		if seq, ok := queue.StoredAck([]byte(data)); !ok || seq != want {
			t.Errorf("storedAck(%s) = %d, %v; want %d", data, seq, ok, want)
		}
	}
	for _, data := range []string{
		``, `{}`, `{"stream":"CONTACTS","seq":12,"duplicate": true}`, `{"error":{"code":503}}`,
		`{"stream":"CONTACTS","error":{"code":429,"err_code":10077}}`, `{"stream":"CONTACTS","seq":}`,
		`{"stream":"CONTACTS","seq":12,"batch":"b","count":1}`, `{"stream":"CONTACTS","seq":-1}`,
		`{"stream":"CONTACTS","seq":99999999999999999999}`, `{"stream":"CONTACTS","seq":18446744073709551616}`,
		`{"stream":"CONTACTS","seq": 12}`, `{"stream":"CONTACTS","seq":12 }`, `{"stream":"CONTACTS","xseq":12}`, `}`,
	} {
		if seq, ok := queue.StoredAck([]byte(data)); ok {
			t.Errorf("storedAck(%s) = %d, true", data, seq)
		}
	}
}
