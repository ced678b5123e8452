package chaos

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// poisonPhone is the phone number of the i-th poison message.
func poisonPhone(i int) string { return fmt.Sprintf("+1415555%04d", 9000+i) }

// oversized is a contact-shaped document of exactly size bytes whose name is far beyond the
// contact rules: valid JSON, invalid contact.
func oversized(id, phone string, size int) []byte {
	head := fmt.Sprintf(`{"id":%q,"phone":%q,"name":"`, id, phone)
	tail := `"}`
	return append(append([]byte(head), bytes.Repeat([]byte("x"), max(0, size-len(head)-len(tail)))...), tail...)
}

// msgIDHeaderLen is what a Nats-Msg-Id header adds to a message as the server counts it
// against max_payload.
func msgIDHeaderLen(id string) int {
	return len("NATS/1.0\r\n" + jetstream.MsgIDHeader + ": " + id + "\r\n\r\n")
}

// TestPoisonMessages publishes messages no publisher would (bypassing its validation),
// each once without and once with a Nats-Msg-Id, among valid contacts. Every poison message
// must leave the stream as a dead letter, however big, and the valid contacts complete.
func TestPoisonMessages(t *testing.T) {
	workers, valid := pick(2, 3), pick(10, 100)
	s := NewScenario(t, "poison-messages", binaries(t), workers)
	s.StartWorkers()
	good := s.NewContacts(valid)
	s.Enqueue(good[:valid/2])

	maxPayload := int(s.NC.MaxPayload())
	type poison struct {
		name string
		data func(msgID string) []byte
	}
	fixed := func(b string) func(string) []byte { return func(string) []byte { return []byte(b) } }
	var phones []string
	phone := func() string { p := poisonPhone(len(phones)); phones = append(phones, p); return p }
	list := []poison{
		{"not JSON", fixed("call me maybe")},
		{"empty", fixed("")},
		{"JSON null", fixed("null")},
		{"JSON array", fixed(fmt.Sprintf(`[{"id":"px-array","phone":%q}]`, phone()))},
		{"truncated JSON", fixed(`{"id":"px-cut","phone":"+1415`)},
		{"wrong types", fixed(fmt.Sprintf(`{"id":42,"name":["Ada"],"phone":%s}`, phone()[1:]))},
		{"unknown field", fixed(fmt.Sprintf(`{"id":"px-unknown","phone":%q,"shoe_size":44}`, phone()))},
		{"bad phone", fixed(`{"id":"px-badphone","phone":"call 555 after six"}`)},
		{"missing id", fixed(fmt.Sprintf(`{"phone":%q}`, phone()))},
		{"invalid UTF-8", fixed(fmt.Sprintf("{\"id\":\"px-\xff\xfe\",\"phone\":%q}", phone()))},
	}
	for _, size := range []int{64 << 10, 512 << 10, maxPayload} {
		p := phone()
		list = append(list, poison{fmt.Sprintf("%d-byte payload", size), func(msgID string) []byte {
			n := size
			if msgID != "" && size == maxPayload {
				n -= msgIDHeaderLen(msgID) // headers and payload share max_payload
			}
			return oversized(fmt.Sprintf("px-big-%d", size), p, n)
		}})
	}
	s.WatchPhones(phones...)
	for i, p := range list {
		s.PublishPoison(p.name+", no Nats-Msg-Id", p.data(""), "")
		id := fmt.Sprintf("poison-%02d", i)
		if !s.PublishPoison(p.name+", Nats-Msg-Id", p.data(id), id) {
			t.Fatalf("poison %q with Nats-Msg-Id %s dropped as a duplicate", p.name, id)
		}
	}
	s.Enqueue(good[valid/2:])
	s.FaultEnded(time.Now())
	s.WaitDrained(pick(60*time.Second, 120*time.Second))
	s.Finish()
	if done := s.CompletedOf(good); done != valid {
		t.Errorf("%d of %d valid contacts completed: poison must not hurt its neighbours", done, valid)
	}
}
