package resilience

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	circuitbreaker "github.com/mercari/go-circuitbreaker"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/testwait"
)

func TestBreakerOpensAfterThresholdAndFailsFast(t *testing.T) {
	t.Parallel()
	l := newLogs()
	c := clock.NewMock()
	g := NewGuard(eleven, GuardOptions{Clock: c, Logger: l.logger})
	for i := 1; i <= 3; i++ {
		if err := g.Do(context.Background(), always(unavailable())); fault.KindOf(err) != fault.KindUnavailable {
			t.Fatalf("attempt %d: %v", i, err)
		}
		want := StateClosed
		if i == 3 {
			want = StateOpen
		}
		if g.State() != want {
			t.Fatalf("after %d failures: %s, want %s", i, g.State(), want)
		}
	}
	retryAt := c.Now().Add(30 * time.Second)
	if !g.RetryAt().Equal(retryAt) || g.Ready() {
		t.Fatalf("RetryAt = %s, Ready = %v; want %s, false", g.RetryAt(), g.Ready(), retryAt)
	}

	c.Add(29 * time.Second)
	s := &script{}
	err := g.Do(context.Background(), s.op)
	var open *OpenError
	if !errors.As(err, &open) || !errors.Is(err, ErrBreakerOpen) || s.calls.Load() != 0 {
		t.Fatalf("Do while open = %v (calls %d), want OpenError without a call", err, s.calls.Load())
	}
	if open.Provider != eleven || open.State != StateOpen || !open.RetryAt.Equal(retryAt) {
		t.Fatalf("OpenError = %+v", open)
	}
	if !strings.Contains(err.Error(), "ElevenLabs") || !strings.Contains(err.Error(), "1970-01-01T00:00:30.000Z") {
		t.Fatalf("message %q does not say when calls may pass", err)
	}

	c.Add(time.Second)
	if g.State() != StateHalfOpen || !g.Ready() || !g.RetryAt().Equal(c.Now()) {
		t.Fatalf("after the open timeout: %s, ready %v, retry at %s", g.State(), g.Ready(), g.RetryAt())
	}
	if got := l.messages(); fmt.Sprint(got) != fmt.Sprint([]string{"Circuit breaker OPENED for ElevenLabs", "Circuit breaker HALF_OPEN for ElevenLabs"}) {
		t.Fatalf("logs = %q", got)
	}
}

func TestBreakerSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		settings          BreakerSettings
		failures, success int
	}{
		{"seed", BreakerSettings{}, 3, 2},
		{"custom", BreakerSettings{FailureThreshold: 5, SuccessThreshold: 3, OpenTimeout: time.Minute}, 5, 3},
		{"one and one", BreakerSettings{FailureThreshold: 1, SuccessThreshold: 1, OpenTimeout: time.Second}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := clock.NewMock()
			g := NewGuard(eleven, GuardOptions{Breaker: tt.settings, Clock: c})
			for i := 1; i <= tt.failures; i++ {
				_ = g.Do(context.Background(), always(unavailable()))
				if open := g.State() == StateOpen; open != (i == tt.failures) {
					t.Fatalf("after %d failures: %s", i, g.State())
				}
			}
			c.Add(tt.settings.WithDefaultsOpenTimeout())
			if g.State() != StateHalfOpen {
				t.Fatalf("after the open timeout: %s", g.State())
			}
			for i := 1; i <= tt.success; i++ {
				if err := g.Do(context.Background(), ok); err != nil {
					t.Fatalf("probe %d: %v", i, err)
				}
				if closed := g.State() == StateClosed; closed != (i == tt.success) {
					t.Fatalf("after %d successes: %s", i, g.State())
				}
			}
		})
	}
}

// WithDefaultsOpenTimeout is the open timeout a guard built from s uses.
func (s BreakerSettings) WithDefaultsOpenTimeout() time.Duration {
	return GuardOptions{Breaker: s}.WithDefaults().Breaker.OpenTimeout
}

// halfOpenGuard returns a guard whose breaker has just gone HALF_OPEN.
func halfOpenGuard(t *testing.T, o GuardOptions) (*Guard, *clock.Mock) {
	t.Helper()
	c := clock.NewMock()
	o.Clock = c
	g := NewGuard(eleven, o)
	openGuard(t, g)
	c.Add(g.openTimeout)
	if g.State() != StateHalfOpen {
		t.Fatalf("state %s, want HALF_OPEN", g.State())
	}
	return g, c
}

