// Package natstest starts a real in-process NATS server with JetStream for tests.
package natstest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/natsembed"
)

// Start runs a JetStream server on a free loopback port, storing under a temporary
// directory, and shuts it down when the test ends.
func Start(t testing.TB) *natsembed.Server {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// Connect opens a client connection to srv, closed when the test ends.
func Connect(t testing.TB, srv *natsembed.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatalf("connect to %s: %v", srv.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// IgnoreLibraryLeaks are goleak options for goroutines that nats.go itself can leave behind
// when a connection closes, so packages verifying leaks catch only their own:
//
// jetstream.(*jetStream).resetPendingAcksOnReconnect: started by the first async publish, it
// reads the publisher's status channel after starting; when cleanupReplySub has already set
// that field to nil (connection closing), it blocks forever receiving from a nil channel
// (nats.go v1.55.0, jetstream/publish.go:565).
func IgnoreLibraryLeaks() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"),
	}
}
