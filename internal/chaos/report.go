package chaos

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callagent/resilience/internal/queue"
)

// Report is a scenario's outcome, read from JetStream (the completed bucket, the dead-letter
// stream and its headers, the contacts stream) and from what the proxies saw.
type Report struct {
	Scenario  string
	Workers   int
	Enqueued  int
	Completed int
	// DeadLettered counts dead letters by their Dlq-Reason.
	DeadLettered map[string]int
	Pending      uint64
	// Lost is enqueued − completed − dead-lettered − still pending, counted message by
	// message (two poison messages with one id complete as one contact).
	Lost int
	// CompletedTwice counts contacts delivered to the CRM (the call placed) more than once,
	// beyond the deliveries in flight at a kill.
	CompletedTwice int
	// BothOutcomes lists contacts both completed and dead-lettered.
	BothOutcomes []string
	// Unaccounted lists messages with no outcome (lost ones, by name).
	Unaccounted []string

	Calls, OK  map[string]int // API calls and 2xx answers by step (probes excluded)
	CRMRepeats int            // CRM deliveries beyond one per contact (idempotent by key)
	// PaidAgain counts LLM and TTS answers beyond one per contact, by step; Unexplained
	// lists those beyond the calls in flight at a kill (of the contact's worker or the server).
	PaidAgain   map[string]int
	Unexplained []string
	InFlight    map[string]int // at worker kills, by step
	Abandoned   map[string]int // answered 2xx, given up by a live worker (its timeout), by step
	InFlightSrv map[string]int // at server kills, by step
	Kills       int
	NATSKills   int
	Injected    map[string]map[string]int // hostile answers served: name -> step -> count
	Redirects   int64
	Drained     bool
	Recover     time.Duration
	PeakRSS     []string
	Notes       []string

	// deadLetterHeaders are every dead letter's headers (never its payload), for the scan.
	deadLetterHeaders []string
}

// Collect builds the report. Call it after the workers stopped, so nothing changes under it.
func (s *Scenario) Collect() *Report {
	s.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := &Report{
		Scenario: s.Name, Workers: len(s.Workers), Enqueued: s.enqueued, DeadLettered: map[string]int{},
		Calls: map[string]int{}, OK: map[string]int{}, PaidAgain: map[string]int{}, Abandoned: map[string]int{},
		InFlight: s.inFlight, InFlightSrv: s.natsIn, Kills: s.kills, NATSKills: s.natsKills,
		Injected: map[string]map[string]int{}, Redirects: s.Redirect.Hits(), Drained: s.drained, Recover: s.recovered,
		Notes: s.notes,
	}

	completed := s.completedKeys(ctx, r)
	r.Completed = len(completed)
	dlContacts, dlSeqs := s.deadLetters(ctx, r)
	pendingIDs, pendingSeqs := s.pendingMessages(ctx, r)

	for _, c := range s.contacts {
		switch {
		case completed[c.ID] && dlContacts[c.ID]:
			r.BothOutcomes = append(r.BothOutcomes, c.ID)
		case !completed[c.ID] && !dlContacts[c.ID] && !pendingIDs[c.ID]:
			r.Unaccounted = append(r.Unaccounted, c.ID)
		}
	}
	for seq, p := range s.poison {
		if !dlSeqs[seq] && !pendingSeqs[seq] && (p.id == "" || !completed[p.id]) {
			r.Unaccounted = append(r.Unaccounted, fmt.Sprintf("poison #%d (%s)", seq, p.what))
		}
	}
	slices.Sort(r.Unaccounted)
	r.Lost = len(r.Unaccounted)

	s.tallyCalls(r)
	for _, w := range s.Workers {
		r.PeakRSS = append(r.PeakRSS, fmt.Sprintf("%s %s", w.ID, mib(w.PeakRSS)))
	}
	for step, f := range s.Faults {
		for name, n := range f.Served() {
			if r.Injected[name] == nil {
				r.Injected[name] = map[string]int{}
			}
			r.Injected[name][step] += n
		}
	}
	return r
}

