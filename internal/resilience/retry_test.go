package resilience

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/avast/retry-go/v4"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/testwait"
)

// noTrip keeps the breaker out of retry tests that are not about it.
var noTrip = BreakerSettings{FailureThreshold: 1000}

func TestRetrySeedFlow(t *testing.T) {
	t.Parallel()
	l := newLogs()
	c := newWaitClock(true)
	g := NewGuard(eleven, GuardOptions{Clock: c.Mock, Logger: l.logger})
	r := NewRetrier(RetryPolicy{}, c, l.logger)
	s := &script{errs: []error{unavailable(), unavailable(), unavailable()}}

	err := r.Run(context.Background(), logrus.NewEntry(l.logger).WithField("contact_id", "c1"), g, s.op)

	var exhausted *RetriesExhaustedError
	if !errors.As(err, &exhausted) || exhausted.Attempts != 3 || exhausted.Provider != eleven {
		t.Fatalf("Run = %v, want RetriesExhaustedError after 3 attempts", err)
	}
	if !errors.Is(err, fault.ErrTransient) || fault.KindOf(err) != fault.KindUnavailable {
		t.Fatalf("the last error is not reachable: %v", err)
	}
	if n := s.calls.Load(); n != 3 {
		t.Fatalf("provider called %d times, want 3", n)
	}
	if got, want := fmt.Sprint(c.recorded()), "[5s 10s]"; got != want {
		t.Fatalf("waits = %s, want %s", got, want)
	}
	want := []string{
		"Transient error on attempt 1: Service temporarily unavailable. Retrying in 5s...",
		"Transient error on attempt 2: Service temporarily unavailable. Retrying in 10s...",
		"Circuit breaker OPENED for ElevenLabs",
		"Max retry attempts (3) reached for ElevenLabs",
	}
	if got := l.messages(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("log lines:\n got %q\nwant %q", got, want)
	}
	retryLine := l.find("Transient error on attempt 1")
	for k, v := range map[string]any{"service": eleven, "error_category": "service_unavailable", "retry_count": 1,
		"circuit_state": "CLOSED", "contact_id": "c1"} {
		if retryLine.Data[k] != v {
			t.Errorf("retry line field %s = %v, want %v", k, retryLine.Data[k], v)
		}
	}
	opened := l.find("Circuit breaker OPENED")
	if opened.Level != logrus.ErrorLevel || opened.Data["service"] != eleven || opened.Data["circuit_state"] != "OPEN" {
		t.Errorf("OPENED line = %v %v", opened.Level, opened.Data)
	}
	maxLine := l.find("Max retry attempts")
	if maxLine.Level != logrus.ErrorLevel || maxLine.Data["circuit_state"] != "OPEN" || maxLine.Data["retry_count"] != 2 {
		t.Errorf("max line = %v %v", maxLine.Level, maxLine.Data)
	}
	if g.State() != StateOpen {
		t.Fatalf("breaker %s after three failed attempts, want OPEN", g.State())
	}
}

func TestRetrySchedule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		policy    RetryPolicy
		wantCalls int32
		wantWaits string
	}{
		{"seed defaults", RetryPolicy{}, 3, "[5s 10s]"},
		{"fourth attempt waits 20s", RetryPolicy{MaxAttempts: 4}, 4, "[5s 10s 20s]"},
		{"max delay caps", RetryPolicy{MaxAttempts: 5, MaxDelay: 15 * time.Second}, 5, "[5s 10s 15s 15s]"},
		{"multiplier", RetryPolicy{MaxAttempts: 4, InitialDelay: 100 * time.Millisecond, Multiplier: 3}, 4, "[100ms 300ms 900ms]"},
		{"single attempt", RetryPolicy{MaxAttempts: 1}, 1, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newWaitClock(true)
			g := NewGuard(eleven, GuardOptions{Breaker: noTrip, Clock: c.Mock})
			s := &script{errs: []error{unavailable(), unavailable(), unavailable(), unavailable(), unavailable()}}
			err := NewRetrier(tt.policy, c, nil).Run(context.Background(), nil, g, s.op)
			var exhausted *RetriesExhaustedError
			if !errors.As(err, &exhausted) || exhausted.Attempts != int(tt.wantCalls) {
				t.Fatalf("Run = %v, want exhausted after %d", err, tt.wantCalls)
			}
			if n := s.calls.Load(); n != tt.wantCalls {
				t.Fatalf("calls = %d, want %d", n, tt.wantCalls)
			}
			if got := fmt.Sprint(c.recorded()); got != tt.wantWaits {
				t.Fatalf("waits = %s, want %s", got, tt.wantWaits)
			}
		})
	}
}

