package httpx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"testing/iotest"
)

// counting counts the bytes read through it and hides everything but Read (as a chunked
// response body does: no size, no WriterTo).
type counting struct {
	r io.Reader
	n int64
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// endless is an infinite body of 'x'.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// pieces returns at most max bytes per Read, like a body arriving in TLS records.
type pieces struct {
	r   io.Reader
	max int
}

func (p pieces) Read(b []byte) (int, error) { return p.r.Read(b[:min(len(b), p.max)]) }

func TestReadKeepsTheLimitAndNoMore(t *testing.T) { // not parallel: CPU-bound, it would slow the HTTP tests
	readers := map[string]func(io.Reader) io.Reader{
		"plain":      func(r io.Reader) io.Reader { return r },
		"eof-w-data": iotest.DataErrReader,
		"small":      func(r io.Reader) io.Reader { return pieces{r, 1000} },
	}
	for _, limit := range []int64{1, 100, chunkSize - 1, chunkSize, chunkSize + 1, 3<<20 + 7} {
		sizes := []int64{0, 1, limit - 1, limit, limit + 1, 2*limit + 5, chunkSize - 1, chunkSize, chunkSize + 1}
		for _, size := range sizes {
			if size < 0 {
				continue
			}
			data := bytes.Repeat([]byte("0123456789abcdef"), int(size/16)+1)[:size]
			for name, wrap := range readers {
				for _, declared := range []bool{false, true} {
					for _, keepOver := range []bool{false, true} {
						t.Run(fmt.Sprintf("limit=%d/size=%d/%s/declared=%v/keep=%v", limit, size, name, declared, keepOver), func(t *testing.T) {
							checkRead(t, data, limit, wrap, declared, keepOver)
						})
					}
				}
			}
		}
	}
}

func checkRead(t *testing.T, data []byte, limit int64, wrap func(io.Reader) io.Reader, declared, keepOver bool) {
	size := int64(len(data))
	b := newBudget(1 << 30)
	res := &reservation{b: b}
	src := &counting{r: wrap(bytes.NewReader(data))}
	length := int64(-1)
	if declared {
		length = size
	}
	rb := read(context.Background(), src, length, limit, keepOver, res)
	if rb.err != nil {
		t.Fatalf("err = %v", rb.err)
	}
	if src.n > limit+1 {
		t.Errorf("read %d bytes of the body, want at most limit+1 = %d", src.n, limit+1)
	}
	if int64(cap(rb.body)) > limit+1 {
		t.Errorf("cap(body) = %d, above limit+1 = %d", cap(rb.body), limit+1)
	}
	if res.held > limit || res.held < int64(len(rb.body)) || b.inUse.Load() != res.held {
		t.Errorf("holds %d of the budget (budget says %d) for a %d-byte body, limit %d",
			res.held, b.inUse.Load(), len(rb.body), limit)
	}
	switch {
	case size <= limit:
		if rb.over || !bytes.Equal(rb.body, data) {
			t.Errorf("over=%v, body of %d bytes (want the %d sent)", rb.over, len(rb.body), size)
		}
	case !rb.over:
		t.Errorf("a %d-byte body is not over the %d limit", size, limit)
	case keepOver && !bytes.Equal(rb.body, data[:limit]):
		t.Errorf("kept %d bytes, want the first %d", len(rb.body), limit)
	case !keepOver && rb.body != nil:
		t.Errorf("kept %d bytes of a body over its limit", len(rb.body))
	}
	if declared && size > limit && !keepOver && src.n != 0 {
		t.Errorf("read %d bytes of a body declared over its limit", src.n)
	}
	res.release()
	if b.inUse.Load() != 0 || !b.sem.TryAcquire(b.size) {
		t.Errorf("budget not whole after release: %d in use", b.inUse.Load())
	}
}

func TestReadBodyCutShort(t *testing.T) {
	t.Parallel()
	for _, declared := range []int64{-1, 10 << 10} {
		for _, keepOver := range []bool{false, true} {
			src := io.MultiReader(bytes.NewReader(bytes.Repeat([]byte{'x'}, 5000)), iotest.ErrReader(io.ErrUnexpectedEOF))
			rb := read(context.Background(), src, declared, 1<<20, keepOver, nil)
			if !errors.Is(rb.err, io.ErrUnexpectedEOF) {
				t.Errorf("declared %d: err = %v, want unexpected EOF", declared, rb.err)
			}
			if want := map[bool]int{false: 0, true: 5000}[keepOver]; len(rb.body) != want || rb.drain {
				t.Errorf("declared %d, keep %v: kept %d bytes (want %d), drain %v", declared, keepOver, len(rb.body), want, rb.drain)
			}
		}
	}
}

func TestReadDeclaredAllocatesOnce(t *testing.T) {
	data := bytes.Repeat([]byte{'x'}, 1<<20)
	r := bytes.NewReader(data)
	res := &reservation{b: newBudget(DefaultMaxInFlightBytes)}
	allocs := testing.AllocsPerRun(20, func() {
		r.Reset(data)
		rb := read(context.Background(), r, int64(len(data)), DefaultAudioLimit, false, res)
		res.release()
		if rb.err != nil || len(rb.body) != len(data) {
			panic(fmt.Sprint("read ", len(rb.body), " bytes: ", rb.err))
		}
	})
	if allocs != 1 {
		t.Errorf("%v allocations to read a 1 MiB body of declared length, want 1", allocs)
	}
}

// TestReadHugeUnknownBodyAllocatesTheLimit reads an endless body: it must stop at limit+1
// bytes having allocated about limit bytes (io.ReadAll through a LimitReader allocates twice
// that: its chunks, then the final copy).
func TestReadHugeUnknownBodyAllocatesTheLimit(t *testing.T) { // not parallel: measures the heap
	const limit = 8 << 20
	src := &counting{r: endless{}}
	res := &reservation{b: newBudget(DefaultMaxInFlightBytes)}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rb := read(context.Background(), pieces{src, 32 << 10}, -1, limit, false, res)
	runtime.ReadMemStats(&after)
	if !rb.over || rb.err != nil || rb.body != nil || src.n != limit+1 {
		t.Fatalf("over=%v err=%v body=%d bytes, read %d; want over at %d", rb.over, rb.err, len(rb.body), src.n, limit+1)
	}
	if res.held != limit {
		t.Errorf("held %d of the budget, want %d", res.held, limit)
	}
	res.release()
	if d := after.TotalAlloc - before.TotalAlloc; d > limit+limit/16 {
		t.Errorf("allocated %d bytes to refuse a body over %d", d, limit)
	}
}

// doneSignal reports the first call of Done: the semaphore's Acquire calls it as it starts.
type doneSignal struct {
	context.Context
	once   sync.Once
	called chan struct{}
}

func (d *doneSignal) Done() <-chan struct{} {
	d.once.Do(func() { close(d.called) })
	return d.Context.Done()
}

func TestReserveRules(t *testing.T) {
	t.Parallel()
	b := newBudget(100)
	holder := &reservation{b: b}
	if err := holder.reserve(context.Background(), 60); err != nil {
		t.Fatal(err)
	}

	// Growing never waits: no room is an immediate *BudgetError.
	if err := holder.reserve(context.Background(), 41); !errors.Is(err, ErrBudgetExhausted) {
		t.Errorf("growing past the budget: %v", err)
	}
	// More than the whole budget fails at once, waiting for nothing.
	if err := (&reservation{b: b}).reserve(context.Background(), 101); !errors.Is(err, ErrBudgetExhausted) {
		t.Errorf("over the whole budget: %v", err)
	}
	// A first reservation cancelled while it waits returns the cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	d := &doneSignal{Context: ctx, called: make(chan struct{})}
	go func() { <-d.called; cancel() }()
	if err := (&reservation{b: b}).reserve(d, 50); !errors.Is(err, context.Canceled) || errors.Is(err, ErrBudgetExhausted) {
		t.Errorf("cancelled while waiting: %v", err)
	}
	// A first reservation waits for room: it gets it when the holder lets go.
	waiter := &reservation{b: b}
	d = &doneSignal{Context: context.Background(), called: make(chan struct{})}
	go func() { <-d.called; holder.release() }()
	if err := waiter.reserve(d, 50); err != nil {
		t.Errorf("waiting for room: %v", err)
	}
	waiter.release()
	if b.inUse.Load() != 0 || b.peak.Load() != 60 || !b.sem.TryAcquire(100) {
		t.Errorf("in use %d, peak %d; want the budget whole and a peak of 60", b.inUse.Load(), b.peak.Load())
	}
}
