package resilience

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/testwait"
)

// prober answers probes with the configured error; when block is set, a probe waits for
// release (or ctx) first.
type prober struct {
	mu      sync.Mutex
	err     error
	block   bool
	release chan struct{}
	calls   atomic.Int32
}

func newProber() *prober { return &prober{release: make(chan struct{})} }

func (p *prober) set(err error, block bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err, p.block = err, block
}

func (p *prober) Probe(ctx context.Context) error {
	p.calls.Add(1)
	p.mu.Lock()
	err, block := p.err, p.block
	p.mu.Unlock()
	if block {
		select {
		case <-p.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

type checkerBundle struct {
	g      *Guard
	c      *clock.Mock
	p      *prober
	h      *HealthChecker
	logs   logs
	cancel context.CancelFunc
	done   chan struct{}
	fast   bool // probe while open at 1s, 2s, 4s… (no jitter), as the worker does
	// scheduled receives each wait the checker set its timer to (fast only).
	scheduled chan time.Duration
	// gate, if set, is the checker's probe gate.
	gate ProbeGate
}

// startChecker runs a HealthChecker (interval 60s, timeout 5s) on a mock clock until the
// test ends.
func startChecker(t *testing.T, o GuardOptions, setup func(b *checkerBundle)) *checkerBundle {
	t.Helper()
	b := &checkerBundle{c: clock.NewMock(), p: newProber(), logs: newLogs(), done: make(chan struct{})}
	o.Clock, o.Logger = b.c, b.logs.logger
	b.g = NewGuard(eleven, o)
	if setup != nil {
		setup(b)
	}
	b.h = NewHealthChecker(b.g, b.p, time.Minute, 5*time.Second, b.c, b.logs.logger)
	b.h.openInterval = 0 // these tests count probes at the interval and at half-open only
	if b.fast {
		b.h.openInterval, b.h.jitter = time.Second, func() float64 { return 0 }
		b.scheduled = make(chan time.Duration, 100)
		b.h.scheduled = func(d time.Duration) { b.scheduled <- d }
	}
	if b.gate != nil {
		b.h.SetProbeGate(b.gate)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go func() {
		defer close(b.done)
		b.h.Run(ctx)
	}()
	t.Cleanup(b.stop)
	testwait.True(t, 5*time.Second, "the first probe", func() bool { return b.p.calls.Load() >= 1 })
	return b
}

func (b *checkerBundle) stop() {
	b.cancel()
	<-b.done
}

func TestHealthCheckerResetsBreakerAtHalfOpen(t *testing.T) {
	t.Parallel()
	b := startChecker(t, GuardOptions{}, func(b *checkerBundle) {
		openGuard(t, b.g)
		b.p.set(unavailable(), false)
	})
	testwait.True(t, 5*time.Second, "the failed first probe", func() bool { return b.h.Stats().Failures == 1 })
	if b.g.State() != StateOpen {
		t.Fatalf("a failed probe while open changed the state to %s", b.g.State())
	}

	// The provider recovers; at RetryAt the breaker goes half-open and the checker probes.
	b.p.set(nil, true)
	b.c.Add(30 * time.Second)
	testwait.True(t, 5*time.Second, "the half-open probe", func() bool { return b.p.calls.Load() == 2 })
	if b.g.State() != StateHalfOpen || b.g.Ready() {
		t.Fatalf("state %s, ready %v while the checker probes", b.g.State(), b.g.Ready())
	}
	s := &script{}
	var open *OpenError
	if err := b.g.Do(context.Background(), s.op); !errors.As(err, &open) || open.State != StateHalfOpen || s.calls.Load() != 0 {
		t.Fatalf("a real call was let through while the checker probes: %v", err)
	}
	close(b.p.release)
	testwait.True(t, 5*time.Second, "the breaker to close", func() bool { return b.g.State() == StateClosed })
	if err := b.g.Do(context.Background(), ok); err != nil {
		t.Fatalf("Do after recovery = %v", err)
	}
	st := b.h.Stats()
	if st.Resets != 1 || st.Probes != 2 || st.Failures != 1 || st.ConsecutiveFailures != 0 {
		t.Fatalf("stats = %+v", st)
	}
	healthy := b.logs.find("ElevenLabs is healthy")
	if healthy == nil || healthy.Data["service"] != eleven {
		t.Fatalf("logs = %q", b.logs.messages())
	}
	msgs := b.logs.messages()
	iHealthy, iClosed := -1, -1
	for i, m := range msgs {
		if m == "ElevenLabs is healthy" && iHealthy < 0 {
			iHealthy = i
		}
		if m == "Circuit breaker CLOSED for ElevenLabs" {
			iClosed = i
		}
	}
	if iHealthy < 0 || iClosed < iHealthy {
		t.Fatalf("want \"ElevenLabs is healthy\" then the CLOSED line: %q", msgs)
	}
}

func TestHealthCheckerFailedHalfOpenProbeReopens(t *testing.T) {
	t.Parallel()
	// An open timeout of 25s keeps the half-open probes away from the 60s interval ticks.
	b := startChecker(t, GuardOptions{Breaker: BreakerSettings{OpenTimeout: 25 * time.Second}}, func(b *checkerBundle) {
		openGuard(t, b.g)
		b.p.set(unavailable(), false)
	})
	testwait.True(t, 5*time.Second, "the first probe", func() bool { return b.h.Stats().Probes == 1 })
	for round := 1; round <= 2; round++ {
		b.c.Add(25 * time.Second)
		testwait.True(t, 5*time.Second, "the half-open probe", func() bool { return b.h.Stats().Probes == uint64(1+round) })
		testwait.True(t, 5*time.Second, "the breaker to re-open", func() bool { return b.g.State() == StateOpen })
		if want := b.c.Now().Add(25 * time.Second); !b.g.RetryAt().Equal(want) {
			t.Fatalf("RetryAt = %s, want %s", b.g.RetryAt(), want)
		}
	}
	if st := b.h.Stats(); st.Failures != 3 || st.ConsecutiveFailures != 3 || st.Resets != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if n := b.logs.count("Circuit breaker OPENED for ElevenLabs"); n != 3 {
		t.Fatalf("OPENED logged %d times, want 3", n)
	}
}

func TestHealthCheckerWhileClosed(t *testing.T) {
	t.Parallel()
	b := startChecker(t, GuardOptions{}, nil)
	testwait.True(t, 5*time.Second, "the first probe", func() bool { return b.h.Stats().Probes == 1 })
	if e := b.logs.find("ElevenLabs is healthy"); e == nil || e.Level != logrus.InfoLevel {
		t.Fatalf("first healthy probe not logged: %q", b.logs.messages())
	}

	// Failing probes are counted and logged but never trip the breaker.
	b.p.set(unavailable(), false)
	for i := 2; i <= 6; i++ {
		b.c.Add(time.Minute)
		testwait.True(t, 5*time.Second, "the next probe", func() bool { return b.h.Stats().Probes == uint64(i) })
	}
	if st := b.h.Stats(); st.Failures != 5 || st.ConsecutiveFailures != 5 || b.g.State() != StateClosed {
		t.Fatalf("stats %+v, state %s", st, b.g.State())
	}
	e := b.logs.find("Health check failed for ElevenLabs: Service temporarily unavailable")
	if e == nil || e.Level != logrus.WarnLevel || e.Data["error_category"] != "service_unavailable" || e.Data["circuit_state"] != "CLOSED" {
		t.Fatalf("failed probe line missing: %q", b.logs.messages())
	}

	b.p.set(nil, false)
	b.c.Add(time.Minute)
	testwait.True(t, 5*time.Second, "a healthy probe", func() bool { return b.h.Stats().Probes == 7 })
	if st := b.h.Stats(); st.ConsecutiveFailures != 0 || st.Resets != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if n := b.logs.count("ElevenLabs is healthy"); n != 2 {
		t.Fatalf("healthy logged at info %d times, want 2 (start, recovery): %q", n, b.logs.messages())
	}
}

func TestHealthCheckerResetsOpenBreakerAtInterval(t *testing.T) {
	t.Parallel()
	// Open timeout longer than the interval: the interval probe resets the breaker early.
	b := startChecker(t, GuardOptions{Breaker: BreakerSettings{OpenTimeout: 10 * time.Minute}}, nil)
	testwait.True(t, 5*time.Second, "the first probe", func() bool { return b.h.Stats().Probes == 1 })
	openGuard(t, b.g)
	b.c.Add(time.Minute)
	testwait.True(t, 5*time.Second, "the breaker to close", func() bool { return b.g.State() == StateClosed })
	if b.h.Stats().Resets != 1 {
		t.Fatalf("stats = %+v", b.h.Stats())
	}
	// The stopped open timer must not fire later.
	for i := 3; i <= 12; i++ {
		b.c.Add(time.Minute)
		testwait.True(t, 5*time.Second, "the next interval probe", func() bool { return b.h.Stats().Probes == uint64(i) })
	}
	if b.g.State() != StateClosed {
		t.Fatalf("state %s after the old open timeout", b.g.State())
	}
}

func TestHealthCheckerProbeTimeout(t *testing.T) {
	t.Parallel()
	b := startChecker(t, GuardOptions{}, func(b *checkerBundle) { b.p.set(nil, true) })
	b.c.Add(5 * time.Second)
	testwait.True(t, 5*time.Second, "the timed-out probe", func() bool { return b.h.Stats().Failures == 1 })
	e := b.logs.find("Health check failed for ElevenLabs")
	if e == nil || e.Data["error_category"] != fault.KindTimeout.String() {
		t.Fatalf("logs = %q", b.logs.messages())
	}
}

func TestHealthCheckerStopsAtOnce(t *testing.T) {
	t.Parallel()
	b := startChecker(t, GuardOptions{}, func(b *checkerBundle) { b.p.set(nil, true) })
	b.cancel()
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if st := b.h.Stats(); st.Probes != 0 || st.Failures != 0 {
		t.Fatalf("a probe cut short by shutdown was counted: %+v", st)
	}
	msgs := b.logs.messages()
	if len(msgs) != 2 || msgs[0] != "Health checker started for ElevenLabs" || msgs[1] != "Health checker stopped for ElevenLabs" {
		t.Fatalf("logs = %q", msgs)
	}
	if b.g.checkers.Load() != 0 {
		t.Fatal("the checker still owns the half-open probe after stopping")
	}
}

func TestHealthCheckerDefaults(t *testing.T) {
	t.Parallel()
	h := NewHealthChecker(NewGuard(eleven, GuardOptions{}), newProber(), 0, -1, nil, nil)
	if h.interval != DefaultHealthInterval || h.timeout != DefaultHealthTimeout || !h.realClock {
		t.Fatalf("interval %s, timeout %s, real clock %v", h.interval, h.timeout, h.realClock)
	}
}

// A key scoped to text-to-speech is refused by the probe endpoint with a permission error:
// the provider answered and knows the key, so the breaker must close, and the operator is
// warned once, not on every probe. A wrong key still fails.
func TestHealthCheckerScopedKeyCountsAsHealthy(t *testing.T) {
	t.Parallel()
	missing := fault.Classify(fault.Facts{Provider: eleven, Status: 401, Code: "missing_permissions",
		Message: "The API key you used is missing the permission models_read to execute this operation."})
	b := startChecker(t, GuardOptions{}, func(b *checkerBundle) {
		openGuard(t, b.g)
		b.p.set(missing, false)
	})
	testwait.True(t, 5*time.Second, "the breaker to close", func() bool { return b.g.State() == StateClosed })
	for i := 2; i <= 4; i++ {
		b.c.Add(time.Minute)
		testwait.True(t, 5*time.Second, "the next probe", func() bool { return b.h.Stats().Probes == uint64(i) })
	}
	if st := b.h.Stats(); st.Failures != 0 || st.Resets != 1 {
		t.Fatalf("stats = %+v, want no failures and one reset", st)
	}
	if n := b.logs.count("lacks the permission of the probe endpoint"); n != 1 {
		t.Fatalf("scoped-key warning logged %d times, want once: %q", n, b.logs.messages())
	}
	if e := b.logs.find("lacks the permission"); e.Level != logrus.WarnLevel {
		t.Fatalf("scoped-key line at %s, want warning", e.Level)
	}

	b.p.set(fault.Classify(fault.Facts{Provider: eleven, Status: 401, Code: "invalid_api_key", Message: "Invalid API key"}), false)
	b.c.Add(time.Minute)
	testwait.True(t, 5*time.Second, "the failed probe", func() bool { return b.h.Stats().Failures == 1 })
	if e := b.logs.find("Health check failed for ElevenLabs: Invalid API key"); e == nil || e.Data["error_category"] != "authentication" {
		t.Fatalf("a wrong key must fail the probe: %q", b.logs.messages())
	}
}

// A provider that refuses our settings (a retired model) answers its health probe: the
// probe cannot see the settings. The first refusal opens the breaker, healthy probes leave
// it open, and after the open timeout one real call, not the probe, tests the settings; its
// success closes the breaker.
func TestSettingsErrorOpensAtOnceAndOnlyARealCallClosesIt(t *testing.T) {
	t.Parallel()
	retired := fault.Classify(fault.Facts{Provider: eleven, Status: 400, Code: "model_decommissioned",
		Message: "The model `llama3-70b-8192` has been decommissioned"})
	// An open timeout longer than the interval: a probe runs while the breaker is open.
	b := startChecker(t, GuardOptions{Breaker: BreakerSettings{OpenTimeout: 90 * time.Second}}, nil)
	testwait.True(t, 5*time.Second, "the first probe", func() bool { return b.h.Stats().Probes == 1 })

	if err := b.g.Do(context.Background(), always(retired)); fault.KindOf(err) != fault.KindConfiguration {
		t.Fatalf("Do = %v", err)
	}
	if b.g.State() != StateOpen || !b.g.SettingsOpen() {
		t.Fatalf("one settings error left the breaker %s (settings %v), want OPEN at once", b.g.State(), b.g.SettingsOpen())
	}
	// A call admitted before it opened ends with a 503: the breaker stays open for the
	// settings, so a healthy probe still must not close it.
	b.g.record(context.Background(), unavailable())
	if !b.g.SettingsOpen() {
		t.Fatal("a transient failure recorded while open cleared the settings cause")
	}
	b.c.Add(time.Minute)
	testwait.True(t, 5*time.Second, "the interval probe", func() bool { return b.h.Stats().Probes == 2 })
	if b.h.Stats().Resets != 0 || b.g.State() != StateOpen {
		t.Fatalf("a healthy probe closed a breaker opened on a settings error: %+v, %s", b.h.Stats(), b.g.State())
	}
	b.c.Add(30 * time.Second)
	testwait.True(t, 5*time.Second, "the half-open state", func() bool { return b.g.State() == StateHalfOpen })
	if !b.g.Ready() {
		t.Fatal("half-open after a settings error must admit one real call")
	}
	// Still refused: back to OPEN, and no CLOSED in between (the alert stays open).
	if err := b.g.Do(context.Background(), always(retired)); fault.KindOf(err) != fault.KindConfiguration {
		t.Fatalf("half-open call = %v", err)
	}
	if b.g.State() != StateOpen {
		t.Fatalf("state %s after a refused half-open call", b.g.State())
	}
	if n := b.logs.count("Circuit breaker CLOSED"); n != 0 {
		t.Fatalf("breaker closed %d times while the settings were refused", n)
	}
	// The operator fixed the plan: the next half-open call succeeds and closes it.
	b.c.Add(90 * time.Second)
	testwait.True(t, 5*time.Second, "the half-open state", func() bool { return b.g.State() == StateHalfOpen })
	for b.g.State() != StateClosed {
		if err := b.g.Do(context.Background(), ok); err != nil {
			t.Fatalf("half-open call after the fix = %v", err)
		}
	}
	if b.g.SettingsOpen() {
		t.Fatal("SettingsOpen after closing")
	}
	// A transient failure after that counts as usual: three to open.
	for range DefaultFailureThreshold - 1 {
		_ = b.g.Do(context.Background(), always(unavailable()))
	}
	if b.g.State() != StateClosed {
		t.Fatalf("state %s after %d transient failures", b.g.State(), DefaultFailureThreshold-1)
	}
}

// nextWait returns the next wait the checker set its timer to (fast bundles only).
func (b *checkerBundle) nextWait(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-b.scheduled:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("the checker did not schedule its next probe")
		return 0
	}
}

// waitProbe waits for the checker's n-th probe and fails if it made more.
func (b *checkerBundle) waitProbe(t *testing.T, n uint64) {
	t.Helper()
	testwait.True(t, 5*time.Second, "the next probe", func() bool { return b.h.Stats().Probes >= n })
	if got := b.h.Stats().Probes; got != n {
		t.Fatalf("%d probes, want %d: one wait, one probe", got, n)
	}
}

// While the breaker is open the checker probes d/2 to d after the opening, then every d
// (1 s) until the outage is 10 s old, then every tenth of the outage's age, capped by the open
// timeout; once closed it returns to the interval. One probe per wait, so a provider that
// recovers is seen within one wait.
func TestHealthCheckerProbesOftenWhileOpen(t *testing.T) {
	t.Parallel()
	var leaseMu sync.Mutex
	// leases are what the fleet's gate was asked for, probe by probe.
	var leases []time.Duration
	b := startChecker(t, GuardOptions{}, func(b *checkerBundle) { // open timeout 30s
		b.fast = true
		b.p.set(unavailable(), false)
		b.gate = func(_ context.Context, _ string, d time.Duration) bool {
			leaseMu.Lock()
			defer leaseMu.Unlock()
			leases = append(leases, d)
			return true
		}
	})
	testwait.True(t, 5*time.Second, "the first probe", func() bool { return b.h.Stats().Probes == 1 })
	openGuard(t, b.g)
	var waits []time.Duration
	var age time.Duration // of the outage, on the mock clock
	probe := func(d time.Duration) {
		t.Helper()
		before := b.h.Stats().Probes
		b.c.Add(d)
		age += d
		b.waitProbe(t, before+1)
	}
	for age < 10*time.Minute {
		d := b.nextWait(t)
		waits = append(waits, d)
		probe(d)
	}
	// Jitter 0: the first probe half an interval after the opening, then every second.
	want := []time.Duration{500 * time.Millisecond}
	for range 10 {
		want = append(want, time.Second)
	}
	for i, w := range want {
		if waits[i] != w {
			t.Fatalf("wait %d = %s, want %s (waits %v)", i+1, waits[i], w, waits[:len(want)])
		}
	}
	// From 10 s on, a tenth of the outage's age (the waits grow by 10% each), up to the open
	// timeout: 30 s from an age of 5 minutes.
	at := waits[0]
	for i, w := range waits[1:] {
		if want := min(max(time.Second, at/10), 30*time.Second); w != want {
			t.Fatalf("wait %d at age %s = %s, want %s", i+2, at, w, want)
		}
		at += w
	}
	if n := len(waits); n < 50 || n > 70 {
		t.Fatalf("%d probes in the first 10 minutes of an outage, want 50 to 70", n)
	}
	if b.logs.count("Circuit breaker HALF_OPEN") == 0 {
		t.Fatal("the breaker never went half-open: the half-open probes were not exercised")
	}
	// The fleet's probe lease lasts the wait: a second at first, the open timeout late on.
	leaseMu.Lock()
	first, last := leases[0], leases[len(leases)-1]
	leaseMu.Unlock()
	if first != time.Second || last != 30*time.Second {
		t.Fatalf("probe leases asked for %s first and %s last; want 1s (the open interval) and 30s (the wait late in the outage)", first, last)
	}

	// The provider recovers: the next probe closes the breaker, and the checker goes back to
	// the 60 s interval.
	b.p.set(nil, false)
	if d := b.nextWait(t); d != 30*time.Second {
		t.Fatalf("wait after 10 minutes = %s, want the 30s open timeout", d)
	}
	probe(30 * time.Second)
	testwait.True(t, 5*time.Second, "the breaker to close", func() bool { return b.g.State() == StateClosed })
	if d := b.nextWait(t); d != time.Minute {
		t.Fatalf("wait after closing = %s, want the 1m interval", d)
	}

	// A new outage starts a new schedule: its first probe half an interval after it opens.
	b.p.set(unavailable(), false)
	openGuard(t, b.g)
	if d := b.nextWait(t); d != 500*time.Millisecond {
		t.Fatalf("first wait of the second outage = %s, want 500ms", d)
	}
}

// The first probe of an outage comes d/2 to d after the opening, spread by the jitter.
func TestHealthCheckerFirstOpenProbeJitter(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		jitter float64
		want   time.Duration
	}{{0, 500 * time.Millisecond}, {0.5, 750 * time.Millisecond}, {0.999, 999500 * time.Microsecond}} {
		b := startChecker(t, GuardOptions{}, func(b *checkerBundle) { b.fast = true })
		b.h.jitter = func() float64 { return tt.jitter }
		testwait.True(t, 5*time.Second, "the first probe", func() bool { return b.h.Stats().Probes == 1 })
		openGuard(t, b.g)
		if d := b.nextWait(t); d != tt.want {
			t.Fatalf("jitter %g: first wait %s, want %s", tt.jitter, d, tt.want)
		}
		b.stop()
	}
}

// A provider down for 10 s, as in the benchmark's scenario (c): the breaker closes at the
// first probe after the recovery, within one interval, after 11 probes.
func TestHealthCheckerSeesRecoveryWithinOneInterval(t *testing.T) {
	t.Parallel()
	b := startChecker(t, GuardOptions{}, func(b *checkerBundle) {
		b.fast = true
		b.p.set(unavailable(), false)
	})
	b.h.jitter = func() float64 { return 0.9 }
	testwait.True(t, 5*time.Second, "the first probe", func() bool { return b.h.Stats().Probes == 1 })
	openGuard(t, b.g)
	const outage = 10 * time.Second
	var age time.Duration
	for b.g.State() != StateClosed {
		d := b.nextWait(t)
		if age < outage && age+d >= outage {
			b.p.set(nil, false) // recovered while the checker waits
		}
		before := b.h.Stats().Probes
		b.c.Add(d)
		age += d
		b.waitProbe(t, before+1)
		if age > time.Minute {
			t.Fatal("the breaker is still open a minute into a 10s outage")
		}
	}
	if late := age - outage; late > time.Second {
		t.Fatalf("closed %s after the recovery, want within the 1s interval", late)
	}
	if st := b.h.Stats(); st.Probes-1 != 11 || st.Resets != 1 {
		t.Fatalf("stats %+v, want 11 probes during the outage and one reset", st)
	}
}

// The half-open transition adds no probe when the checker is on an outage's schedule: its
// next scheduled probe is the half-open probe. A failed half-open probe re-opens the breaker
// without restarting the schedule, so the checker still probes once per interval.
func TestHealthCheckerOneProbePerIntervalAcrossHalfOpen(t *testing.T) {
	t.Parallel()
	b := startChecker(t, GuardOptions{Breaker: BreakerSettings{OpenTimeout: 5 * time.Second}}, func(b *checkerBundle) {
		b.fast = true
		b.p.set(unavailable(), false)
	})
	testwait.True(t, 5*time.Second, "the first probe", func() bool { return b.h.Stats().Probes == 1 })
	openGuard(t, b.g)
	var waits []time.Duration
	halfOpens := 0
	for range 16 { // 15.5 s: the open timer fires at 5 s and, after re-opening at 5.5 s, at 10.5 s and 15.5 s
		d := b.nextWait(t)
		waits = append(waits, d)
		before := b.h.Stats().Probes
		b.c.Add(d)
		b.waitProbe(t, before+1)
		if b.logs.count("Circuit breaker HALF_OPEN") > halfOpens {
			halfOpens = b.logs.count("Circuit breaker HALF_OPEN")
		}
		testwait.True(t, 5*time.Second, "the breaker to re-open", func() bool { return b.g.State() == StateOpen })
	}
	if halfOpens < 2 {
		t.Fatalf("the breaker went half-open %d times, want at least 2", halfOpens)
	}
	for i, d := range waits {
		want := time.Second
		if i == 0 {
			want = 500 * time.Millisecond
		}
		if i >= 10 {
			want = 0 // growing from here; checked only for not restarting
		}
		if want != 0 && d != want {
			t.Fatalf("wait %d = %s, want %s: %v", i+1, d, want, waits)
		}
		if i > 0 && d < time.Second {
			t.Fatalf("wait %d = %s: the schedule restarted: %v", i+1, d, waits)
		}
	}
	if d := b.nextWait(t); d < time.Second {
		t.Fatalf("the wait after the 16th probe is %s, want at least 1s", d)
	}
	if st := b.h.Stats(); st.Probes != 17 {
		t.Fatalf("%d probes in 16 waits (and the start), want 17", st.Probes)
	}
}

// The fleet's gate decides who probes an open breaker, and a breaker an operator holds open
// is never probed or reset.
func TestHealthCheckerAsksTheGateAndSkipsHeldBreakers(t *testing.T) {
	g := NewGuard(eleven, GuardOptions{Clock: clock.NewMock()})
	p := newProber()
	h := NewHealthChecker(g, p, time.Minute, time.Second, clock.NewMock(), nil)
	granted := false
	var asked []string
	h.SetProbeGate(func(_ context.Context, provider string, _ time.Duration) bool {
		asked = append(asked, provider)
		return granted
	})
	ctx := context.Background()

	h.check(ctx) // closed: the 60s health probe needs no lease
	if p.calls.Load() != 1 || len(asked) != 0 {
		t.Fatalf("closed breaker: %d probes, gate asked %v; want 1 probe, no question", p.calls.Load(), asked)
	}
	g.ForceOpen()
	h.check(ctx)
	if p.calls.Load() != 1 || len(asked) != 1 || g.State() != StateOpen {
		t.Fatalf("lease denied: %d probes, state %s; want no probe, still open", p.calls.Load(), g.State())
	}
	granted = true
	h.check(ctx)
	if p.calls.Load() != 2 || g.State() != StateClosed {
		t.Fatalf("lease granted: %d probes, state %s; want a probe that closed the breaker", p.calls.Load(), g.State())
	}

	g.SetHold(HoldOpen)
	g.Reset()
	h.check(ctx)
	if p.calls.Load() != 2 || g.State() != StateOpen {
		t.Fatalf("held open: %d probes, state %s; want no probe, no reset", p.calls.Load(), g.State())
	}
	if err := g.Do(ctx, func(context.Context) error { return nil }); err == nil {
		t.Fatal("a breaker held open let a call through")
	}
	g.SetHold(HoldClosed)
	for range 5 {
		_ = g.Do(ctx, func(context.Context) error { return &fault.ServiceError{Provider: eleven, Kind: fault.KindUnavailable} })
	}
	if g.State() != StateClosed {
		t.Fatalf("held closed, after 5 failures: %s", g.State())
	}
}
