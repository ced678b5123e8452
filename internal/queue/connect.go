package queue

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"strings"
	"time"

	"github.com/avast/retry-go/v4"
	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"
)

// ConnectOptions configure Connect.
type ConnectOptions struct {
	// Name is the connection's name as the server's monitoring shows it.
	Name string
	// CredsFile, if set, is a NATS credentials file.
	CredsFile string
	// Wait bounds how long Connect keeps retrying a server that is not up yet (a worker
	// started before NATS, as Kubernetes may do); 0 tries once.
	Wait time.Duration
	// Log receives the retries, disconnects and reconnects.
	Log logrus.FieldLogger
}

// connectMaxDelay caps the backoff between connection attempts at start.
const connectMaxDelay = 10 * time.Second

// Connect opens a NATS connection that reconnects forever once up (a worker must outlive a
// server restart) and logs disconnects. url may list several servers separated by commas.
// When no server answers, it retries with backoff for up to o.Wait, logging each attempt,
// and gives up early when ctx ends.
func Connect(ctx context.Context, url string, o ConnectOptions) (*nats.Conn, error) {
	log := o.Log
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warnf("Disconnected from NATS; reconnecting: %v", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Infof("Reconnected to NATS at %s", nc.ConnectedUrlRedacted()) }),
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	shown := redactURLs(url)
	started := time.Now()
	if o.Wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Wait)
		defer cancel()
	}
	nc, err := retry.DoWithData(
		func() (*nats.Conn, error) {
			nc, err := nats.Connect(url, opts...)
			if err != nil && permanent(err) {
				return nil, retry.Unrecoverable(err) // waiting will not help
			}
			return nc, err
		},
		retry.Context(ctx),
		retry.Attempts(0),
		retry.Delay(500*time.Millisecond),
		retry.MaxDelay(connectMaxDelay),
		retry.DelayType(retry.BackOffDelay),
		retry.LastErrorOnly(true),
		retry.WrapContextErrorWithLastError(true),
		retry.RetryIf(func(error) bool { return o.Wait > 0 }),
		retry.OnRetry(func(n uint, err error) {
			// The first miss is a warning; the retries after it are progress (a quiet
			// publisher shows only the first).
			logf := log.Infof
			if n == 0 {
				logf = log.Warnf
			}
			logf("NATS at %s is not reachable yet (attempt %d, waiting up to %s): %v", shown, n+1, o.Wait, err)
		}),
	)
	if err != nil {
		if o.Wait > 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("connect to NATS at %s: gave up after %s (NATS_CONNECT_TIMEOUT): %w",
				shown, time.Since(started).Round(time.Second), err)
		}
		return nil, fmt.Errorf("connect to NATS at %s: %w", shown, err)
	}
	return nc, nil
}

// redactURLs hides the passwords and tokens in a comma-separated list of server URLs.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := neturl.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, has := u.User.Password(); has {
			u.User = neturl.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = neturl.User("xxxxx") // a bare token
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// permanent reports a connection error that waiting does not cure: credentials, TLS. A host
// that does not resolve yet or a dial that times out (a container or a pod not up) is not.
func permanent(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrSecureConnRequired) ||
		errors.Is(err, nats.ErrSecureConnWanted) || strings.Contains(err.Error(), "tls:")
}
