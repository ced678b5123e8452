package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/fleet"
	"github.com/callagent/resilience/internal/natstest"
	"github.com/callagent/resilience/internal/resilience"
	"github.com/callagent/resilience/internal/testwait"
)

// replica is one worker's guard joined to the fleet's breakers.
type replica struct {
	guard  *resilience.Guard
	shared *fleet.SharedBreakers
	// handled receives each transition once the fleet's listener has handled it.
	handled chan resilience.State
}

func startReplicas(t *testing.T, n int) ([]replica, jetstream.KeyValue) {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	kv, err := fleet.EnsureBreakerBucket(context.Background(), js, fleet.BreakerBucketConfig(fleet.DefaultBreakerBucket, 1))
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.Out = testWriter{t}
	var out []replica
	for i := range n {
		var shared *fleet.SharedBreakers
		handled := make(chan resilience.State, 100)
		g := resilience.NewGuard("ElevenLabs", resilience.GuardOptions{
			Breaker: resilience.BreakerSettings{FailureThreshold: 2, OpenTimeout: time.Hour},
			Listener: listenerFunc(func(p string, from, to resilience.State, at time.Time) {
				shared.BreakerStateChanged(p, from, to, at)
				handled <- to
			}),
		})
		shared = fleet.NewSharedBreakers(kv, fmt.Sprintf("w-%d", i), log, g)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = shared.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		out = append(out, replica{guard: g, shared: shared, handled: handled})
	}
	return out, kv
}

type listenerFunc func(provider string, from, to resilience.State, at time.Time)

func (f listenerFunc) BreakerStateChanged(p string, from, to resilience.State, at time.Time) {
	f(p, from, to, at)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func fail(g *resilience.Guard) {
	_ = g.Do(context.Background(), func(context.Context) error {
		return &fault.ServiceError{Provider: "ElevenLabs", Kind: fault.KindUnavailable, Status: 503}
	})
}

func states(rs []replica) []resilience.State {
	var out []resilience.State
	for _, r := range rs {
		out = append(out, r.guard.State())
	}
	return out
}

// One replica's trip opens every replica's breaker; one probe lease an interval; the
// prober's close closes everyone.
func TestSharedBreakerOpensAndClosesFleetWide(t *testing.T) {
	rs, _ := startReplicas(t, 3)
	fail(rs[0].guard)
	fail(rs[0].guard)
	testwait.Eventually(t, 10*time.Second, "every replica open after one tripped", func() (bool, string) {
		st := states(rs)
		return st[0] == resilience.StateOpen && st[1] == resilience.StateOpen && st[2] == resilience.StateOpen, fmt.Sprint(st)
	})
	err := rs[1].guard.Do(context.Background(), func(context.Context) error { return nil })
	var open *resilience.OpenError
	if !errors.As(err, &open) {
		t.Errorf("a replica that never failed let a call through: %v", err)
	}

	ctx := context.Background()
	granted := 0
	for _, r := range rs {
		if r.shared.Gate(ctx, "ElevenLabs", 5*time.Second) {
			granted++
		}
	}
	if granted != 1 {
		t.Errorf("%d replicas got the probe lease in one interval; want 1", granted)
	}

	rs[2].guard.Reset() // its probe succeeded
	testwait.Eventually(t, 10*time.Second, "every replica closed after one probe succeeded", func() (bool, string) {
		st := states(rs)
		return st[0] == resilience.StateClosed && st[1] == resilience.StateClosed && st[2] == resilience.StateClosed, fmt.Sprint(st)
	})
}

// An operator's override holds every replica's breaker until it expires.
func TestOperatorOverrideHoldsEveryReplica(t *testing.T) {
	rs, kv := startReplicas(t, 2)
	ctx := context.Background()
	_, rev, err := fleet.ReadShared(ctx, kv, "ElevenLabs")
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(2 * time.Second)
	if _, err := fleet.WriteShared(ctx, kv, fleet.SharedRecord{Provider: "ElevenLabs", State: fleet.SharedClosed,
		Mode: fleet.SharedOpen, Until: until, By: "publisher"}, rev); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 10*time.Second, "both replicas held open", func() (bool, string) {
		return rs[0].guard.Held() == resilience.HoldOpen && rs[1].guard.Held() == resilience.HoldOpen &&
			rs[1].guard.State() == resilience.StateOpen, fmt.Sprint(states(rs))
	})
	rs[1].guard.Reset()
	if rs[1].guard.State() != resilience.StateOpen {
		t.Error("a reset closed a breaker held open")
	}
	if err := rs[0].guard.Do(ctx, func(context.Context) error { return nil }); err == nil {
		t.Error("a breaker held open let a call through")
	}
	testwait.Eventually(t, 10*time.Second, "the override expired on both replicas", func() (bool, string) {
		return rs[0].guard.Held() == resilience.HoldNone && rs[1].guard.Held() == resilience.HoldNone, fmt.Sprint(rs[0].guard.Held(), rs[1].guard.Held())
	})
}

// A transition the guard has already left is not proposed: it is an echo of records the watch
// applied in a row (open, then closed before the listener ran). Proposing it made two replicas
// write each other's echoes thousands of times a second.
func TestStaleTransitionIsNotProposed(t *testing.T) {
	rs, kv := startReplicas(t, 1)
	ctx := context.Background()
	rev, err := fleet.WriteShared(ctx, kv, fleet.SharedRecord{Provider: "ElevenLabs", State: fleet.SharedClosed, Since: time.Now(), By: "elsewhere"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if r.guard.State() != resilience.StateClosed {
		t.Fatalf("guard %s, want closed", r.guard.State())
	}
	// The OPEN the watch caused a moment ago, handled after the record said closed again.
	r.shared.BreakerStateChanged("ElevenLabs", resilience.StateClosed, resilience.StateOpen, time.Now())
	if _, now, err := fleet.ReadShared(ctx, kv, "ElevenLabs"); err != nil || now != rev {
		t.Fatalf("record revision %d after a stale OPEN (was %d): proposed; err %v", now, rev, err)
	}
	// A real trip is proposed.
	fail(r.guard)
	fail(r.guard)
	testwait.Eventually(t, 10*time.Second, "the trip proposed to the fleet", func() (bool, string) {
		rec, _, err := fleet.ReadShared(ctx, kv, "ElevenLabs")
		return err == nil && rec.State == fleet.SharedOpen && rec.By == "w-0", fmt.Sprintf("%+v %v", rec, err)
	})
}
