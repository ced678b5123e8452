package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/callagent/resilience/internal/metrics"
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/resilience"
)

func TestBulkheadOccupancyIsReadAtScrape(t *testing.T) {
	m, reg := newMetrics(t)
	b := resilience.NewBulkhead(4)
	m.AddProvider("ElevenLabs", b)
	ctx := context.Background()
	for range 3 {
		if err := b.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	b.Release()
	b.SetLimit(2)
	labels := map[string]string{"provider": "ElevenLabs"}
	if got := gatherValue(t, reg, "callagent_bulkhead_in_use", labels); got != 2 {
		t.Errorf("in use = %g, want 2", got)
	}
	if got := gatherValue(t, reg, "callagent_bulkhead_limit", labels); got != 2 {
		t.Errorf("limit = %g, want 2", got)
	}
	b.Release()
	b.Release()
	if got := gatherValue(t, reg, "callagent_bulkhead_in_use", labels); got != 0 {
		t.Errorf("in use after release = %g, want 0", got)
	}
}

// TestConsumerPendingFromARealConsumer reads pending and ack-pending from a JetStream consumer
// at scrape; when the server is gone, the scrape still succeeds within the timeout, without
// the consumer's samples, and counts the failed read.
func TestConsumerPendingFromARealConsumer(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CONTACTS", Subjects: []string{"contacts.queue"},
		Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "CONTACTS", jetstream.ConsumerConfig{Durable: "workers",
		AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := js.Publish(ctx, "contacts.queue", fmt.Appendf(nil, `{"id":"c-%d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range batch.Messages() {
		got++ // delivered, not acked
	}
	if got != 2 {
		t.Fatalf("fetched %d, want 2", got)
	}

	const timeout = 300 * time.Millisecond
	m, reg := newMetrics(t, metrics.WithConsumerTimeout(timeout))
	m.ObserveConsumer(cons)
	labels := map[string]string{"stream": "CONTACTS", "consumer": "workers"}
	if v := gatherValue(t, reg, "callagent_consumer_pending_messages", labels); v != 3 {
		t.Errorf("pending = %g, want 3", v)
	}
	if v := gatherValue(t, reg, "callagent_consumer_ack_pending_messages", labels); v != 2 {
		t.Errorf("ack pending = %g, want 2", v)
	}
	if v := gatherValue(t, reg, "callagent_consumer_info_errors_total", nil); v != 0 {
		t.Errorf("errors = %g, want 0", v)
	}

	srv.Shutdown()
	start := time.Now()
	n, err := testutil.GatherAndCount(reg, "callagent_consumer_pending_messages")
	if err != nil {
		t.Fatalf("the scrape failed while NATS is down: %v", err)
	}
	if took := time.Since(start); took > timeout+2*time.Second {
		t.Errorf("the scrape took %s with the server down, want about the %s timeout", took, timeout)
	}
	if n != 0 {
		t.Errorf("pending still exported with NATS down (%d samples): a stale number", n)
	}
	if v := gatherValue(t, reg, "callagent_consumer_info_errors_total", nil); v < 1 {
		t.Errorf("errors = %g, want at least 1", v)
	}
}
