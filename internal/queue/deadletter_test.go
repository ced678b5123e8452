package queue_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
)

// startSmallServer runs a JetStream server whose max payload is maxPayload, and connects.
func startSmallServer(t *testing.T, maxPayload int32) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		ServerName: "small", Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		MaxPayload: maxPayload, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// HeaderSize counts the headers as nats.go puts them on the wire: a message of exactly the
// max payload, headers included, is accepted, one byte more is refused.
func TestHeaderSizeIsWhatTheMaxPayloadCounts(t *testing.T) {
	const maxPayload = 16 * 1024
	nc, _ := startSmallServer(t, maxPayload)
	h := nats.Header{}
	h.Set(queue.HeaderReason, "invalid_payload")
	h.Set(queue.HeaderError, "  payload is not well-formed JSON\r\nat offset 3 ") // trimmed, CR LF replaced
	h.Set(jetstream.MsgIDHeader, "dlq.CONTACTS.1.x")
	h.Add("X-Twice", "a")
	h.Add("X-Twice", "bc")
	room := maxPayload - queue.HeaderSize(h)
	if err := nc.PublishMsg(&nats.Msg{Subject: "probe", Header: h, Data: make([]byte, room)}); err != nil {
		t.Fatalf("headers %d + payload %d = max payload: %v", queue.HeaderSize(h), room, err)
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: "probe", Header: h, Data: make([]byte, room+1)}); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("one byte over the max payload: %v, want %v", err, nats.ErrMaxPayload)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("the server refused the message of exactly the max payload: %v", err)
	}
	if queue.HeaderSize(nil) != 0 {
		t.Error("no headers must take no bytes")
	}
}

// A dead letter whose payload nearly fills the server's max payload is written with its
// payload cut, read back as such, and refused by Replay.
func TestOversizedDeadLetterIsCutAndNotReplayed(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxPayload int32 // 0: the test server's default (1 MiB)
	}{{"64 KiB server", 64 * 1024}, {"default server", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			var js jetstream.JetStream
			var nc *nats.Conn
			if tc.maxPayload > 0 {
				nc, js = startSmallServer(t, tc.maxPayload)
			} else {
				nc, js = natstest.Connect(t, natstest.Start(t))
			}
			ctx := context.Background()
			topo := config.Defaults().Topology
			if _, err := queue.EnsureDeadLetterStream(ctx, js, topo); err != nil {
				t.Fatal(err)
			}
			if _, err := queue.EnsureContactsStream(ctx, js, topo); err != nil {
				t.Fatal(err)
			}
			payload := bytes.Repeat([]byte(`{"id":"p1","phone":`), int(nc.MaxPayload())/19) // ~the max payload, invalid JSON
			payload = payload[:nc.MaxPayload()-64]
			dlq := queue.NewDeadLetterer(js, topo)
			stored, err := dlq.Write(ctx, queue.DeadLetter{
				ContactID: "p1", Reason: "invalid_payload", LastError: "payload is not well-formed JSON", Attempts: 1,
				FirstFailure: time.Now(), LastFailure: time.Now(), Worker: "w", OriginalSubject: topo.ContactsSubject,
				OriginalStream: topo.ContactsStream, StreamSeq: 7, MsgID: "p1", Payload: payload,
			})
			if err != nil {
				t.Fatalf("write: %v", err)
			}
			sum := sha256.Sum256(payload)
			if !stored.Truncated || stored.PayloadLength != len(payload) || stored.PayloadSHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("stored = truncated %v, length %d, sha %s", stored.Truncated, stored.PayloadLength, stored.PayloadSHA256)
			}
			var got []queue.DeadLetter
			if err := queue.EachDeadLetter(ctx, js, topo, queue.DeadLetterFilter{}, func(dl queue.DeadLetter) error {
				got = append(got, dl)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("%d dead letters", len(got))
			}
			dl := got[0]
			if !dl.Truncated || dl.PayloadLength != len(payload) || dl.PayloadSHA256 != stored.PayloadSHA256 ||
				!bytes.HasPrefix(payload, dl.Payload) || len(dl.Payload) < len(payload)-4096 || dl.StreamSeq != 7 ||
				dl.OriginalStream != topo.ContactsStream || dl.ContactID != "p1" {
				t.Fatalf("read back: truncated %v, length %d, sha %s, kept %d of %d, seq %d",
					dl.Truncated, dl.PayloadLength, dl.PayloadSHA256, len(dl.Payload), len(payload), dl.StreamSeq)
			}
			if err := queue.CheckReplayable(dl); !errors.Is(err, queue.ErrPayloadTruncated) {
				t.Fatalf("CheckReplayable = %v", err)
			}
			if _, err := queue.Replay(ctx, js, topo, dl); !errors.Is(err, queue.ErrPayloadTruncated) {
				t.Fatalf("Replay of a cut dead letter = %v, want ErrPayloadTruncated", err)
			}
			contacts, err := js.Stream(ctx, topo.ContactsStream)
			if err != nil {
				t.Fatal(err)
			}
			if info, err := contacts.Info(ctx); err != nil || info.State.Msgs != 0 {
				t.Fatalf("the refused replay enqueued something: %+v, %v", info, err)
			}
			if left := dlqMsgs(t, js, topo); left != 1 {
				t.Fatalf("the refused replay removed the dead letter: %d left", left)
			}
		})
	}
}

