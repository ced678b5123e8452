package bench_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/bench"
)

// TestMain lets StartFakes re-execute this binary as the fake providers' process.
func TestMain(m *testing.M) {
	if bench.IsFakesChild() {
		if err := bench.ServeFakes(); err != nil {
			fmt.Fprintln(os.Stderr, "fake providers:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// settings are the benchmark's environment (see the package documentation).
type settings struct {
	scale      float64
	rounds     int
	scenarios  []string
	consumers  []string
	sync       string
	logFile    bool
	breakdown  bool
	runTimeout time.Duration
}

func readSettings(b *testing.B) settings {
	s := settings{scale: 1, rounds: 1, scenarios: []string{"a", "b", "c"}, consumers: []string{"bare", "worker"},
		sync: "default", runTimeout: 5 * time.Minute}
	var err error
	if v := os.Getenv("BENCH_SCALE"); v != "" {
		if s.scale, err = strconv.ParseFloat(v, 64); err != nil || s.scale <= 0 || s.scale > 100 {
			b.Fatalf("BENCH_SCALE=%q: want a number in (0, 100]", v)
		}
	}
	if v := os.Getenv("BENCH_ROUNDS"); v != "" {
		if s.rounds, err = strconv.Atoi(v); err != nil || s.rounds < 1 || s.rounds > 20 {
			b.Fatalf("BENCH_ROUNDS=%q: want 1 to 20", v)
		}
	}
	list := func(env string, valid []string, into *[]string) {
		v := os.Getenv(env)
		if v == "" {
			return
		}
		*into = nil
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if !slices.Contains(valid, f) {
				b.Fatalf("%s=%q: %q is not one of %v", env, v, f, valid)
			}
			*into = append(*into, f)
		}
	}
	list("BENCH_SCENARIOS", []string{"a", "b", "c"}, &s.scenarios)
	list("BENCH_CONSUMERS", []string{"bare", "worker"}, &s.consumers)
	if v := os.Getenv("BENCH_SYNC"); v != "" {
		if v != "always" && v != "default" {
			b.Fatalf("BENCH_SYNC=%q: want always or default", v)
		}
		s.sync = v
	}
	s.logFile = os.Getenv("BENCH_LOG_FILE") != "0" // the project's default writes LOG_FILE
	s.breakdown = os.Getenv("BENCH_BREAKDOWN") == "1"
	if v := os.Getenv("BENCH_RUN_TIMEOUT"); v != "" {
		if s.runTimeout, err = time.ParseDuration(v); err != nil || s.runTimeout <= 0 {
			b.Fatalf("BENCH_RUN_TIMEOUT=%q: want a positive duration", v)
		}
	}
	return s
}

// outcomes caches each scenario's runs: the testing package may call a sub-benchmark again
// with a larger b.N when a run is shorter than -benchtime; the work is done once and the
// same figures are reported (make bench passes -benchtime 1x).
var outcomes = map[string]*bench.Outcome{}

// BenchmarkEndToEnd is issue 12's benchmark (see the package documentation). It runs only
// with BENCH_E2E=1, so `go test -bench . ./...` stays a run of the micro-benchmarks.
func BenchmarkEndToEnd(b *testing.B) {
	if os.Getenv("BENCH_E2E") != "1" {
		b.Skip("set BENCH_E2E=1 to run the end-to-end benchmark (make bench does)")
	}
	s := readSettings(b)
	ctx := context.Background()
	dir := b.TempDir()
	started := time.Now()
	say := func(format string, args ...any) {
		fmt.Printf("[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}

	say("building nats-server")
	bin, err := bench.BuildNATSServer(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := bench.StartNATS(bin, dir, s.sync)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Stop)
	fakes, err := bench.StartFakes()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fakes.Stop)
	env := &bench.Env{Server: srv, Fakes: fakes, Dir: dir, LogFile: s.logFile, Breakdown: s.breakdown, RunTimeout: s.runTimeout, Progress: say}
	if err := env.Connect(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(env.NC.Close)
	say("nats-server pid %d (sync_interval %s), fake providers pid %d; scale %g, %d round(s)",
		srv.Pid(), s.sync, fakes.Pid(), s.scale, s.rounds)

	// The tables come at the end, after the testing package's metric lines; a scenario that
	// failed leaves the others' tables.
	var outs []bench.Outcome
	defer func() {
		if len(outs) == 0 {
			return
		}
		fmt.Println()
		fmt.Println("## End-to-end benchmark: the worker against a bare nats.go JetStream consumer")
		for _, o := range outs {
			o.WriteTable(os.Stdout)
		}
		bench.WriteSummary(os.Stdout, outs)
		bench.WriteNotes(os.Stdout, env)
		fmt.Println()
	}()
	for _, sc := range bench.Scenarios() {
		if !slices.Contains(s.scenarios, sc.Key) {
			continue
		}
		sc.Contacts = max(1, int(math.Round(float64(sc.Contacts)*s.scale)))
		b.Run(sc.Key, func(b *testing.B) {
			o, ok := outcomes[sc.Key]
			if !ok {
				o = runScenario(b, ctx, env, s, sc, say)
				outcomes[sc.Key] = o
			}
			report(b, *o)
		})
		if o, ok := outcomes[sc.Key]; ok {
			outs = append(outs, *o)
		}
	}
}

func runScenario(b *testing.B, ctx context.Context, env *bench.Env, s settings, sc bench.Scenario, say func(string, ...any)) *bench.Outcome {
	o := &bench.Outcome{Scenario: sc}
	cs := bench.Contacts(sc.Contacts)
	for round := range s.rounds {
		order := slices.Clone(s.consumers)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, consumer := range order {
			say("(%s) round %d: %s, %d contacts, concurrency %d", sc.Key, round+1, consumer, sc.Contacts, sc.Concurrency)
			var r bench.Result
			var err error
			if consumer == "bare" {
				r, err = env.RunBare(ctx, sc, cs)
			} else {
				r, err = env.RunWorker(ctx, sc, cs)
			}
			if err != nil {
				b.Fatalf("(%s) %s: %v", sc.Key, consumer, err)
			}
			say("(%s) round %d: %s %.0f contacts/s, %.2f s, %d completed, %d dead letters, CPU %.3f ms/contact, server %.3f ms/contact",
				sc.Key, round+1, consumer, r.Rate(), r.Elapsed.Seconds(), r.Completed, r.Dead,
				r.PerContact(float64(r.CPU)/1e6), r.PerContact(float64(r.ServerCPU)/1e6))
			if consumer == "bare" {
				o.Bare = append(o.Bare, r)
			} else {
				o.Worker = append(o.Worker, r)
			}
		}
	}
	return o
}

// report reports the worker's figures (or the only consumer's) as custom metrics.
func report(b *testing.B, o bench.Outcome) {
	b.ReportMetric(0, "ns/op") // one op is a whole scenario: its time says nothing
	rs, prefix := o.Worker, ""
	if len(rs) == 0 {
		rs, prefix = o.Bare, "bare-"
	}
	if len(rs) == 0 {
		return
	}
	m := func(f func(bench.Result) float64) float64 { return bench.Median(rs, f) }
	b.ReportMetric(m(bench.Result.Rate), prefix+"contacts/s")
	b.ReportMetric(m(func(r bench.Result) float64 { return r.PerContact(float64(r.CPU) / 1e6) }), prefix+"cpu-ms/contact")
	b.ReportMetric(m(func(r bench.Result) float64 { return r.PerContact(float64(r.ServerCPU) / 1e6) }), prefix+"srv-cpu-ms/contact")
	b.ReportMetric(m(func(r bench.Result) float64 { return r.PerContact(float64(r.APIReqs)) }), prefix+"js-req/contact")
	b.ReportMetric(m(func(r bench.Result) float64 { return r.PerContact(float64(r.InMsgs)) }), prefix+"msgs/contact")
	b.ReportMetric(m(func(r bench.Result) float64 { return r.PerContact(float64(r.Alloc)) }), prefix+"B/contact")
	b.ReportMetric(m(func(r bench.Result) float64 { return r.PerContact(float64(r.Mallocs)) }), prefix+"allocs/contact")
	if len(o.Bare) > 0 && len(o.Worker) > 0 {
		b.ReportMetric(bench.Median(o.Bare, bench.Result.Rate), "bare-contacts/s")
		b.ReportMetric(o.RateRatio(), "ratio")
	}
	if o.Scenario.TTSOutage > 0 {
		b.ReportMetric(m(func(r bench.Result) float64 { return r.Elapsed.Seconds() }), prefix+"drain-s")
		b.ReportMetric(m(func(r bench.Result) float64 { return float64(r.Dead) }), prefix+"dead-letters")
		b.ReportMetric(m(func(r bench.Result) float64 { return float64(r.Fakes.TTSOutageCalls) }), prefix+"outage-tts-calls")
		b.ReportMetric(m(func(r bench.Result) float64 { return float64(r.Fakes.LLMRepeats) }), prefix+"llm-repeats")
	}
}
