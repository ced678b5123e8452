package resilience

import (
	"context"
	"errors"
	"io"
	"reflect"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/sirupsen/logrus"
)

var realClockType = reflect.TypeOf(clock.New())

// clockOrReal returns c, or the real clock when c is nil, and whether it is the real clock.
func clockOrReal(c clock.Clock) (clock.Clock, bool) {
	if c == nil {
		return clock.New(), true
	}
	return c, reflect.TypeOf(c) == realClockType
}

// withTimeout is context.WithTimeout on clock c. On the real clock it is exactly
// context.WithTimeout; on another clock (a mock) the deadline follows that clock and Err
// still reports context.DeadlineExceeded, so a timeout is classified as one.
func withTimeout(parent context.Context, c clock.Clock, real bool, d time.Duration) (context.Context, context.CancelFunc) {
	if real {
		return context.WithTimeout(parent, d)
	}
	ctx, cancel := context.WithCancelCause(parent)
	t := c.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return &clockDeadlineCtx{Context: ctx, deadline: c.Now().Add(d)}, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}

type clockDeadlineCtx struct {
	context.Context
	deadline time.Time
}

func (c *clockDeadlineCtx) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *clockDeadlineCtx) Err() error {
	err := c.Context.Err()
	if err != nil && errors.Is(context.Cause(c.Context), context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return err
}

// retryTimer runs retry-go's waits on an injected clock.
type retryTimer struct{ c clock.Clock }

func (t retryTimer) After(d time.Duration) <-chan time.Time { return t.c.After(d) }

// loggerOrDiscard returns l, or a logger that writes nowhere.
func loggerOrDiscard(l *logrus.Logger) *logrus.Logger {
	if l != nil {
		return l
	}
	d := logrus.New()
	d.Out = io.Discard
	d.Level = logrus.PanicLevel
	return d
}