// An ordinary dead letter reads back whole, and replays.
func TestDeadLetterThatFitsIsKeptWhole(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	topo := config.Defaults().Topology
	if _, err := queue.EnsureDeadLetterStream(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"id":"c1","phone":"+14155550100"}`)
	stored, err := queue.NewDeadLetterer(js, topo).Write(ctx, queue.DeadLetter{
		ContactID: "c1", Reason: "authentication", OriginalStream: topo.ContactsStream, StreamSeq: 1, MsgID: "c1", Payload: payload,
	})
	if err != nil || stored.Truncated || !bytes.Equal(stored.Payload, payload) {
		t.Fatalf("write: %+v, %v", stored, err)
	}
	var dl queue.DeadLetter
	if err := queue.EachDeadLetter(ctx, js, topo, queue.DeadLetterFilter{}, func(d queue.DeadLetter) error {
		dl = d
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if dl.Truncated || dl.PayloadLength != 0 || dl.PayloadSHA256 != "" || !bytes.Equal(dl.Payload, payload) {
		t.Fatalf("read back: %+v", dl)
	}
	if err := queue.CheckReplayable(dl); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.EnsureContactsStream(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.Replay(ctx, js, topo, dl); err != nil {
		t.Fatalf("replay: %v", err)
	}
}

func dlqMsgs(t *testing.T, js jetstream.JetStream, topo config.Topology) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), topo.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// A dead letter written without a reason is stored with ReasonUnknown, so it reads back:
// ParseDeadLetter refuses a dead letter without one.
func TestDeadLetterWithoutReasonIsStoredAsUnknown(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	topo := config.Defaults().Topology
	s, err := queue.EnsureDeadLetterStream(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	for i, reason := range []string{"", "   ", "\r\n\t"} {
		stored, err := queue.NewDeadLetterer(js, topo).Write(ctx, queue.DeadLetter{
			ContactID: "c1", Reason: reason, OriginalStream: topo.ContactsStream, StreamSeq: uint64(i + 1), Payload: []byte(`{"id":"c1"}`),
		})
		if err != nil || stored.Reason != queue.ReasonUnknown {
			t.Fatalf("reason %q: stored %q, %v", reason, stored.Reason, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := s.GetMsg(ctx, info.State.LastSeq)
		if err != nil {
			t.Fatal(err)
		}
		if dl, err := queue.ParseDeadLetter(raw); err != nil || dl.Reason != queue.ReasonUnknown {
			t.Fatalf("reason %q read back as %q, %v", reason, dl.Reason, err)
		}
	}
}

// One message of the dead-letter stream that is not a readable dead letter must not stop
// the others from being listed or replayed: it is skipped and reported.
func TestEachDeadLetterSkipsUnreadableMessages(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	topo := config.Defaults().Topology
	if _, err := queue.EnsureDeadLetterStream(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	dlq := queue.NewDeadLetterer(js, topo)
	bad := func(h nats.Header) {
		t.Helper()
		m := nats.NewMsg(topo.DeadLetterSubject)
		m.Header, m.Data = h, []byte("x")
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	good := func(id string) {
		t.Helper()
		if err := dlq.Publish(ctx, queue.DeadLetter{ContactID: id, Reason: "timeout", OriginalStream: topo.ContactsStream, StreamSeq: uint64(len(id)), MsgID: id, Payload: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	bad(nats.Header{"Other": {"no reason"}})                                                              // seq 1
	good("a")                                                                                             // seq 2
	bad(nats.Header{queue.HeaderReason: {"timeout"}, queue.HeaderAttempts: {strings.Repeat("9x", 5000)}}) // seq 3
	good("bb")                                                                                            // seq 4

	var ids []string
	collect := func(dl queue.DeadLetter) error { ids = append(ids, dl.ContactID); return nil }
	var ue *queue.UnreadableDeadLettersError

	// The limit counts dead letters read, not skipped messages. (First: a read stopped by
	// the limit leaves its fetch to finish in the background.)
	err := queue.EachDeadLetter(ctx, js, topo, queue.DeadLetterFilter{Limit: 1}, collect)
	if !errors.As(err, &ue) || ue.Count != 1 || strings.Join(ids, ",") != "a" {
		t.Fatalf("limit 1: err %v, read %v", err, ids)
	}

	ids = nil
	err = queue.EachDeadLetter(ctx, js, topo, queue.DeadLetterFilter{}, collect)
	if !errors.As(err, &ue) || ue.Count != 2 || !strings.Contains(ue.First.Error(), queue.HeaderReason) {
		t.Fatalf("err = %v, want 2 unreadable dead letters, the first without %s", err, queue.HeaderReason)
	}
	if strings.Join(ids, ",") != "a,bb" {
		t.Fatalf("read %v, want a,bb", ids)
	}

	ids = nil
	var seqs []uint64
	var errs []error
	err = queue.EachDeadLetter(ctx, js, topo, queue.DeadLetterFilter{Unreadable: func(seq uint64, err error) {
		seqs, errs = append(seqs, seq), append(errs, err)
	}}, collect)
	if err != nil || strings.Join(ids, ",") != "a,bb" || len(seqs) != 2 || seqs[0] != 1 || seqs[1] != 3 {
		t.Fatalf("with a callback: err %v, read %v, told of %v", err, ids, seqs)
	}
	// The error quotes the bad value once, cut.
	if text := errs[1].Error(); len(text) > 300 || !strings.Contains(text, queue.HeaderAttempts) || !strings.Contains(text, " 3:") {
		t.Fatalf("error for the 10000-byte attempts header: %d bytes: %.300s", len(text), text)
	}

}

// A bad header value is quoted once, cut to 100 bytes: neither the value twice (strconv's and
// time's errors quote it too) nor a 64 KiB one whole.
func TestParseDeadLetterErrorsAreBounded(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("\x01z", 32<<10)
	for _, k := range []string{queue.HeaderAttempts, queue.HeaderStreamSeq, queue.HeaderFirstFailure, queue.HeaderLastFailure, queue.HeaderPayloadLength} {
		h := nats.Header{queue.HeaderReason: {"timeout"}, queue.HeaderPayloadTruncated: {"true"}, queue.HeaderPayloadLength: {"1"}}
		h.Set(k, huge)
		_, err := queue.ParseDeadLetter(&jetstream.RawStreamMsg{Sequence: 77, Header: h})
		if err == nil {
			t.Fatalf("%s: accepted", k)
		}
		text := err.Error()
		if len(text) > 600 || !strings.Contains(text, k) || !strings.Contains(text, "77") || strings.Count(text, `\x01z`) > 50 {
			t.Errorf("%s: error of %d bytes: %.200q", k, len(text), text)
		}
	}
	// The cause is still there for errors.Is.
	h := nats.Header{queue.HeaderReason: {"timeout"}, queue.HeaderAttempts: {"99999999999999999999999"}}
	if _, err := queue.ParseDeadLetter(&jetstream.RawStreamMsg{Sequence: 1, Header: h}); !errors.Is(err, strconv.ErrRange) {
		t.Errorf("err = %v, want strconv.ErrRange", err)
	}
}
