package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// natsServerPkg resolves through the tool directive in go.mod: the benchmark runs the server
// version the project pins. It is built with `go build` (not run with `go tool`) so that the
// process whose CPU is read is the server itself, not the go command wrapping it.
const natsServerPkg = "github.com/nats-io/nats-server/v2"

// BuildNATSServer compiles the pinned nats-server into dir, or returns NATS_SERVER_BIN when set.
func BuildNATSServer(ctx context.Context, dir string) (string, error) {
	if bin := os.Getenv("NATS_SERVER_BIN"); bin != "" {
		return bin, nil
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the benchmark builds nats-server with the go command: %w", err)
	}
	out := filepath.Join(dir, "nats-server")
	if msg, err := exec.CommandContext(ctx, goCmd, "build", "-o", out, natsServerPkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", natsServerPkg, err, msg)
	}
	return out, nil
}

// NATSServer is one nats-server process with JetStream on loopback and its HTTP monitor.
type NATSServer struct {
	Port, MonitorPort int
	Sync              string // the sync_interval in effect: "always" or "default"

	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	http    *http.Client
}

// natsConf is the server's configuration. By default the server keeps its own sync interval;
// BENCH_SYNC=always sets deploy/nats.conf's sync_interval: always (every acknowledged write
// is on disk before the ack), which makes the figures depend on the disk's fsync latency.
const natsConf = `listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
  store_dir: %q
%s}
`

// StartNATS starts nats-server with its store and log in dir and waits until JetStream is
// healthy. sync is "always" or "default".
func StartNATS(bin, dir, sync string) (*NATSServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	mon, err := freePort()
	if err != nil {
		return nil, err
	}
	syncLine := ""
	if sync == "always" {
		syncLine = "  sync_interval: always\n"
	}
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, natsConf, port, mon, filepath.Join(dir, "jetstream"), syncLine), 0o600); err != nil {
		return nil, err
	}
	s := &NATSServer{Port: port, MonitorPort: mon, Sync: sync, done: make(chan struct{}),
		logPath: filepath.Join(dir, "nats-server.log"), http: &http.Client{Timeout: 5 * time.Second}}
	out, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "-c", conf)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	// Own process group; Pdeathsig: a benchmark binary that dies takes the server with it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start nats-server: %w", err)
	}
	go func() {
		_ = s.cmd.Wait()
		out.Close()
		close(s.done)
	}()
	healthz := fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", mon)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.logPath)
			return nil, fmt.Errorf("nats-server exited at start:\n%s", b)
		default:
		}
		if resp, err := s.http.Get(healthz); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, errors.New("nats-server not healthy after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL is the client URL.
func (s *NATSServer) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.Port) }

// Pid is the server's process id.
func (s *NATSServer) Pid() int { return s.cmd.Process.Pid }

// Stop sends SIGTERM, waits up to 10 s, then kills the process group.
func (s *NATSServer) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(s.Pid(), syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.Pid(), syscall.SIGKILL)
		<-s.done
	}
}

// jsz is the part of the monitor's /jsz?streams=true the benchmark reads.
type jsz struct {
	API struct {
		Total  uint64 `json:"total"`
		Errors uint64 `json:"errors"`
	} `json:"api"`
	AccountDetails []struct {
		StreamDetail []struct {
			Name  string `json:"name"`
			State struct {
				Msgs uint64 `json:"messages"`
			} `json:"state"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

// streamMsgs returns the stored messages of each stream.
func (j *jsz) streamMsgs() map[string]uint64 {
	m := map[string]uint64{}
	for _, a := range j.AccountDetails {
		for _, s := range a.StreamDetail {
			m[s.Name] = s.State.Msgs
		}
	}
	return m
}

// varz is the part of /varz the benchmark reads.
type varz struct {
	InMsgs  uint64 `json:"in_msgs"`
	OutMsgs uint64 `json:"out_msgs"`
}

func (s *NATSServer) get(path string, v any) error {
	resp, err := s.http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", s.MonitorPort, path))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("monitor %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// JSZ reads /jsz with stream details.
func (s *NATSServer) JSZ() (jsz, error) {
	var j jsz
	err := s.get("/jsz?streams=true", &j)
	return j, err
}

// VarZ reads /varz.
func (s *NATSServer) VarZ() (varz, error) {
	var v varz
	err := s.get("/varz", &v)
	return v, err
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go runs on (it is fixed by the kernel ABI, not by CONFIG_HZ).
const clockTick = 10 * time.Millisecond

// procCPU is the user plus system CPU time of process pid, all threads, from /proc.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(b))
}

// parseProcStat reads utime and stime (fields 14 and 15) of a /proc/<pid>/stat line. The
// command name (field 2) is in parentheses and may hold spaces, so fields are counted after
// its closing parenthesis.
func parseProcStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: %w", err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// selfCPU is this process's user plus system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