func TestHalfOpenAdmitsOneProbeAtATime(t *testing.T) {
	t.Parallel()
	g, _ := halfOpenGuard(t, GuardOptions{})
	const callers = 20
	var inOp, maxInOp, admitted, refused atomic.Int32
	round := func() {
		release := make(chan struct{})
		var wg sync.WaitGroup
		refusedBefore := refused.Load()
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := g.Do(context.Background(), func(context.Context) error {
					n := inOp.Add(1)
					for {
						m := maxInOp.Load()
						if n <= m || maxInOp.CompareAndSwap(m, n) {
							break
						}
					}
					admitted.Add(1)
					<-release
					inOp.Add(-1)
					return nil
				})
				var open *OpenError
				if errors.As(err, &open) {
					if open.State != StateHalfOpen {
						t.Errorf("refused with state %s, want HALF_OPEN", open.State)
					}
					refused.Add(1)
				} else if err != nil {
					t.Errorf("Do = %v", err)
				}
			}()
		}
		testwait.True(t, 5*time.Second, "every other caller to be refused", func() bool { return refused.Load()-refusedBefore == callers-1 })
		if g.Ready() {
			t.Error("Ready while the probe is in flight")
		}
		close(release)
		wg.Wait()
	}
	round()
	if g.State() != StateHalfOpen {
		t.Fatalf("closed after one success: %s", g.State())
	}
	round()
	if g.State() != StateClosed {
		t.Fatalf("state after two successful probes: %s, want CLOSED", g.State())
	}
	if maxInOp.Load() != 1 || admitted.Load() != 2 || refused.Load() != 2*(callers-1) {
		t.Fatalf("max concurrent probes %d, admitted %d, refused %d", maxInOp.Load(), admitted.Load(), refused.Load())
	}
}

func TestHalfOpenFailureReopens(t *testing.T) {
	t.Parallel()
	g, c := halfOpenGuard(t, GuardOptions{})
	_ = g.Do(context.Background(), ok) // one success is not enough
	if err := g.Do(context.Background(), always(unavailable())); fault.KindOf(err) != fault.KindUnavailable {
		t.Fatalf("probe = %v", err)
	}
	if g.State() != StateOpen || !g.RetryAt().Equal(c.Now().Add(30*time.Second)) {
		t.Fatalf("after a failed probe: %s until %s", g.State(), g.RetryAt())
	}
	// The not-counted errors do not re-open it.
	c.Add(30 * time.Second)
	for _, err := range []error{kindErr(fault.KindInvalidPayload), kindErr(fault.KindConcurrencyLimit)} {
		_ = g.Do(context.Background(), always(err))
		if g.State() != StateHalfOpen {
			t.Fatalf("%v moved the half-open breaker to %s", err, g.State())
		}
	}
}

func TestProviderIsolation(t *testing.T) {
	t.Parallel()
	c := clock.NewMock()
	tts := NewGuard(eleven, GuardOptions{Clock: c})
	llm := NewGuard("LLM", GuardOptions{Clock: c})
	openGuard(t, tts)
	for range 10 {
		if err := llm.Do(context.Background(), ok); err != nil {
			t.Fatalf("LLM refused while ElevenLabs is open: %v", err)
		}
	}
	if llm.State() != StateClosed || tts.State() != StateOpen {
		t.Fatalf("LLM %s, ElevenLabs %s", llm.State(), tts.State())
	}
	var open *OpenError
	if err := tts.Do(context.Background(), ok); !errors.As(err, &open) || open.Provider != eleven {
		t.Fatalf("ElevenLabs Do = %v", err)
	}
}

