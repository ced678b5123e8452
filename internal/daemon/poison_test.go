package daemon_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/provider/sim"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/testwait"
)

// bigPoison is invalid JSON of exactly size bytes.
func bigPoison(size int) []byte {
	b := bytes.Repeat([]byte(`{"id":"big","phone":`), size/20+1)
	return b[:size]
}

// publishRaw publishes data to the contacts subject as is, with msgID as Nats-Msg-Id when
// not empty, and returns the stream sequence.
func publishRaw(t *testing.T, js jetstream.JetStream, cfg config.Config, msgID string, data []byte) uint64 {
	t.Helper()
	m := nats.NewMsg(cfg.Topology.ContactsSubject)
	m.Data = data
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ack, err := js.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatalf("publish %d bytes: %v", len(data), err)
	}
	return ack.Sequence
}

func contactsInStream(t *testing.T, js jetstream.JetStream, cfg config.Config) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), cfg.Topology.ContactsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// checkCut asserts that dl is the cut dead letter of original.
func checkCut(t *testing.T, dl queue.DeadLetter, original []byte) {
	t.Helper()
	sum := sha256.Sum256(original)
	if !dl.Truncated || dl.PayloadLength != len(original) || dl.PayloadSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("dead letter %d (msg id %q): truncated %v, length %d (want %d), sha256 %s (want %x)",
			dl.Seq, dl.MsgID, dl.Truncated, dl.PayloadLength, len(original), dl.PayloadSHA256, sum)
	}
	if !bytes.HasPrefix(original, dl.Payload) || len(dl.Payload) < len(original)-8*1024 {
		t.Errorf("dead letter %d keeps %d bytes, not the beginning of the original's %d", dl.Seq, len(dl.Payload), len(original))
	}
	if dl.StreamSeq == 0 || dl.OriginalStream != "CONTACTS" {
		t.Errorf("dead letter %d does not point at the original: stream %q, seq %d", dl.Seq, dl.OriginalStream, dl.StreamSeq)
	}
}

// Issue #11: a poison message close to the 1 MiB max payload did not fit in a dead letter
// (the payload plus a dozen headers); the worker tried for ever. Now its payload is cut, with
// its length and hash, and the message leaves the contacts stream.
func TestPoisonMessageNearTheMaxPayloadIsDeadLetteredCut(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	ctx := context.Background()
	if _, err := queue.EnsureContactsStream(ctx, js, cfg.Topology); err != nil {
		t.Fatal(err)
	}
	maxPayload := int(nc.MaxPayload())
	withID := bigPoison(maxPayload - 64) // room for the Nats-Msg-Id header
	withoutID := bigPoison(maxPayload)   // the whole max payload, no header at all
	// Valid JSON whose id is the problem: a megabyte of id.
	hugeID := []byte(`{"id":"` + strings.Repeat("a", maxPayload-64) + `"}`)
	originals := map[uint64][]byte{
		publishRaw(t, js, cfg, "big-poison", withID): withID,
		publishRaw(t, js, cfg, "", withoutID):        withoutID,
		publishRaw(t, js, cfg, "huge-id", hugeID):    hugeID,
	}
	enqueue(t, js, cfg, 1) // a valid contact behind them completes

	var llm, tts calls
	out := &syncBuffer{}
	startWorker(t, cfg, simProviders(sim.Options{Scenario: sim.Healthy}, &llm, &tts), out)
	testwait.Eventually(t, 30*time.Second, "the oversized poison dead-lettered and the contact completed", settled(t, js, cfg, 4))
	if n := contactsInStream(t, js, cfg); n != 0 {
		t.Fatalf("%d messages left in the contacts stream", n)
	}
	dls := deadLetters(t, js, cfg)
	if len(dls) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dls))
	}
	for _, dl := range dls {
		original, ok := originals[dl.StreamSeq]
		if !ok {
			t.Fatalf("dead letter of an unknown sequence %d", dl.StreamSeq)
		}
		checkCut(t, dl, original)
		if dl.Reason != "invalid_payload" || dl.LastError == "" {
			t.Errorf("dead letter %d: reason %q, error %q", dl.Seq, dl.Reason, dl.LastError)
		}
		if _, err := queue.Replay(ctx, js, cfg.Topology, dl); err == nil || !strings.Contains(err.Error(), "cannot replay") {
			t.Errorf("replay of a cut dead letter: %v", err)
		}
	}
	byMsgID := map[string]queue.DeadLetter{}
	for _, dl := range dls {
		byMsgID[dl.MsgID] = dl
	}
	if dl := byMsgID["huge-id"]; len(dl.ContactID) > 300 || !strings.HasPrefix(dl.ContactID, "aaaa") {
		t.Errorf("the huge id is kept as %d bytes", len(dl.ContactID))
	}
	if _, ok := byMsgID[""]; !ok {
		t.Error("no dead letter for the poison message without a message id")
	}
	if strings.Count(out.String(), "does not fit in a dead letter") != 3 {
		t.Errorf("the cut payloads are not logged:\n%s", tail(out.String(), 4000))
	}
	if strings.Contains(out.String(), "Could not dead-letter") {
		t.Errorf("a dead letter failed on the way:\n%s", tail(out.String(), 4000))
	}
	if llm.sum() != 1 {
		t.Errorf("LLM calls = %d, want 1", llm.sum())
	}
}

