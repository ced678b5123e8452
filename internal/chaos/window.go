package chaos

import "time"

// During counts the API calls (probes excluded) and the health probes of step that started
// in [from, to), fleet-wide.
func (l *Ledger) During(step string, from, to time.Time) (calls, probes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.calls {
		if c.Step != step || c.Start.Before(from) || !c.Start.Before(to) {
			continue
		}
		if c.Probe {
			probes++
		} else {
			calls++
		}
	}
	return calls, probes
}

// FirstOKAfter returns, by worker slot, when the first API call of step that started at or
// after t was answered 2xx: when that worker resumed work.
func (l *Ledger) FirstOKAfter(step string, t time.Time) map[int]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := map[int]time.Time{}
	for _, c := range l.calls {
		if c.Step != step || c.Probe || !c.OK || c.Start.Before(t) {
			continue
		}
		if f, ok := first[c.Slot]; !ok || c.Start.Before(f) {
			first[c.Slot] = c.Start
		}
	}
	return first
}