func TestWhatCountsAsFailure(t *testing.T) {
	t.Parallel()
	perAttemptTimeout := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
		defer cancel()
		<-ctx.Done()
		return ctx.Err()
	}
	waitCaller := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	tests := []struct {
		name string
		op   func(ctx context.Context) error
		// callerGivesUp: the caller's ctx ends while the attempt runs (it has a 1ms deadline).
		callerGivesUp bool
		counts        bool
		kind          fault.Kind
	}{
		{"503", always(unavailable()), false, true, fault.KindUnavailable},
		{"authentication", always(kindErr(fault.KindAuthentication)), false, true, fault.KindAuthentication},
		{"quota", always(kindErr(fault.KindQuota)), false, true, fault.KindQuota},
		{"configuration", always(kindErr(fault.KindConfiguration)), false, true, fault.KindConfiguration},
		{"rate limited", always(kindErr(fault.KindRateLimited)), false, true, fault.KindRateLimited},
		{"per-attempt timeout", perAttemptTimeout, false, true, fault.KindTimeout},
		{"bare network error", always(fmt.Errorf("read: %w", resetError{})), false, true, fault.KindNetwork},
		{"invalid payload", always(kindErr(fault.KindInvalidPayload)), false, false, fault.KindInvalidPayload},
		{"invalid contact", always(fault.InvalidContact(eleven, errors.New("no phone"))), false, false, fault.KindInvalidPayload},
		{"concurrency limit", always(kindErr(fault.KindConcurrencyLimit)), false, false, fault.KindConcurrencyLimit},
		{"unclassified", always(errors.New("bug")), false, false, fault.KindUnknown},
		{"op cancelled itself", always(context.Canceled), false, false, fault.KindUnknown},
		{"caller deadline", waitCaller, true, false, fault.KindUnknown},
		{"provider error after the caller gave up", func(ctx context.Context) error { <-ctx.Done(); return unavailable() }, true, false, fault.KindUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewGuard(eleven, GuardOptions{Breaker: BreakerSettings{FailureThreshold: 1}, Clock: clock.NewMock()})
			ctx := context.Background()
			if tt.callerGivesUp {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Millisecond)
				defer cancel()
			}
			err := g.Do(ctx, tt.op)
			if err == nil || fault.KindOf(err) != tt.kind {
				t.Fatalf("Do = %v (kind %s), want kind %s", err, fault.KindOf(err), tt.kind)
			}
			if counted := g.State() == StateOpen; counted != tt.counts {
				t.Fatalf("counted = %v, want %v (state %s)", counted, tt.counts, g.State())
			}
			var se *fault.ServiceError
			if errors.As(err, &se) && se.Provider != eleven {
				t.Fatalf("provider %q, want %q", se.Provider, eleven)
			}
		})
	}

	t.Run("caller cancelled during the attempt", func(t *testing.T) {
		t.Parallel()
		g := NewGuard(eleven, GuardOptions{Breaker: BreakerSettings{FailureThreshold: 1}, Clock: clock.NewMock()})
		ctx, cancel := context.WithCancel(context.Background())
		err := g.Do(ctx, func(ctx context.Context) error { cancel(); <-ctx.Done(); return ctx.Err() })
		if err != context.Canceled || g.State() != StateClosed {
			t.Fatalf("Do = %v, state %s: want context.Canceled unchanged and not counted", err, g.State())
		}
	})
}

// resetError is a net.Error that is not a timeout, as a reset connection reports.
type resetError struct{}

func (resetError) Error() string   { return "connection reset by peer" }
func (resetError) Timeout() bool   { return false }
func (resetError) Temporary() bool { return false }

func TestIgnoredErrorsDoNotResetTheCount(t *testing.T) {
	t.Parallel()
	g := NewGuard(eleven, GuardOptions{Clock: clock.NewMock()})
	for _, err := range []error{unavailable(), kindErr(fault.KindInvalidPayload), unavailable(), kindErr(fault.KindConcurrencyLimit)} {
		_ = g.Do(context.Background(), always(err))
	}
	if g.State() != StateClosed {
		t.Fatalf("opened after two counted failures: %s", g.State())
	}
	_ = g.Do(context.Background(), always(unavailable()))
	if g.State() != StateOpen {
		t.Fatalf("three consecutive counted failures left it %s", g.State())
	}

	g2 := NewGuard(eleven, GuardOptions{Clock: clock.NewMock()})
	for _, op := range []func(context.Context) error{always(unavailable()), always(unavailable()), ok, always(unavailable()), always(unavailable())} {
		_ = g2.Do(context.Background(), op)
	}
	if g2.State() != StateClosed {
		t.Fatalf("a success did not reset the consecutive count: %s", g2.State())
	}
}

func TestCounterIsNotResetByTime(t *testing.T) {
	t.Parallel()
	// mercari resets its counters every second by default; failures seconds apart must add up.
	c := clock.NewMock()
	g := NewGuard(eleven, GuardOptions{Clock: c})
	for range 3 {
		_ = g.Do(context.Background(), always(unavailable()))
		c.Add(10 * time.Second)
	}
	if g.State() != StateOpen {
		t.Fatalf("three failures 10s apart left the breaker %s", g.State())
	}
}

