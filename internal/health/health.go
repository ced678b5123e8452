// Package health serves the worker's operational HTTP endpoints on one port: /metrics for
// Prometheus, /healthz for liveness and /readyz for readiness (Kubernetes probes, docker-compose
// healthchecks).
//
// The probe endpoints answer with a status code and a one-word body ("ok", "not ready") and
// nothing of the internals: why the worker is not ready goes to the log, not to whoever can
// reach the port.
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
)

// Defaults of the server's options.
const (
	// DefaultReadyTimeout bounds one readiness check.
	DefaultReadyTimeout = 2 * time.Second
	// DefaultShutdownTimeout bounds the graceful stop of Run and Serve.
	DefaultShutdownTimeout = 5 * time.Second
)

// Bodies of the probe endpoints.
const (
	BodyOK       = "ok\n"
	BodyNotReady = "not ready\n"
)

// Option configures NewServer.
type Option func(*Server)

// WithLogger logs readiness changes (with the reason, which the HTTP body never shows) and
// server errors to l. Without it they are discarded.
func WithLogger(l logrus.FieldLogger) Option {
	return func(s *Server) {
		if l != nil {
			s.log = l
		}
	}
}

// WithReadyTimeout bounds one readiness check (default 2s; 0 or less keeps it).
func WithReadyTimeout(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.readyTimeout = d
		}
	}
}

// Server serves /metrics, /healthz and /readyz. Build it with NewServer, then call Run (or
// Serve with your own listener). Safe for concurrent use.
type Server struct {
	addr         string
	gatherer     prometheus.Gatherer
	ready        func(ctx context.Context) error
	readyTimeout time.Duration
	log          logrus.FieldLogger
	handler      http.Handler

	mu        sync.Mutex
	wasReady  bool
	checked   bool
	lastError string
}

// NewServer returns a server for addr (host:port, as net.Listen takes it; ":9090" listens on
// every interface). gatherer is exported on /metrics (nil serves no /metrics); ready decides
// /readyz (nil means always ready). It starts nothing.
func NewServer(addr string, gatherer prometheus.Gatherer, ready func(ctx context.Context) error, opts ...Option) *Server {
	s := &Server{
		addr:         addr,
		gatherer:     gatherer,
		ready:        ready,
		readyTimeout: DefaultReadyTimeout,
		log:          discard(),
	}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
			ErrorHandling: promhttp.ContinueOnError,
			ErrorLog:      promLogger{s.log},
		}))
	}
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	s.handler = mux
	return s
}

// Handler returns the server's routes, for tests and for mounting elsewhere. GET (and HEAD)
// only; other paths answer 404.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on the server's address and serves until ctx ends, then shuts down gracefully
// (in-flight requests get DefaultShutdownTimeout). It returns nil after a stop caused by ctx,
// and the listen or serve error otherwise.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("health: listen on %s: %w", s.addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then shuts down gracefully and closes ln. It returns nil
// after a stop caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.log.Infof("Serving /metrics, /healthz and /readyz on %s", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("health: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serveErr := <-errc; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	if err != nil {
		_ = hs.Close()
		return fmt.Errorf("health: shut down the server on %s: %w", ln.Addr(), err)
	}
	return nil
}

// healthz answers 200 while the process can serve HTTP at all.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	write(w, http.StatusOK, BodyOK)
}

// readyz answers 200 when the ready check passes within the timeout, 503 otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	err := s.check(r.Context())
	if err != nil {
		write(w, http.StatusServiceUnavailable, BodyNotReady)
		return
	}
	write(w, http.StatusOK, BodyOK)
}

// check runs the ready check and logs when readiness changes (or its reason does), so a probe
// every few seconds does not repeat the same line.
func (s *Server) check(ctx context.Context) error {
	if s.ready == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.readyTimeout)
	defer cancel()
	err := s.ready(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil && (!s.wasReady || !s.checked):
		s.log.Info("Ready: the readiness check passes")
		s.lastError = ""
	case err != nil && (s.wasReady || !s.checked || err.Error() != s.lastError):
		s.log.WithError(err).Warn("Not ready")
		s.lastError = err.Error()
	}
	s.wasReady, s.checked = err == nil, true
	return err
}

func write(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func discard() logrus.FieldLogger {
	l := logrus.New()
	l.Out = io.Discard
	l.Level = logrus.PanicLevel
	return l
}

// promLogger passes promhttp's gathering errors to the logger.
type promLogger struct{ l logrus.FieldLogger }

// Println implements promhttp.Logger.
func (p promLogger) Println(v ...any) { p.l.Warn(append([]any{"metrics: "}, v...)...) }
