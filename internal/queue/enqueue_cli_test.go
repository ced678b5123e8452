package queue_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/cli"
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/natstest"
)

// runPublisher runs `publisher args...` in process against srv with ctx as its context.
func runPublisher(ctx context.Context, srv *natsembed.Server, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	vars := map[string]string{"LOG_FILE": "", "NATS_URL": srv.ClientURL()}
	cmd := cli.NewPublisherCommand(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, &out, &errOut)
	cmd.SetContext(ctx)
	code = cli.Execute(cmd, args, &errOut)
	return code, out.String(), errOut.String()
}

func writeContacts(t *testing.T, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEnqueueInterruptedPrintsWhatWasEnqueued interrupts `publisher enqueue` while it
// publishes: it stops, and prints counts that add up to the file and match the stream.
func TestEnqueueInterruptedPrintsWhatWasEnqueued(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	const n = 50_000
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"id":"i-%06d","phone":"+1415555%04d"}`, i, i%10000)
	}
	file := writeContacts(t, "contacts.ndjson", lines...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // interrupt once some contacts are stored
		for ctx.Err() == nil {
			if s, err := js.Stream(ctx, "CONTACTS"); err == nil {
				if info, err := s.Info(ctx); err == nil && info.State.Msgs >= 200 {
					cancel()
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	code, stdout, stderr := runPublisher(ctx, srv, "enqueue", file)
	m := regexp.MustCompile(`interrupted: (\d+) enqueued, 0 duplicates, (\d+) unconfirmed, (\d+) not published, 0 rejected`).FindStringSubmatch(stdout)
	if code != 130 || m == nil || !strings.Contains(stderr, "rerunning the same command is safe") {
		t.Fatalf("code %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	t.Logf("%s%s", stderr, stdout)
	enqueued, _ := strconv.Atoi(m[1])
	unconfirmed, _ := strconv.Atoi(m[2])
	notPublished, _ := strconv.Atoi(m[3])
	if enqueued < 200 || enqueued+unconfirmed+notPublished != n || notPublished == 0 {
		t.Fatalf("counts %v do not add up to %d", m[1:], n)
	}
	s, err := js.Stream(context.Background(), "CONTACTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := int(info.State.Msgs); got < enqueued || got > enqueued+unconfirmed {
		t.Fatalf("stream holds %d messages; printed %d enqueued, %d unconfirmed", got, enqueued, unconfirmed)
	}

	// Rerunning finishes the job: the rest is enqueued, what was there is a duplicate.
	code, stdout, stderr = runPublisher(context.Background(), srv, "enqueue", file)
	want := fmt.Sprintf("%d enqueued, %d duplicates, 0 rejected", n-int(info.State.Msgs), info.State.Msgs)
	if code != 0 || !strings.Contains(stdout, want) {
		t.Fatalf("rerun: code %d, want %q\nstdout: %s\nstderr: %s", code, want, stdout, stderr)
	}
}

// TestEnqueueSkipInvalidSkipsRepeatedIDs: with --skip-invalid, the second contact of a
// repeated id is listed and not published, the others are published as they are in the file.
func TestEnqueueSkipInvalidSkipsRepeatedIDs(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	file := writeContacts(t, "contacts.ndjson",
		`{"id":"r1","phone":"+14155550101"}`,
		``,
		`{"id":"r2", "phone":"+14155550102", "variables": {"topic": "caf\u00e9"}}`,
		`{"id":"r1","phone":"+14155550103"}`,
		`{"id":"r3","phone":"+1 415 555 0104"}`,
		`{"id":"r4","phone":"+14155550104"}`,
	)
	code, stdout, stderr := runPublisher(context.Background(), srv, "enqueue", "--skip-invalid", file)
	if code != 0 || !strings.Contains(stdout, "3 enqueued, 0 duplicates, 2 rejected") ||
		!strings.Contains(stderr, `contact #3 (line 4): id: "r1" repeats contact #1 (line 1)`) || !strings.Contains(stderr, "line 5") {
		t.Fatalf("code %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	s, err := js.Stream(context.Background(), "CONTACTS")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for seq := uint64(1); seq <= 3; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(m.Data))
	}
	want := []string{`{"id":"r1","phone":"+14155550101"}`, `{"id":"r2", "phone":"+14155550102", "variables": {"topic": "caf\u00e9"}}`, `{"id":"r4","phone":"+14155550104"}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stream holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
