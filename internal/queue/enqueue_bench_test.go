package queue_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
)

// BenchmarkEnqueue measures publishing contacts with dedupe ids through the async window to
// an in-process JetStream server (file storage, no fsync per write).
func BenchmarkEnqueue(b *testing.B) {
	srv := natstest.Start(b)
	nc, _ := natstest.Connect(b, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	topo := config.Defaults().Topology
	if _, err := queue.EnsureContactsStream(ctx, js, topo); err != nil {
		b.Fatal(err)
	}
	enq := queue.NewEnqueuer(js, topo.ContactsSubject, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c := contact.Contact{ID: fmt.Sprintf("bench-%d", i), Name: "Ada", Phone: "+14155550100"}
		if err := enq.Add(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	stats, err := enq.Flush(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if stats.Enqueued != b.N {
		b.Fatalf("enqueued %d of %d", stats.Enqueued, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "contacts/s")
}

// BenchmarkEnqueueRaw measures what `publisher enqueue` does per contact: publish the
// validated record as it is (AddRaw), window 4096, acks matched in order (SetStream), to an
// in-process JetStream server.
func BenchmarkEnqueueRaw(b *testing.B) {
	srv := natstest.Start(b)
	_, js := natstest.Connect(b, srv)
	ctx := context.Background()
	topo := config.Defaults().Topology
	s, err := queue.EnsureContactsStream(ctx, js, topo)
	if err != nil {
		b.Fatal(err)
	}
	enq := queue.NewEnqueuer(js, topo.ContactsSubject, 4096)
	enq.SetStream(s.CachedInfo())
	var payload []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("bench-%d", i)
		payload = fmt.Appendf(payload[:0], `{"id":%q,"name":"Ada","phone":"+14155550100"}`, id)
		if err := enq.AddRaw(ctx, id, payload); err != nil {
			b.Fatal(err)
		}
	}
	stats, err := enq.Flush(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if stats.Enqueued != b.N {
		b.Fatalf("enqueued %d of %d", stats.Enqueued, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "contacts/s")
}
