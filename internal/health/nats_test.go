package health_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/health"
	"github.com/callagent/resilience/internal/natsembed"
	"github.com/callagent/resilience/internal/testwait"
)

// waitStatus polls url until it answers want.
func waitStatus(t *testing.T, url string, want int, what string) {
	t.Helper()
	testwait.Eventually(t, 15*time.Second, fmt.Sprintf("%s: %s to answer %d", what, url, want), func() (bool, string) {
		got, _ := get(t, url)
		return got == want, fmt.Sprintf("answers %d", got)
	})
}

// TestReadyzFollowsTheNATSServer: /readyz is 200 with the server up, 503 once it stops, and
// 200 again when it restarts on the same port and store (the stream is still there).
func TestReadyzFollowsTheNATSServer(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.ClientURL()
	defer func() { srv.Shutdown() }()

	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "CONTACTS", Subjects: []string{"contacts.queue"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	base := serve(t, health.NewServer("unused", nil, health.NATSReady(nc, js, "CONTACTS")))

	waitStatus(t, base+"/readyz", 200, "server up")
	srv.Shutdown()
	waitStatus(t, base+"/readyz", 503, "server stopped")

	srv, err = natsembed.Start(natsembed.Options{URL: url, StoreDir: dir})
	if err != nil {
		t.Fatalf("restart on %s: %v", url, err)
	}
	waitStatus(t, base+"/readyz", 200, "server restarted")
}

func TestNATSReadyReasons(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()

	err = health.NATSReady(nc, js, "MISSING")(ctx)
	if !errors.Is(err, jetstream.ErrStreamNotFound) || !contains(err, "MISSING") {
		t.Errorf("missing stream: %v, want ErrStreamNotFound naming the stream", err)
	}
	nc.Close()
	err = health.NATSReady(nc, js, "MISSING")(ctx)
	if !errors.Is(err, health.ErrNATSNotConnected) || !contains(err, "CLOSED") {
		t.Errorf("closed connection: %v, want ErrNATSNotConnected saying CLOSED", err)
	}
	if err := health.NATSReady(nil, js, "X")(ctx); !errors.Is(err, health.ErrNATSNotConnected) {
		t.Errorf("nil connection: %v, want ErrNATSNotConnected", err)
	}
}

func contains(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }
