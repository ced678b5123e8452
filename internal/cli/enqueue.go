package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/nats-io/nats.go/jetstream"
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
	var skipInvalid, recall bool
	cmd := &cobra.Command{
		Use:   "enqueue FILE|-",
		Short: "Validate a contacts file (JSON array or NDJSON) and enqueue its contacts",
		Long: `enqueue reads FILE twice, streaming: first it validates every contact, then it publishes
them with Nats-Msg-Id = contact id, so enqueuing the same file twice creates no duplicate
work. By default a file with any invalid contact publishes nothing. PUBLISH_WINDOW contacts
at most await their ack at a time. With - as FILE the contacts are read from standard
input, copied while they are validated to a temporary file that only the user can read
and that is removed at once (Unix) or at the end.
Ctrl-C stops publishing and prints how many contacts were enqueued (exit code 130);
rerunning the same command then enqueues the rest, with no duplicates.
A contact whose id already completed (or was cancelled) is not enqueued: it is listed and
counted as such. --recall enqueues it again under a new delivery id, <id>.r<UTC time>, which
its records, logs and dead letters carry.`,
		Example: `  # Validate and enqueue a file: a JSON array, or one contact a line (NDJSON)
  publisher enqueue contacts.ndjson

  # Publish the valid contacts and list the invalid ones
  publisher enqueue --skip-invalid contacts.json

  # Read the contacts from standard input
  jq -c '.contacts[]' crm-export.json | publisher enqueue -

  # Call again the contacts of a file that were already called
  publisher enqueue --recall follow-up.json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.enqueue(cmd, args[0], skipInvalid, recall)
		},
	}
	cmd.Flags().BoolVar(&skipInvalid, "skip-invalid", false, "publish the valid contacts and list the invalid ones instead of publishing nothing")
	cmd.Flags().BoolVar(&recall, "recall", false, "enqueue contacts that already completed again, under a new delivery id")
	return cmd
}

// stdinName is how messages name standard input read with "enqueue -".
const stdinName = "stdin"

func (a *publisherApp) enqueue(cmd *cobra.Command, path string, skipInvalid, recall bool) error {
	started := time.Now()
	// Ctrl-C (or SIGTERM) stops publishing, waits a moment for the acks of what is in flight
	// and prints what was enqueued; a second one cuts that wait short.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var (
		f     *os.File  // what pass 2 reads, from the start
		input io.Reader // what pass 1 reads
	)
	if path == "-" {
		// Standard input is read once: pass 1 copies it to a temporary file, which pass 2 reads.
		path = stdinName
		tmp, err := os.CreateTemp("", "publisher-enqueue-*.json")
		if err != nil {
			return fmt.Errorf("%s: a temporary copy for publishing: %w", path, err)
		}
		// The copy holds phone numbers: only the user may read it (CreateTemp's 0600), and it
		// has no name from now on where the system allows (Unix), or from the end otherwise.
		unlinked := os.Remove(tmp.Name()) == nil
		defer func() {
			_ = tmp.Close()
			if !unlinked {
				_ = os.Remove(tmp.Name())
			}
		}()
		f, input = tmp, io.TeeReader(&ctxReader{ctx: ctx, r: cmd.InOrStdin()}, spoolWriter{tmp})
	} else {
		file, err := os.Open(path)
		if err != nil {
			return err
		}
		defer file.Close()
		f, input = file, file
	}

	// Pass 1: validate everything, streaming, before publishing anything.
	v, err := a.validate(ctx, input, path)
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
	js, closeConn, err := a.connect(ctx)
	if err != nil {
		return interrupted(ctx, err, path)
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
	done := &completedFilter{js: js, a: a, path: path, recall: recall, now: time.Now().UTC(), add: enq.AddRaw}
	add := done.push
	// Only a server with completed records needs the look-up (a fresh campaign skips it).
	if st, err := queue.ReadStatus(ctx, js, a.cfg.Topology); err != nil {
		return interrupted(ctx, err, path)
	} else if st.Completed+st.Cancelled > 0 {
		done.enabled = true
	}
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
		if err := add(ctx, id, payload); err != nil {
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
	if err := done.flush(ctx); err != nil {
		if ctx.Err() != nil {
			return a.interruptedEnqueue(cmd, bar, enq, path, v, sent, started)
		}
		return fmt.Errorf("%s: %w; rerunning is safe, duplicates are dropped", path, err)
	}
	stats, err := enq.Flush(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return a.interruptedEnqueue(cmd, bar, enq, path, v, sent, started)
		}
		return fmt.Errorf("%s: %w; rerunning is safe, duplicates are dropped", path, err)
	}
	_ = bar.Finish()
	recalled := ""
	if done.recalled > 0 {
		recalled = fmt.Sprintf(" (%d of them recalled)", done.recalled)
	}
	completed := ""
	if done.skipped > 0 {
		completed = fmt.Sprintf(", %d already completed", done.skipped)
	}
	fmt.Fprintf(a.stdout, "%s: %d enqueued%s, %d duplicates%s, %d rejected (subject %s, %s)\n",
		path, stats.Enqueued, recalled, stats.Duplicates, completed, v.rejected, a.cfg.Topology.ContactsSubject, time.Since(started).Round(time.Millisecond))
	return nil
}

// completedFilter stands between the file and the enqueuer when the server has completed
// records: it holds contacts back in batches, looks their completed records up in one
// request a batch, and enqueues only those not completed, or with recall those under a new
// delivery id.
type completedFilter struct {
	js      jetstream.JetStream
	a       *publisherApp
	path    string
	recall  bool
	enabled bool
	now     time.Time
	add     func(ctx context.Context, id string, payload []byte) error

	ids               []string
	payloads          [][]byte
	skipped, recalled int
}

func (f *completedFilter) push(ctx context.Context, id string, payload []byte) error {
	if !f.enabled {
		return f.add(ctx, id, payload)
	}
	f.ids = append(f.ids, id)
	f.payloads = append(f.payloads, bytes.Clone(payload))
	if len(f.ids) >= completedCheckBatch {
		return f.flush(ctx)
	}
	return nil
}

func (f *completedFilter) flush(ctx context.Context) error {
	if len(f.ids) == 0 {
		return nil
	}
	done, err := queue.CompletedAmong(ctx, f.js, f.a.cfg.Topology, f.ids)
	if err != nil {
		return err
	}
	for i, id := range f.ids {
		payload := f.payloads[i]
		if status, ok := done[id]; ok {
			if !f.recall {
				if f.skipped++; f.skipped <= maxListedProblems {
					fmt.Fprintf(f.a.stderr, "%s: %s: already %s; not enqueued (--recall calls it again)\n", f.path, id, status)
				}
				continue
			}
			if id, payload, err = recallAs(id, payload, f.now); err != nil {
				return err
			}
			f.recalled++
		}
		if err := f.add(ctx, id, payload); err != nil {
			return err
		}
	}
	f.ids, f.payloads = f.ids[:0], f.payloads[:0]
	return nil
}

// completedCheckBatch is how many contacts one completed-records look-up covers.
const completedCheckBatch = 512

// recallAs gives a contact that already completed a new delivery id, <id>.r<UTC time>, so that
// its records and its message id are new while the original id stays readable in it.
func recallAs(id string, payload []byte, now time.Time) (string, []byte, error) {
	newID := id + ".r" + now.Format("20060102T150405Z")
	if len(newID) > contact.MaxIDLen {
		return "", nil, fmt.Errorf("contact %s: its recall id %s is longer than %d characters", id, newID, contact.MaxIDLen)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		return "", nil, fmt.Errorf("contact %s: %w", id, err)
	}
	fields["id"], _ = json.Marshal(newID)
	out, err := json.Marshal(fields)
	return newID, out, err
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

// ctxReader reads r until ctx ends: then it fails, so that Ctrl-C stops reading standard
// input between two reads.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// spoolWriter writes the copy of standard input, naming it in its errors (a full disk).
type spoolWriter struct{ f *os.File }

func (s spoolWriter) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	if err != nil {
		err = fmt.Errorf("copying standard input to a temporary file: %w", err)
	}
	return n, err
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
		case err != nil && ctx.Err() != nil:
			return v, interrupted(ctx, err, path)
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
