package cli_test

import (
	"strings"
	"testing"

	"github.com/callagent/resilience/internal/natstest"
)

// Every numeric flag and --reason is checked before anything connects or changes: a bad
// value is a usage error (exit 2) naming the flag, the value, and what is allowed.
func TestBadFlagValuesAreUsageErrors(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	seedDeadLetters(t, js)

	for _, tc := range []struct {
		args []string
		want []string // each in stderr
	}{
		{[]string{"status", "--watch", "--interval", "0"}, []string{"--interval 0s", "at least 100ms"}},
		{[]string{"status", "--watch", "--interval", "-2s"}, []string{"--interval -2s", "at least 100ms"}},
		{[]string{"status", "--interval", "1ms"}, []string{"--interval 1ms"}},
		{[]string{"wait", "--timeout", "-5s"}, []string{"--timeout -5s", "must not be negative"}},
		{[]string{"dlq", "list", "--limit", "-1"}, []string{"--limit -1", "must not be negative", "0 means no limit"}},
		{[]string{"dlq", "replay", "--limit", "-3"}, []string{"--limit -3"}},
		{[]string{"dlq", "list", "--reason", "quota"}, []string{`--reason "quota"`, "quota_exceeded", "max_deliveries", "circuit_open", "service_unavailable"}},
		{[]string{"dlq", "replay", "--reason", "quota"}, []string{`--reason "quota"`}},
		{[]string{"dlq", "purge", "--yes", "--reason", "elevenlabs"}, []string{`--reason "elevenlabs"`}},
		{[]string{"dlq", "list", "--since", "-5h"}, []string{`--since "-5h"`}},
		{[]string{"dlq", "list", "--limit", "ten"}, []string{`"ten"`, "--limit"}},
		{[]string{"status", "--interval", "soon"}, []string{`"soon"`, "--interval"}},
	} {
		r := publisher(t, srv, tc.args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2\nstdout: %s\nstderr: %s", tc.args, r.code, r.stdout, r.stderr)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%v: stderr lacks %q: %s", tc.args, w, r.stderr)
			}
		}
	}
	if got := dlqCount(t, js); got != 3 {
		t.Fatalf("a rejected command changed the dead letters: %d left, want 3", got)
	}
	if got := len(contactsFor(t, srv)); got != 0 {
		t.Fatalf("a rejected command enqueued %d contacts", got)
	}

	// The boundaries are accepted, and a reason matches whatever its case.
	r := publisher(t, srv, "dlq", "list", "--json", "--limit", "0", "--reason", "QUOTA_EXCEEDED")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, `"contact_id":"c1"`) {
		t.Fatalf("--reason QUOTA_EXCEEDED: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r := publisher(t, srv, "dlq", "replay", "--dry-run", "--limit", "1"); r.code != 0 || !strings.Contains(r.stdout, "would replay 1 ") {
		t.Fatalf("replay --limit 1: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := publisher(t, srv, "dlq", "list", "--reason", "unknown"); r.code != 0 {
		t.Fatalf("--reason unknown (a dead letter stored without a reason): exit %d %s", r.code, r.stderr)
	}
}

// wait --timeout 0 checks once without waiting: exit 0 when idle, 3 when not.
func TestWaitTimeoutZeroChecksOnce(t *testing.T) {
	srv := natstest.Start(t)
	if r := publisher(t, srv, "enqueue", writeFile(t, "c.json", validArray)); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := publisher(t, srv, "wait", "--timeout", "0", "--json")
	if r.code != 3 || !strings.Contains(r.stdout, `"pending":3`) || !strings.Contains(r.stderr, "queue still busy after 0s") {
		t.Fatalf("busy queue: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}
