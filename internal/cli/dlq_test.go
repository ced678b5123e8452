package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/queue"
)

// seedDeadLetters writes three dead letters as workers would.
func seedDeadLetters(t *testing.T, js jetstream.JetStream) config.Topology {
	t.Helper()
	ctx := context.Background()
	topo := config.Defaults().Topology
	if _, err := queue.EnsureDeadLetterStream(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	dlq := queue.NewDeadLetterer(js, topo)
	now := time.Now()
	for i, d := range []struct{ id, reason, provider, msg string }{
		{"c1", "quota_exceeded", "ElevenLabs", "Insufficient credits"},
		{"c2", "service_unavailable", "ElevenLabs", "Service temporarily unavailable"},
		{"c3", "authentication", "LLM", "Incorrect API key provided"},
	} {
		payload, _ := json.Marshal(contact.Contact{ID: d.id, Phone: "+14155550100"})
		err := dlq.Publish(ctx, queue.DeadLetter{
			ContactID: d.id, Reason: d.reason, Provider: d.provider, LastError: d.msg, Attempts: i + 1,
			FirstFailure: now.Add(-time.Minute), LastFailure: now, Worker: "worker-a",
			OriginalSubject: topo.ContactsSubject, OriginalStream: topo.ContactsStream,
			StreamSeq: uint64(i + 1), MsgID: d.id, Payload: payload,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return topo
}

func dlqCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), "DEAD_LETTERS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func contactsFor(t *testing.T, srv *natsembed.Server) []string {
	t.Helper()
	_, js := natstest.Connect(t, srv)
	s, err := js.Stream(context.Background(), "CONTACTS")
	if err != nil {
		return nil
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			continue
		}
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
	}
	return ids
}

func TestDLQListShowsATableAndFilters(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	seedDeadLetters(t, js)

	r := publisher(t, srv, "dlq", "list")
	if r.code != 0 {
		t.Fatalf("code %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "CONTACT") || !strings.Contains(lines[0], "LAST ERROR") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	// Columns are aligned: every row starts its REASON column where the header does.
	col := strings.Index(lines[0], "REASON")
	for _, l := range lines[1:] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Fatalf("row not aligned with the header:\n%s", r.stdout)
		}
	}
	if strings.Contains(r.stdout, "+14155550100") {
		t.Fatal("the table shows a full phone number")
	}

	filters := []struct {
		args []string
		want []string
	}{
		{[]string{"--reason", "quota_exceeded"}, []string{"c1"}},
		{[]string{"--provider", "elevenlabs"}, []string{"c1", "c2"}},
		{[]string{"--provider", "LLM", "--reason", "authentication"}, []string{"c3"}},
		{[]string{"--since", "1h"}, []string{"c1", "c2", "c3"}},
		{[]string{"--since", "2999-01-01"}, nil},
	}
	for _, f := range filters {
		r := publisher(t, srv, append([]string{"dlq", "list", "--json"}, f.args...)...)
		if r.code != 0 {
			t.Fatalf("%v: code %d: %s", f.args, r.code, r.stderr)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if line == "" {
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("%v: not JSON lines: %q", f.args, r.stdout)
			}
			for _, k := range []string{"contact_id", "reason", "provider", "attempts", "last_error", "first_failure", "last_failure", "worker", "original_subject", "stream_seq", "msg_id", "dead_lettered_at"} {
				if _, ok := rec[k]; !ok {
					t.Fatalf("%v: record lacks %s: %s", f.args, k, line)
				}
			}
			got = append(got, rec["contact_id"].(string))
		}
		if fmt.Sprint(got) != fmt.Sprint(f.want) {
			t.Errorf("dlq list %v = %v, want %v", f.args, got, f.want)
		}
	}
	if r := publisher(t, srv, "dlq", "list", "--since", "yesterday"); r.code == 0 || !strings.Contains(r.stderr, "--since") {
		t.Fatalf("a bad --since was accepted: %d %s", r.code, r.stderr)
	}
}

func TestDLQReplayDryRunThenLimitThenFilter(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	seedDeadLetters(t, js)

	r := publisher(t, srv, "dlq", "replay", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "would replay 3") || dlqCount(t, js) != 3 || len(contactsFor(t, srv)) != 0 {
		t.Fatalf("dry run changed something or said otherwise: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = publisher(t, srv, "dlq", "replay", "--provider", "ElevenLabs", "--limit", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "replayed 1 ") {
		t.Fatalf("replay --limit 1: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := contactsFor(t, srv); fmt.Sprint(got) != "[c1.replay.DEAD_LETTERS.1]" {
		t.Fatalf("contacts after replaying c1 = %v", got)
	}
	if got := dlqCount(t, js); got != 2 {
		t.Fatalf("dead letters left = %d, want 2", got)
	}
	r = publisher(t, srv, "dlq", "replay", "--reason", "authentication")
	if r.code != 0 || dlqCount(t, js) != 1 {
		t.Fatalf("replay --reason: %d %s, %d left", r.code, r.stderr, dlqCount(t, js))
	}
}

func TestInterruptedReplayRerunEnqueuesEachContactOnce(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	topo := seedDeadLetters(t, js)
	ctx := context.Background()
	if _, err := queue.EnsureContactsStream(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	// The first run published c1 and c2 and died before removing them from the dead letters.
	var first []queue.DeadLetter
	if err := queue.EachDeadLetter(ctx, js, topo, queue.DeadLetterFilter{Limit: 2}, func(dl queue.DeadLetter) error {
		first = append(first, dl)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, dl := range first {
		m, err := queue.NewContactMsg(topo.ContactsSubject, queue.ReplayMsgID(topo, dl), contact.Contact{ID: dl.ContactID, Phone: "+14155550100"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	r := publisher(t, srv, "dlq", "replay")
	if r.code != 0 || !strings.Contains(r.stdout, "replayed 3 dead letter(s)") || !strings.Contains(r.stdout, "(2 already enqueued") {
		t.Fatalf("rerun: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := contactsFor(t, srv); len(got) != 3 {
		t.Fatalf("contacts stream holds %v; each contact must be enqueued once", got)
	}
	if got := dlqCount(t, js); got != 0 {
		t.Fatalf("%d dead letters left after the rerun", got)
	}
}

func TestDLQPurgeAsksFirst(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	topo := seedDeadLetters(t, js)
	if _, err := queue.EnsureContactsStream(context.Background(), js, topo); err != nil {
		t.Fatal(err)
	}

	r := publisherWithInput(t, srv, "n\n", "dlq", "purge", "--reason", "quota_exceeded")
	if r.code == 0 || !strings.Contains(r.stderr, "Delete 1 dead letter(s)") || dlqCount(t, js) != 3 {
		t.Fatalf("answering no: code %d, %d left\n%s", r.code, dlqCount(t, js), r.stderr)
	}
	r = publisherWithInput(t, srv, "y\n", "dlq", "purge", "--reason", "quota_exceeded")
	if r.code != 0 || dlqCount(t, js) != 2 {
		t.Fatalf("answering yes: code %d, %d left\n%s", r.code, dlqCount(t, js), r.stderr)
	}
	r = publisher(t, srv, "dlq", "purge", "--provider", "llm", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "purged 1") || dlqCount(t, js) != 1 {
		t.Fatalf("--yes: code %d, %d left\n%s%s", r.code, dlqCount(t, js), r.stdout, r.stderr)
	}
	r = publisher(t, srv, "status", "--json")
	if !strings.Contains(r.stdout, `"dead_lettered":1`) {
		t.Fatalf("status does not count dead letters: %s", r.stdout)
	}
}

// One message of the dead-letter stream that is not a readable dead letter (no Dlq-Reason,
// a bad header) must not block list, replay or purge of the others: it is skipped and
// counted on stderr.
func TestDLQSkipsUnreadableDeadLetters(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	topo := seedDeadLetters(t, js)
	for _, h := range []nats.Header{{"Other": {"x"}}, {queue.HeaderReason: {"timeout"}, queue.HeaderAttempts: {"many"}}} {
		m := nats.NewMsg(topo.DeadLetterSubject)
		m.Header, m.Data = h, []byte("{}")
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}

	r := publisher(t, srv, "dlq", "list")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 4 || !strings.Contains(r.stderr, "skipped 2 unreadable dead letter(s)") {
		t.Fatalf("list: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = publisher(t, srv, "dlq", "replay")
	if r.code != 0 || !strings.Contains(r.stdout, "replayed 3 ") || !strings.Contains(r.stderr, "skipped 2 unreadable dead letter(s)") ||
		len(contactsFor(t, srv)) != 3 || dlqCount(t, js) != 2 {
		t.Fatalf("replay: code %d, %d dead letters left\n%s%s", r.code, dlqCount(t, js), r.stdout, r.stderr)
	}
	r = publisher(t, srv, "dlq", "purge", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "no dead letters match") || !strings.Contains(r.stderr, "skipped 2 unreadable dead letter(s)") {
		t.Fatalf("purge: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
