package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/callagent/resilience/internal/daemon"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/queue"
	"github.com/callagent/resilience/internal/redact"
)

// dlqFilterFlags are the filters list, replay and purge share.
type dlqFilterFlags struct {
	reason, provider, since string
}

func (f *dlqFilterFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.reason, "reason", "", "only dead letters with this reason: "+strings.Join(deadLetterReasons(), ", "))
	cmd.Flags().StringVar(&f.provider, "provider", "", "only dead letters from this provider, e.g. ElevenLabs (case-insensitive)")
	cmd.Flags().StringVar(&f.since, "since", "", "only dead letters written since a duration ago (24h) or a time (2026-11-26 or RFC 3339)")
}

func (f *dlqFilterFlags) filter(now time.Time) (queue.DeadLetterFilter, error) {
	out := queue.DeadLetterFilter{Reason: f.reason, Provider: f.provider}
	if f.reason != "" {
		reasons := deadLetterReasons()
		i := slices.IndexFunc(reasons, func(r string) bool { return strings.EqualFold(r, strings.TrimSpace(f.reason)) })
		if i < 0 {
			return out, usageError("--reason %q: not a dead-letter reason; the reasons are %s", f.reason, strings.Join(reasons, ", "))
		}
		out.Reason = reasons[i]
	}
	if f.since == "" {
		return out, nil
	}
	since, err := parseSince(f.since, now)
	if err != nil {
		return out, &ExitError{Code: 2, Err: err}
	}
	out.Since = since
	return out, nil
}

// deadLetterReasons lists every reason a worker dead-letters a contact with, sorted: the
// provider error kinds (fault.Kind), the worker's own reasons, and the reason of a dead
// letter written without one.
func deadLetterReasons() []string {
	reasons := []string{daemon.ReasonInvalidContact, daemon.ReasonDeliveriesExceeded, daemon.ReasonBreakerOpen,
		daemon.ReasonInternal, queue.ReasonUnknown}
	for k := fault.KindUnknown + 1; k.String() != fault.KindUnknown.String(); k++ {
		reasons = append(reasons, k.String())
	}
	slices.Sort(reasons)
	return slices.Compact(reasons)
}

// checkLimit checks a --limit flag: 0 means no limit.
func checkLimit(cmd *cobra.Command, limit int) error {
	if limit < 0 {
		return flagError(cmd, "limit", "must not be negative (0 means no limit)")
	}
	return nil
}

// parseSince accepts a Go duration (meaning that long ago), an RFC 3339 time or a date.
func parseSince(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: a duration must not be negative", v)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: not a duration (24h, 90m) or a time (2026-11-26, 2026-11-26T08:00:00Z)", v)
}

// openDLQ turns the filter flags into a filter (checking them before connecting) and connects.
func (a *publisherApp) openDLQ(cmd *cobra.Command, f dlqFilterFlags, limit int) (queue.DeadLetterFilter, jetstream.JetStream, func(), error) {
	filter, err := f.filter(time.Now())
	if err != nil {
		return filter, nil, nil, err
	}
	if err := checkLimit(cmd, limit); err != nil {
		return filter, nil, nil, err
	}
	filter.Limit = limit
	js, closeConn, err := a.connect(cmd.Context())
	return filter, js, closeConn, err
}

func (a *publisherApp) dlqCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, replay and purge dead-lettered contacts",
		Long: `dlq works on the dead-letter stream, where workers write off the contacts they cannot
call, each with its reason, provider, attempts and last error. list, replay and purge take
the same filters: --reason, --provider and --since.`,
		Example: `  # What was written off in the last day, and why
  publisher dlq list --since 24h

  # Once the ElevenLabs quota is topped up: check, then replay those contacts
  publisher dlq replay --reason quota_exceeded --provider ElevenLabs --dry-run
  publisher dlq replay --reason quota_exceeded --provider ElevenLabs

  # Drop the contacts whose data is wrong
  publisher dlq purge --reason invalid_payload --yes`,
	}
	cmd.AddCommand(a.dlqListCommand(), a.dlqReplayCommand(), a.dlqPurgeCommand())
	return cmd
}

