// Package natsembed runs a real NATS server with JetStream inside the current process.
//
// It is the zero-install default (`worker --embedded-nats`) and the server every test runs
// against: the same code path as a standalone nats-server, so nothing is simulated.
package natsembed

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/sirupsen/logrus"
)

// Options configures an embedded server.
type Options struct {
	// URL is where clients will connect, e.g. "nats://127.0.0.1:4222"; the server listens on its
	// host and port. Port "-1" or an empty URL picks a free port on 127.0.0.1 (tests).
	URL string
	// StoreDir holds JetStream's files; required.
	StoreDir string
	// SyncAlways fsyncs every JetStream write, as deploy/nats.conf's `sync_interval: always`
	// does. The default (false) leaves flushing to the OS, which survives a process crash but
	// not a power loss; tests use it for speed.
	SyncAlways bool
	// Logger receives the server's warnings and errors; nil keeps the server silent.
	Logger logrus.FieldLogger
	// ReadyTimeout bounds the wait for the server to accept connections; default 10s.
	ReadyTimeout time.Duration
}

// Server is a running embedded NATS server.
type Server struct {
	srv *server.Server
}

// ErrNotReady is returned when the server did not accept connections within ReadyTimeout.
var ErrNotReady = errors.New("embedded nats server did not become ready")

// Start starts the server and waits until it accepts connections.
func Start(opts Options) (*Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("natsembed: StoreDir is required")
	}
	host, port, err := listenAddress(opts.URL)
	if err != nil {
		return nil, err
	}
	sopts := &server.Options{
		ServerName:            "embedded",
		Host:                  host,
		Port:                  port,
		JetStream:             true,
		StoreDir:              opts.StoreDir,
		SyncAlways:            opts.SyncAlways,
		NoSigs:                true,
		NoLog:                 opts.Logger == nil,
		MaxPayload:            server.MAX_PAYLOAD_SIZE,
		DisableShortFirstPing: true,
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: configure server: %w", err)
	}
	if opts.Logger != nil {
		srv.SetLoggerV2(serverLogger{opts.Logger}, false, false, false)
	}
	srv.Start()
	timeout := opts.ReadyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("natsembed: %w within %s on %s:%d", ErrNotReady, timeout, host, port)
	}
	return &Server{srv: srv}, nil
}

// ClientURL is the URL clients should connect to.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Shutdown stops the server and waits until it has released its files and port.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// Raw exposes the underlying server for tests that need to stop and restart it.
func (s *Server) Raw() *server.Server { return s.srv }

// listenAddress extracts the host and port the server listens on from a client URL.
func listenAddress(raw string) (string, int, error) {
	if raw == "" {
		return "127.0.0.1", server.RANDOM_PORT, nil
	}
	if strings.Contains(raw, ",") {
		return "", 0, fmt.Errorf("natsembed: the embedded server listens on one address, got a list %q", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", 0, fmt.Errorf("natsembed: listen URL %q: %w", raw, err)
	}
	host, portText, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", 0, fmt.Errorf("natsembed: listen URL %q needs host:port: %w", raw, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("natsembed: listen URL %q: bad port %q", raw, portText)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// serverLogger forwards the server's own log lines at debug level except warnings and errors,
// which an operator of the embedded default should see.
type serverLogger struct{ l logrus.FieldLogger }

func (s serverLogger) Noticef(format string, v ...any) { s.l.Debugf("nats: "+format, v...) }
func (s serverLogger) Warnf(format string, v ...any)   { s.l.Warnf("nats: "+format, v...) }
func (s serverLogger) Fatalf(format string, v ...any)  { s.l.Errorf("nats: "+format, v...) }
func (s serverLogger) Errorf(format string, v ...any)  { s.l.Errorf("nats: "+format, v...) }
func (s serverLogger) Debugf(format string, v ...any)  { s.l.Debugf("nats: "+format, v...) }
func (s serverLogger) Tracef(format string, v ...any)  {}
