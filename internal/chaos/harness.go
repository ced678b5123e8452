package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/testwait"
)

// Binaries are the programs the suite runs as processes.
type Binaries struct {
	NATSServer, Worker, Publisher string
}

// Package paths of the binaries. nats-server resolves through the tool directive in go.mod,
// so the suite runs exactly the server version the project pins.
const (
	natsServerPkg = "github.com/nats-io/nats-server/v2"
	workerPkg     = "github.com/callagent/resilience/worker"
	publisherPkg  = "github.com/callagent/resilience/publisher"
)

// Build compiles the three binaries into dir, concurrently. It runs `go build` on the real
// packages instead of `go tool nats-server` so that a SIGKILL hits the server itself, not
// the go command wrapping it; the build cache makes it cheap after the first run.
func Build(ctx context.Context, dir string) (Binaries, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return Binaries{}, fmt.Errorf("the chaos suite builds its processes with the go command: %w", err)
	}
	b := Binaries{
		NATSServer: filepath.Join(dir, "nats-server"),
		Worker:     filepath.Join(dir, "worker"),
		Publisher:  filepath.Join(dir, "publisher"),
	}
	jobs := map[string]string{b.NATSServer: natsServerPkg, b.Worker: workerPkg, b.Publisher: publisherPkg}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for out, pkg := range jobs {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, goCmd, "build", "-o", out, pkg)
			if msg, err := cmd.CombinedOutput(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("go build %s: %v\n%s", pkg, err, msg))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return b, errors.Join(errs...)
}

// Proc is a child process in its own process group, its stdout and stderr in one file.
type Proc struct {
	Name    string
	LogPath string
	Started time.Time

	cmd  *exec.Cmd
	out  *os.File
	done chan struct{}
	err  error // valid once done is closed
}

// procStopWait bounds every wait for a process to exit after a signal.
const procStopWait = 15 * time.Second

