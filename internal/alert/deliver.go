package alert

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/resilience"
)

// channelRunner delivers the notifications of one channel, in order, from the channel's
// durable consumer shared by every replica.
type channelRunner struct {
	d        *Dispatcher
	name     string
	notifier Notifier
	min      Severity
	retrier  *resilience.Retrier
	guard    *resilience.Guard
	cons     jetstream.Consumer
}

func (c *channelRunner) loop(ctx context.Context) {
	consumeLoop(ctx, c.d, c.cons, c.d.topo.channelConsumerName(c.name), func(msg jetstream.Msg) {
		c.handle(ctx, msg)
	})
}

// handle delivers one notification and settles its message:
//
//	delivered                                 Ack
//	below the channel's minimum severity      Ack, not sent
//	breaker open / channel asked to wait      NakWithDelay until it may be tried
//	failed, retry                             NakWithDelay with backoff: stays queued, in order
//	failed, never acceptable                  Term: logged as dropped
//	the worker is stopping                    Nak: another replica delivers it now
func (c *channelRunner) handle(ctx context.Context, msg jetstream.Msg) {
	n, err := DecodeNotification(msg.Data())
	if err != nil {
		c.d.log.WithError(err).Warnf("Discarding a message on %s that is not an alert notification", msg.Subject())
		_ = msg.TermWithReason("not an alert notification")
		return
	}
	log := c.d.log.WithFields(logrus.Fields{"alert_channel": c.name, "alert_id": n.ID, "alert_type": string(n.Type)})
	if !n.Severity.AtLeast(c.min) {
		log.Debugf("Not sending %q by %s: %s is below its minimum severity %s", n.Title, c.name, n.Severity, c.min)
		c.settle(log, msg, ResultFiltered, func() error { return msg.Ack() })
		return
	}

	retry := true
	err = c.retrier.Run(ctx, log, c.guard, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, c.d.opts.AttemptTimeout)
		defer cancel()
		r, err := c.notifier.Notify(actx, n)
		retry = r
		return asServiceError(c.name, r, err)
	})

	var (
		open     *resilience.OpenError
		deferred *resilience.DeferError
	)
	switch {
	case err == nil:
		log.Infof("Alert sent by %s: %s", c.name, n.Title)
		c.settle(log, msg, ResultSent, func() error { return msg.Ack() })
	case errors.As(err, &open):
		delay := max(time.Until(open.RetryAt), 100*time.Millisecond)
		log.Infof("Alert %q waits %s: the circuit breaker for %s is open", n.Title, delay.Round(time.Millisecond), c.name)
		c.settle(log, msg, ResultDeferred, func() error { return msg.NakWithDelay(delay) })
	case errors.As(err, &deferred):
		log.Infof("Alert %q waits %s: %s asked us to slow down", n.Title, deferred.After.Round(time.Millisecond), c.name)
		c.settle(log, msg, ResultDeferred, func() error { return msg.NakWithDelay(deferred.After) })
	case ctx.Err() != nil:
		log.Infof("Stopping: alert %q goes back to the queue for %s", n.Title, c.name)
		c.settle(log, msg, ResultRetried, func() error { return msg.Nak() })
	case !retry:
		log.WithError(err).Errorf("Dropping alert %q: %s refused it for good", n.Title, c.name)
		c.settle(log, msg, ResultDropped, func() error { return msg.TermWithReason("refused by " + c.name) })
	default:
		delay := c.d.redeliverDelay(msg)
		log.WithError(err).Warnf("Could not send alert %q by %s; it stays queued, next try in %s", n.Title, c.name, delay)
		c.settle(log, msg, ResultRetried, func() error { return msg.NakWithDelay(delay) })
	}
}

// settle applies the message action and reports the result.
func (c *channelRunner) settle(log *logrus.Entry, msg jetstream.Msg, result string, act func() error) {
	if err := act(); err != nil {
		log.WithError(err).Warn("Could not settle the alert notification message; JetStream will redeliver it")
	}
	if c.d.opts.Observer != nil {
		c.d.opts.Observer.AlertDelivered(c.name, result)
	}
}

// asServiceError makes a Notifier's error something the Retrier and the Guard understand: a
// *fault.ServiceError that is transient only when retrying in process makes sense.
func asServiceError(channel string, retry bool, err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var se *fault.ServiceError
	if errors.As(err, &se) {
		if !retry && se.Transient() {
			return fault.Final(err)
		}
		return err
	}
	if !retry {
		return &fault.ServiceError{Provider: channel, Kind: fault.KindInvalidPayload, Message: err.Error(), Err: err}
	}
	c := fault.Classify(fault.Facts{Provider: channel, Err: err})
	if fault.KindOf(c) == fault.KindUnknown {
		return &fault.ServiceError{Provider: channel, Kind: fault.KindUnavailable, Message: err.Error(), Err: err}
	}
	return c
}