func TestRetrySucceedsAfterTransientErrors(t *testing.T) {
	t.Parallel()
	c := newWaitClock(true)
	g := NewGuard(eleven, GuardOptions{Clock: c.Mock})
	s := &script{errs: []error{unavailable(), kindErr(fault.KindTimeout)}}
	if err := NewRetrier(RetryPolicy{}, c, nil).Run(context.Background(), nil, g, s.op); err != nil {
		t.Fatalf("Run = %v, want success on the third attempt", err)
	}
	if s.calls.Load() != 3 || g.State() != StateClosed {
		t.Fatalf("calls = %d, state = %s", s.calls.Load(), g.State())
	}
}

func TestPolicyWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p     RetryPolicy
		retry int
		want  time.Duration
	}{
		{RetryPolicy{}, 1, 5 * time.Second},
		{RetryPolicy{}, 2, 10 * time.Second},
		{RetryPolicy{}, 3, 20 * time.Second},
		{RetryPolicy{}, 0, 5 * time.Second},
		{RetryPolicy{MaxDelay: 8 * time.Second}, 2, 8 * time.Second},
		{RetryPolicy{InitialDelay: time.Second, Multiplier: 1}, 7, time.Second},
		{RetryPolicy{}, 500, time.Duration(math.MaxInt64)},
	}
	for _, tt := range tests {
		if got := tt.p.Wait(tt.retry); got != tt.want {
			t.Errorf("%+v.Wait(%d) = %s, want %s", tt.p, tt.retry, got, tt.want)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    RetryPolicy
		want string
	}{
		{RetryPolicy{}, ""},
		{DefaultRetryPolicy(), ""},
		{RetryPolicy{MaxAttempts: -1}, "retry max attempts must not be negative, got -1"},
		{RetryPolicy{InitialDelay: -time.Second}, "retry initial delay must not be negative, got -1s"},
		{RetryPolicy{Multiplier: 0.5}, "retry multiplier must be at least 1, got 0.5"},
		{RetryPolicy{MaxDelay: -1}, "retry max delay must not be negative, got -1ns"},
		{RetryPolicy{RetryAfterCap: -time.Minute}, "retry-after cap must not be negative, got -1m0s"},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if (err == nil) != (tt.want == "") || (err != nil && err.Error() != tt.want) {
			t.Errorf("%+v.Validate() = %v, want %q", tt.p, err, tt.want)
		}
	}
	if d := DefaultRetryPolicy(); d.MaxAttempts != 3 || d.InitialDelay != 5*time.Second || d.Multiplier != 2 ||
		d.RetryAfterCap != 30*time.Second || d.MaxDelay != 0 || d.Jitter {
		t.Fatalf("DefaultRetryPolicy = %+v", d)
	}
}

