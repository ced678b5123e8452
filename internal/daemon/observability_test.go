package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/cli"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/testwait"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrape reads /metrics into sample line → value, e.g.
// `callagent_dead_letters_total{reason="quota_exceeded"}` → 1.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsAfterAScriptedOutage(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "worker-a")
	cfg.Worker.Concurrency = 1
	cfg.Metrics.Addr = freeAddr(t)
	var mu sync.Mutex
	recovered, quota := false, false
	tts := &scriptedTTS{
		respond: func(n int) error {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case quota:
				return fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 402, Code: "insufficient_credits"})
			case n <= 3:
				return unavailable503()
			}
			return nil
		},
		probe: func() error {
			mu.Lock()
			defer mu.Unlock()
			if !recovered {
				return unavailable503()
			}
			return nil
		},
	}
	var llm calls
	out := &syncBuffer{}
	enqueue(t, js, cfg, 3)
	startWorker(t, cfg, withTTS(&llm, tts), out)
	testwait.Eventually(t, 30*time.Second, "the breaker to open", func() (bool, string) {
		return strings.Contains(out.String(), "Circuit breaker OPENED for ElevenLabs"), ""
	})
	mu.Lock()
	recovered = true
	mu.Unlock()
	testwait.Eventually(t, 30*time.Second, "the outage contacts completed", completedAndIdle(t, js, cfg, 3))
	mu.Lock()
	quota = true
	mu.Unlock()
	m, err := newContactMsg(cfg, "c-quota")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 30*time.Second, "the quota contact dead-lettered", settled(t, js, cfg, 4))

	got := scrape(t, cfg.Metrics.Addr)
	want := map[string]float64{
		`callagent_breaker_transitions_total{from="closed",provider="ElevenLabs",to="open"}`:     1,
		`callagent_breaker_recovery_seconds_count{provider="ElevenLabs"}`:                        1,
		`callagent_provider_retries_total{category="service_unavailable",provider="ElevenLabs"}`: 2,
		`callagent_dead_letters_total{reason="quota_exceeded"}`:                                  1,
		`callagent_contacts_processed_total{outcome="completed"}`:                                3,
		`callagent_contacts_processed_total{outcome="dead_lettered"}`:                            1,
		`callagent_breaker_state{provider="ElevenLabs"}`:                                         0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if got[`callagent_breaker_open_seconds_total{provider="ElevenLabs"}`] <= 0 {
		t.Error("no time counted in OPEN")
	}
	resp, err := http.Get("http://" + cfg.Metrics.Addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("/readyz = %d %q", resp.StatusCode, body)
	}
}

func TestStatusShowsABreakerThatAnotherWorkerProcessOpened(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := testConfig(srv, "child")
	enqueue(t, js, cfg, 1)

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childWorkerEnv+"=1",
		"ENV_FILE=", "LOG_FILE=", "WORKER_ID=child", "METRICS_ADDR=", "NATS_URL="+srv.ClientURL(),
		"SIMULATE=tts-503", "SIM_TTS_OUTAGE=1h", "SIM_LATENCY=1ms", "RETRY_INITIAL_DELAY=10ms",
		"BREAKER_OPEN_TIMEOUT=1h", "HEALTH_CHECK_INTERVAL=1h")
	out := &syncBuffer{}
	child.Stdout, child.Stderr = out, out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = child.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = child.Process.Kill()
		<-exited
	})

	var last string
	testwait.Eventually(t, 60*time.Second, "publisher status to show ElevenLabs OPEN on the child", func() (bool, string) {
		var stdout, stderr strings.Builder
		cmd := cli.NewPublisherCommand(func(k string) (string, bool) {
			v, ok := map[string]string{"NATS_URL": srv.ClientURL(), "LOG_FILE": ""}[k]
			return v, ok
		}, &stdout, &stderr)
		if code := cli.Execute(cmd, []string{"status", "--json"}, &stderr); code != 0 {
			return false, stderr.String() + out.String()
		}
		last = stdout.String()
		var st struct {
			Breakers []struct {
				Provider string   `json:"provider"`
				State    string   `json:"state"`
				Open     []string `json:"open"`
			} `json:"breakers"`
			Workers []string `json:"workers"`
		}
		if err := json.Unmarshal([]byte(last), &st); err != nil {
			return false, fmt.Sprintf("%v: %s", err, last)
		}
		for _, b := range st.Breakers {
			if b.Provider == "ElevenLabs" && b.State == "OPEN" && len(b.Open) == 1 && b.Open[0] == "child" {
				return true, last
			}
		}
		return false, last
	})
}
