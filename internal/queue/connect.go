package queue

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"
)

// Connect opens a NATS connection that reconnects forever (a worker must outlive a server
// restart) and logs disconnects. url may list several servers separated by commas.
func Connect(url, name, credsFile string, log logrus.FieldLogger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warnf("Disconnected from NATS; reconnecting: %v", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Infof("Reconnected to NATS at %s", nc.ConnectedUrlRedacted()) }),
	}
	if credsFile != "" {
		opts = append(opts, nats.UserCredentials(credsFile))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	return nc, nil
}
