package chaos

import (
	"sync"
	"time"
)

// Call is one request a proxy received from a worker.
type Call struct {
	Slot    int
	Step    string
	Contact string // "" when the request names no contact (health probes)
	Probe   bool
	Start   time.Time
	End     time.Time // zero while the request is in flight
	// Injected names the fault the proxy answered with instead of the provider; "" when
	// the request was forwarded.
	Injected string
	Status   int
	// OK: forwarded, and the provider answered 2xx. For the LLM and text-to-speech that is
	// a call the campaign pays for.
	OK bool
	// Delivered: the whole answer was written to the worker's connection.
	Delivered bool

	accounted  bool // examined at a kill of its worker
	lostAtKill bool // in flight at that kill
	atSrvKill  bool // in flight at a kill of the nats-server
}

// Abandoned reports a call the provider answered 2xx whose answer the worker gave up on
// while it was alive (its own timeout): paid for, and not delivered.
func (c Call) Abandoned() bool { return c.OK && c.Finished() && !c.Delivered && !c.lostAtKill }

// Finished reports whether the proxy is done with the request.
func (c Call) Finished() bool { return !c.End.IsZero() }

// Ledger is every call of a scenario, in arrival order, and the calls each contact may pay
// again because a worker was killed while they were in flight.
type Ledger struct {
	mu    sync.Mutex
	calls []*Call
	allow map[string]int // contact + "/" + step -> calls in flight at kills
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{allow: map[string]int{}} }

func (l *Ledger) add(c *Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

func (l *Ledger) finish(c *Call, status int, ok, delivered bool, injected string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c.Status, c.OK, c.Delivered, c.Injected, c.End = status, ok, delivered, injected, time.Now()
}

// Calls returns a copy of every call so far.
func (l *Ledger) Calls() []Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Call, len(l.calls))
	for i, c := range l.calls {
		out[i] = *c
	}
	return out
}

// Allowed is how many calls of step for contact were in flight at kills of their worker.
func (l *Ledger) Allowed(contact, step string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.allow[contact+"/"+step]
}

// keptWindow is how long after its answer a result may still be on its way into the
// checkpoint: the worker writes it right after the answer, within milliseconds, but a busy
// 2-core machine can stretch that.
const keptWindow = 2 * time.Second

// AtKill examines the calls of the worker in slot, which has just been SIGKILLed at killedAt
// and reaped. A call was in flight at the kill when the kill cut it (unfinished, or ended
// undelivered after killedAt), or when it was answered keptWindow or less before the kill
// but its result is not kept (kept reports the checkpoint, the stored audio or the completed
// record). Those are the calls at-least-once delivery may pay again; they are added to the
// allowances and counted by step. A call the worker abandoned earlier (its own timeout) is
// not one of them.
func (l *Ledger) AtKill(slot int, killedAt time.Time, kept func(step, contact string) bool) map[string]int {
	l.mu.Lock()
	var candidates []*Call
	for _, c := range l.calls {
		if c.Slot == slot && !c.accounted && !c.Probe {
			c.accounted = true
			candidates = append(candidates, c)
		}
	}
	l.mu.Unlock()

	inFlight := map[string]int{}
	for _, c := range candidates {
		l.mu.Lock()
		cc := *c
		l.mu.Unlock()
		lost := !cc.Finished() || (!cc.Delivered && !cc.End.Before(killedAt))
		if !lost && cc.Delivered && cc.OK && killedAt.Sub(cc.End) <= keptWindow && cc.Contact != "" {
			lost = !kept(cc.Step, cc.Contact)
		}
		if !lost {
			continue
		}
		inFlight[cc.Step]++
		l.mu.Lock()
		c.lostAtKill = true
		if cc.Contact != "" {
			l.allow[cc.Contact+"/"+cc.Step]++
		}
		l.mu.Unlock()
	}
	return inFlight
}

// AtServerKill examines every worker's calls at a SIGKILL of the nats-server at killedAt.
// A call was in flight when it was unanswered, or answered keptWindow or less before the kill
// (its result on its way into a checkpoint the dead server could not take). While the server
// is down a worker cannot save what it was paid for, and when it comes back the contact's
// lapsed delivery may go to another worker at once: at-least-once delivery may pay those
// calls again, as at a worker's kill. They are added to the allowances and counted by step.
// The worker still keeps the result as soon as it can (whoever holds the contact then), so
// any later delivery uses it.
func (l *Ledger) AtServerKill(killedAt time.Time) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	inFlight := map[string]int{}
	for _, c := range l.calls {
		if c.Probe || c.atSrvKill || c.lostAtKill {
			continue
		}
		if c.Finished() && !(c.OK && killedAt.Sub(c.End) <= keptWindow) {
			continue
		}
		c.atSrvKill = true
		inFlight[c.Step]++
		if c.Contact != "" {
			l.allow[c.Contact+"/"+c.Step]++
		}
	}
	return inFlight
}

// Unfinished counts, by step, the API calls not yet answered (probes excluded).
func (l *Ledger) Unfinished() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := map[string]int{}
	for _, c := range l.calls {
		if !c.Probe && c.End.IsZero() {
			n[c.Step]++
		}
	}
	return n
}
