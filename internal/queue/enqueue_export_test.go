package queue

import (
	"time"

	"github.com/nats-io/nats.go"
)

// SetAckTimeout makes Enqueuers wait d for an ack before publishing again; it returns the
// previous value.
func SetAckTimeout(d time.Duration) time.Duration {
	old := ackTimeout
	ackTimeout = d
	return old
}

// LoseAcks makes e miss every ack until restore is called (from any goroutine): its reply
// subscription is gone meanwhile, as acks are lost with a connection. restore subscribes
// again, to the same subject and channel, and returns that subscription.
func LoseAcks(e *Enqueuer) (restore func() (*nats.Subscription, error)) {
	nc, inbox, acks := e.js.Conn(), e.inbox, e.acks
	_ = e.sub.Unsubscribe()
	_ = nc.Flush()
	return func() (*nats.Subscription, error) {
		sub, err := nc.ChanSubscribe(inbox+"*", acks)
		if err != nil {
			return nil, err
		}
		return sub, nc.Flush()
	}
}

// InOrder reports whether e still matches acks by the order of its publishes.
func InOrder(e *Enqueuer) bool { return e.inOrder }

// StoredAck is storedAck.
var StoredAck = storedAck