func TestConcurrencyLimitLowersBulkheadNotBreaker(t *testing.T) {
	t.Parallel()
	l := newLogs()
	g := NewGuard(eleven, GuardOptions{MaxConcurrency: 4, Clock: clock.NewMock(), Logger: l.logger})
	warm(t, g)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = g.Do(context.Background(), func(context.Context) error { <-release; return nil })
		}()
	}
	testwait.True(t, 5*time.Second, "three calls in flight", func() bool { return g.Bulkhead().InUse() == 3 })
	limit := fault.Classify(fault.Facts{Provider: eleven, Status: 429, Code: "too_many_concurrent_requests", Message: "Too many concurrent requests"})
	if err := g.Do(context.Background(), always(limit)); fault.KindOf(err) != fault.KindConcurrencyLimit {
		t.Fatalf("Do = %v", err)
	}
	if got := g.Bulkhead().Limit(); got != 3 {
		t.Fatalf("limit = %d after a refusal with 4 in flight, want 3", got)
	}
	close(release)
	wg.Wait()
	for range 10 {
		_ = g.Do(context.Background(), always(limit))
	}
	if g.State() != StateClosed {
		t.Fatalf("concurrency refusals opened the breaker: %s", g.State())
	}
	if got := g.Bulkhead().Limit(); got != 1 {
		t.Fatalf("limit = %d, want the floor of 1", got)
	}
	e := l.find("lowering our concurrency from 4 to 3")
	if e == nil || e.Level != logrus.WarnLevel || e.Data["error_category"] != "concurrency_limit" || e.Data["service"] != eleven {
		t.Fatalf("logs = %q", l.messages())
	}
	g.Bulkhead().SetLimit(6) // e.g. from ElevenLabs' maximum-concurrent-requests header
	if g.Bulkhead().Limit() != 6 {
		t.Fatal("SetLimit did not raise the limit")
	}
}

