package alert

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/testwait"
)

func TestEmitterPublishesWithMsgID(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	e := newEmitter(t, js, "worker-1", newMock(), nil)
	ev := CallFailed("ElevenLabs", "1", "service_unavailable", "Service temporarily unavailable")
	ev.ID = "evt_fixed"
	mustEmit(t, e, ev)
	mustEmit(t, e, ev) // the same id again: the stream keeps one
	testwait.True(t, 10*time.Second, "two publishes", func() bool { return e.Stats().Published == 2 })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1 (deduplicated by Nats-Msg-Id)", info.State.Msgs)
	}
	msg, err := s.GetLastMsgForSubject(ctx, "alerts.warning.call_failed")
	if err != nil {
		t.Fatalf("no message on alerts.warning.call_failed: %v", err)
	}
	if got := msg.Header.Get(jetstream.MsgIDHeader); got != "evt_fixed" {
		t.Errorf("Nats-Msg-Id = %q", got)
	}
	got, err := DecodeEvent(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != "worker-1" || got.ContactID != "1" || got.DedupKey != "elevenlabs.call_failed" {
		t.Errorf("published event: %+v", got)
	}
}

func TestEmitterNeverBlocksAndCountsDrops(t *testing.T) {
	t.Parallel()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := Ensure(ctx, js, Topology{}); err != nil {
		t.Fatal(err)
	}
	log, logs := newLogger()
	e := NewEmitter(js, EmitterOptions{Source: "w", QueueSize: 4, PublishTimeout: 200 * time.Millisecond,
		DrainTimeout: 100 * time.Millisecond, Logger: log})
	stop := alerttest.Start(t, e.Run)
	srv.Shutdown() // NATS is away: every publish waits for its timeout

	start := time.Now()
	var full int
	for i := range 50 {
		if err := e.Emit(CallFailed("ElevenLabs", string(rune('a'+i%26)), "timeout", "")); errors.Is(err, ErrQueueFull) {
			full++
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("50 Emit calls took %s with NATS away; Emit must not block", d)
	}
	if full < 40 {
		t.Errorf("%d of 50 events refused as queue full, want at least 40 (queue of 4)", full)
	}
	if got := e.Stats().Dropped; got != int64(full) {
		t.Errorf("Dropped = %d, want %d", got, full)
	}
	if logs.count("Alert event dropped because the queue is full") == 0 {
		t.Error("no drop was logged")
	}

	if err := stop(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run's drain with NATS away = %v, want the deadline", err)
	}
	if err := e.Emit(CallFailed("ElevenLabs", "z", "timeout", "")); !errors.Is(err, ErrEmitterClosed) {
		t.Errorf("Emit after Run = %v", err)
	}
	st := e.Stats()
	if st.Published != 0 || st.Failed+st.Dropped != 51 || st.Emitted+int64(full) != 50 {
		t.Errorf("stats after close: %+v", st)
	}
}

func TestEmitterRejectsInvalidEvent(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	e := newEmitter(t, js, "w", nil, nil)
	if err := e.Emit(Event{Kind: "exploded"}); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("Emit(unknown kind) = %v", err)
	}
	if e.Stats().Dropped != 1 {
		t.Errorf("stats: %+v", e.Stats())
	}
}

// Events still queued when Run's context ends are published before Run returns, and Emit
// refuses from then on.
func TestEmitterRunDrainsTheQueueWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	js := jsFor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Ensure(ctx, js, Topology{}); err != nil {
		t.Fatal(err)
	}
	e := NewEmitter(js, EmitterOptions{Source: "w"})
	for i := range 3 {
		mustEmit(t, e, CallFailed("ElevenLabs", string(rune('a'+i)), "timeout", ""))
	}
	ended, stop := context.WithCancel(context.Background())
	stop() // the queue is published after the context has ended
	if err := e.Run(ended); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if st := e.Stats(); st.Published != 3 || st.Failed != 0 {
		t.Errorf("stats after Run: %+v", st)
	}
	if err := e.Emit(CallFailed("ElevenLabs", "d", "timeout", "")); !errors.Is(err, ErrEmitterClosed) {
		t.Errorf("Emit after Run = %v", err)
	}
	if err := e.Run(context.Background()); err == nil {
		t.Error("a second Run did not fail")
	}
}
