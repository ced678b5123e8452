package cli_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/testwait"
)

// noTempFilesLeft fails when dir (the TMPDIR of the test) holds anything.
func noTempFilesLeft(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("temporary file left behind: %s", e.Name())
	}
}

// "enqueue -" reads the contacts from standard input, in either format, with the same
// validation and the same summary as a file; the temporary copy is removed.
func TestEnqueueFromStdin(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)

	r := publisherWithInput(t, srv, validArray, "enqueue", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "stdin: 3 enqueued, 0 duplicates, 0 rejected") {
		t.Fatalf("JSON array on stdin: code %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	ndjson := "{\"id\":\"c1\",\"phone\":\"+14155550101\"}\n{\"id\":\"n4\",\"phone\":\"+14155550104\"}\n"
	r = publisherWithInput(t, srv, ndjson, "enqueue", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "stdin: 1 enqueued, 1 duplicates, 0 rejected") {
		t.Fatalf("NDJSON on stdin: code %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if got := streamMsgs(t, js); got != 4 {
		t.Fatalf("stream holds %d, want 4", got)
	}

	// An invalid contact on stdin publishes nothing, and is named as on stdin.
	r = publisherWithInput(t, srv, "{\"id\":\"n5\",\"phone\":\"+14155550105\"}\n{\"id\":\"bad\",\"phone\":\"555\"}\n", "enqueue", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "stdin: ") || !strings.Contains(r.stderr, "line 2") || !strings.Contains(r.stderr, "--skip-invalid") {
		t.Fatalf("invalid contact on stdin: code %d\nstderr: %s", r.code, r.stderr)
	}
	r = publisherWithInput(t, srv, "", "enqueue", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "stdin: ") {
		t.Fatalf("empty stdin: code %d\nstderr: %s", r.code, r.stderr)
	}
	if got := streamMsgs(t, js); got != 4 {
		t.Fatalf("stream holds %d after rejected input, want 4", got)
	}
	noTempFilesLeft(t, tmp)
}

// Interrupted while publishing, enqueue stops, says how many contacts it published and how
// many are in the stream, and exits 130; rerunning it enqueues the rest once.
func TestEnqueueInterruptedSaysHowManyWerePublished(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	const n = 20_000
	var input strings.Builder
	for i := range n {
		fmt.Fprintf(&input, `{"id":"i-%06d","phone":"+1415555%04d"}`+"\n", i, i%10000)
	}

	run := startPublisher(t, srv, strings.NewReader(input.String()), "enqueue", "-")
	testwait.Eventually(t, 60*time.Second, "200 contacts in the stream", func() (bool, string) {
		got := streamMsgs(t, js)
		return got >= 200, fmt.Sprintf("%d in the stream; stderr: %s", got, run.stderr)
	})
	code := run.stop(t)
	stdout, stderr := run.stdout.String(), run.stderr.String()
	m := regexp.MustCompile(`stdin: interrupted: (\d+) enqueued, 0 duplicates, (\d+) unconfirmed, (\d+) not published, 0 rejected`).FindStringSubmatch(stdout)
	published := regexp.MustCompile(`stdin: interrupted after publishing (\d+) of 20000 contacts; rerunning the same command is safe`).FindStringSubmatch(stderr)
	if code != 130 || m == nil || published == nil {
		t.Fatalf("code %d, want 130\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	t.Logf("%s%s", stderr, stdout)
	enqueued, _ := strconv.Atoi(m[1])
	unconfirmed, _ := strconv.Atoi(m[2])
	notPublished, _ := strconv.Atoi(m[3])
	sent, _ := strconv.Atoi(published[1])
	if enqueued < 200 || enqueued+unconfirmed+notPublished != n || notPublished == 0 || sent < enqueued || sent > enqueued+unconfirmed {
		t.Fatalf("counts do not add up: %d enqueued, %d unconfirmed, %d not published, %d published", enqueued, unconfirmed, notPublished, sent)
	}
	inStream := int(streamMsgs(t, js))
	if inStream < enqueued || inStream > enqueued+unconfirmed {
		t.Fatalf("stream holds %d; printed %d enqueued, %d unconfirmed", inStream, enqueued, unconfirmed)
	}
	noTempFilesLeft(t, tmp)

	// Rerunning finishes the job: the rest is enqueued, what was there is a duplicate.
	r := publisherWithInput(t, srv, input.String(), "enqueue", "-")
	want := fmt.Sprintf("stdin: %d enqueued, %d duplicates, 0 rejected", n-inStream, inStream)
	if r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Fatalf("rerun: code %d, want %q\nstdout: %s\nstderr: %s", r.code, want, r.stdout, r.stderr)
	}
	if got := streamMsgs(t, js); got != n {
		t.Fatalf("stream holds %d after the rerun, want %d", got, n)
	}
}

// Interrupted before anything is published (here: before it starts), enqueue says nothing
// was published and exits 130.
func TestEnqueueInterruptedBeforePublishing(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut syncBuffer
	r := runWithContext(ctx, srv, strings.NewReader(validArray), &out, &errOut, "enqueue", "-")
	if r != 130 || !strings.Contains(errOut.String(), "stdin: interrupted; nothing was published") {
		t.Fatalf("code %d\nstdout: %s\nstderr: %s", r, out.String(), errOut.String())
	}
	if got := streamMsgs(t, js); got != 0 {
		t.Fatalf("%d contacts published", got)
	}
}