// The same from the MAX_DELIVERIES sweeper: an oversized message that used all its
// deliveries without any worker writing it off is dead-lettered cut, and leaves the stream.
func TestOversizedMessageNobodyWroteOffIsDeadLetteredCut(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	cfg.Topology.MaxDeliver = 1
	cfg.Topology.AckWait = time.Second
	original := bigPoison(int(nc.MaxPayload()) - 64)
	exhaustRaw(t, js, cfg, "big-exhausted", original)
	var llm, tts calls
	out := &syncBuffer{}
	startWorker(t, cfg, simProviders(sim.Options{Scenario: sim.Healthy}, &llm, &tts), out)
	testwait.Eventually(t, 30*time.Second, "the exhausted oversized message dead-lettered", func() (bool, string) {
		return contactsInStream(t, js, cfg) == 0 && len(deadLetters(t, js, cfg)) == 1, tail(out.String(), 2000)
	})
	dl := deadLetters(t, js, cfg)[0]
	checkCut(t, dl, original)
	if dl.Reason != "max_deliveries" || dl.MsgID != "big-exhausted" {
		t.Errorf("dead letter: reason %q, msg id %q", dl.Reason, dl.MsgID)
	}
}

// A dead letter that cannot be written (here: the dead-letter stream is gone) keeps the
// original in the stream, raises one dead_letter_failed alert after 5 tries and then tries
// only every RETRY_MAX_DELAY; once the stream is back the contact is dead-lettered.
func TestDeadLetterThatCannotBeWrittenAlertsOnceAndBacksOff(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	cfg.Retry.MaxDelay = 3 * time.Second // the longest redelivery delay, after the 5th try
	ctx := context.Background()
	if _, err := queue.EnsureContactsStream(ctx, js, cfg.Topology); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	var llm, tts calls
	startWorker(t, cfg, simProviders(sim.Options{Scenario: sim.Healthy}, &llm, &tts), out)
	if err := js.DeleteStream(ctx, cfg.Topology.DeadLetterStream); err != nil {
		t.Fatal(err)
	}
	publishRaw(t, js, cfg, "poison-stuck", []byte(`{"id":"stuck-1"}`))

	testwait.Eventually(t, 30*time.Second, "the fifth failed try", func() (bool, string) {
		return strings.Contains(out.String(), "after 5 tries"), tail(out.String(), 2000)
	})
	failedAt5 := strings.Count(out.String(), "Could not dead-letter")
	if failedAt5 != 5 {
		t.Errorf("%d failed tries logged by the fifth, want 5:\n%s", failedAt5, tail(out.String(), 4000))
	}
	alerts := func() uint64 {
		s, err := js.Stream(ctx, cfg.Alerts.Stream)
		if err != nil {
			t.Fatal(err)
		}
		subject := cfg.Alerts.SubjectPrefix + ".critical.dead_letter_failed"
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects[subject]
	}
	testwait.Eventually(t, 10*time.Second, "the dead_letter_failed alert", func() (bool, string) {
		return alerts() == 1, fmt.Sprint(alerts())
	})
	// Backed off: no try for RETRY_MAX_DELAY (3s) after the fifth.
	time.Sleep(time.Second)
	if got := strings.Count(out.String(), "Could not dead-letter"); got != failedAt5 {
		t.Fatalf("%d more tries soon after the fifth; the sixth must wait %s", got-failedAt5, cfg.Retry.MaxDelay)
	}
	testwait.Eventually(t, 10*time.Second, "the sixth try", func() (bool, string) {
		return strings.Contains(out.String(), "after 6 tries"), ""
	})
	if n := alerts(); n != 1 {
		t.Fatalf("%d dead_letter_failed alerts, want one", n)
	}
	if n := contactsInStream(t, js, cfg); n != 1 {
		t.Fatalf("the original is not kept while its dead letter fails: %d in the stream", n)
	}
	if _, err := queue.EnsureDeadLetterStream(ctx, js, cfg.Topology); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 15*time.Second, "the contact dead-lettered once the stream is back", func() (bool, string) {
		return contactsInStream(t, js, cfg) == 0 && len(deadLetters(t, js, cfg)) == 1, tail(out.String(), 2000)
	})
	if dl := deadLetters(t, js, cfg)[0]; dl.ContactID != "stuck-1" || dl.Reason != "invalid_payload" || dl.Truncated {
		t.Fatalf("dead letter = %+v", dl)
	}
}

