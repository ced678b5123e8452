package health

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNATSNotConnected is wrapped by NATSReady's check while the connection is not CONNECTED
// (reconnecting after a server restart, draining, closed).
var ErrNATSNotConnected = errors.New("nats connection is not connected")

// StreamInfoer reads a stream; jetstream.JetStream satisfies it.
type StreamInfoer interface {
	Stream(ctx context.Context, name string) (jetstream.Stream, error)
}

// NATSReady returns the worker's readiness check: nc is connected and the stream answers an
// info request within the check's context. Pass it to NewServer.
func NATSReady(nc *nats.Conn, js StreamInfoer, stream string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if nc == nil {
			return fmt.Errorf("%w: no connection", ErrNATSNotConnected)
		}
		if st := nc.Status(); st != nats.CONNECTED {
			return fmt.Errorf("%w: %s", ErrNATSNotConnected, st)
		}
		if _, err := js.Stream(ctx, stream); err != nil {
			return fmt.Errorf("stream %s is not reachable: %w", stream, err)
		}
		return nil
	}
}