// completedKeys reads the completed records, and counts contacts completed more than once:
// a completed record is written with create-only semantics (a second write is refused by the
// server), so the CRM's records, one per completed call, are what can show a second
// completion.
func (s *Scenario) completedKeys(ctx context.Context, r *Report) map[string]bool {
	keys := map[string]bool{}
	kv, err := s.JS.KeyValue(ctx, checkpointBucket)
	if errorsIsNotFound(err) {
		return keys
	}
	if err != nil {
		s.T.Errorf("read the checkpoint bucket: %v", err)
		return keys
	}
	lister, err := kv.ListKeysFiltered(ctx, queue.CompletedKey(">"))
	if err != nil {
		s.T.Errorf("list the completed records: %v", err)
		return keys
	}
	for k := range lister.Keys() {
		keys[strings.TrimPrefix(k, queue.CompletedKey(""))] = true
	}
	// A call is placed when the CRM accepts it. The fake CRM stores one record per
	// idempotency key, so its records cannot show a second placement: the proxy's ledger
	// does, counting every 2xx delivery beyond one a contact and the calls in flight at a kill.
	delivered := map[string]int{}
	for _, c := range s.Ledger.Calls() {
		if c.Step == StepCRM && c.OK && !c.Probe && c.Contact != "" {
			delivered[c.Contact]++
		}
	}
	for id, n := range delivered {
		r.CompletedTwice += max(0, n-1-s.Ledger.Allowed(id, StepCRM))
	}
	return keys
}

// pendingMessages reads the messages still in the contacts stream: their contact ids and
// sequences.
func (s *Scenario) pendingMessages(ctx context.Context, r *Report) (ids map[string]bool, seqs map[uint64]bool) {
	ids, seqs = map[string]bool{}, map[uint64]bool{}
	n, err := s.eachMsg(ctx, contactsStream, func(seq uint64, m *jetstream.RawStreamMsg) {
		seqs[seq] = true
		if id := payloadID(m.Data); id != "" {
			ids[id] = true
		}
	})
	if err != nil {
		s.T.Errorf("read the contacts stream: %v", err)
		return
	}
	r.Pending = n
	return
}

// deadLetters reads every dead letter's headers: its reason, the contact and the stream
// sequence of the message it replaces.
func (s *Scenario) deadLetters(ctx context.Context, r *Report) (contacts map[string]bool, seqs map[uint64]bool) {
	contacts, seqs = map[string]bool{}, map[uint64]bool{}
	_, err := s.eachMsg(ctx, deadLetterStream, func(_ uint64, m *jetstream.RawStreamMsg) {
		reason := cmp.Or(m.Header.Get(queue.HeaderReason), "(no reason)")
		r.DeadLettered[reason]++
		r.deadLetterHeaders = append(r.deadLetterHeaders, string(headerText(m.Header)))
		if id := m.Header.Get(queue.HeaderContactID); id != "" {
			contacts[id] = true
		}
		if n, err := strconv.ParseUint(m.Header.Get(queue.HeaderStreamSeq), 10, 64); err == nil {
			seqs[n] = true
		}
	})
	if err != nil && !errorsIsNotFound(err) {
		s.T.Errorf("read the dead-letter stream: %v", err)
	}
	return
}

// eachMsg looks the stream name up and calls fn with each message it stored then, in sequence
// order (one removed since, acked or deleted, is passed over). It returns how many messages
// the stream held at the look-up.
func (s *Scenario) eachMsg(ctx context.Context, name string, fn func(seq uint64, m *jetstream.RawStreamMsg)) (uint64, error) {
	st, err := s.JS.Stream(ctx, name)
	if err != nil {
		return 0, err
	}
	state := st.CachedInfo().State // read by the look-up
	for seq := state.FirstSeq; state.Msgs > 0 && seq <= state.LastSeq; seq++ {
		if m, err := st.GetMsg(ctx, seq); err == nil {
			fn(seq, m)
		}
	}
	return state.Msgs, nil
}

