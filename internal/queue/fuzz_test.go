package queue_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/queue"
)

// fuzzStored is when the fuzzed messages were stored.
var fuzzStored = time.Date(2026, 11, 26, 21, 29, 3, 57639954, time.UTC)

// FuzzParseDeadLetter reads dead letters with arbitrary header values and payloads, given as
// values and as a raw header block decoded the way nats.go decodes one from the wire.
// Whatever the message:
//   - ParseDeadLetter does not panic;
//   - what it accepts is what the headers say: the reason (never empty), attempts, stream
//     sequence, times, truncation facts and the payload as given;
//   - what it refuses, it refuses with an error that names the message's sequence and the
//     header at fault, and that is bounded by the size of the bad value.
func FuzzParseDeadLetter(f *testing.F) {
	ts := fuzzStored.Format(time.RFC3339Nano)
	for _, s := range []struct {
		seq                                 uint64
		reason, attempts, streamSeq         string
		first, last, truncated, length, sum string
		payload, raw                        string
	}{
		{1, "invalid_payload", "1", "42", ts, ts, "", "", "", `{"id":"x1"}`, ""},
		{2, "max_deliveries", "5", "", "", ts, "", "", "", `{"id":"c-2","phone":"+14155550123"}`, ""},
		{3, "quota_exceeded", "3", "7", ts, ts, "true", "1048576", strings.Repeat("ab", 32), `{"id":"big`, ""},
		{4, "", "1", "1", "", "", "", "", "", "", ""},
		{5, "circuit_open", "-1", "18446744073709551615", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05+02:00", "", "", "", "", ""},
		{6, "timeout", "1e3", "18446744073709551616", "", "", "", "", "", "", ""},
		{7, "timeout", "2", "3", "yesterday", "", "", "", "", "", ""},
		{8, "timeout", "2", "3", ts, "2026-13-45T99:99:99Z", "", "", "", "", ""},
		{9, "bad_response", "2", "3", "", "", "true", "many", "", "x", ""},
		{10, "timeout", strings.Repeat("9", 300), "", "", "", "", "", "", "", ""},
		{11, "", "", "", "", "", "", "", "", "", "NATS/1.0\r\nDlq-Reason: invalid_payload\r\nDlq-Attempts: 4\r\nDlq-Error: payload is not JSON\r\n\r\n"},
		{12, "", "", "", "", "", "", "", "", "", "NATS/1.0 503\r\n\r\n"},
		{13, "", "", "", "", "", "", "", "", "", "NATS/1.0\r\nDlq-Reason:\tquota\r\nDlq-Reason: second\r\nDlq-Attempts: x\r\n\r\n"},
		{14, "", "", "", "", "", "", "", "", "", "NATS/1.0\r\nbroken header line\r\n\r\n"},
	} {
		f.Add(s.seq, s.reason, s.attempts, s.streamSeq, s.first, s.last, s.truncated, s.length, s.sum, []byte(s.payload), []byte(s.raw))
	}
	if _, err := queue.ParseDeadLetter(nil); err == nil {
		f.Fatal("ParseDeadLetter(nil) did not fail")
	}

	f.Fuzz(func(t *testing.T, seq uint64, reason, attempts, streamSeq, first, last, truncated, length, sum string, payload, raw []byte) {
		h := nats.Header{}
		for k, v := range map[string]string{
			queue.HeaderReason: reason, queue.HeaderAttempts: attempts, queue.HeaderStreamSeq: streamSeq,
			queue.HeaderFirstFailure: first, queue.HeaderLastFailure: last, queue.HeaderPayloadTruncated: truncated,
			queue.HeaderPayloadLength: length, queue.HeaderPayloadSHA256: sum,
		} {
			if v != "" {
				h.Set(k, v)
			}
		}
		msg := &jetstream.RawStreamMsg{Subject: "deadletter.contacts", Sequence: seq, Header: h, Data: payload, Time: fuzzStored}
		dl, err := queue.ParseDeadLetter(msg)
		if err != nil {
			fuzzCheckParseError(t, err, seq, h)
		} else {
			want := func(name string, ok bool) {
				t.Helper()
				if !ok {
					t.Fatalf("%s does not match the headers %v: %+v", name, h, dl)
				}
			}
			want("reason", dl.Reason == reason && reason != "")
			want("payload", bytes.Equal(dl.Payload, payload) && dl.Seq == seq && dl.Stored.Equal(fuzzStored))
			if attempts != "" {
				n, _ := strconv.Atoi(attempts)
				want("attempts", dl.Attempts == n)
			}
			if streamSeq != "" {
				n, _ := strconv.ParseUint(streamSeq, 10, 64)
				want("stream sequence", dl.StreamSeq == n)
			}
			for _, tm := range []struct {
				got  time.Time
				text string
			}{{dl.FirstFailure, first}, {dl.LastFailure, last}} {
				if tm.text == "" {
					want("an absent time", tm.got.IsZero())
					continue
				}
				p, perr := time.Parse(time.RFC3339Nano, tm.text)
				want("a time", perr == nil && p.Equal(tm.got))
			}
			want("truncation", dl.Truncated == (truncated == "true"))
			if dl.Truncated {
				n, _ := strconv.Atoi(length)
				want("truncation facts", dl.PayloadLength == n && dl.PayloadSHA256 == sum)
			} else {
				want("truncation facts", dl.PayloadLength == 0 && dl.PayloadSHA256 == "")
			}
		}

		// The same from a raw header block, as nats.go reads one off the wire.
		if hh, derr := nats.DecodeHeadersMsg(raw); derr == nil {
			msg := &jetstream.RawStreamMsg{Subject: "deadletter.contacts", Sequence: seq, Header: hh, Data: payload, Time: fuzzStored}
			if dl, err := queue.ParseDeadLetter(msg); err != nil {
				fuzzCheckParseError(t, err, seq, hh)
			} else if dl.Reason == "" || dl.Reason != hh.Get(queue.HeaderReason) {
				t.Fatalf("accepted reason %q from headers %v", dl.Reason, hh)
			}
		}
	})
}

// fuzzCheckParseError checks that err names the message's sequence and a header of h, and
// is bounded by the size of the values it may quote.
func fuzzCheckParseError(t *testing.T, err error, seq uint64, h nats.Header) {
	t.Helper()
	text := err.Error()
	if !strings.Contains(text, strconv.FormatUint(seq, 10)) {
		t.Fatalf("error %q does not name message %d", text, seq)
	}
	named, size := false, 0
	for _, k := range []string{queue.HeaderReason, queue.HeaderAttempts, queue.HeaderStreamSeq, queue.HeaderFirstFailure,
		queue.HeaderLastFailure, queue.HeaderPayloadLength} {
		named = named || strings.Contains(text, k)
		size += len(h.Get(k))
	}
	if !named {
		t.Fatalf("error %q names no header", text)
	}
	// A bad value is quoted (%q: up to 4 bytes per byte) by the error and by strconv's or
	// time's error it wraps.
	if limit := 200 + 10*size; len(text) > limit {
		t.Fatalf("error of %d bytes for %d bytes of header values (limit %d)", len(text), size, limit)
	}
}

// fuzzAckJS is a JetStream that remembers the ack of the last publish, so the fuzz target
// reads back exactly the dead letter written (or knows it was a duplicate).
type fuzzAckJS struct {
	jetstream.JetStream
	ack *jetstream.PubAck
}

func (j *fuzzAckJS) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	ack, err := j.JetStream.PublishMsg(ctx, m, opts...)
	j.ack = ack
	return ack, err
}

