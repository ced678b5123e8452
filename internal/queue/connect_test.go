package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/queue"
)

// A host that does not resolve yet (a container or a pod not up) is waited for like a
// refused connection, up to the wait; the error says what it tried last.
func TestConnectWaitsForAHostThatDoesNotResolveYet(t *testing.T) {
	log := logrus.New()
	log.Out = &strings.Builder{}
	start := time.Now()
	_, err := queue.Connect(context.Background(), "nats://nats-not-up-yet.invalid:4222", queue.ConnectOptions{Wait: 1500 * time.Millisecond, Log: log})
	if err == nil || !strings.Contains(err.Error(), "gave up after") {
		t.Fatalf("Connect = %v; want it to give up after waiting, naming the last error", err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("gave up after %s; want it to wait about 1.5s", waited)
	}
}