func TestRetryFullJitter(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{MaxAttempts: 5, InitialDelay: time.Second, Multiplier: 10, MaxDelay: 2 * time.Second, Jitter: true}
	distinct := map[time.Duration]bool{}
	for range 50 {
		c := newWaitClock(true)
		g := NewGuard(eleven, GuardOptions{Breaker: noTrip, Clock: c.Mock})
		_ = NewRetrier(p, c, nil).Run(context.Background(), nil, g, always(unavailable()))
		waits := c.recorded()
		if len(waits) != 4 {
			t.Fatalf("waits = %v, want 4", waits)
		}
		for i, w := range waits {
			// The cap applies before the jitter: every wait is within [0, min(Wait(n), MaxDelay)].
			if w < 0 || w > p.Wait(i+1) || w > p.MaxDelay {
				t.Fatalf("wait %d = %s, outside [0, %s]", i+1, w, p.Wait(i+1))
			}
			distinct[w] = true
		}
	}
	if len(distinct) < 10 {
		t.Fatalf("only %d distinct waits in 200: jitter is not applied", len(distinct))
	}
}

func TestNoRetryForPermanentErrors(t *testing.T) {
	t.Parallel()
	plain := errors.New("bug in the client")
	tests := []struct {
		name   string
		err    error
		copied bool // returned as a copy marked final
	}{
		{"authentication", kindErr(fault.KindAuthentication), false},
		{"invalid payload", kindErr(fault.KindInvalidPayload), false},
		{"quota", kindErr(fault.KindQuota), false},
		{"configuration", kindErr(fault.KindConfiguration), false},
		{"unknown kind", kindErr(fault.KindUnknown), false},
		{"quota_exceeded as 401", fault.Classify(fault.Facts{Provider: eleven, Status: 401, Code: "quota_exceeded"}), false},
		{"insufficient_quota as 429", fault.Classify(fault.Facts{Provider: "LLM", Status: 429, Code: "insufficient_quota"}), false},
		{"invalid contact", fault.InvalidContact(eleven, errors.New("no phone")), false},
		{"unclassified", plain, false},
		{"unrecoverable", retry.Unrecoverable(unavailable()), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLogs()
			c := newWaitClock(true)
			g := NewGuard(eleven, GuardOptions{Clock: c.Mock})
			s := &script{errs: []error{tt.err, tt.err, tt.err}}
			err := NewRetrier(RetryPolicy{}, c, l.logger).Run(context.Background(), nil, g, s.op)
			if n := s.calls.Load(); n != 1 {
				t.Fatalf("provider called %d times, want 1", n)
			}
			if len(c.recorded()) != 0 {
				t.Fatalf("waited %v before failing", c.recorded())
			}
			if !tt.copied && !errors.Is(err, tt.err) {
				t.Fatalf("Run = %v, want %v", err, tt.err)
			}
			if fault.IsTransient(err) || fault.KindOf(err) != fault.KindOf(tt.err) {
				t.Fatalf("Run = %v: transient %v, kind %s", err, fault.IsTransient(err), fault.KindOf(err))
			}
			if l.count("Retrying") != 0 {
				t.Fatalf("logged a retry: %q", l.messages())
			}
		})
	}
}

