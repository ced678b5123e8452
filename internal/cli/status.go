package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/term"

	"github.com/spf13/cobra"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/fleet"
	"github.com/callagent/resilience/internal/queue"
)

// minWatchInterval bounds --interval from below: every refresh reads several streams.
const minWatchInterval = 100 * time.Millisecond

func (a *publisherApp) statusCommand() *cobra.Command {
	var asJSON, watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the queue and every worker's circuit breakers, for the whole fleet",
		Long: `status reads everything from NATS: the contacts stream and consumer (pending, in progress),
the completed bucket, the dead-letter stream, and the breaker states every worker publishes
to the fleet bucket. It says so when no worker is reporting. --watch redraws it every
--interval until interrupted, with the time of the refresh, the completion rate over the
last interval and an estimate of when the contacts left (pending and in progress) are done.`,
		Example: `  # The queue, the breakers of every worker and the open alert incidents
  publisher status

  # Follow a campaign: rate and ETA, redrawn every 5 seconds until Ctrl-C
  publisher status --watch --interval 5s

  # For scripts and dashboards
  publisher status --json | jq '{pending, completed, workers}'`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < minWatchInterval {
				return flagError(cmd, "interval", fmt.Sprintf("must be at least %s (the time between two refreshes of --watch)", minWatchInterval))
			}
			js, closeConn, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer closeConn()
			if !watch {
				return a.showStatus(cmd.Context(), js, asJSON, nil)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			w := &watchState{interval: interval}
			for {
				if err := a.showStatus(ctx, js, asJSON, w); err != nil && ctx.Err() == nil {
					return err
				}
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
				}
			}
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object: pending, in_progress, completed, dead_lettered, breakers, incidents, workers; with --watch one a refresh, with refreshed_at, completion_rate and eta_seconds")
	cmd.Flags().BoolVar(&watch, "watch", false, "refresh until interrupted, with the completion rate and an ETA")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "refresh interval with --watch; at least 100ms")
	return cmd
}

// watchState is what --watch keeps from one refresh to the next.
type watchState struct {
	interval time.Duration
	last     *progressSample
}

// progressSample is the queue's counts at one refresh.
type progressSample struct {
	at time.Time
	st queue.Status
}

// progress is the change between two refreshes of --watch.
type progress struct {
	// Elapsed is the time between the two samples; 0 on the first refresh.
	Elapsed time.Duration
	// CompletionRate and DeadLetterRate are contacts a second over Elapsed; decreases (a
	// purge, a replay) count as 0.
	CompletionRate, DeadLetterRate float64
	// Left is what remains: pending and in progress.
	Left uint64
	// ETA is Left at the rate contacts finished (completed or dead-lettered) over Elapsed;
	// valid only if HasETA.
	ETA    time.Duration
	HasETA bool
}

// measure compares cur with the previous sample (nil on the first refresh).
func measure(prev *progressSample, cur progressSample) progress {
	p := progress{Left: cur.st.Pending + cur.st.InProgress}
	if prev == nil || !cur.at.After(prev.at) {
		return p
	}
	p.Elapsed = cur.at.Sub(prev.at)
	perSecond := func(now, before uint64) float64 {
		if now <= before {
			return 0
		}
		return float64(now-before) / p.Elapsed.Seconds()
	}
	p.CompletionRate = perSecond(cur.st.Completed, prev.st.Completed)
	p.DeadLetterRate = perSecond(cur.st.DeadLettered, prev.st.DeadLettered)
	finished := p.CompletionRate + p.DeadLetterRate
	switch {
	case p.Left == 0:
		p.HasETA = true // done: ETA 0
	case finished > 0:
		// Rounded to the second, and never 0s while something is left.
		p.ETA = max(time.Duration(float64(p.Left)/finished*float64(time.Second)).Round(time.Second), time.Second)
		p.HasETA = true
	}
	return p
}

// describe is the progress line of --watch.
func (p progress) describe(now time.Time) string {
	var b strings.Builder
	if p.Elapsed == 0 {
		b.WriteString("Rate: measuring, shown from the next refresh")
	} else {
		fmt.Fprintf(&b, "Rate: %s contacts/s completed over the last %s", rate(p.CompletionRate), p.Elapsed.Round(time.Millisecond))
		if p.DeadLetterRate > 0 {
			fmt.Fprintf(&b, " (and %s/s dead-lettered)", rate(p.DeadLetterRate))
		}
	}
	switch {
	case p.Left == 0:
		b.WriteString("; nothing left: no contact pending or in progress")
	case p.HasETA:
		fmt.Fprintf(&b, "; %d left (pending + in progress), ETA %s (about %s)", p.Left, p.ETA, now.Add(p.ETA).Format("15:04:05"))
	case p.Elapsed == 0:
		fmt.Fprintf(&b, "; %d left (pending + in progress)", p.Left)
	default:
		fmt.Fprintf(&b, "; %d left (pending + in progress), ETA unknown: none finished in the last %s", p.Left, p.Elapsed.Round(time.Millisecond))
	}
	return b.String()
}

