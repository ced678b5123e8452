package daemon_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/daemon"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/provider/sim"
	"github.com/callagent/resilience/internal/queue"
)

// BenchmarkWorkerEndToEnd measures what the worker adds per contact when the providers answer
// at once: fetch, claim (KV compare-and-swap), two checkpoints (KV + Object Store), the
// completed record, the double ack, heartbeats and metrics, on one in-process JetStream
// server sharing the machine with the worker. One op is one contact.
func BenchmarkWorkerEndToEnd(b *testing.B) {
	for _, concurrency := range []int{1, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", concurrency), func(b *testing.B) {
			srv := natstest.Start(b)
			_, js := natstest.Connect(b, srv)
			cfg := config.Defaults()
			cfg.NATS.URL = srv.ClientURL()
			cfg.Worker.ID, cfg.Worker.Concurrency = "bench", concurrency
			cfg.Log.File, cfg.Metrics.Addr = "", ""
			ctx := context.Background()
			if _, err := queue.EnsureContactsStream(ctx, js, cfg.Topology); err != nil {
				b.Fatal(err)
			}
			enq := queue.NewEnqueuer(js, cfg.Topology.ContactsSubject, 256)
			for i := range b.N {
				if err := enq.Add(ctx, contact.Contact{ID: fmt.Sprintf("b-%d", i), Phone: "+14155550100"}); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := enq.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			o := sim.Options{Scenario: sim.Healthy}
			llm, tts := sim.NewLLM(o), sim.NewTTS(o)
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			b.ResetTimer()
			go func() {
				done <- daemon.Run(runCtx, daemon.Options{Config: cfg, Logger: quietLogger(io.Discard), Providers: &daemon.Providers{
					LLM: []daemon.Provider[call.ScriptWriter]{{Name: "LLM", Impl: llm, Probe: llm}},
					TTS: []daemon.Provider[call.Synthesizer]{{Name: "ElevenLabs", Impl: tts, Probe: tts}},
				}})
			}()
			deadline := time.Now().Add(5 * time.Minute)
			for {
				st, err := queue.ReadStatus(ctx, js, cfg.Topology)
				if err == nil && st.Completed == uint64(b.N) {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("not all %d contacts completed within 5 minutes: %+v (%v)", b.N, st, err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "contacts/s")
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