// headerText is a message's headers, a "Name: values" line each.
func headerText(h nats.Header) []byte {
	var b bytes.Buffer
	for k, vs := range h {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(vs, ", "))
	}
	return b.Bytes()
}

// tallyCalls counts calls and answers by step and contact, and checks every answer paid again
// against the calls of that contact in flight at its worker's kills.
func (s *Scenario) tallyCalls(r *Report) {
	ok := map[string]map[string]int{StepLLM: {}, StepTTS: {}, StepCRM: {}}
	for _, c := range s.Ledger.Calls() {
		if c.Probe {
			continue
		}
		r.Calls[c.Step]++
		if c.Abandoned() {
			r.Abandoned[c.Step]++
			if r.Abandoned[c.Step] <= 3 {
				r.Notes = append(r.Notes, fmt.Sprintf("abandoned: the %s answer for %s to %s at %s",
					c.Step, cmp.Or(c.Contact, "?"), s.Workers[c.Slot-1].ID, c.End.UTC().Format("15:04:05.000")))
			}
		}
		if c.OK {
			r.OK[c.Step]++
			if c.Contact != "" {
				ok[c.Step][c.Contact]++
			}
		}
	}
	for _, n := range ok[StepCRM] {
		r.CRMRepeats += n - 1
	}
	for _, step := range []string{StepLLM, StepTTS} {
		for _, id := range slices.Sorted(maps.Keys(ok[step])) {
			again := ok[step][id] - 1
			if again <= 0 {
				continue
			}
			r.PaidAgain[step] += again
			if allowed := s.Ledger.Allowed(id, step); again > allowed {
				r.Unexplained = append(r.Unexplained,
					fmt.Sprintf("%s: %s paid %d times, %d in flight at a kill", id, step, again+1, allowed))
			}
		}
	}
}

// Check fails the test for what the suite guarantees: nothing lost, nothing completed twice,
// nothing stuck, nothing paid again beyond the calls in flight at a kill.
func (r *Report) Check(t testing.TB) {
	t.Helper()
	if !r.Drained {
		t.Errorf("%s: stuck: the queue did not drain after the fault ended (%d still pending)", r.Scenario, r.Pending)
	}
	if r.Lost != 0 {
		t.Errorf("%s: lost %d of %d enqueued (completed %d, dead-lettered %s, pending %d); without an outcome: %s",
			r.Scenario, r.Lost, r.Enqueued, r.Completed, byCount(r.DeadLettered), r.Pending, first(r.Unaccounted, 10))
	}
	if r.CompletedTwice != 0 {
		t.Errorf("%s: %d completed twice", r.Scenario, r.CompletedTwice)
	}
	if len(r.BothOutcomes) > 0 {
		t.Errorf("%s: completed and dead-lettered: %s", r.Scenario, first(r.BothOutcomes, 10))
	}
	if len(r.Unexplained) > 0 {
		t.Errorf("%s: %d contacts paid again beyond the calls in flight at a kill: %s",
			r.Scenario, len(r.Unexplained), first(r.Unexplained, 10))
	}
}

func first(list []string, n int) string {
	if len(list) > n {
		return strings.Join(list[:n], "; ") + fmt.Sprintf("; … %d more", len(list)-n)
	}
	return strings.Join(list, "; ")
}

