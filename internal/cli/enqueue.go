package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/queue"
)

// maxListedProblems bounds how many invalid contacts are printed one by one.
const maxListedProblems = 100

// progressThreshold is the contact count from which a progress bar is worth showing.
const progressThreshold = 1000

func (a *publisherApp) enqueueCommand() *cobra.Command {
	var skipInvalid bool
	cmd := &cobra.Command{
		Use:   "enqueue FILE",
		Short: "Validate a contacts file (JSON array or NDJSON) and enqueue its contacts",
		Long: `enqueue reads FILE twice, streaming: first it validates every contact, then it publishes
them with Nats-Msg-Id = contact id, so enqueuing the same file twice creates no duplicate
work. By default a file with any invalid contact publishes nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.enqueue(cmd, args[0], skipInvalid)
		},
	}
	cmd.Flags().BoolVar(&skipInvalid, "skip-invalid", false, "publish the valid contacts and list the invalid ones instead of publishing nothing")
	return cmd
}

func (a *publisherApp) enqueue(cmd *cobra.Command, path string, skipInvalid bool) error {
	started := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()

	// Pass 1: validate everything, streaming, before publishing anything.
	valid, rejected, err := a.validate(f, path)
	if err != nil {
		return err
	}
	if rejected > 0 && !skipInvalid {
		return &ExitError{Code: 1, Err: fmt.Errorf("%s: %d invalid contact(s); nothing was published (fix them, or use --skip-invalid to publish the %d valid ones)", path, rejected, valid)}
	}
	if valid == 0 {
		return &ExitError{Code: 1, Err: fmt.Errorf("%s: no valid contacts; nothing was published", path)}
	}

	// Pass 2: publish the valid contacts.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%s: rewind for publishing: %w", path, err)
	}
	js, closeConn, err := a.connect(jetstream.WithPublishAsyncMaxPending(a.cfg.Publisher.Window))
	if err != nil {
		return err
	}
	defer closeConn()
	ctx := cmd.Context()
	if _, err := queue.EnsureContactsStream(ctx, js, a.cfg.Topology); err != nil {
		return err
	}
	bar := a.progressBar(valid, "publishing")
	enq := queue.NewEnqueuer(js, a.cfg.Topology.ContactsSubject, a.cfg.Publisher.Window)
	r := contact.NewReader(f)
	for {
		c, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var invalid *contact.InvalidError
		if errors.As(err, &invalid) {
			continue // listed in pass 1
		}
		if err != nil {
			return fmt.Errorf("%s: %w (the file changed while it was being published?)", path, err)
		}
		if err := enq.Add(ctx, c); err != nil {
			return fmt.Errorf("%s: %w; contacts before it may be enqueued: rerunning is safe, duplicates are dropped", path, err)
		}
		_ = bar.Add(1)
	}
	stats, err := enq.Flush(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w; rerunning is safe, duplicates are dropped", path, err)
	}
	_ = bar.Finish()
	fmt.Fprintf(a.stdout, "%s: %d enqueued, %d duplicates, %d rejected (subject %s, %s)\n",
		path, stats.Enqueued, stats.Duplicates, rejected, a.cfg.Topology.ContactsSubject, time.Since(started).Round(time.Millisecond))
	return nil
}

// validate reads every contact once and lists the invalid ones on stderr. A syntax error or
// an empty file ends it with an error.
func (a *publisherApp) validate(f io.Reader, path string) (valid, rejected int, err error) {
	r := contact.NewReader(f)
	for {
		_, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			return valid, rejected, nil
		}
		var invalid *contact.InvalidError
		switch {
		case errors.As(err, &invalid):
			rejected++
			if rejected <= maxListedProblems {
				fmt.Fprintf(a.stderr, "%s: %v\n", path, invalid)
			} else if rejected == maxListedProblems+1 {
				fmt.Fprintf(a.stderr, "%s: more invalid contacts follow; only the first %d are listed\n", path, maxListedProblems)
			}
		case errors.Is(err, contact.ErrEmpty):
			return 0, 0, &ExitError{Code: 1, Err: fmt.Errorf("%s: %w", path, err)}
		case err != nil:
			return 0, 0, &ExitError{Code: 1, Err: fmt.Errorf("%s: %w; nothing was published", path, err)}
		default:
			valid++
		}
	}
}

// progressBar draws on a terminal only, and only for files large enough to need it.
func (a *publisherApp) progressBar(total int, what string) *progressbar.ProgressBar {
	f, ok := a.stderr.(*os.File)
	if !ok || total < progressThreshold || !term.IsTerminal(int(f.Fd())) {
		return progressbar.DefaultSilent(int64(total))
	}
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("contacts"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}
