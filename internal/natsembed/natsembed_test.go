package natsembed

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestListenAddress(t *testing.T) {
	cases := []struct {
		url, host string
		port      int
		bad       bool
	}{
		{"", "127.0.0.1", -1, false},
		{"nats://127.0.0.1:4222", "127.0.0.1", 4222, false},
		{"nats://:4222", "0.0.0.0", 4222, false},
		{"nats://a:1,nats://b:2", "", 0, true},
		{"nats://localhost", "", 0, true},
		{"nats://127.0.0.1:http", "", 0, true},
	}
	for _, tc := range cases {
		host, port, err := listenAddress(tc.url)
		if tc.bad {
			if err == nil {
				t.Errorf("listenAddress(%q) accepted", tc.url)
			}
			continue
		}
		if err != nil || host != tc.host || port != tc.port {
			t.Errorf("listenAddress(%q) = %q %d %v, want %q %d", tc.url, host, port, err, tc.host, tc.port)
		}
	}
}

func TestStartListensOnTheURLAndShutsDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	srv, err := Start(Options{URL: url, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to the embedded server at %s: %v", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(context.Background()); err != nil {
		t.Fatalf("JetStream not enabled: %v", err)
	}
	nc.Close()
	srv.Shutdown()
	if _, err := nats.Connect(url); err == nil {
		t.Fatal("still accepting connections after Shutdown")
	}
	if _, err := Start(Options{URL: url}); err == nil {
		t.Fatal("Start without StoreDir succeeded")
	}
}