// StartProc starts bin with args and exactly env (the parent's environment is not inherited,
// so a developer's NATS_URL or API key cannot leak into a run). t.Cleanup kills its process
// group and waits for it.
func StartProc(t testing.TB, name, bin string, args, env []string, logPath string) *Proc {
	t.Helper()
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(baseEnv(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group: a kill reaches whatever the child starts. Pdeathsig: a test binary
	// that dies (timeout, panic) takes its children with it instead of leaving them running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, Started: time.Now(), cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.Kill(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
	return p
}

// baseEnv is what every child gets besides its settings.
func baseEnv() []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "TMPDIR=" + os.TempDir()}
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		env = append(env, "GOMAXPROCS="+v)
	}
	return env
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, with its wait error.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Kill sends SIGKILL to the process group and waits (bounded) until the process is reaped.
// Killing a process that has already exited is not an error.
func (p *Proc) Kill() error {
	if done, _ := p.Exited(); done {
		return nil
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	return p.wait(procStopWait)
}

// Stop sends SIGTERM and waits up to grace for a clean exit, then kills. It returns the
// process's exit error when it stopped by itself.
func (p *Proc) Stop(grace time.Duration) error {
	if done, err := p.Exited(); done {
		return err
	}
	_ = syscall.Kill(p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		if err := p.Kill(); err != nil {
			return err
		}
		return fmt.Errorf("%s did not stop within %s of SIGTERM; killed", p.Name, grace)
	}
}

func (p *Proc) wait(d time.Duration) error {
	select {
	case <-p.done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("%s (pid %d) still running %s after SIGKILL", p.Name, p.Pid(), d)
	}
}

// awaitReady waits up to d for the process to be ready (checking ready while it runs) and
// fails t with its output if it exits or d passes first; what says what ready is.
func (p *Proc) awaitReady(t testing.TB, d time.Duration, what string, ready func() bool) {
	t.Helper()
	ok := testwait.Until(d, 50*time.Millisecond, func() bool {
		if done, _ := p.Exited(); done {
			return true
		}
		return ready()
	})
	if done, err := p.Exited(); done {
		t.Fatalf("%s exited at start (%v):\n%s", p.Name, err, p.Output())
	}
	if !ok {
		t.Fatalf("%s not %s after %s:\n%s", p.Name, what, d, p.Output())
	}
}

// Output is what the process wrote so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// PeakRSS is the process's peak resident set (VmHWM), read from /proc; it must be read
// before the process is reaped. 0 when unavailable.
func (p *Proc) PeakRSS() int64 {
	if done, _ := p.Exited(); done {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// NATSServer is a nats-server process with JetStream on loopback. Restarts reuse its ports
// and store, as an operator's restart would.
type NATSServer struct {
	Port, MonitorPort int
	StoreDir          string

	t       testing.TB
	name    string // of its processes and logs: "nats-server", or a cluster node's name
	bin     string
	conf    string
	logDir  string
	starts  int
	proc    *Proc
	readyIn time.Duration // bound on readiness after a start
}

// natsConf keeps every acknowledged write on disk before the ack (sync_interval: always), so
// a SIGKILL of the server loses only what it never acknowledged; without it the suite would
// measure the server's default two-minute fsync interval, not the worker.
const natsConf = `listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
  store_dir: %q
  sync_interval: always
}
`

// StartNATS starts a nats-server whose store and config live in dir and whose output goes
// to logDir.
func StartNATS(t testing.TB, bin, dir, logDir string) *NATSServer {
	t.Helper()
	s := &NATSServer{
		Port: freePort(t), MonitorPort: freePort(t), StoreDir: filepath.Join(dir, "jetstream"),
		t: t, name: "nats-server", bin: bin, conf: filepath.Join(dir, "nats.conf"), logDir: logDir, readyIn: 30 * time.Second,
	}
	if err := os.WriteFile(s.conf, fmt.Appendf(nil, natsConf, s.Port, s.MonitorPort, s.StoreDir), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Start()
	return s
}

// URL is the client URL.
func (s *NATSServer) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.Port) }

// Start runs the server (again) and waits until JetStream is healthy.
func (s *NATSServer) Start() {
	s.t.Helper()
	s.launch()
	s.awaitHealthy()
}

// launch runs the server (again) without waiting for it: the nodes of a cluster are healthy
// only once a quorum of them runs.
func (s *NATSServer) launch() {
	s.t.Helper()
	s.starts++
	s.proc = StartProc(s.t, fmt.Sprintf("%s#%d", s.name, s.starts), s.bin, []string{"-c", s.conf}, nil,
		filepath.Join(s.logDir, fmt.Sprintf("%s-%d.out", s.name, s.starts)))
}

// awaitHealthy waits until /healthz answers 200: JetStream is up and, in a cluster, the node
// knows the meta leader and its streams and consumers are current.
func (s *NATSServer) awaitHealthy() {
	s.t.Helper()
	healthz := fmt.Sprintf("http://127.0.0.1:%d/healthz", s.MonitorPort)
	client := &http.Client{Timeout: time.Second}
	s.proc.awaitReady(s.t, s.readyIn, "healthy", func() bool {
		resp, err := client.Get(healthz)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Kill SIGKILLs the server.
func (s *NATSServer) Kill() {
	s.t.Helper()
	if err := s.proc.Kill(); err != nil {
		s.t.Fatal(err)
	}
}

// Stop stops the server cleanly.
func (s *NATSServer) Stop() {
	if err := s.proc.Stop(procStopWait); err != nil {
		s.t.Errorf("nats-server: %v", err)
	}
}

// Run runs a short-lived process (the publisher) to its end, bounded by d, appends its
// output to logPath and returns it, with an error for a non-zero exit.
func Run(name, bin string, args, env []string, logPath string, d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(baseEnv(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out.String(), errors.Join(err, appendFile(logPath, out.Bytes()))
}

func appendFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Close())
}
