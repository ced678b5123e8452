package fleet_test

import (
	"os"
	"time"

	"github.com/callagent/resilience/internal/fleet"
	"github.com/callagent/resilience/internal/resilience"
)

// Aggregate (which Read applies to the bucket) gives the worst state per provider; WriteTable
// is what `publisher status` prints.
func ExampleStatus_WriteTable() {
	t0 := time.Date(2026, 1, 30, 0, 17, 2, 0, time.UTC)
	st := fleet.Aggregate([]fleet.Report{
		{Worker: "worker-a", Provider: "ElevenLabs", State: resilience.StateOpen, Since: t0, RetryAt: t0.Add(30 * time.Second)},
		{Worker: "worker-b", Provider: "ElevenLabs", State: resilience.StateClosed, Since: t0},
	})
	_ = st.WriteTable(os.Stdout)
	// Output:
	// Circuit breakers (2 workers reporting)
	//   PROVIDER    STATE  OPEN/WORKERS  SINCE                 RETRY AT
	//   ElevenLabs  OPEN   1/2           2026-01-30T00:17:02Z  2026-01-30T00:17:32Z
	// Open incidents (1)
	//   WORKER    PROVIDER    STATE  SINCE                 RETRY AT
	//   worker-a  ElevenLabs  OPEN   2026-01-30T00:17:02Z  2026-01-30T00:17:32Z
}