func TestBadResponseRetriedOnceThenPermanent(t *testing.T) {
	t.Parallel()
	l := newLogs()
	c := newWaitClock(true)
	g := NewGuard("LLM", GuardOptions{Clock: c.Mock})
	bad := fault.Classify(fault.Facts{Provider: "LLM", Status: 200, Err: errors.New("empty choices")})
	s := &script{errs: []error{bad, bad, bad}}
	err := NewRetrier(RetryPolicy{MaxAttempts: 5}, c, l.logger).Run(context.Background(), nil, g, s.op)
	if n := s.calls.Load(); n != 2 {
		t.Fatalf("provider called %d times, want 2", n)
	}
	if fault.IsTransient(err) || !errors.Is(err, fault.ErrPermanent) || fault.KindOf(err) != fault.KindBadResponse {
		t.Fatalf("Run = %v (transient %v), want a permanent bad_response", err, fault.IsTransient(err))
	}
	var exhausted *RetriesExhaustedError
	if errors.As(err, &exhausted) {
		t.Fatal("a repeated bad response reported as retries exhausted")
	}
	if l.count("Permanent error on attempt 2") != 1 {
		t.Fatalf("logs: %q", l.messages())
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	limited := func(ra time.Duration) error {
		return fault.Classify(fault.Facts{Provider: eleven, Status: 429, Code: "system_busy", Message: "busy", RetryAfter: ra})
	}
	tests := []struct {
		name      string
		policy    RetryPolicy
		retryAt   time.Duration
		wantWaits string
		wantDefer time.Duration
	}{
		{"shorter than the backoff is ignored", RetryPolicy{}, 2 * time.Second, "[5s 10s]", 0},
		{"longer than the backoff is honoured", RetryPolicy{}, 8 * time.Second, "[8s 10s]", 0},
		{"up to the cap", RetryPolicy{}, 30 * time.Second, "[30s 30s]", 0},
		{"honoured over max delay", RetryPolicy{MaxDelay: time.Second}, 3 * time.Second, "[3s 3s]", 0},
		{"beyond the cap defers", RetryPolicy{}, 45 * time.Second, "[]", 45 * time.Second},
		{"custom cap", RetryPolicy{RetryAfterCap: 10 * time.Second}, 12 * time.Second, "[]", 12 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLogs()
			c := newWaitClock(true)
			g := NewGuard(eleven, GuardOptions{Breaker: noTrip, Clock: c.Mock})
			s := &script{errs: []error{limited(tt.retryAt), limited(tt.retryAt), limited(tt.retryAt)}}
			err := NewRetrier(tt.policy, c, l.logger).Run(context.Background(), nil, g, s.op)
			if got := fmt.Sprint(c.recorded()); got != tt.wantWaits {
				t.Fatalf("waits = %s, want %s", got, tt.wantWaits)
			}
			var def *DeferError
			if tt.wantDefer == 0 {
				if errors.As(err, &def) {
					t.Fatalf("deferred: %v", err)
				}
				return
			}
			if !errors.As(err, &def) || def.After != tt.wantDefer || def.Provider != eleven {
				t.Fatalf("Run = %v, want DeferError after %s", err, tt.wantDefer)
			}
			if s.calls.Load() != 1 || fault.KindOf(err) != fault.KindRateLimited || !errors.Is(err, fault.ErrTransient) {
				t.Fatalf("calls = %d, kind = %s", s.calls.Load(), fault.KindOf(err))
			}
			if l.count("returning the contact to the queue") != 1 {
				t.Fatalf("logs: %q", l.messages())
			}
		})
	}
}

func TestRetryStopsAtOpenBreaker(t *testing.T) {
	t.Parallel()
	t.Run("opened by this contact with attempts left", func(t *testing.T) {
		t.Parallel()
		c := newWaitClock(true)
		g := NewGuard(eleven, GuardOptions{Breaker: BreakerSettings{FailureThreshold: 2}, Clock: c.Mock})
		s := &script{errs: []error{unavailable(), unavailable(), unavailable(), unavailable()}}
		err := NewRetrier(RetryPolicy{MaxAttempts: 5}, c, nil).Run(context.Background(), nil, g, s.op)
		var open *OpenError
		if !errors.As(err, &open) || !errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("Run = %v, want OpenError", err)
		}
		if s.calls.Load() != 2 || fmt.Sprint(c.recorded()) != "[5s]" {
			t.Fatalf("calls = %d, waits = %v: the loop went on against an open breaker", s.calls.Load(), c.recorded())
		}
		if want := c.Mock.Now().Add(DefaultOpenTimeout); !open.RetryAt.Equal(want) {
			t.Fatalf("RetryAt = %s, want %s", open.RetryAt, want)
		}
	})
	t.Run("already open fails fast", func(t *testing.T) {
		t.Parallel()
		l := newLogs()
		c := newWaitClock(true)
		g := NewGuard(eleven, GuardOptions{Clock: c.Mock, Logger: l.logger})
		openGuard(t, g)
		s := &script{}
		err := NewRetrier(RetryPolicy{}, c, l.logger).Run(context.Background(), nil, g, s.op)
		if !errors.Is(err, ErrBreakerOpen) || s.calls.Load() != 0 || len(c.recorded()) != 0 {
			t.Fatalf("Run = %v, calls = %d, waits = %v", err, s.calls.Load(), c.recorded())
		}
		e := l.find("Circuit breaker is OPEN for ElevenLabs. Failing fast.")
		if e == nil || e.Data["circuit_state"] != "OPEN" || e.Data["service"] != eleven {
			t.Fatalf("fail-fast line missing: %q", l.messages())
		}
	})
}

