package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

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
work. By default a file with any invalid contact publishes nothing. PUBLISH_WINDOW contacts
at most await their ack at a time. Ctrl-C stops publishing and prints what was enqueued.`,
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
	// Ctrl-C (or SIGTERM) stops publishing, waits a moment for the acks of what is in flight
	// and prints what was enqueued; a second one cuts that wait short.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Pass 1: validate everything, streaming, before publishing anything.
	v, err := a.validate(ctx, f, path)
	if err != nil {
		return err
	}
	if v.rejected > 0 && !skipInvalid {
		return &ExitError{Code: 1, Err: fmt.Errorf("%s: %d invalid contact(s); nothing was published (fix them, or use --skip-invalid to publish the %d valid ones)", path, v.rejected, v.valid)}
	}
	if v.valid == 0 {
		return &ExitError{Code: 1, Err: fmt.Errorf("%s: no valid contacts; nothing was published", path)}
	}

	// The first pass's repeat finder (15–21 bytes a contact) is garbage now: collect it before
	// publishing makes garbage of its own, so that the heap does not grow to the sum of both.
	runtime.GC()

	// Pass 2: publish the valid contacts, each as its record in the file. Each record is
	// checked to be the one validated (same bytes, by hash), not parsed again.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%s: rewind for publishing: %w", path, err)
	}
	js, closeConn, err := a.connect()
	if err != nil {
		return err
	}
	defer closeConn()
	stream, err := queue.EnsureContactsStream(ctx, js, a.cfg.Topology)
	if err != nil {
		return interrupted(ctx, err, path)
	}
	bar := a.progressBar(v.valid, "publishing")
	enq := queue.NewEnqueuer(js, a.cfg.Topology.ContactsSubject, a.cfg.Publisher.Window)
	defer enq.Close()
	enq.SetStream(stream.CachedInfo())
	r := contact.NewReader(f)
	r.IgnoreRepeatedIDs() // pass 1 found them: they are in v.skip
	var (
		compact bytes.Buffer
		sent    int
		changed = func(what string) error {
			return fmt.Errorf("%s: %s: the file changed while it was being published; contacts before it may be enqueued: rerunning is safe, duplicates are dropped", path, what)
		}
	)
	for {
		id, pos, err := r.Skim()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return changed(err.Error())
		}
		payload := r.Raw()
		if !v.sums.matches(pos.Index, payload) {
			return changed(pos.String() + " is not the contact validated")
		}
		if v.skipped(pos.Index) {
			continue // listed in pass 1
		}
		if len(payload) > maxRawPayload {
			// A large record may hold much whitespace: compact it, so it fits the server's
			// max_payload as the contact would (json.Compact keeps every value as it is).
			compact.Reset()
			if err := json.Compact(&compact, payload); err != nil {
				return changed(err.Error())
			}
			payload = compact.Bytes()
		}
		if err := enq.AddRaw(ctx, id, payload); err != nil {
			if ctx.Err() != nil {
				return a.interruptedEnqueue(cmd, bar, enq, path, v, sent, started)
			}
			return fmt.Errorf("%s: %w; contacts before it may be enqueued: rerunning is safe, duplicates are dropped", path, err)
		}
		if sent++; sent%progressStep == 0 {
			_ = bar.Add(progressStep)
		}
	}
	if sent != v.valid {
		return changed(fmt.Sprintf("%d valid contacts in the publishing pass, %d when validated", sent, v.valid))
	}
	stats, err := enq.Flush(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return a.interruptedEnqueue(cmd, bar, enq, path, v, sent, started)
		}
		return fmt.Errorf("%s: %w; rerunning is safe, duplicates are dropped", path, err)
	}
	_ = bar.Finish()
	fmt.Fprintf(a.stdout, "%s: %d enqueued, %d duplicates, %d rejected (subject %s, %s)\n",
		path, stats.Enqueued, stats.Duplicates, v.rejected, a.cfg.Topology.ContactsSubject, time.Since(started).Round(time.Millisecond))
	return nil
}

// maxRawPayload is the largest record published as it is in the file; a larger one is
// compacted first.
const maxRawPayload = 4 << 10

// progressStep is how many contacts move the progress bar at once.
const progressStep = 256

// interruptGrace bounds the wait for the acks of the contacts in flight after Ctrl-C.
const interruptGrace = 5 * time.Second

// interruptedEnqueue ends an enqueue stopped by Ctrl-C or SIGTERM: it waits up to
// interruptGrace for the acks of the contacts in flight, then prints what was enqueued.
func (a *publisherApp) interruptedEnqueue(cmd *cobra.Command, bar *progressbar.ProgressBar, enq *queue.Enqueuer, path string, v validation, sent int, started time.Time) error {
	_ = bar.Exit()
	if n := enq.Pending(); n > 0 {
		fmt.Fprintf(a.stderr, "%s: interrupted: waiting up to %s for the acks of %d contact(s) in flight (interrupt again to quit now)\n", path, interruptGrace, n)
	}
	// Not cmd.Context(): it may be what was cancelled.
	ctx, stop := signal.NotifyContext(context.WithoutCancel(cmd.Context()), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, interruptGrace)
	defer cancel()
	stats, _ := enq.Flush(ctx)
	unconfirmed := enq.Pending()
	fmt.Fprintf(a.stdout, "%s: interrupted: %d enqueued, %d duplicates, %d unconfirmed, %d not published, %d rejected (subject %s, %s)\n",
		path, stats.Enqueued, stats.Duplicates, unconfirmed, v.valid-stats.Enqueued-stats.Duplicates-unconfirmed, v.rejected,
		a.cfg.Topology.ContactsSubject, time.Since(started).Round(time.Millisecond))
	return &ExitError{Code: 130, Err: fmt.Errorf("%s: interrupted after publishing %d of %d contacts; rerunning the same command is safe: duplicates are dropped", path, sent, v.valid)}
}

// interrupted turns an error caused by Ctrl-C before anything was published into a clear one.
func interrupted(ctx context.Context, err error, path string) error {
	if ctx.Err() != nil {
		return &ExitError{Code: 130, Err: fmt.Errorf("%s: interrupted; nothing was published", path)}
	}
	return err
}

// validation is what the first pass found.
type validation struct {
	valid, rejected int
	skip            []uint64 // bit i set: record i is rejected
	sums            recordSums
}

// recordSums holds a 32-bit hash of every record of the file, by record index (4 bytes a
// contact, in chunks that are never copied), so that the publishing pass publishes only
// records identical to the ones validated, without validating them again. A changed record
// goes unnoticed with probability 2⁻³².
type recordSums struct {
	seed   maphash.Seed
	chunks [][]uint32
	n      int
}

const sumChunk = 1 << 16

func (s *recordSums) add(index int, raw []byte) {
	if s.n == 0 {
		s.seed = maphash.MakeSeed()
	}
	for ; s.n <= index; s.n++ {
		if s.n%sumChunk == 0 {
			s.chunks = append(s.chunks, make([]uint32, sumChunk))
		}
	}
	s.chunks[index/sumChunk][index%sumChunk] = uint32(maphash.Bytes(s.seed, raw))
}

func (s *recordSums) matches(index int, raw []byte) bool {
	return index < s.n && s.chunks[index/sumChunk][index%sumChunk] == uint32(maphash.Bytes(s.seed, raw))
}

func (v *validation) reject(index int) {
	for index/64 >= len(v.skip) {
		v.skip = append(v.skip, 0)
	}
	v.skip[index/64] |= 1 << (index % 64)
}

func (v *validation) skipped(index int) bool {
	return index/64 < len(v.skip) && v.skip[index/64]&(1<<(index%64)) != 0
}

// validate reads every contact once and lists the invalid ones on stderr. A syntax error or
// an empty file ends it with an error.
func (a *publisherApp) validate(ctx context.Context, f io.Reader, path string) (validation, error) {
	var v validation
	r := contact.NewReader(f)
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return v, interrupted(ctx, ctx.Err(), path)
		}
		pos, err := r.Check()
		if errors.Is(err, io.EOF) {
			return v, nil
		}
		if raw := r.Raw(); raw != nil {
			v.sums.add(pos.Index, raw)
		}
		var invalid *contact.InvalidError
		switch {
		case errors.As(err, &invalid):
			v.rejected++
			v.reject(pos.Index)
			if v.rejected <= maxListedProblems {
				fmt.Fprintf(a.stderr, "%s: %v\n", path, invalid)
			} else if v.rejected == maxListedProblems+1 {
				fmt.Fprintf(a.stderr, "%s: more invalid contacts follow; only the first %d are listed\n", path, maxListedProblems)
			}
		case errors.Is(err, contact.ErrEmpty):
			return v, &ExitError{Code: 1, Err: fmt.Errorf("%s: %w", path, err)}
		case err != nil:
			return v, &ExitError{Code: 1, Err: fmt.Errorf("%s: %w; nothing was published", path, err)}
		default:
			v.valid++
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
