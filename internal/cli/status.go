package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/callagent/resilience/internal/queue"
)

func (a *publisherApp) statusCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show pending, in-progress, completed and dead-lettered contacts for the whole fleet",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			js, closeConn, err := a.connect()
			if err != nil {
				return err
			}
			defer closeConn()
			st, err := queue.ReadStatus(cmd.Context(), js, a.cfg.Topology)
			if err != nil {
				return err
			}
			return a.printStatus(st, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object: pending, in_progress, completed, dead_lettered")
	return cmd
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