func rate(r float64) string {
	if r >= 100 || r == 0 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.1f", r)
}

// fleetStatus is the status command's JSON: the four queue counts and the fleet's breakers.
type fleetStatus struct {
	queue.Status
	Breakers []fleet.ProviderStatus `json:"breakers"`
	// Incidents are the breakers not closed, per worker.
	Incidents []fleet.Report `json:"incidents"`
	Workers   []string       `json:"workers"`
	// AlertIncidents are the open incidents of the alert dispatcher (one per provider and
	// condition, with how many events they folded in).
	AlertIncidents []alert.Incident `json:"alert_incidents"`
	// Drift lists the settings where the server differs from this configuration.
	Drift []queue.Drift `json:"drift"`
	// Overrides are the operators' breaker overrides in force.
	Overrides []fleet.SharedRecord `json:"breaker_overrides"`

	// With --watch only: when the counts were read, the contacts completed a second over
	// the last interval (from the second refresh), and the seconds until the contacts left
	// are done at the rate they finished (when it is known).
	RefreshedAt    *time.Time `json:"refreshed_at,omitempty"`
	CompletionRate *float64   `json:"completion_rate,omitempty"`
	ETASeconds     *float64   `json:"eta_seconds,omitempty"`
}

// showStatus prints the status once; w is the state of --watch (nil without it).
func (a *publisherApp) showStatus(ctx context.Context, js jetstream.JetStream, asJSON bool, w *watchState) error {
	st, err := queue.ReadStatus(ctx, js, a.cfg.Topology)
	if err != nil {
		return err
	}
	now := time.Now()
	fst, err := fleet.Read(ctx, js, a.cfg.Fleet.Bucket)
	noBucket := errors.Is(err, fleet.ErrNoReports)
	if noBucket {
		fst, err = fleet.Aggregate(nil), nil
	}
	if err != nil {
		return err
	}
	incidents, err := alert.OpenIncidents(ctx, js, a.cfg.Alerts.IncidentsBucket)
	if err != nil {
		return err
	}
	if incidents == nil {
		incidents = []alert.Incident{}
	}
	plan, err := queue.Inspect(ctx, js, a.cfg.Topology)
	if err != nil {
		return err
	}
	overrides := []fleet.SharedRecord{}
	if kv, err := js.KeyValue(ctx, fleet.DefaultBreakerBucket); err == nil {
		recs, err := fleet.ListShared(ctx, kv)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Override(now) != "" {
				overrides = append(overrides, r)
			}
		}
	}
	if plan.Drift == nil {
		plan.Drift = []queue.Drift{}
	}
	var p progress
	if w != nil {
		cur := progressSample{at: now, st: st}
		p = measure(w.last, cur)
		w.last = &cur
	}
	if asJSON {
		out := fleetStatus{Status: st, Breakers: fst.Providers, Incidents: fst.Incidents,
			Workers: fst.Workers, AlertIncidents: incidents, Drift: plan.Drift, Overrides: overrides}
		if w != nil {
			out.RefreshedAt = &now
			if p.Elapsed > 0 {
				out.CompletionRate = &p.CompletionRate
			}
			if p.HasETA {
				eta := p.ETA.Seconds()
				out.ETASeconds = &eta
			}
		}
		return json.NewEncoder(a.stdout).Encode(out)
	}
	if w != nil {
		if isTerminal(a.stdout) {
			fmt.Fprint(a.stdout, "\033[H\033[2J")
		}
		fmt.Fprintf(a.stdout, "Refreshed %s, every %s (Ctrl-C to stop)\n", now.Format("2006-01-02 15:04:05 MST"), w.interval)
		fmt.Fprintln(a.stdout, p.describe(now))
	}
	if err := a.printStatus(st, false); err != nil {
		return err
	}
	if len(fst.Workers) == 0 {
		a.noWorkerReporting(st, noBucket)
	}
	for _, r := range overrides {
		until := "until `publisher breaker auto`"
		if !r.Until.IsZero() {
			until = "until " + r.Until.Local().Format(time.RFC3339)
		}
		fmt.Fprintf(a.stdout, "Breaker override: %s held %s by an operator %s\n", r.Provider, strings.ToUpper(r.Mode), until)
	}
	if len(plan.Drift) > 0 {
		fmt.Fprintf(a.stdout, "Topology drift (%d): the server differs from this configuration; `publisher setup --apply` changes it\n", len(plan.Drift))
		for _, d := range plan.Drift {
			fmt.Fprintf(a.stdout, "  %s\n", d)
		}
	}
	if err := fst.WriteTable(a.stdout); err != nil {
		return err
	}
	if len(incidents) == 0 {
		_, err := fmt.Fprintln(a.stdout, "Alert incidents: none open")
		return err
	}
	fmt.Fprintf(a.stdout, "Alert incidents (%d open)\n", len(incidents))
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SEVERITY\tINCIDENT\tOPENED\tEVENTS\tSUPPRESSED")
	for _, in := range incidents {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\n", in.Severity, in.Title, in.OpenedAt.UTC().Format(time.RFC3339), in.Count, in.Suppressed)
	}
	return tw.Flush()
}

