package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/cli"
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/natstest"
)

type result struct {
	code           int
	stdout, stderr string
}

func env(vars map[string]string) cli.Env {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func publisher(t *testing.T, srv *natsembed.Server, args ...string) result {
	t.Helper()
	return publisherWithInput(t, srv, "", args...)
}

// publisherWithInput runs the publisher in process against srv with stdin as its input.
func publisherWithInput(t *testing.T, srv *natsembed.Server, stdin string, args ...string) result {
	t.Helper()
	return runPublisher(t, map[string]string{"LOG_FILE": "", "NATS_URL": srv.ClientURL()}, stdin, args...)
}

// runPublisher runs the publisher in process with vars as its environment.
func runPublisher(t *testing.T, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := cli.NewPublisherCommand(env(vars), &out, &errOut)
	cmd.SetIn(strings.NewReader(stdin))
	code := cli.Execute(cmd, args, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func streamMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), "CONTACTS")
	if err != nil {
		return 0
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

const validArray = `[
  {"id": "c1", "name": "Ada", "phone": "+14155550101"},
  {"id": "c2", "name": "Bob", "phone": "+14155550102", "language": "en-US", "variables": {"topic": "renewal"}},
  {"id": "c3", "phone": "+442071838750"}
]`

func TestEnqueueTwiceCreatesNoDuplicateWork(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	file := writeFile(t, "contacts.json", validArray)

	first := publisher(t, srv, "enqueue", file)
	if first.code != 0 || !strings.Contains(first.stdout, "3 enqueued, 0 duplicates, 0 rejected") {
		t.Fatalf("first enqueue: code %d\nstdout: %s\nstderr: %s", first.code, first.stdout, first.stderr)
	}
	second := publisher(t, srv, "enqueue", file)
	if second.code != 0 || !strings.Contains(second.stdout, "0 enqueued, 3 duplicates, 0 rejected") {
		t.Fatalf("second enqueue: code %d\nstdout: %s\nstderr: %s", second.code, second.stdout, second.stderr)
	}
	if got := streamMsgs(t, js); got != 3 {
		t.Fatalf("stream holds %d messages, want 3", got)
	}
	st := publisher(t, srv, "status", "--json")
	var got struct {
		Pending      *uint64 `json:"pending"`
		InProgress   *uint64 `json:"in_progress"`
		Completed    *uint64 `json:"completed"`
		DeadLettered *uint64 `json:"dead_lettered"`
	}
	if err := json.Unmarshal([]byte(st.stdout), &got); err != nil || got.Pending == nil || got.InProgress == nil ||
		got.Completed == nil || got.DeadLettered == nil {
		t.Fatalf("status --json printed %q: %v", st.stdout, err)
	}
	counts := map[string]uint64{"pending": *got.Pending, "in_progress": *got.InProgress, "completed": *got.Completed, "dead_lettered": *got.DeadLettered}
	want := map[string]uint64{"pending": 3, "in_progress": 0, "completed": 0, "dead_lettered": 0}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("status --json = %v, want %v", counts, want)
	}
}

func TestEnqueueNDJSON(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	file := writeFile(t, "contacts.ndjson", `{"id":"n1","phone":"+14155550101"}

{"id":"n2","phone":"+14155550102","name":"Nia"}
`)
	r := publisher(t, srv, "enqueue", file)
	if r.code != 0 || !strings.Contains(r.stdout, "2 enqueued") {
		t.Fatalf("code %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if got := streamMsgs(t, js); got != 2 {
		t.Fatalf("stream holds %d messages, want 2", got)
	}
}

func TestEnqueueBadInputPublishesNothing(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cases := []struct {
		name, file, body string
		want             []string // each must appear in stderr
	}{
		{"malformed JSON", "bad.json", "[\n{\"id\":\"a\",\"phone\":\"+14155550101\"},\n{\"id\": \"b\", \"phone\": }\n]", []string{"line 3"}},
		{"wrong type", "type.json", `[{"id":"a","phone":14155550101}]`, []string{"phone"}},
		{"missing id", "noid.ndjson", "{\"phone\":\"+14155550101\"}\n", []string{"line 1", "id"}},
		{"missing phone", "nophone.json", `[{"id":"a"}]`, []string{"phone"}},
		{"invalid phone", "phone.json", "[\n{\"id\":\"a\",\"phone\":\"+1 (415) 555-0101\"}\n]", []string{"phone", "E.164"}},
		{"repeated id", "dup.ndjson", "{\"id\":\"a\",\"phone\":\"+14155550101\"}\n{\"id\":\"a\",\"phone\":\"+14155550102\"}\n", []string{"line 2", "line 1"}},
		{"empty file", "empty.json", "", []string{"empty.json"}},
		{"unknown field", "unknown.json", `[{"id":"a","phone":"+14155550101","phone_number":"x"}]`, []string{"phone_number"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, tc.file, tc.body)
			r := publisher(t, srv, "enqueue", file)
			if r.code == 0 {
				t.Fatalf("exit code 0 for %s; stdout: %s", tc.name, r.stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not name %q:\n%s", w, r.stderr)
				}
			}
			if got := streamMsgs(t, js); got != 0 {
				t.Fatalf("%d messages published from a bad file, want 0", got)
			}
		})
	}
	t.Run("file does not exist", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope.json")
		r := publisher(t, srv, "enqueue", missing)
		if r.code == 0 || !strings.Contains(r.stderr, "nope.json") {
			t.Fatalf("code %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestEnqueueSkipInvalidPublishesTheValidOnes(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	file := writeFile(t, "mixed.ndjson", `{"id":"ok1","phone":"+14155550101"}
{"id":"bad","phone":"555"}
{"id":"ok2","phone":"+14155550102"}
`)
	r := publisher(t, srv, "enqueue", file)
	if r.code == 0 || !strings.Contains(r.stderr, "--skip-invalid") {
		t.Fatalf("without --skip-invalid: code %d stderr %s", r.code, r.stderr)
	}
	r = publisher(t, srv, "enqueue", "--skip-invalid", file)
	if r.code != 0 || !strings.Contains(r.stdout, "2 enqueued, 0 duplicates, 1 rejected") || !strings.Contains(r.stderr, "line 2") {
		t.Fatalf("code %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if got := streamMsgs(t, js); got != 2 {
		t.Fatalf("stream holds %d, want 2", got)
	}
}

func TestStatusBeforeAnythingExistsSaysSo(t *testing.T) {
	srv := natstest.Start(t)
	r := publisher(t, srv, "status")
	if r.code == 0 || !strings.Contains(r.stderr, "does not exist yet") {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
}

func TestStatusAfterStreamCounts(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	file := writeFile(t, "contacts.json", validArray)
	if r := publisher(t, srv, "enqueue", file); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := publisher(t, srv, "status")
	for _, w := range []string{"pending", "3", "in progress", "completed", "dead-lettered"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("status output lacks %q:\n%s", w, r.stdout)
		}
	}
	if got := streamMsgs(t, js); got != 3 {
		t.Fatalf("stream holds %d, want 3", got)
	}
}

func TestBadConfigurationIsReportedInFull(t *testing.T) {
	var out, errOut bytes.Buffer
	vars := map[string]string{"WORKER_CONCURRENCY": "abc", "RETRY_INITIAL_DELAY": "-5s", "SIMULATE": "tts-500", "LOG_FILE": ""}
	code := cli.Execute(cli.NewWorkerCommand(env(vars), &out), nil, &errOut)
	if code != 2 {
		t.Fatalf("exit code %d, want 2; stderr: %s", code, errOut.String())
	}
	for _, w := range []string{"WORKER_CONCURRENCY", "RETRY_INITIAL_DELAY", "SIMULATE"} {
		if !strings.Contains(errOut.String(), w) {
			t.Errorf("stderr does not name %s:\n%s", w, errOut.String())
		}
	}
}
