package queue

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func sampleDeadLetter(payload []byte) DeadLetter {
	now := time.Date(2026, 11, 26, 21, 29, 3, 57639954, time.UTC)
	return DeadLetter{
		ContactID: "x1", Reason: "invalid_payload", LastError: "payload is not well-formed JSON", Attempts: 1,
		FirstFailure: now, LastFailure: now, Worker: "worker-a", OriginalSubject: "contacts.queue",
		OriginalStream: "CONTACTS", StreamSeq: 42, MsgID: "poison-0", Payload: payload,
	}
}

func TestDeadLetterMsgKeepsAPayloadThatFits(t *testing.T) {
	payload := []byte(`{"id":"x1"}`)
	m, stored := deadLetterMsg("dlq.contacts", sampleDeadLetter(payload), DefaultMaxPayload)
	if stored.Truncated || stored.PayloadLength != 0 || stored.PayloadSHA256 != "" || !bytes.Equal(m.Data, payload) {
		t.Fatalf("a small payload was changed: %+v, data %q", stored, m.Data)
	}
	for _, h := range []string{HeaderPayloadTruncated, HeaderPayloadLength, HeaderPayloadSHA256} {
		if v := m.Header.Get(h); v != "" {
			t.Errorf("%s = %q on a dead letter that was not cut", h, v)
		}
	}
	if got := m.Header.Get(jetstream.MsgIDHeader); got != "dlq.CONTACTS.42.poison-0" {
		t.Errorf("Nats-Msg-Id = %q", got)
	}
}

// The size computation: a payload that fits with the headers and the headroom is kept; one
// byte more and it is cut to exactly what fits, headers included.
func TestDeadLetterMsgCutsAPayloadThatDoesNotFit(t *testing.T) {
	const maxPayload = 64 * 1024
	dl := sampleDeadLetter(nil)
	m, _ := deadLetterMsg("dlq.contacts", dl, maxPayload)
	room := maxPayload - HeaderSize(m.Header) - PayloadHeadroom // what fits whole

	fits := bytes.Repeat([]byte("a"), room)
	m, stored := deadLetterMsg("dlq.contacts", sampleDeadLetter(fits), maxPayload)
	if stored.Truncated || len(m.Data) != room {
		t.Fatalf("a payload of %d bytes, which fits, was cut to %d", room, len(m.Data))
	}

	for _, size := range []int{room + 1, maxPayload - 10, maxPayload, 3 * maxPayload} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte('a' + i%26)
		}
		m, stored := deadLetterMsg("dlq.contacts", sampleDeadLetter(payload), maxPayload)
		if !stored.Truncated {
			t.Fatalf("size %d: not cut", size)
		}
		total := HeaderSize(m.Header) + len(m.Data)
		if total+PayloadHeadroom != maxPayload {
			t.Errorf("size %d: headers %d + payload %d + headroom %d = %d, want exactly the max payload %d",
				size, HeaderSize(m.Header), len(m.Data), PayloadHeadroom, total+PayloadHeadroom, maxPayload)
		}
		sum := sha256.Sum256(payload)
		if stored.PayloadLength != size || stored.PayloadSHA256 != hex.EncodeToString(sum[:]) ||
			!bytes.HasPrefix(payload, m.Data) || !bytes.Equal(stored.Payload, m.Data) {
			t.Errorf("size %d: stored %d bytes, length %d, sha %s", size, len(m.Data), stored.PayloadLength, stored.PayloadSHA256)
		}
		if m.Header.Get(HeaderPayloadTruncated) != "true" || m.Header.Get(HeaderPayloadLength) != strconv.Itoa(size) ||
			m.Header.Get(HeaderPayloadSHA256) != stored.PayloadSHA256 {
			t.Errorf("size %d: headers %v", size, m.Header)
		}
	}
}

// A poison message's id and message id may be anything, a megabyte included: the headers
// stay bounded, so the dead letter always fits.
func TestDeadLetterMsgBoundsItsHeaders(t *testing.T) {
	huge := strings.Repeat("é", 512*1024)
	dl := sampleDeadLetter([]byte("not json"))
	dl.ContactID, dl.MsgID, dl.LastError = huge, huge, huge
	m, stored := deadLetterMsg("dlq.contacts", dl, DefaultMaxPayload)
	if n := HeaderSize(m.Header); n > 4*1024 {
		t.Fatalf("headers of %d bytes", n)
	}
	if stored.Truncated || string(m.Data) != "not json" {
		t.Errorf("the payload was cut for the headers' sake: %q", m.Data)
	}
	if len(stored.ContactID) > maxIDHeader+len("…") || !strings.HasPrefix(huge, strings.TrimSuffix(stored.ContactID, "…")) {
		t.Errorf("contact id of %d bytes kept", len(stored.ContactID))
	}
	// A server whose max payload is below the headers themselves: nothing of the payload fits.
	m, stored = deadLetterMsg("dlq.contacts", sampleDeadLetter([]byte("not json")), 100)
	if !stored.Truncated || len(m.Data) != 0 || stored.PayloadLength != len("not json") {
		t.Errorf("max payload 100: stored %+v, data %q", stored, m.Data)
	}
}