// noWorkerReporting says that no worker reports to the fleet bucket, and why it may be.
func (a *publisherApp) noWorkerReporting(st queue.Status, noBucket bool) {
	bucket := a.cfg.Fleet.Bucket
	if bucket == "" {
		bucket = fleet.DefaultBucket
	}
	why := fmt.Sprintf("the fleet bucket %s holds no report: the workers stopped, or have not reached NATS for FLEET_TTL", bucket)
	if noBucket {
		why = fmt.Sprintf("the fleet bucket %s does not exist: no worker has started against this server (or FLEET_BUCKET differs)", bucket)
	}
	fmt.Fprintf(a.stdout, "No worker is reporting: %s", why)
	if left := st.Pending + st.InProgress; left > 0 {
		fmt.Fprintf(a.stdout, "; %d contact(s) wait", left)
	}
	fmt.Fprintln(a.stdout)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (a *publisherApp) printStatus(st queue.Status, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(a.stdout).Encode(st)
	}
	t := a.cfg.Topology
	fmt.Fprintf(a.stdout, "Stream %s (subject %s), consumer %s\n", t.ContactsStream, t.ContactsSubject, t.Consumer)
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  pending\t%d\t\n", st.Pending)
	fmt.Fprintf(tw, "  in progress\t%d\t\n", st.InProgress)
	fmt.Fprintf(tw, "  completed\t%d\t\n", st.Completed)
	if st.Cancelled > 0 {
		fmt.Fprintf(tw, "  cancelled\t%d\t\n", st.Cancelled)
	}
	fmt.Fprintf(tw, "  dead-lettered\t%d\t\n", st.DeadLettered)
	if err := tw.Flush(); err != nil {
		return err
	}
	if !st.OldestPending.IsZero() {
		fmt.Fprintf(a.stdout, "  oldest contact enqueued %s ago\n", time.Since(st.OldestPending).Round(time.Second))
	}
	if st.Paused {
		fmt.Fprintf(a.stdout, "  PAUSED %s: workers take no new contacts (publisher resume)\n",
			describePause(queue.ConsumerState{Paused: true, PauseUntil: st.PauseUntil}))
	}
	return nil
}

func (a *publisherApp) waitCommand() *cobra.Command {
	var timeout time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Wait until no contact is pending or in progress, then print the status",
		Long: `wait polls the status until the queue is idle (nothing pending, nothing in progress) or
the timeout passes (exit code 3). Scripts use it to know when a campaign has finished.`,
		Example: `  # Block until the campaign is done, for two hours at most
  publisher wait --timeout 2h && echo "campaign finished"

  # Is the queue idle right now? (exit code 3 if not)
  publisher wait --timeout 0

  # The final counts for a report
  publisher wait --json > final-status.json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout < 0 {
				return flagError(cmd, "timeout", "must not be negative (0 checks once without waiting)")
			}
			js, closeConn, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer closeConn()
			deadline := time.Now().Add(timeout)
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for {
				st, err := queue.ReadStatus(cmd.Context(), js, a.cfg.Topology)
				if err != nil {
					return err
				}
				if st.Idle() {
					return a.printStatus(st, asJSON)
				}
				if time.Now().After(deadline) {
					_ = a.printStatus(st, asJSON)
					return &ExitError{Code: 3, Err: fmt.Errorf("queue still busy after %s", timeout)}
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-tick.C:
				}
			}
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long (exit code 3); 0 checks once without waiting")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the final status as JSON")
	return cmd
}