func (a *publisherApp) dlqListCommand() *cobra.Command {
	var f dlqFilterFlags
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters as a table, or as JSON lines with --json",
		Example: `  # Every dead letter, newest last
  publisher dlq list

  # Those from ElevenLabs in the last 6 hours
  publisher dlq list --provider ElevenLabs --since 6h

  # The ids of the first 100 contacts that hit the redelivery limit
  publisher dlq list --reason max_deliveries --limit 100 --json | jq -r .contact_id`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, js, closeConn, err := a.openDLQ(cmd, f, limit)
			if err != nil {
				return err
			}
			defer closeConn()
			var tw *tabwriter.Writer
			if !asJSON {
				tw = newDLQTable(a.stdout)
			}
			enc := json.NewEncoder(a.stdout)
			n := 0
			err = queue.EachDeadLetter(cmd.Context(), js, a.cfg.Topology, filter, func(dl queue.DeadLetter) error {
				n++
				if asJSON {
					return enc.Encode(dlqJSON(dl))
				}
				writeDLQRow(tw, dl)
				return nil
			})
			if err := a.skippedUnreadable(err); err != nil {
				return err
			}
			if tw != nil {
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "%d dead letter(s)\n", n)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most this many; 0 lists all")
	return cmd
}

func (a *publisherApp) dlqReplayCommand() *cobra.Command {
	var f dlqFilterFlags
	var dryRun bool
	var limit int
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Re-enqueue dead letters, removing each once the re-publish is acked",
		Long: `replay re-publishes matching dead letters to the contacts subject with a fresh message id
and removes each from the dead-letter stream once the contacts stream has acked it. The id
is fixed per dead letter, so rerunning an interrupted replay enqueues no contact twice. A
replayed contact resumes from its checkpoint: a contact whose TTS failed does not call the
LLM again.`,
		Example: `  # See what would be replayed, change nothing
  publisher dlq replay --reason service_unavailable --dry-run

  # Replay what failed since the outage began
  publisher dlq replay --since "2026-11-26 08:00:00"

  # Replay in batches of 500 (rerun until none is left)
  publisher dlq replay --limit 500`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, js, closeConn, err := a.openDLQ(cmd, f, limit)
			if err != nil {
				return err
			}
			defer closeConn()
			ctx := cmd.Context()
			if !dryRun {
				if _, err := queue.EnsureContactsStream(ctx, js, a.cfg.Topology); err != nil {
					return err
				}
			}
			var tw *tabwriter.Writer
			if dryRun {
				tw = newDLQTable(a.stdout)
			}
			replayed, duplicates, skipped := 0, 0, 0
			err = queue.EachDeadLetter(ctx, js, a.cfg.Topology, filter, func(dl queue.DeadLetter) error {
				if cerr := queue.CheckReplayable(dl); cerr != nil {
					// Cut to fit the dead-letter stream: the original contact is not there to send.
					skipped++
					fmt.Fprintf(a.stderr, "skipped: %v\n", cerr)
					return nil
				}
				if dryRun {
					writeDLQRow(tw, dl)
					replayed++
					return nil
				}
				dup, err := queue.Replay(ctx, js, a.cfg.Topology, dl)
				if err != nil {
					return err
				}
				replayed++
				if dup {
					duplicates++
				}
				return nil
			})
			err = a.skippedUnreadable(err)
			if dryRun {
				if ferr := tw.Flush(); ferr != nil && err == nil {
					err = ferr
				}
				fmt.Fprintf(a.stdout, "dry run: would replay %d dead letter(s) to %s; %d cut to fit and not replayable\n",
					replayed, a.cfg.Topology.ContactsSubject, skipped)
				return err
			}
			fmt.Fprintf(a.stdout, "replayed %d dead letter(s) to %s (%d already enqueued by an earlier, interrupted replay); %d cut to fit and not replayable\n",
				replayed, a.cfg.Topology.ContactsSubject, duplicates, skipped)
			if err != nil {
				return fmt.Errorf("%w; rerun the same command to finish: nothing is enqueued twice", err)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be replayed and change nothing")
	cmd.Flags().IntVar(&limit, "limit", 0, "replay at most this many; 0 replays all")
	return cmd
}

func (a *publisherApp) dlqPurgeCommand() *cobra.Command {
	var f dlqFilterFlags
	var yes bool
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Delete dead letters for good (asks first unless --yes)",
		Example: `  # Asks before deleting
  publisher dlq purge --reason invalid_payload

  # In a script: no question
  publisher dlq purge --provider CRM --since 168h --yes`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, js, closeConn, err := a.openDLQ(cmd, f, 0)
			if err != nil {
				return err
			}
			defer closeConn()
			ctx := cmd.Context()
			var seqs []uint64
			if err := a.skippedUnreadable(queue.EachDeadLetter(ctx, js, a.cfg.Topology, filter, func(dl queue.DeadLetter) error {
				seqs = append(seqs, dl.Seq)
				return nil
			})); err != nil {
				return err
			}
			if len(seqs) == 0 {
				fmt.Fprintln(a.stdout, "no dead letters match; nothing to purge")
				return nil
			}
			if !yes && !confirm(cmd.InOrStdin(), a.stderr, fmt.Sprintf("Delete %d dead letter(s) from %s for good? [y/N] ", len(seqs), a.cfg.Topology.DeadLetterStream)) {
				return &ExitError{Code: 1, Err: fmt.Errorf("purge cancelled; nothing deleted")}
			}
			for i, seq := range seqs {
				if err := queue.DeleteDeadLetter(ctx, js, a.cfg.Topology, seq); err != nil {
					return fmt.Errorf("%w (%d of %d deleted)", err, i, len(seqs))
				}
			}
			fmt.Fprintf(a.stdout, "purged %d dead letter(s)\n", len(seqs))
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// skippedUnreadable says on stderr how many messages of the dead-letter stream EachDeadLetter
// skipped because it could not read them (one bad message must not block the others), and
// returns err without that report: nil when it was all.
func (a *publisherApp) skippedUnreadable(err error) error {
	var ue *queue.UnreadableDeadLettersError
	if !errors.As(err, &ue) {
		return err
	}
	fmt.Fprintf(a.stderr, "skipped %d unreadable dead letter(s); the first: %v\n", ue.Count, ue.First)
	return nil
}

func confirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprint(out, question)
	answer, _ := bufio.NewReader(in).ReadString('\n')
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes"
}

func newDLQTable(w io.Writer) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTACT\tREASON\tPROVIDER\tATTEMPTS\tLAST ERROR\tWHEN")
	return tw
}

