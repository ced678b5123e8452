package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
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

func (a *publisherApp) statusCommand() *cobra.Command {
	var asJSON, watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the queue and every worker's circuit breakers, for the whole fleet",
		Long: `status reads everything from NATS: the contacts stream and consumer (pending, in progress),
the completed bucket, the dead-letter stream, and the breaker states every worker publishes
to the fleet bucket. --watch redraws it until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			js, closeConn, err := a.connect()
			if err != nil {
				return err
			}
			defer closeConn()
			if !watch {
				return a.showStatus(cmd.Context(), js, asJSON, false)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				if err := a.showStatus(ctx, js, asJSON, true); err != nil && ctx.Err() == nil {
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object: pending, in_progress, completed, dead_lettered, breakers, incidents, workers")
	cmd.Flags().BoolVar(&watch, "watch", false, "refresh until interrupted")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "refresh interval with --watch")
	return cmd
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
}

func (a *publisherApp) showStatus(ctx context.Context, js jetstream.JetStream, asJSON, redraw bool) error {
	st, err := queue.ReadStatus(ctx, js, a.cfg.Topology)
	if err != nil {
		return err
	}
	fst, err := fleet.Read(ctx, js, a.cfg.Fleet.Bucket)
	if errors.Is(err, fleet.ErrNoReports) {
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
	if asJSON {
		return json.NewEncoder(a.stdout).Encode(fleetStatus{Status: st, Breakers: fst.Providers, Incidents: fst.Incidents,
			Workers: fst.Workers, AlertIncidents: incidents})
	}
	if redraw && isTerminal(a.stdout) {
		fmt.Fprint(a.stdout, "\033[H\033[2J")
	}
	if err := a.printStatus(st, false); err != nil {
		return err
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
	fmt.Fprintf(tw, "  dead-lettered\t%d\t\n", st.DeadLettered)
	return tw.Flush()
}

func (a *publisherApp) waitCommand() *cobra.Command {
	var timeout time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Wait until no contact is pending or in progress, then print the status",
		Long: `wait polls the status until the queue is idle (nothing pending, nothing in progress) or
the timeout passes (exit code 3). Scripts use it to know when a campaign has finished.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			js, closeConn, err := a.connect()
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
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long (exit code 3)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the final status as JSON")
	return cmd
}
