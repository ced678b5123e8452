package daemon_test

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/cli"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/provider/providertest"
	"github.com/callagent/resilience/internal/testwait"
)

// childWorkerEnv makes the test binary run the real worker command instead of the tests, so
// a test can start a worker as a separate process and kill it.
const childWorkerEnv = "CALLAGENT_TEST_CHILD_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(childWorkerEnv) == "1" {
		os.Exit(cli.Execute(cli.NewWorkerCommand(os.LookupEnv, os.Stdout), nil, os.Stderr))
	}
	// Every goroutine the worker starts must have stopped when its test ends.
	goleak.VerifyTestMain(m, natstest.IgnoreLibraryLeaks()...)
}

func TestWorkerKilledMidContactLosesNothingAndPaysNothingTwice(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	f := newFakes(t)
	cfg := realConfig(srv, f)
	cfg.TTSFallback.Kind = "none"
	cfg.Topology.AckWait = 3 * time.Second // the shortest the configuration accepts
	enqueue(t, js, cfg, 1)

	// The first text-to-speech call never answers: the worker is mid-contact, the script
	// already paid for and checkpointed, when it is killed.
	f.eleven.Enqueue(providertest.Reply{Hang: true})
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(),
		childWorkerEnv+"=1",
		"ENV_FILE=", "LOG_FILE=", "SIMULATE=", "WORKER_ID=child", "METRICS_ADDR=127.0.0.1:0",
		"NATS_URL="+srv.ClientURL(),
		"ACK_WAIT=3s",
		"LLM_API_KEY="+llmKey, "LLM_BASE_URL="+f.openai.BaseURL(),
		"ELEVENLABS_API_KEY="+elKey, "ELEVENLABS_VOICE_ID=voice-1", "ELEVENLABS_BASE_URL="+f.eleven.URL(),
		"CRM_WEBHOOK_URL="+f.crm.WebhookURL(),
	)
	out := &syncBuffer{}
	child.Stdout, child.Stderr = out, out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() {
		waitErr = child.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = child.Process.Kill()
		<-exited
	})
	testwait.Eventually(t, 60*time.Second, "the child worker inside the TTS call", func() (bool, string) {
		return f.eleven.Calls() == 1, out.String()
	})
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if err := waitErr; err == nil {
		t.Fatal("the child exited cleanly; it should have been killed")
	}
	if f.openai.Calls() != 1 {
		t.Fatalf("LLM called %d times before the kill, want 1", f.openai.Calls())
	}

	// Another worker takes over after AckWait and resumes from the checkpoint.
	startRealWorker(t, cfg, &syncBuffer{})
	testwait.Eventually(t, 60*time.Second, "the contact completed after the crash", completedAndIdle(t, js, cfg, 1))
	if got := f.openai.Calls(); got != 1 {
		t.Errorf("LLM called %d times in all, want 1: the script was checkpointed before the kill", got)
	}
	if got := f.eleven.Calls(); got != 2 {
		t.Errorf("ElevenLabs called %d times, want 2 (the call cut by the kill, then one)", got)
	}
	if got := len(f.crm.Recorded()); got != 1 {
		t.Errorf("CRM recorded the call %d times, want once", got)
	}
	if st := statusOf(t, js, cfg); st.DeadLettered != 0 {
		t.Errorf("the crash dead-lettered the contact: %+v", st)
	}
}