// maxErrorColumn keeps the table readable; --json has the whole error.
const maxErrorColumn = 60

func writeDLQRow(tw *tabwriter.Writer, dl queue.DeadLetter) {
	msg := strings.Join(strings.Fields(dl.LastError), " ")
	if r := []rune(msg); len(r) > maxErrorColumn {
		msg = string(r[:maxErrorColumn-1]) + "…"
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", orDash(dl.ContactID), dl.Reason, orDash(dl.Provider),
		dl.Attempts, orDash(msg), dl.Stored.UTC().Format("2006-01-02 15:04:05Z"))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dlqRecord is a dead letter as --json prints it. The payload is left out: it holds the
// contact's full phone number.
type dlqRecord struct {
	Seq             uint64    `json:"seq"`
	ContactID       string    `json:"contact_id"`
	Reason          string    `json:"reason"`
	Provider        string    `json:"provider,omitempty"`
	Attempts        int       `json:"attempts"`
	LastError       string    `json:"last_error,omitempty"`
	FirstFailure    time.Time `json:"first_failure,omitzero"`
	LastFailure     time.Time `json:"last_failure,omitzero"`
	Worker          string    `json:"worker,omitempty"`
	OriginalSubject string    `json:"original_subject,omitempty"`
	OriginalStream  string    `json:"original_stream,omitempty"`
	StreamSeq       uint64    `json:"stream_seq,omitempty"`
	MsgID           string    `json:"msg_id,omitempty"`
	DeadLetteredAt  time.Time `json:"dead_lettered_at"`
	// PayloadTruncated: the payload was cut to fit the stream (see its length and hash);
	// such a dead letter cannot be replayed.
	PayloadTruncated bool   `json:"payload_truncated,omitempty"`
	PayloadLength    int    `json:"payload_length,omitempty"`
	PayloadSHA256    string `json:"payload_sha256,omitempty"`
}

func dlqJSON(dl queue.DeadLetter) dlqRecord {
	return dlqRecord{
		Seq: dl.Seq, ContactID: dl.ContactID, Reason: dl.Reason, Provider: dl.Provider, Attempts: dl.Attempts,
		LastError: redact.Text(dl.LastError), FirstFailure: dl.FirstFailure, LastFailure: dl.LastFailure,
		Worker: dl.Worker, OriginalSubject: dl.OriginalSubject, OriginalStream: dl.OriginalStream,
		StreamSeq: dl.StreamSeq, MsgID: dl.MsgID, DeadLetteredAt: dl.Stored,
		PayloadTruncated: dl.Truncated, PayloadLength: dl.PayloadLength, PayloadSHA256: dl.PayloadSHA256,
	}
}