func TestRetryWaitStopsAtOnceOnShutdown(t *testing.T) {
	t.Parallel()
	t.Run("mock clock", func(t *testing.T) {
		t.Parallel()
		c := newWaitClock(false) // waits never end on their own
		g := NewGuard(eleven, GuardOptions{Clock: c.Mock})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- NewRetrier(RetryPolicy{}, c, nil).Run(ctx, nil, g, always(unavailable())) }()
		if d := <-c.started; d != 5*time.Second {
			t.Fatalf("first wait %s, want 5s", d)
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run kept waiting after cancel")
		}
	})
	t.Run("real clock", func(t *testing.T) {
		t.Parallel()
		g := NewGuard(eleven, GuardOptions{})
		s := &script{errs: []error{unavailable(), unavailable(), unavailable()}}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- NewRetrier(RetryPolicy{}, nil, nil).Run(ctx, nil, g, s.op) }()
		testwait.True(t, 5*time.Second, "the first attempt", func() bool { return s.calls.Load() == 1 })
		start := time.Now()
		cancel()
		err := <-done
		if elapsed := time.Since(start); elapsed > time.Second {
			t.Fatalf("Run returned %s after cancel, want at once", elapsed)
		}
		if !errors.Is(err, context.Canceled) || s.calls.Load() != 1 {
			t.Fatalf("Run = %v after %d calls", err, s.calls.Load())
		}
	})
	t.Run("cancelled during the attempt", func(t *testing.T) {
		t.Parallel()
		c := newWaitClock(true)
		g := NewGuard(eleven, GuardOptions{Breaker: BreakerSettings{FailureThreshold: 1}, Clock: c.Mock})
		ctx, cancel := context.WithCancel(context.Background())
		err := NewRetrier(RetryPolicy{}, c, nil).Run(ctx, nil, g, func(ctx context.Context) error {
			cancel()
			return ctx.Err()
		})
		if !errors.Is(err, context.Canceled) || len(c.recorded()) != 0 {
			t.Fatalf("Run = %v, waits %v", err, c.recorded())
		}
		if g.State() != StateClosed {
			t.Fatal("a cancellation counted as a provider failure")
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		t.Parallel()
		g := NewGuard(eleven, GuardOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s := &script{}
		if err := NewRetrier(RetryPolicy{}, nil, nil).Run(ctx, nil, g, s.op); !errors.Is(err, context.Canceled) || s.calls.Load() != 0 {
			t.Fatalf("Run = %v after %d calls", err, s.calls.Load())
		}
	})
}

func TestConcurrencyLimitIsRetried(t *testing.T) {
	t.Parallel()
	c := newWaitClock(true)
	g := NewGuard(eleven, GuardOptions{Breaker: BreakerSettings{FailureThreshold: 1}, Clock: c.Mock})
	limit := fault.Classify(fault.Facts{Provider: eleven, Status: 429, Code: "too_many_concurrent_requests"})
	s := &script{errs: []error{limit, limit}}
	if err := NewRetrier(RetryPolicy{}, c, nil).Run(context.Background(), nil, g, s.op); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if s.calls.Load() != 3 || g.State() != StateClosed {
		t.Fatalf("calls = %d, state = %s (threshold 1)", s.calls.Load(), g.State())
	}
}
