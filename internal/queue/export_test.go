package queue

import "time"

// SetClock makes s read the time from now (leases are compared with it).
func SetClock(s *Checkpoints, now func() time.Time) { s.now = now }