func TestGuardBulkheadCapsProviderCalls(t *testing.T) {
	t.Parallel()
	g := NewGuard(eleven, GuardOptions{MaxConcurrency: 2, Clock: clock.NewMock()})
	warm(t, g)
	var inOp, maxInOp, calls atomic.Int32
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = g.Do(context.Background(), func(context.Context) error {
				n := inOp.Add(1)
				for {
					m := maxInOp.Load()
					if n <= m || maxInOp.CompareAndSwap(m, n) {
						break
					}
				}
				calls.Add(1)
				<-gate
				inOp.Add(-1)
				return nil
			})
		}()
	}
	testwait.True(t, 5*time.Second, "two calls in flight and 28 waiting", func() bool {
		return g.Bulkhead().InUse() == 2 && g.Bulkhead().waiting() == 28
	})
	close(gate)
	wg.Wait()
	if maxInOp.Load() != 2 || calls.Load() != 30 {
		t.Fatalf("max in flight %d, calls %d", maxInOp.Load(), calls.Load())
	}

	// A caller that gives up while waiting for a slot is not a provider failure.
	block := make(chan struct{})
	g2 := NewGuard(eleven, GuardOptions{MaxConcurrency: 1, Breaker: BreakerSettings{FailureThreshold: 1}, Clock: clock.NewMock()})
	go func() { _ = g2.Do(context.Background(), func(context.Context) error { <-block; return nil }) }()
	testwait.True(t, 5*time.Second, "the slot to be taken", func() bool { return g2.Bulkhead().InUse() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	s := &script{}
	err := g2.Do(ctx, s.op)
	if !errors.Is(err, context.DeadlineExceeded) || s.calls.Load() != 0 || g2.State() != StateClosed {
		t.Fatalf("Do = %v, calls %d, state %s", err, s.calls.Load(), g2.State())
	}
	close(block)
	testwait.True(t, 5*time.Second, "the slot to be released", func() bool { return g2.Bulkhead().InUse() == 0 })
}

func TestListenerGetsEachTransitionOnce(t *testing.T) {
	t.Parallel()
	l := newLogs()
	c := clock.NewMock()
	lis := &listener{}
	g := NewGuard(eleven, GuardOptions{Clock: c, Listener: lis, Logger: l.logger})
	lis.g = g // calls back into the guard during notification

	openGuard(t, g)
	openedAt := c.Now()
	g.cb.SetState(circuitbreaker.StateOpen) // mercari's OPEN→OPEN: dropped
	c.Add(30 * time.Second)                 // HALF_OPEN
	_ = g.Do(context.Background(), always(unavailable()))
	c.Add(30 * time.Second) // HALF_OPEN again
	_ = g.Do(context.Background(), ok)
	_ = g.Do(context.Background(), ok) // CLOSED
	g.Reset()                          // already closed: nothing
	openGuard(t, g)
	g.Reset() // OPEN→CLOSED

	want := []transition{
		{StateClosed, StateOpen, openedAt},
		{StateOpen, StateHalfOpen, openedAt.Add(30 * time.Second)},
		{StateHalfOpen, StateOpen, openedAt.Add(30 * time.Second)},
		{StateOpen, StateHalfOpen, openedAt.Add(60 * time.Second)},
		{StateHalfOpen, StateClosed, openedAt.Add(60 * time.Second)},
		{StateClosed, StateOpen, openedAt.Add(60 * time.Second)},
		{StateOpen, StateClosed, openedAt.Add(60 * time.Second)},
	}
	testwait.True(t, 5*time.Second, "every notification", func() bool { return len(lis.got()) >= len(want) && g.flushed() })
	if got := lis.got(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listener got\n%v\nwant\n%v", got, want)
	}
	for msg, n := range map[string]int{"OPENED": 3, "HALF_OPEN": 2, "CLOSED": 2} {
		if got := l.count("Circuit breaker " + msg + " for ElevenLabs"); got != n {
			t.Errorf("%q logged %d times, want %d: %q", msg, got, n, l.messages())
		}
	}
}

func TestGuardOptions(t *testing.T) {
	t.Parallel()
	d := GuardOptions{}.WithDefaults()
	if d.Breaker.FailureThreshold != 3 || d.Breaker.SuccessThreshold != 2 || d.Breaker.OpenTimeout != 30*time.Second ||
		d.MaxConcurrency != DefaultMaxConcurrency {
		t.Fatalf("defaults = %+v", d)
	}
	tests := []struct {
		o    GuardOptions
		want string
	}{
		{GuardOptions{}, ""},
		{GuardOptions{Breaker: BreakerSettings{FailureThreshold: -1}}, "breaker failure threshold must not be negative, got -1"},
		{GuardOptions{Breaker: BreakerSettings{SuccessThreshold: -2}}, "breaker success threshold must not be negative, got -2"},
		{GuardOptions{Breaker: BreakerSettings{OpenTimeout: -time.Second}}, "breaker open timeout must not be negative, got -1s"},
		{GuardOptions{MaxConcurrency: -3}, "max concurrency must not be negative, got -3"},
	}
	for _, tt := range tests {
		err := tt.o.Validate()
		if (err == nil) != (tt.want == "") || (err != nil && err.Error() != tt.want) {
			t.Errorf("%+v.Validate() = %v, want %q", tt.o, err, tt.want)
		}
	}
	g := NewGuard("CRM", GuardOptions{})
	if g.Provider() != "CRM" || g.State() != StateClosed || !g.Ready() || !g.RetryAt().IsZero() || g.Bulkhead().Limit() != DefaultMaxConcurrency {
		t.Fatalf("new guard: %s %s %v %s %d", g.Provider(), g.State(), g.Ready(), g.RetryAt(), g.Bulkhead().Limit())
	}
}

func TestGuardReleasesOnPanic(t *testing.T) {
	t.Parallel()
	g, _ := halfOpenGuard(t, GuardOptions{MaxConcurrency: 1})
	func() {
		defer func() { _ = recover() }()
		_ = g.Do(context.Background(), func(context.Context) error { panic("provider client bug") })
	}()
	if g.Bulkhead().InUse() != 0 || !g.Ready() {
		t.Fatalf("a panicking op kept its slot (in use %d) or the probe (ready %v)", g.Bulkhead().InUse(), g.Ready())
	}
}

type recordingListener struct{ got []string }

func (r *recordingListener) BreakerStateChanged(provider string, from, to State, _ time.Time) {
	r.got = append(r.got, provider+":"+string(from)+">"+string(to))
}

func TestListenersFanOutInOrder(t *testing.T) {
	a, b := &recordingListener{}, &recordingListener{}
	Listeners{a, nil, b}.BreakerStateChanged("ElevenLabs", StateClosed, StateOpen, time.Now())
	if len(a.got) != 1 || len(b.got) != 1 || a.got[0] != "ElevenLabs:CLOSED>OPEN" {
		t.Fatalf("a=%v b=%v", a.got, b.got)
	}
}

// ownLimit is an error of our own making (the response-bytes budget) as a client reports it.
type ownLimit struct{}

func (ownLimit) Error() string        { return "in-flight response budget exhausted" }
func (ownLimit) Is(target error) bool { return target == fault.ErrOwnLimit }

// Running out of our own budget is retried like an unavailable provider but never opens the
// provider's breaker: a flood from one provider must not trip another's.
func TestOwnLimitDoesNotCountAgainstTheBreaker(t *testing.T) {
	t.Parallel()
	g := NewGuard("LLM", GuardOptions{})
	own := fault.Classify(fault.Facts{Provider: "LLM", Err: ownLimit{}})
	if fault.KindOf(own) == fault.KindUnknown {
		own = &fault.ServiceError{Provider: "LLM", Kind: fault.KindUnavailable, Err: ownLimit{}}
	}
	for range 2 * DefaultFailureThreshold {
		_ = g.Do(context.Background(), always(own))
	}
	if g.State() != StateClosed {
		t.Fatalf("our own limit opened the breaker: %s", g.State())
	}
	for range DefaultFailureThreshold {
		_ = g.Do(context.Background(), always(unavailable()))
	}
	if g.State() != StateOpen {
		t.Fatalf("real failures did not open it: %s", g.State())
	}
}

// countingOp is a provider call that counts its calls and the most in flight at once, waits
// for gate (when set), and returns err.
type countingOp struct {
	gate             chan struct{}
	err              error
	calls, in, maxIn atomic.Int32
}

func (o *countingOp) op(ctx context.Context) error {
	o.calls.Add(1)
	n := o.in.Add(1)
	defer o.in.Add(-1)
	for {
		m := o.maxIn.Load()
		if n <= m || o.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	if o.gate != nil {
		select {
		case <-o.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return o.err
}

// callers runs n goroutines that each make one g.Do(op) and returns a func that waits for
// them (failing t if they do not return within 5 s) and returns their errors.
func callers(t *testing.T, g *Guard, n int, op func(context.Context) error) func() []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.Do(context.Background(), op)
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return func() []error {
		t.Helper()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("callers still in Do after 5s")
		}
		return errs
	}
}

// countOpen counts the *OpenErrors in errs.
func countOpen(errs []error) int {
	n := 0
	for _, err := range errs {
		var open *OpenError
		if errors.As(err, &open) {
			n++
		}
	}
	return n
}

// A provider that is down when the worker starts: 64 contacts reach it at once, but a new
// guard is in slow start: FailureThreshold calls test it while the others wait in the
// bulkhead, and exactly those reach it before the breaker opens. The 61 others wake with
// *OpenError without calling it.
func TestSlowStartFailingProviderSeesThresholdCalls(t *testing.T) {
	t.Parallel()
	g := NewGuard(eleven, GuardOptions{MaxConcurrency: 64, Clock: clock.NewMock()})
	if g.Bulkhead().Window() != DefaultFailureThreshold || g.Bulkhead().Limit() != 64 {
		t.Fatalf("a new guard: window %d, limit %d; want %d of 64 (slow start)", g.Bulkhead().Window(), g.Bulkhead().Limit(), DefaultFailureThreshold)
	}
	o := &countingOp{gate: make(chan struct{}), err: unavailable()}
	wait := callers(t, g, 64, o.op)
	testwait.True(t, 5*time.Second, "three calls in flight and 61 waiting", func() bool {
		return g.Bulkhead().InUse() == DefaultFailureThreshold && g.Bulkhead().waiting() == 64-DefaultFailureThreshold
	})
	close(o.gate)
	errs := wait()
	if got := o.calls.Load(); got != DefaultFailureThreshold {
		t.Fatalf("%d calls reached the failing provider, want %d", got, DefaultFailureThreshold)
	}
	if o.maxIn.Load() != DefaultFailureThreshold {
		t.Fatalf("%d calls in flight at once, want %d", o.maxIn.Load(), DefaultFailureThreshold)
	}
	if n := countOpen(errs); n != 64-DefaultFailureThreshold || g.State() != StateOpen {
		t.Fatalf("%d callers refused with OpenError, state %s; want %d, OPEN", n, g.State(), 64-DefaultFailureThreshold)
	}
	if g.Bulkhead().InUse() != 0 || g.Bulkhead().waiting() != 0 {
		t.Fatalf("in use %d, waiting %d after the opening", g.Bulkhead().InUse(), g.Bulkhead().waiting())
	}
}

// A guard at full concurrency when the provider fails: the calls in flight fail (they were
// already sent), and the callers waiting for a slot wake at the opening with *OpenError
// instead of calling the provider: no call beyond those in flight.
func TestFailureWithCallsInFlightWakesWaitersAtOpening(t *testing.T) {
	t.Parallel()
	g := NewGuard(eleven, GuardOptions{MaxConcurrency: 16, Clock: clock.NewMock()})
	warm(t, g)
	o := &countingOp{gate: make(chan struct{}), err: unavailable()}
	wait := callers(t, g, 40, o.op)
	testwait.True(t, 5*time.Second, "16 calls in flight and 24 waiting", func() bool {
		return g.Bulkhead().InUse() == 16 && g.Bulkhead().waiting() == 24
	})
	close(o.gate)
	errs := wait()
	if got := o.calls.Load(); got != 16 {
		t.Fatalf("%d calls reached the failing provider, want the 16 in flight", got)
	}
	if n := countOpen(errs); n != 24 || g.State() != StateOpen {
		t.Fatalf("%d waiters refused with OpenError, state %s; want 24, OPEN", n, g.State())
	}
	if w := g.Bulkhead().Window(); w != 1 {
		t.Fatalf("window %d after the failures, want 1", w)
	}
}

// Callers waiting for a slot wake as soon as the breaker opens, even while the call holding
// the slot hangs: they do not wait out the outage (or the hanging call) in the bulkhead.
func TestWaitersWakeWhenBreakerOpensWhileASlotHangs(t *testing.T) {
	t.Parallel()
	g := NewGuard(eleven, GuardOptions{MaxConcurrency: 2, Breaker: BreakerSettings{FailureThreshold: 1}, Clock: clock.NewMock()})
	warm(t, g)
	hang := &countingOp{gate: make(chan struct{})}
	waitHang := callers(t, g, 1, hang.op)
	defer func() {
		close(hang.gate)
		waitHang()
	}()
	testwait.True(t, 5*time.Second, "the hanging call", func() bool { return hang.in.Load() == 1 })
	fail := &countingOp{gate: make(chan struct{}), err: unavailable()}
	waitFail := callers(t, g, 1, fail.op)
	testwait.True(t, 5*time.Second, "the failing call", func() bool { return fail.in.Load() == 1 })
	never := &countingOp{}
	waitRest := callers(t, g, 5, never.op)
	testwait.True(t, 5*time.Second, "five waiters", func() bool { return g.Bulkhead().waiting() == 5 })
	close(fail.gate)
	waitFail()
	if n := countOpen(waitRest()); n != 5 || never.calls.Load() != 0 {
		t.Fatalf("%d waiters refused, %d calls made; want 5 refused without a call", n, never.calls.Load())
	}
	if hang.in.Load() != 1 {
		t.Fatal("the hanging call ended: the waiters did not wake on their own")
	}
	if err := g.Bulkhead().Acquire(context.Background()); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("Acquire while open = %v, want ErrBreakerOpen", err)
	}
}

// A caller granted its slot checks the breaker again before calling: here the breaker went
// half-open (the probe another's) while it waited.
func TestGrantedWaiterRechecksBreaker(t *testing.T) {
	t.Parallel()
	g := NewGuard(eleven, GuardOptions{MaxConcurrency: 1, Clock: clock.NewMock()})
	hold := &countingOp{gate: make(chan struct{})}
	waitHold := callers(t, g, 1, hold.op)
	testwait.True(t, 5*time.Second, "the slot to be taken", func() bool { return hold.in.Load() == 1 })
	next := &countingOp{}
	waitNext := callers(t, g, 1, next.op)
	testwait.True(t, 5*time.Second, "a waiter", func() bool { return g.Bulkhead().waiting() == 1 })
	g.cb.SetState(circuitbreaker.StateHalfOpen) // mercari's CLOSED→HALF_OPEN race
	g.probing.Store(true)                       // the probe is taken
	close(hold.gate)
	waitHold()
	var open *OpenError
	if err := waitNext()[0]; !errors.As(err, &open) || open.State != StateHalfOpen || next.calls.Load() != 0 {
		t.Fatalf("waiter = %v, calls %d; want a half-open OpenError without a call", err, next.calls.Load())
	}
	if g.Bulkhead().InUse() != 0 {
		t.Fatalf("the refused waiter kept its slot: in use %d", g.Bulkhead().InUse())
	}
}

// Slow start: the window starts at the failure threshold, each success doubles it up to the
// limit, a counted failure drops it to 1, an error that says nothing about the provider's
// health leaves it, and closing the breaker after an outage starts it over.
func TestWindowGrowsWithSuccessesAndDropsOnFailure(t *testing.T) {
	t.Parallel()
	c := clock.NewMock()
	g := NewGuard(eleven, GuardOptions{MaxConcurrency: 20, Clock: c})
	window := func() int { return g.Bulkhead().Window() }
	var got []int
	for range 5 {
		got = append(got, window())
		_ = g.Do(context.Background(), ok)
	}
	if fmt.Sprint(got) != "[3 6 12 20 20]" {
		t.Fatalf("window before each success: %v, want [3 6 12 20 20]", got)
	}
	_ = g.Do(context.Background(), always(kindErr(fault.KindInvalidPayload)))
	ctx, cancel := context.WithCancel(context.Background())
	_ = g.Do(ctx, func(context.Context) error { cancel(); return context.Canceled })
	if window() != 20 {
		t.Fatalf("window %d after errors that are not the provider's, want 20", window())
	}
	_ = g.Do(context.Background(), always(unavailable()))
	if window() != 1 {
		t.Fatalf("window %d after a counted failure, want 1", window())
	}
	got = nil
	for range 6 {
		_ = g.Do(context.Background(), ok)
		got = append(got, window())
	}
	if fmt.Sprint(got) != "[2 4 8 16 20 20]" {
		t.Fatalf("window after each success: %v, want [2 4 8 16 20 20]", got)
	}
	openGuard(t, g)
	g.Reset()
	if window() != DefaultFailureThreshold || g.State() != StateClosed {
		t.Fatalf("window %d, state %s after the outage; want %d, CLOSED", window(), g.State(), DefaultFailureThreshold)
	}
	// Through HALF_OPEN too: the probe's successes close the breaker, in slow start.
	warm(t, g)
	openGuard(t, g)
	c.Add(30 * time.Second)
	for g.State() != StateClosed {
		if err := g.Do(context.Background(), ok); err != nil {
			t.Fatal(err)
		}
	}
	if window() > 2*DefaultFailureThreshold {
		t.Fatalf("window %d right after closing from HALF_OPEN, want slow start", window())
	}
}

// After an outage, the calls held meanwhile come back at once; the provider sees three in
// flight, then more as they succeed, not all of them at once.
func TestSlowStartAfterReset(t *testing.T) {
	t.Parallel()
	g := NewGuard(eleven, GuardOptions{MaxConcurrency: 32, Clock: clock.NewMock()})
	warm(t, g)
	openGuard(t, g)
	g.Reset()
	o := &countingOp{gate: make(chan struct{})}
	wait := callers(t, g, 32, o.op)
	testwait.True(t, 5*time.Second, "three calls in flight and 29 waiting", func() bool {
		return o.in.Load() == DefaultFailureThreshold && g.Bulkhead().waiting() == 32-DefaultFailureThreshold
	})
	close(o.gate)
	for _, err := range wait() {
		if err != nil {
			t.Fatal(err)
		}
	}
	if o.calls.Load() != 32 || g.Bulkhead().Window() != 32 {
		t.Fatalf("calls %d, window %d; want 32, 32", o.calls.Load(), g.Bulkhead().Window())
	}
}

// A concurrency_limit refusal lowers the ceiling the window grows to; the window stays under
// it, and a raised ceiling is reached through successes.
func TestConcurrencyLimitCapsTheWindow(t *testing.T) {
	t.Parallel()
	g := NewGuard(eleven, GuardOptions{MaxConcurrency: 8, Clock: clock.NewMock()})
	warm(t, g)
	hold := &countingOp{gate: make(chan struct{})}
	wait := callers(t, g, 3, hold.op)
	testwait.True(t, 5*time.Second, "three calls in flight", func() bool { return hold.in.Load() == 3 })
	limit := fault.Classify(fault.Facts{Provider: eleven, Status: 429, Code: "too_many_concurrent_requests", Message: "Too many concurrent requests"})
	_ = g.Do(context.Background(), always(limit))
	close(hold.gate)
	wait()
	if l, w := g.Bulkhead().Limit(), g.Bulkhead().Window(); l != 3 || w != 3 {
		t.Fatalf("limit %d, window %d after a refusal with 4 in flight; want 3, 3", l, w)
	}
	for range 5 {
		_ = g.Do(context.Background(), ok)
	}
	if w := g.Bulkhead().Window(); w != 3 {
		t.Fatalf("window %d grew past the ceiling of 3", w)
	}
	_ = g.Do(context.Background(), always(unavailable()))
	g.Bulkhead().SetLimit(12) // the plan allows more
	if l, w := g.Bulkhead().Limit(), g.Bulkhead().Window(); l != 12 || w != 1 {
		t.Fatalf("limit %d, window %d; want 12, and the window still in slow start", l, w)
	}
	for range 4 {
		_ = g.Do(context.Background(), ok)
	}
	if w := g.Bulkhead().Window(); w != 12 {
		t.Fatalf("window %d after four successes, want the new ceiling 12", w)
	}
}

// Do stays free of allocations on the happy path, slow start included.
func TestGuardDoDoesNotAllocate(t *testing.T) {
	g := NewGuard(eleven, GuardOptions{MaxConcurrency: 64})
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { _ = g.Do(ctx, providerCall) }); n != 0 {
		t.Fatalf("Do allocates %g times per call", n)
	}
}