// Table renders the report as a Markdown table, for the README.
func (r *Report) Table() string {
	var b strings.Builder
	row := func(k, format string, args ...any) { fmt.Fprintf(&b, "| %s | %s |\n", k, fmt.Sprintf(format, args...)) }
	fmt.Fprintf(&b, "#### %s\n\n| measure | value |\n|---|---|\n", r.Scenario)
	row("worker processes", "%d", r.Workers)
	row("enqueued", "%d", r.Enqueued)
	row("completed", "%d", r.Completed)
	row("dead-lettered", "%s", byCount(r.DeadLettered))
	row("still pending", "%d", r.Pending)
	row("lost", "%d", r.Lost)
	row("completed twice", "%d", r.CompletedTwice)
	for _, step := range []string{StepLLM, StepTTS, StepCRM} {
		row(strings.ToUpper(step)+" calls per completed contact", "%s (%d calls, %d answered 2xx)",
			ratio(r.Calls[step], r.Completed), r.Calls[step], r.OK[step])
	}
	row("CRM deliveries repeated (idempotent by key)", "%d", r.CRMRepeats)
	row("paid again (LLM / TTS)", "%d / %d", r.PaidAgain[StepLLM], r.PaidAgain[StepTTS])
	row("calls in flight at worker kills (LLM / TTS / CRM)", "%d / %d / %d",
		r.InFlight[StepLLM], r.InFlight[StepTTS], r.InFlight[StepCRM])
	row("answered, then abandoned by a live worker's timeout (LLM / TTS / CRM)", "%d / %d / %d",
		r.Abandoned[StepLLM], r.Abandoned[StepTTS], r.Abandoned[StepCRM])
	row("worker SIGKILLs / server SIGKILLs", "%d / %d", r.Kills, r.NATSKills)
	if r.NATSKills > 0 {
		row("calls in flight at server kills (LLM / TTS / CRM)", "%d / %d / %d",
			r.InFlightSrv[StepLLM], r.InFlightSrv[StepTTS], r.InFlightSrv[StepCRM])
	}
	if len(r.Injected) > 0 {
		total := 0
		for _, by := range r.Injected {
			for _, n := range by {
				total += n
			}
		}
		row("hostile answers served (below)", "%d", total)
		row("requests that followed a redirect", "%d", r.Redirects)
	}
	if r.Drained {
		row("time to recover (fault end → queue drained)", "%s", r.Recover.Round(100*time.Millisecond))
	} else {
		row("time to recover (fault end → queue drained)", "**stuck**")
	}
	row("peak RSS per worker (VmHWM)", "%s", strings.Join(r.PeakRSS, ", "))
	if len(r.Injected) > 0 {
		fmt.Fprintf(&b, "\n| hostile answer | LLM | TTS | CRM |\n|---|---|---|---|\n")
		for _, name := range slices.Sorted(maps.Keys(r.Injected)) {
			by := r.Injected[name]
			fmt.Fprintf(&b, "| %s | %d | %d | %d |\n", name, by[StepLLM], by[StepTTS], by[StepCRM])
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n%s\n", n)
	}
	return b.String()
}

// Publish logs the table and writes it to CHAOS_REPORT_DIR (or the test's temp dir) as
// <scenario>.md.
func (r *Report) Publish(t testing.TB, fallbackDir string) {
	t.Helper()
	table := r.Table()
	t.Logf("\n%s", table)
	dir := cmp.Or(os.Getenv("CHAOS_REPORT_DIR"), fallbackDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("report dir: %v", err)
		return
	}
	path := filepath.Join(dir, r.Scenario+".md")
	if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
		t.Errorf("write the report: %v", err)
		return
	}
	t.Logf("report written to %s", path)
}

func byCount(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	total := 0
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		total += m[k]
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

func ratio(n, d int) string {
	if d == 0 {
		return "–"
	}
	return strconv.FormatFloat(float64(n)/float64(d), 'f', 2, 64)
}

func mib(b int64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// Finish stops the workers, builds and publishes the report, scans for secrets and checks
// the guarantees; it returns the report for scenario-specific checks.
func (s *Scenario) Finish() *Report {
	s.T.Helper()
	s.StopWorkers()
	r := s.Collect()
	r.Publish(s.T, s.Dir)
	s.ScanSecrets(r)
	r.Check(s.T)
	return r
}