// The MAX_DELIVERIES sweeper does the same when the dead letter of a contact the workers
// could not write off within the consumer's delivery limit still cannot be written: one
// alert after 5 of its tries, then a try every RETRY_MAX_DELAY, and the contact stays in the
// stream until the dead letter is written.
func TestSweeperDeadLetterThatCannotBeWrittenAlertsOnce(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	cfg.Topology.MaxDeliver = 1 // the consumer allows 3 deliveries: 3 tries by the worker
	cfg.Retry.MaxDelay = 3 * time.Second
	ctx := context.Background()
	var llm, tts calls
	out := &syncBuffer{}
	startWorker(t, cfg, simProviders(sim.Options{Scenario: sim.Healthy}, &llm, &tts), out)
	if err := js.DeleteStream(ctx, cfg.Topology.DeadLetterStream); err != nil {
		t.Fatal(err)
	}
	publishRaw(t, js, cfg, "c-stuck", []byte(`{"id":"c-stuck"}`)) // no phone: invalid
	testwait.Eventually(t, 30*time.Second, "the fifth failed try", func() (bool, string) {
		return strings.Contains(out.String(), "Could not dead-letter Contact c-stuck (exhausted its deliveries) after 5 tries"), tail(out.String(), 2000)
	})
	tries := strings.Count(out.String(), "Could not dead-letter")
	time.Sleep(time.Second)
	if got := strings.Count(out.String(), "Could not dead-letter"); got != tries {
		t.Fatalf("%d more tries soon after the fifth; the sixth must wait %s", got-tries, cfg.Retry.MaxDelay)
	}
	testwait.Eventually(t, 10*time.Second, "the sixth try", func() (bool, string) {
		return strings.Contains(out.String(), "after 6 tries"), ""
	})
	alertsStream, err := js.Stream(ctx, cfg.Alerts.Stream)
	if err != nil {
		t.Fatal(err)
	}
	subject := cfg.Alerts.SubjectPrefix + ".critical.dead_letter_failed"
	info, err := alertsStream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[subject]; n != 1 {
		t.Fatalf("%d dead_letter_failed alerts, want one", n)
	}
	if n := contactsInStream(t, js, cfg); n != 1 {
		t.Fatalf("%d contacts in the stream, want the stuck one kept", n)
	}
	if _, err := queue.EnsureDeadLetterStream(ctx, js, cfg.Topology); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 15*time.Second, "the contact dead-lettered once the stream is back", func() (bool, string) {
		return contactsInStream(t, js, cfg) == 0 && len(deadLetters(t, js, cfg)) == 1, tail(out.String(), 2000)
	})
	if !strings.Contains(out.String(), "Could not dead-letter Contact c-stuck (try 3)") {
		t.Errorf("the worker did not try before the sweeper:\n%s", tail(out.String(), 4000))
	}
	if dl := deadLetters(t, js, cfg)[0]; dl.ContactID != "c-stuck" || dl.Reason != "max_deliveries" {
		t.Fatalf("dead letter = %+v", dl)
	}
}

// exhaustRaw publishes data as a contact message and takes it on every delivery the consumer
// allows without answering, as workers that die on it would: the server then announces it
// with a MAX_DELIVERIES advisory, kept by the advisory stream.
func exhaustRaw(t *testing.T, js jetstream.JetStream, cfg config.Config, msgID string, data []byte) {
	t.Helper()
	ctx := context.Background()
	if _, err := queue.EnsureAdvisoryConsumer(ctx, js, cfg.Topology); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.EnsureContactsStream(ctx, js, cfg.Topology); err != nil {
		t.Fatal(err)
	}
	publishRaw(t, js, cfg, msgID, data)
	cons, err := queue.EnsureConsumer(ctx, js, cfg.Topology)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Topology.MaxDeliver * queue.DeliveryBackstop {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for range batch.Messages() {
			got++
		}
		if got != 1 {
			t.Fatalf("delivery %d: fetched %d messages, want 1", i+1, got)
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
