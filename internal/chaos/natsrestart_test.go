package chaos

import (
	"testing"
	"time"

	"github.com/callagent/resilience/internal/testwait"
)

// TestNATSServerSIGKILL kills the nats-server while contacts flow and restarts it on the
// same store. Acknowledged writes survive (sync_interval: always); the workers reconnect and
// finish; a provider answer that arrived while the server was away must be kept, not paid
// again.
func TestNATSServerSIGKILL(t *testing.T) {
	workers, n, restarts, down := pick(2, 3), pick(40, 300), pick(1, 3), pick(2*time.Second, 5*time.Second)
	s := NewScenario(t, "nats-server-sigkill", binaries(t), workers)
	keepCallsInFlight(s)
	s.StartWorkers()
	s.Enqueue(s.NewContacts(n))
	for i := range restarts {
		target := n * (i + 1) / (restarts + 2)
		if !testwait.Until(2*time.Minute, 100*time.Millisecond, func() bool { return s.Completed() >= target }) {
			t.Fatalf("only %d of %d contacts completed before server kill %d", s.Completed(), target, i+1)
		}
		s.KillNATS(down)
	}
	s.FaultEnded(time.Now())
	s.WaitDrained(pick(90*time.Second, 180*time.Second))
	s.Finish()
}
