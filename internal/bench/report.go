package bench

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Outcome is one scenario's runs: every round of each consumer.
type Outcome struct {
	Scenario Scenario
	Bare     []Result
	Worker   []Result
}

// median of xs (NaN when empty).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// Median is the median of f over rs.
func Median(rs []Result, f func(Result) float64) float64 { return med(rs, f) }

// med is the median of f over rs.
func med(rs []Result, f func(Result) float64) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return median(xs)
}

// RateRatio is the median over rounds of worker contacts/s ÷ bare contacts/s, each round's
// two runs taken back to back (NaN without both).
func (o Outcome) RateRatio() float64 {
	n := min(len(o.Bare), len(o.Worker))
	xs := make([]float64, n)
	for i := range n {
		xs[i] = o.Worker[i].Rate() / o.Bare[i].Rate()
	}
	return median(xs)
}

// metric is one row of a scenario's table.
type metric struct {
	name   string
	f      func(Result) float64
	digits int
	ratio  bool // print worker ÷ bare
}

var (
	mRate         = metric{"contacts/s", Result.Rate, 0, true}
	mElapsed      = metric{"drain time from start (s)", func(r Result) float64 { return r.Elapsed.Seconds() }, 2, true}
	mCPU          = metric{"CPU per contact, benchmark process (ms)", func(r Result) float64 { return r.PerContact(ms(r.CPU)) }, 3, true}
	mServerCPU    = metric{"CPU per contact, nats-server (ms)", func(r Result) float64 { return r.PerContact(ms(r.ServerCPU)) }, 3, true}
	mAPI          = metric{"JetStream API requests per contact (/jsz api.total)", func(r Result) float64 { return r.PerContact(float64(r.APIReqs)) }, 2, true}
	mMsgs         = metric{"client messages to the server per contact", func(r Result) float64 { return r.PerContact(float64(r.InMsgs)) }, 2, true}
	mAlloc        = metric{"allocated per contact (KB)", func(r Result) float64 { return r.PerContact(float64(r.Alloc)) / 1024 }, 1, true}
	mMallocs      = metric{"allocations per contact", func(r Result) float64 { return r.PerContact(float64(r.Mallocs)) }, 0, true}
	mGC           = metric{"GC cycles", func(r Result) float64 { return float64(r.GCs) }, 0, false}
	mCompleted    = metric{"completed", func(r Result) float64 { return float64(r.Completed) }, 0, false}
	mDead         = metric{"dead letters", func(r Result) float64 { return float64(r.Dead) }, 0, false}
	mFakesCPU     = metric{"CPU per contact, fake providers (ms; not in the process figure)", func(r Result) float64 { return r.PerContact(ms(r.FakesCPU)) }, 3, false}
	mOutageTTS    = metric{"TTS calls during the outage, besides probes", func(r Result) float64 { return float64(r.Fakes.TTSOutageCalls) }, 0, false}
	mOutageProbes = metric{"TTS probes during the outage", func(r Result) float64 { return float64(r.Fakes.TTSOutageProbes) }, 0, false}
	mRepeats      = metric{"LLM calls repeated for a contact whose script was paid", func(r Result) float64 { return float64(r.Fakes.LLMRepeats) }, 0, false}
	mLLMCalls     = metric{"LLM calls", func(r Result) float64 { return float64(r.Fakes.LLMCalls) }, 0, false}
	mTTSCalls     = metric{"TTS calls (besides probes)", func(r Result) float64 { return float64(r.Fakes.TTSCalls) }, 0, false}
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (o Outcome) metrics() []metric {
	ms := []metric{mRate, mElapsed, mCPU, mServerCPU, mAPI, mMsgs, mAlloc, mMallocs, mGC, mCompleted, mDead}
	if o.Scenario.TTSOutage > 0 {
		ms = append(ms, mOutageTTS, mOutageProbes, mRepeats, mLLMCalls, mTTSCalls)
	}
	return append(ms, mFakesCPU)
}

// WriteTable writes the scenario's markdown table.
func (o Outcome) WriteTable(w io.Writer) {
	sc := o.Scenario
	rounds := max(len(o.Bare), len(o.Worker))
	fmt.Fprintf(w, "\n### (%s) %s contacts, %s\n\n", sc.Key, group(float64(sc.Contacts), 0), sc.Title)
	if rounds > 1 {
		fmt.Fprintf(w, "Medians of %d rounds.\n\n", rounds)
	}
	fmt.Fprintln(w, "| | bare nats.go consumer | worker | worker ÷ bare |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	for _, m := range o.metrics() {
		b, wk := med(o.Bare, m.f), med(o.Worker, m.f)
		ratio := ""
		switch {
		case m.name == mRate.name && len(o.Bare) > 0 && len(o.Worker) > 0:
			ratio = fmt.Sprintf("**%.2f×**", o.RateRatio())
		case m.ratio && b > 0 && !math.IsNaN(wk):
			ratio = fmt.Sprintf("%.2f×", wk/b)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", m.name, group(b, m.digits), group(wk, m.digits), ratio)
	}
	o.writeBreakdown(w)
	for _, rs := range [][]Result{o.Bare, o.Worker} {
		for _, r := range rs {
			if !r.Drained {
				fmt.Fprintf(w, "\n**%s did not drain** within the run timeout: its figures cover the timeout, not the work.\n", r.Consumer)
			}
			if lost := int64(r.Contacts) - r.Completed - r.Dead; r.Drained && lost != 0 {
				fmt.Fprintf(w, "\n**%s: %d contacts neither completed nor dead-lettered.**\n", r.Consumer, lost)
			}
		}
	}
}

// writeBreakdown writes the client messages per contact by kind, when they were counted.
func (o Outcome) writeBreakdown(w io.Writer) {
	kinds := map[string]bool{}
	for _, r := range slices.Concat(o.Bare, o.Worker) {
		for k := range r.Breakdown {
			kinds[k] = true
		}
	}
	if len(kinds) == 0 {
		return
	}
	fmt.Fprintln(w, "\nClient messages to the server per contact, by kind (a \">\" subscriber counted them; that run's CPU and rate are skewed by it):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| kind | bare | worker |")
	fmt.Fprintln(w, "|---|---:|---:|")
	sorted := slices.Sorted(maps.Keys(kinds))
	per := func(rs []Result, k string) string {
		return group(med(rs, func(r Result) float64 { return r.PerContact(float64(r.Breakdown[k])) }), 3)
	}
	for _, k := range sorted {
		fmt.Fprintf(w, "| %s | %s | %s |\n", k, per(o.Bare, k), per(o.Worker, k))
	}
	total := func(rs []Result) string {
		return group(med(rs, func(r Result) float64 {
			var n int64
			for _, v := range r.Breakdown {
				n += v
			}
			return r.PerContact(float64(n))
		}), 3)
	}
	fmt.Fprintf(w, "| **total** | %s | %s |\n", total(o.Bare), total(o.Worker))
}

// Target is one of issue 12's targets with its measured value.
type Target struct {
	Name     string
	Measured string
	Met      bool
	Known    bool // false when the run cannot tell (a consumer was not run)
}

// Targets are issue 12's targets for the scenarios that ran.
func Targets(outs []Outcome) []Target {
	var ts []Target
	for _, o := range outs {
		switch o.Scenario.Key {
		case "a", "b":
			want := map[string]float64{"a": 0.6, "b": 0.9}[o.Scenario.Key]
			r := o.RateRatio()
			ts = append(ts, Target{
				Name:     fmt.Sprintf("(%s) worker ≥ %.1f× the bare consumer's contacts/s", o.Scenario.Key, want),
				Measured: fmt.Sprintf("%.2f×", r), Met: r >= want, Known: !math.IsNaN(r),
			})
		case "c":
			known := len(o.Worker) > 0
			drain := med(o.Worker, mElapsed.f)
			drained := known && !slices.ContainsFunc(o.Worker, func(r Result) bool { return !r.Drained })
			dead, tts, rep := med(o.Worker, mDead.f), med(o.Worker, mOutageTTS.f), med(o.Worker, mRepeats.f)
			ts = append(ts,
				Target{"(c) worker drained within 13 s of the start", fmt.Sprintf("%.1f s", drain), drained && drain <= 13, known},
				Target{"(c) worker: 0 dead letters", group(dead, 0), dead == 0, known},
				Target{"(c) worker: ≤ 10 TTS calls during the outage besides probes", group(tts, 0), tts <= 10, known},
				Target{"(c) worker: no LLM call repeated for a contact whose script was paid", group(rep, 0), rep == 0, known},
			)
		}
	}
	return ts
}

// WriteSummary writes the targets as a markdown table.
func WriteSummary(w io.Writer, outs []Outcome) {
	fmt.Fprintln(w, "\n### Issue 12 targets")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured | met |")
	fmt.Fprintln(w, "|---|---:|:---:|")
	for _, t := range Targets(outs) {
		met := "no"
		switch {
		case !t.Known:
			met, t.Measured = "not run", "–"
		case t.Met:
			met = "yes"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.Name, t.Measured, met)
	}
}

// WriteNotes writes how the figures were taken.
func WriteNotes(w io.Writer, e *Env) {
	logNote := ""
	if e.LogFile {
		logNote = " plus the JSON log file"
	}
	fmt.Fprintf(w, `
How the figures were taken:

- One nats-server process, %s.
- The fake providers run in a child process, the consumer under test in the benchmark
  process. The two consumers run one after the other on the same contacts, each on an
  emptied server with all contacts enqueued before its window opens.
- The window opens when the consumer starts consuming and closes when the contacts stream
  is empty ("drain time").
- "Benchmark process" CPU and allocations are getrusage and runtime.MemStats deltas of that
  process: the consumer plus a drain poller that reads the server's HTTP monitor every %s
  (the same for both). The fakes' CPU is measured apart and is in neither figure.
- nats-server CPU is its utime+stime from /proc. JetStream API requests are /jsz api.total
  (requests the server's API handler answers: create, info, delete, …; KV reads by direct
  get, KV and Object Store writes, acks and pulls are not in it). Client messages are the
  /varz in_msgs delta: everything the consumer sent (publishes, KV and Object Store writes,
  direct gets, acks, naks, in-progress, pull requests). BENCH_BREAKDOWN=1 splits them by kind.
- The worker: the project's defaults (retry, breaker, health checks, hold policy, pull batch,
  acks) except the scenario's concurrency for the pool, every bulkhead and MAX_ACK_PENDING;
  real OpenAI and ElevenLabs clients pointed at the fakes; no TTS fallback, no CRM step, no
  metrics endpoint; console log at info to /dev/null%s.
- The bare consumer: nats.go Consume feeding a pool of the scenario's concurrency; per
  message it decodes the contact, POSTs the chat completion, POSTs the text to speech and
  Acks; on a failure it Naks at once, and on the %dth delivery publishes a dead letter and
  Terms.
- (c): the TTS answers 503 to calls and probes for %s from the window's start.
`, syncNote(e.Server.Sync), drainPoll, logNote, bareMaxDeliver, Scenarios()[2].TTSOutage)
}

func syncNote(sync string) string {
	if sync == "always" {
		return "sync_interval: always (deploy/nats.conf's)"
	}
	return "its default sync interval (BENCH_SYNC=always: deploy/nats.conf's always)"
}

// group formats v with digits decimals and thousands separators ("–" for NaN).
func group(v float64, digits int) string {
	if math.IsNaN(v) {
		return "–"
	}
	s := strconv.FormatFloat(v, 'f', digits, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if frac != "" {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}
