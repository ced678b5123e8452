package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/queue"
)

// Exit codes of the control commands beyond 0 (done), 1 (failed or declined) and 2 (usage).
const (
	// exitDrift: setup found settings that differ between the configuration and the server.
	exitDrift = 3
	// exitNotFound: inspect knows nothing of the contact.
	exitNotFound = 4
	// exitPartial: cancel could not cancel every contact asked for.
	exitPartial = 5
)

func (a *publisherApp) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *publisherApp) setupCommand() *cobra.Command {
	var apply, yes, asJSON bool
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Create the streams, buckets and consumer; report (or --apply) drift from the configuration",
		Long: `setup is the one place the JetStream topology is created or changed. It creates every
stream, bucket and consumer that is missing, and compares those that exist with the
configuration: each difference is drift, printed as resource, setting, configured value and
server value. Nothing that exists changes unless --apply is given (after a confirmation, or
--yes). Workers create only what is missing and report drift at start; enqueue and dlq replay
never change a stream.

Exit codes: 0 the server matches the configuration, 3 drift remains, 1 failure.`,
		Example: `  # Create what is missing and show the drift
  publisher setup

  # Make the server match this configuration (asks first)
  STREAM_REPLICAS=3 publisher setup --apply

  # In CI: fail when production drifted
  publisher setup --json | jq .drift`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return a.withJetStream(ctx, func(js jetstream.JetStream) error {
				plan, err := queue.Setup(ctx, js, a.cfg.Topology)
				if err != nil {
					return err
				}
				if apply && len(plan.Drift) > 0 {
					a.printDrift(plan.Drift)
					if !yes && !confirm(cmd.InOrStdin(), a.stderr, fmt.Sprintf("Change %d setting(s) on the server? [y/N] ", len(plan.Drift))) {
						return &ExitError{Code: 1, Err: fmt.Errorf("nothing changed")}
					}
					left, err := queue.ApplyDrift(ctx, js, a.cfg.Topology)
					if err != nil {
						return err
					}
					applied := len(plan.Drift) - len(left)
					plan.Drift = left
					if !asJSON {
						fmt.Fprintf(a.stdout, "changed %d setting(s)\n", applied)
					}
				}
				if asJSON {
					if err := a.printJSON(plan); err != nil {
						return err
					}
				} else {
					for _, name := range plan.Created {
						fmt.Fprintf(a.stdout, "created %s\n", name)
					}
					if len(plan.Drift) == 0 {
						fmt.Fprintln(a.stdout, "the server matches the configuration")
					} else {
						a.printDrift(plan.Drift)
					}
				}
				if len(plan.Drift) > 0 {
					hint := "`publisher setup --apply` changes the fixable ones"
					if apply {
						hint = "JetStream cannot change these in place: drain and recreate the resource to apply them"
					}
					return &ExitError{Code: exitDrift, Err: fmt.Errorf("%d setting(s) differ from the configuration; %s", len(plan.Drift), hint)}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&apply, "apply", false, "change the drifted settings on the server to the configured values")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {created, missing, drift: [{resource, field, setting, configured, server, incompatible, fixable}]}")
	return cmd
}

func (a *publisherApp) printDrift(drift []queue.Drift) {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tFIELD\tSETTING\tCONFIGURED\tSERVER\tNOTE")
	for _, d := range drift {
		var note []string
		if d.Incompatible {
			note = append(note, "worker cannot run with it")
		}
		if !d.Fixable {
			note = append(note, "recreate to change")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Resource, d.Field, d.Setting, d.Configured, d.Server, strings.Join(note, "; "))
	}
	_ = tw.Flush()
}

func (a *publisherApp) pauseCommand() *cobra.Command {
	var until string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "pause",
		Short: "Pause the call workers: they finish what they hold and take nothing new",
		Long: `pause pauses the shared JetStream consumer (server 2.11 or later). Every worker finishes the
contacts it holds; none receives a new one until resume or the --until deadline. status shows
the pause. Enqueueing goes on.`,
		Example: `  # Until resumed
  publisher pause

  # For the lunch break, or until a time (RFC 3339)
  publisher pause --until 1h
  publisher pause --until 2026-12-24T08:00:00-05:00`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			deadline := queue.PauseForever
			if until != "" {
				t, err := parseUntil(until, time.Now())
				if err != nil {
					return flagError(cmd, "until", err.Error())
				}
				deadline = t
			}
			ctx := cmd.Context()
			return a.withJetStream(ctx, func(js jetstream.JetStream) error {
				got, err := queue.Pause(ctx, js, a.cfg.Topology, deadline)
				if err != nil {
					return err
				}
				st := queue.ConsumerState{Paused: true, PauseUntil: got}
				if asJSON {
					return a.printJSON(st)
				}
				fmt.Fprintf(a.stdout, "paused %s: workers finish what they hold and take nothing new %s\n", a.cfg.Topology.Consumer, describePause(st))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&until, "until", "", "resume by itself at this time (RFC 3339) or after this duration (e.g. 90m); default: until `publisher resume`")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {paused, pause_until}")
	return cmd
}

// parseUntil reads --until: an RFC 3339 time or a positive duration from now.
func parseUntil(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("must be a positive duration or a future time")
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("want a duration (90m) or an RFC 3339 time (2026-12-24T08:00:00Z)")
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("is in the past")
	}
	return t, nil
}

func describePause(st queue.ConsumerState) string {
	if !st.Paused {
		return ""
	}
	if st.PauseUntil.IsZero() || !st.PauseUntil.Before(queue.PauseForever) {
		return "until resumed"
	}
	return fmt.Sprintf("until %s (in %s)", st.PauseUntil.Local().Format(time.RFC3339), time.Until(st.PauseUntil).Round(time.Second))
}

func (a *publisherApp) resumeCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "resume",
		Short:   "Resume the call workers after a pause",
		Example: `  publisher resume`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return a.withJetStream(ctx, func(js jetstream.JetStream) error {
				if err := queue.Resume(ctx, js, a.cfg.Topology); err != nil {
					return err
				}
				if asJSON {
					return a.printJSON(queue.ConsumerState{})
				}
				fmt.Fprintf(a.stdout, "resumed %s\n", a.cfg.Topology.Consumer)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {paused: false}")
	return cmd
}

func (a *publisherApp) inspectCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect <contact-id>",
		Short: "Show where a contact is: pending, in progress on which worker, completed, cancelled or dead-lettered",
		Long: `inspect looks a contact up in the per-contact records, the contacts stream and the dead
letters: its state, its queued messages, the worker holding it and until when, its failed
attempts, the steps already paid (provider, time, spend), its completion, and for a dead
letter the reason and last error. It reads the contacts stream message by message, so on a
long queue it takes a moment.

Exit codes: 0 found, 4 nothing is known of the contact, 1 failure.`,
		Example: `  publisher inspect c-1042
  publisher inspect c-1042 --json | jq .state`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return a.withJetStream(ctx, func(js jetstream.JetStream) error {
				st, err := queue.InspectContact(ctx, js, a.cfg.Topology, args[0])
				if err != nil {
					return err
				}
				if asJSON {
					if err := a.printJSON(st); err != nil {
						return err
					}
				} else {
					a.printContact(st)
				}
				if st.State == "unknown" {
					return &ExitError{Code: exitNotFound}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {id, state, queued, progress, completed, dead_letters}")
	return cmd
}

func (a *publisherApp) printContact(st queue.ContactState) {
	w := a.stdout
	fmt.Fprintf(w, "contact %s: %s\n", st.ID, strings.ReplaceAll(st.State, "_", " "))
	for _, q := range st.Queued {
		how := "waiting for a worker"
		if q.Delivered {
			how = "delivered to a worker (being worked on or waiting for its redelivery)"
		}
		fmt.Fprintf(w, "  queued: stream sequence %d, enqueued %s, %s\n", q.Seq, q.Enqueued.Local().Format(time.RFC3339), how)
	}
	if p := st.Progress; p != nil {
		if p.Owner != "" && st.Completed == nil {
			state := "held by"
			if time.Now().After(p.LeaseUntil) {
				state = "last held by"
			}
			fmt.Fprintf(w, "  %s %s until %s\n", state, p.Owner, p.LeaseUntil.Local().Format(time.RFC3339))
		}
		if p.Failures > 0 {
			fmt.Fprintf(w, "  failed attempts: %d (first %s, last %s)\n", p.Failures,
				p.FirstFailure.Local().Format(time.RFC3339), p.LastFailure.Local().Format(time.RFC3339))
		}
		if p.LastError != "" {
			fmt.Fprintf(w, "  last error: %s\n", p.LastError)
		}
		if p.Script != nil {
			fmt.Fprintf(w, "  paid: script by %s\n", p.Providers[call.StepLLM])
		}
		if p.AudioRef != "" {
			fmt.Fprintf(w, "  paid: audio %s by %s\n", p.AudioRef, p.Providers[call.StepTTS])
		}
	}
	if r := st.Completed; r != nil {
		fmt.Fprintf(w, "  %s at %s by %s\n", r.Status, r.CompletedAt.Local().Format(time.RFC3339), r.Worker)
		for _, step := range []string{call.StepLLM, call.StepTTS, call.StepCRM} {
			if provider, ok := r.Providers[step]; ok {
				fmt.Fprintf(w, "  %s: %s in %d ms%s\n", step, provider, r.StepMillis[step], spendText(r.Spend[step]))
			}
		}
	}
	for _, dl := range st.DeadLetters {
		fmt.Fprintf(w, "  dead-lettered %s: %s after %d attempt(s) (provider %s): %s\n",
			dl.Stored.Local().Format(time.RFC3339), dl.Reason, dl.Attempts, dl.Provider, dl.LastError)
	}
}

// spendText is a step's billed usage, e.g. ", 412+96 tokens" or ", 380 characters".
func spendText(s call.Spend) string {
	var parts []string
	if s.PromptTokens+s.CompletionTokens > 0 {
		parts = append(parts, fmt.Sprintf("%d+%d tokens", s.PromptTokens, s.CompletionTokens))
	}
	if s.Characters > 0 {
		parts = append(parts, fmt.Sprintf("%d characters", s.Characters))
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}

func (a *publisherApp) cancelCommand() *cobra.Command {
	var yes, asJSON bool
	cmd := &cobra.Command{
		Use:   "cancel <contact-id>...",
		Short: "Cancel contacts so that no worker calls them",
		Long: `cancel marks each contact cancelled in its record (a worker that receives it skips it as a
completed contact) and removes its messages from the contacts stream. A contact a worker is
working on right now is not cancelled: its call may be under way; cancel it again once
inspect shows it is no longer in progress. An id not enqueued yet is cancelled ahead: it will
be skipped if enqueued (enqueue --recall calls it anyway).

Exit codes: 0 all cancelled, 5 some were not (see why), 1 failure or declined.`,
		Example: `  publisher cancel c-1042 c-1043
  publisher cancel --yes $(jq -r '.[].id' wrong-file.json)`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, ids []string) error {
			if !yes && !confirm(cmd.InOrStdin(), a.stderr, fmt.Sprintf("Cancel %d contact(s)? [y/N] ", len(ids))) {
				return &ExitError{Code: 1, Err: fmt.Errorf("nothing cancelled")}
			}
			ctx := cmd.Context()
			return a.withJetStream(ctx, func(js jetstream.JetStream) error {
				res, err := queue.Cancel(ctx, js, a.cfg.Topology, ids)
				if err != nil {
					return err
				}
				refused := 0
				for _, r := range res {
					if !r.Cancelled {
						refused++
					}
				}
				if asJSON {
					if err := a.printJSON(res); err != nil {
						return err
					}
				} else {
					for _, r := range res {
						if r.Cancelled {
							fmt.Fprintf(a.stdout, "%s: cancelled, %d message(s) removed\n", r.ID, r.Removed)
						} else {
							fmt.Fprintf(a.stdout, "%s: not cancelled: %s\n", r.ID, r.Reason)
						}
					}
				}
				if refused > 0 {
					return &ExitError{Code: exitPartial, Err: fmt.Errorf("%d of %d contact(s) not cancelled", refused, len(ids))}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print [{id, cancelled, removed, reason}]")
	return cmd
}

func (a *publisherApp) purgeCommand() *cobra.Command {
	var pending, yes, asJSON bool
	cmd := &cobra.Command{
		Use:   "purge --pending",
		Short: "Delete every contact no worker has taken yet",
		Long: `purge --pending deletes the contacts waiting in the stream that no worker has received.
Contacts being worked on, or waiting for a redelivery, stay. The consumer is paused while it
deletes (and resumed after, unless it was paused before), so no worker takes one of them
meanwhile. Deleted contacts leave no record; enqueueing their ids again within DEDUPE_WINDOW
is dropped as a duplicate.`,
		Example: `  # The wrong 200,000-row file went out: stop it
  publisher purge --pending

  # In a script
  publisher purge --pending --yes --json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !pending {
				return usageError("purge needs --pending (the contacts no worker has taken yet); dead letters: publisher dlq purge")
			}
			ctx := cmd.Context()
			return a.withJetStream(ctx, func(js jetstream.JetStream) error {
				st, err := queue.ReadStatus(ctx, js, a.cfg.Topology)
				if err != nil {
					return err
				}
				if st.Pending == 0 {
					fmt.Fprintln(a.stdout, "nothing pending; nothing to purge")
					return nil
				}
				if !yes && !confirm(cmd.InOrStdin(), a.stderr, fmt.Sprintf("Delete about %d pending contact(s) from %s? [y/N] ", st.Pending, a.cfg.Topology.ContactsStream)) {
					return &ExitError{Code: 1, Err: fmt.Errorf("purge cancelled; nothing deleted")}
				}
				n, err := queue.PurgePending(ctx, js, a.cfg.Topology)
				if err != nil {
					return fmt.Errorf("%w (%d deleted)", err, n)
				}
				if asJSON {
					return a.printJSON(map[string]uint64{"purged": n})
				}
				fmt.Fprintf(a.stdout, "purged %d pending contact(s)\n", n)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&pending, "pending", false, "delete the contacts no worker has taken yet (required)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {purged}")
	return cmd
}
