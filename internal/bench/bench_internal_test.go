package bench

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// These tests are quick: they check the benchmark's parts, never run it.

func TestParseProcStat(t *testing.T) {
	// Field 2 may hold spaces and parentheses; utime and stime are fields 14 and 15.
	line := "4242 (nats (x) server) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 9 0 100 0 0"
	got, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 175 * clockTick; got != want {
		t.Fatalf("parseProcStat = %v, want %v", got, want)
	}
	if _, err := parseProcStat("4242 (x) S 1"); err == nil {
		t.Fatal("a short line parsed")
	}
}

func TestContactRef(t *testing.T) {
	for body, want := range map[string]int{
		`{"content":"Facts:\n- clinic: X\n- ref: c0000123\nSay"}`: 123,
		`{"content":"- ref: c0000000"}`:                           0,
		`{"content":"no ref here"}`:                               -1,
		`{"content":"- ref: c"}`:                                  -1,
	} {
		if got := contactRef([]byte(body)); got != want {
			t.Errorf("contactRef(%s) = %d, want %d", body, got, want)
		}
	}
}

func TestFakesCountRepeatsAndOutage(t *testing.T) {
	f := newFakes()
	run := &fakeRun{outage: time.Hour, paid: make([]atomic.Int32, 2)}
	f.run.Store(run)
	llm := httptest.NewServer(http.HandlerFunc(f.llm))
	defer llm.Close()
	tts := httptest.NewServer(http.HandlerFunc(f.tts))
	defer tts.Close()

	chat := func(ref string) int {
		resp, err := http.Post(llm.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"x":"- ref: `+ref+`\n"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	speak := func() int {
		resp, err := http.Post(tts.URL+"/v1/text-to-speech/voice-1?output_format=mp3_44100_128", "application/json", strings.NewReader(`{"text":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	chat("c0000000")
	chat("c0000001")
	chat("c0000001")
	if s := run.stats(); s.LLMCalls != 3 || s.LLMRepeats != 1 || s.LLMUnknown != 0 {
		t.Fatalf("after 3 chats, one repeated: %+v", s)
	}
	if got := speak(); got != http.StatusOK {
		t.Fatalf("TTS before the start answered %d: the outage starts with the run", got)
	}
	run.started.Store(time.Now().UnixNano())
	if got := speak(); got != http.StatusServiceUnavailable {
		t.Fatalf("TTS during the outage answered %d, want 503", got)
	}
	resp, err := http.Get(tts.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := run.stats(); s.TTSCalls != 2 || s.TTSOutageCalls != 1 || s.TTSProbes != 1 || s.TTSOutageProbes != 1 {
		t.Fatalf("TTS counters: %+v", s)
	}
}

func TestMessageKind(t *testing.T) {
	for _, c := range []struct {
		subject, reply, data, want string
	}{
		{"$JS.API.CONSUMER.MSG.NEXT.CONTACTS.workers", "_INBOX.x", "", "pull request ($JS.API.CONSUMER.MSG.NEXT)"},
		{"$JS.API.DIRECT.GET.KV_checkpoints.$KV.checkpoints.c1", "_INBOX.x", "", "direct get ($JS.API.DIRECT.GET, KV read)"},
		{"$JS.API.STREAM.INFO.OBJ_audio", "_INBOX.x", "", "JetStream API $JS.API.STREAM.INFO"},
		{"$JS.ACK.CONTACTS.workers.1.2.3.4.0", "_INBOX.x", "+ACK", "ack (awaiting confirmation)"},
		{"$JS.ACK.BARE.bare.1.2.3.4.0", "", "-NAK", "nak"},
		{"$JS.ACK.BARE.bare.1.2.3.4.0", "", "+WPI", "in-progress"},
		{"$KV.checkpoints.c0000001", "_INBOX.x", "{}", "KV write checkpoints"},
		{"$O.audio.C.abc", "_INBOX.x", "", "Object Store chunk audio"},
		{"$O.audio.M.abc", "_INBOX.x", "", "Object Store meta audio"},
		{"contacts.queue", "$JS.ACK.CONTACTS.workers.1.1.1.1.0", "{}", ""}, // a delivery
		{"_INBOX.abc.1", "", "{}", ""},
		{"bare.deadletter", "_INBOX.x", "{}", "publish bare.deadletter"},
	} {
		m := &nats.Msg{Subject: c.subject, Reply: c.reply, Data: []byte(c.data)}
		if got := messageKind(m); got != c.want {
			t.Errorf("messageKind(%s %q) = %q, want %q", c.subject, c.data, got, c.want)
		}
	}
}

func TestReportHelpers(t *testing.T) {
	if got := group(1234567.891, 2); got != "1,234,567.89" {
		t.Errorf("group = %q", got)
	}
	if got := group(999, 0); got != "999" {
		t.Errorf("group = %q", got)
	}
	if got := group(math.NaN(), 1); got != "–" {
		t.Errorf("group(NaN) = %q", got)
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median = %v", got)
	}
	o := Outcome{Scenario: Scenarios()[0],
		Bare:   []Result{{Contacts: 100, Elapsed: time.Second, Drained: true, Completed: 100}},
		Worker: []Result{{Contacts: 100, Elapsed: 2 * time.Second, Drained: true, Completed: 100}}}
	if r := o.RateRatio(); r != 0.5 {
		t.Errorf("RateRatio = %v, want 0.5", r)
	}
	ts := Targets([]Outcome{o})
	if len(ts) != 1 || ts[0].Met || !ts[0].Known || ts[0].Measured != "0.50×" {
		t.Errorf("Targets = %+v", ts)
	}
}
