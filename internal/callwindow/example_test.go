package callwindow_test

import (
	"fmt"
	"time"

	"github.com/callagent/resilience/internal/callwindow"
)

func Example() {
	// A campaign that calls 09:00–20:00 Monday to Saturday, not on Christmas.
	w, err := callwindow.ParseWindow("09:00-20:00 mon-sat skip=2026-12-25")
	if err != nil {
		panic(err)
	}
	// A contact in North Dakota, whose area code spans two zones.
	zones, note, err := callwindow.Zones("+17015550100", "")
	if err != nil {
		panic(err)
	}
	fmt.Println(note)

	// A retry planned for Thursday 2026-12-24 19:30 Mountain time lands
	// after 20:00 Central, so it moves to Saturday 09:00 Mountain.
	denver, _ := time.LoadLocation("America/Denver")
	at := time.Date(2026, 12, 24, 19, 30, 0, 0, denver)
	fmt.Println(callwindow.Open(w, zones, at))
	next, err := callwindow.ClampRetry(w, zones, at)
	fmt.Println(next.Format("Mon 2006-01-02 15:04 MST"), err)
	// Output:
	// phone +17*******00 (US, +1) spans 2 time zones (America/Denver, America/North_Dakota/Center): allowed hours are those open in all of them
	// false
	// Sat 2026-12-26 09:00 MST <nil>
}