// fuzzMaxPayload is the max payload of the fuzz target's server: small, so that the dead
// letters of ordinary payloads are cut too.
const fuzzMaxPayload = 8 << 10

// FuzzDeadLetterRoundTrip writes dead letters with fuzzed contents to a real JetStream
// server whose max payload is 8 KiB, reads each back by its sequence and parses it.
// Whatever the dead letter (the fields that come from the poison message — contact id,
// message id, last error, payload — unbounded; the ones the worker sets itself — reason,
// provider, worker, original subject and stream — up to 255 bytes):
//   - Write succeeds: the dead letter fits in the max payload, cut if need be;
//   - the stored ids are bounded (256 bytes and "…"), the error 1 KiB and "…";
//   - ParseDeadLetter gives back what Write says it stored, as the wire carries header
//     values (trimmed, line breaks made spaces): every field, the times to the nanosecond,
//     and for a cut payload its beginning, length and SHA-256. A blank reason is the one
//     thing that does not come back: it is refused, naming Dlq-Reason.
func FuzzDeadLetterRoundTrip(f *testing.F) {
	f.Add("x1", "invalid_payload", "", "payload is not well-formed JSON", "worker-a", "contacts.queue", "CONTACTS", "poison-0",
		1, uint64(42), int64(1764192543057639954), int64(1764192543057639954), []byte(`{"id":"x1"}`))
	f.Add("c-2", "quota_exceeded", "ElevenLabs", "ElevenLabs: quota exceeded (HTTP 402, code quota_exceeded) (request_id r-1)", "host-1234",
		"contacts.queue", "CONTACTS", "", 3, uint64(7), int64(0), int64(1764192543000000000), []byte(strings.Repeat("x", 9000)))
	f.Add(strings.Repeat("i", 300), "max_deliveries", "", strings.Repeat("é", 700), "w", "contacts.queue", "CONTACTS",
		strings.Repeat("m", 300), 5, uint64(18446744073709551615), int64(-6795364578871345152), int64(9223372036854775807), []byte(nil))
	f.Add("  padded\r\nid ", " circuit_open\t", "LLM\n", "\r\nline one\r\nline two\n", "", "", "", "id\r\n", -1, uint64(0), int64(1), int64(0), []byte{0, 1, 2})
	f.Add("", "   ", "", "", "", "", "", "", 0, uint64(1), int64(0), int64(0), []byte("blank reason"))

	ns, err := server.NewServer(&server.Options{
		ServerName: "fuzz", Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: f.TempDir(),
		MaxPayload: fuzzMaxPayload, NoLog: true, NoSigs: true,
	})
	if err != nil {
		f.Fatal(err)
	}
	ns.Start()
	f.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		f.Fatal("server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		f.Fatal(err)
	}
	topo := config.Defaults().Topology
	cfg := queue.DeadLetterStreamConfig(topo)
	cfg.Storage = jetstream.MemoryStorage // the headers are what is tested, not the disk
	ctx := context.Background()
	stream, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		f.Fatal(err)
	}
	ajs := &fuzzAckJS{JetStream: js}
	d := queue.NewDeadLetterer(ajs, topo)
	writes := 0

	f.Fuzz(func(t *testing.T, contactID, reason, provider, lastErr, worker, origSubject, origStream, msgID string,
		attempts int, streamSeq uint64, first, last int64, payload []byte) {
		for _, v := range []string{reason, provider, worker, origSubject, origStream} {
			if len(v) > 255 {
				return // set by the worker itself, from its configuration and code
			}
		}
		if writes++; writes%500 == 0 {
			if err := stream.Purge(ctx); err != nil {
				t.Fatal(err)
			}
		}
		at := func(ns int64) time.Time {
			if ns == 0 {
				return time.Time{}
			}
			return time.Unix(0, ns)
		}
		dl := queue.DeadLetter{ContactID: contactID, Reason: reason, Provider: provider, LastError: lastErr, Attempts: attempts,
			FirstFailure: at(first), LastFailure: at(last), Worker: worker, OriginalSubject: origSubject,
			OriginalStream: origStream, StreamSeq: streamSeq, MsgID: msgID, Payload: payload}

		ajs.ack = nil
		stored, err := d.Write(ctx, dl)
		if err != nil {
			t.Fatalf("Write of a %d-byte payload: %v", len(payload), err)
		}
		if ajs.ack == nil {
			t.Fatal("Write did not publish")
		}
		for name, v := range map[string]struct {
			s   string
			max int
		}{"contact id": {stored.ContactID, 256}, "message id": {stored.MsgID, 256}, "last error": {stored.LastError, 1024}} {
			if len(v.s) > v.max+len("…") {
				t.Fatalf("stored %s has %d bytes, more than %d", name, len(v.s), v.max)
			}
		}
		if ajs.ack.Duplicate {
			return // an earlier input with the same message id is what the stream holds
		}
		raw, err := stream.GetMsg(ctx, ajs.ack.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		got, err := queue.ParseDeadLetter(raw)
		if fuzzWire(stored.Reason) == "" {
			if err == nil || !strings.Contains(err.Error(), queue.HeaderReason) {
				t.Fatalf("a dead letter with the blank reason %q was read back: %v", stored.Reason, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseDeadLetter of what Write stored: %v\nstored %+v", err, stored)
		}
		want := stored
		for _, p := range []*string{&want.ContactID, &want.Reason, &want.Provider, &want.LastError, &want.Worker,
			&want.OriginalSubject, &want.OriginalStream, &want.MsgID} {
			*p = fuzzWire(*p)
		}
		want.Seq, want.Stored = ajs.ack.Sequence, got.Stored
		if !got.FirstFailure.Equal(want.FirstFailure) || !got.LastFailure.Equal(want.LastFailure) {
			t.Fatalf("times %v, %v read back as %v, %v", want.FirstFailure, want.LastFailure, got.FirstFailure, got.LastFailure)
		}
		want.FirstFailure, want.LastFailure = got.FirstFailure, got.LastFailure
		if !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("payload of %d bytes read back as %d bytes", len(want.Payload), len(got.Payload))
		}
		want.Payload = got.Payload
		if !fuzzSameDeadLetter(got, want) {
			t.Fatalf("read back\n%+v\nwant\n%+v", got, want)
		}
		if got.Truncated {
			sum := sha256.Sum256(payload)
			if got.PayloadLength != len(payload) || got.PayloadSHA256 != hex.EncodeToString(sum[:]) || !bytes.HasPrefix(payload, got.Payload) {
				t.Fatalf("cut payload: length %d sha %s and %d bytes kept, of a %d-byte payload", got.PayloadLength, got.PayloadSHA256, len(got.Payload), len(payload))
			}
		} else if !bytes.Equal(got.Payload, payload) {
			t.Fatalf("payload changed without being cut")
		}
	})
}

// fuzzWire is a header value as it comes back from the server: nats.go trims it and makes
// its line breaks spaces.
func fuzzWire(v string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(textproto.TrimString(v))
}

func fuzzSameDeadLetter(a, b queue.DeadLetter) bool {
	return a.ContactID == b.ContactID && a.Reason == b.Reason && a.Provider == b.Provider && a.LastError == b.LastError &&
		a.Attempts == b.Attempts && a.Worker == b.Worker && a.OriginalSubject == b.OriginalSubject &&
		a.OriginalStream == b.OriginalStream && a.StreamSeq == b.StreamSeq && a.MsgID == b.MsgID &&
		a.Truncated == b.Truncated && a.PayloadLength == b.PayloadLength && a.PayloadSHA256 == b.PayloadSHA256 && a.Seq == b.Seq
}
