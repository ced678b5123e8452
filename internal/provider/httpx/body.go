package httpx

import (
	"context"
	"io"
	"sync"
)

// chunkSize is the piece a body of unknown length is read in. Full pieces come from
// chunkPool and go back to it once the body has been copied out (or refused), so refusing a
// huge body leaves no garbage behind, and reading one allocates only its final copy: chunks
// are never held beyond what is reserved in the budget, so the pool holds at most what calls
// held at once, and the garbage collector empties it when it is idle.
const chunkSize = 32 << 10

var chunkPool = sync.Pool{New: func() any { return new([chunkSize]byte) }}

// readBody is what read got from a body.
type readBody struct {
	// body is what was kept: the whole body, or its first limit bytes when over and
	// keepOver; nil for a 2xx body that was over, failed or broke off.
	body []byte
	// over is true when the body is longer than the limit.
	over bool
	// err is the read error (io.EOF is not one), ctx's error, or a *BudgetError.
	err error
	// drain is true when what is left of the body is known to be at most DrainLimit (or it
	// was not wanted at all), so draining it keeps the connection reusable.
	drain bool
}

// read reads a body of declared length (-1 when unknown), keeping at most limit bytes (limit
// > 0). When the body is longer, over is set and the body kept is its first limit bytes if
// keepOver, else nil. r is the budget reservation (nil for none); ctx bounds the wait for it.
//
// Memory: a declared length is one allocation of min(declared, limit) bytes. An unknown one
// is read in chunkSize pieces (pooled) whose sizes add up to at most limit; one more byte is
// read to tell a body of exactly limit bytes from a longer one; the body is then copied into
// one slice of its exact length (reserved too, while the pieces are still held).
func read(ctx context.Context, body io.Reader, declared, limit int64, keepOver bool, r *reservation) readBody {
	if declared >= 0 {
		return readDeclared(ctx, body, declared, limit, keepOver, r)
	}
	return readUnknown(ctx, body, limit, keepOver, r)
}

func readDeclared(ctx context.Context, body io.Reader, declared, limit int64, keepOver bool, r *reservation) readBody {
	n := min(declared, limit)
	over := declared > limit
	if over && !keepOver {
		return readBody{over: true}
	}
	if err := r.reserve(ctx, n); err != nil {
		return readBody{err: err}
	}
	buf := make([]byte, n)
	got, err := io.ReadFull(body, buf)
	if err != nil {
		rb := readBody{err: err}
		if keepOver { // an error body: what arrived may still name the error
			rb.body = buf[:got]
		}
		return rb
	}
	return readBody{body: buf, over: over, drain: declared-n <= DrainLimit}
}

func readUnknown(ctx context.Context, body io.Reader, limit int64, keepOver bool, r *reservation) readBody {
	var c chunks
	defer c.free()
	for {
		if c.size == limit {
			over, err := more(body)
			switch {
			case err != nil:
				return c.broken(keepOver, err)
			case !over:
				return c.whole(r)
			case keepOver:
				return readBody{body: c.join(), over: true}
			default:
				return readBody{over: true}
			}
		}
		n := min(chunkSize, limit-c.size)
		if err := r.reserve(ctx, n); err != nil {
			return readBody{err: err}
		}
		piece := c.next(n)
		got, err := fill(body, piece)
		c.add(piece[:got])
		switch {
		case err == io.EOF:
			return c.whole(r)
		case err != nil:
			return c.broken(keepOver, err)
		}
	}
}

// chunks is a body of unknown length as read so far.
type chunks struct {
	parts [][]byte // what was read into each piece: all full but the last
	read  int64    // bytes read
	size  int64    // bytes of the pieces
}

// next returns a piece of n bytes to read into: a pooled one of chunkSize, or (only when
// the limit leaves less) a fresh one of exactly n.
func (c *chunks) next(n int64) []byte {
	c.size += n
	if n == chunkSize {
		return chunkPool.Get().(*[chunkSize]byte)[:]
	}
	return make([]byte, n)
}

// add records what was read into a piece next returned.
func (c *chunks) add(p []byte) {
	c.parts = append(c.parts, p)
	c.read += int64(len(p))
}

// free puts the pooled pieces back.
func (c *chunks) free() {
	for _, p := range c.parts {
		if cap(p) == chunkSize {
			chunkPool.Put((*[chunkSize]byte)(p[:chunkSize]))
		}
	}
	c.parts = nil
}

// join copies what was read into one slice of its exact length; a single piece that is not
// pooled is returned as it is.
func (c *chunks) join() []byte {
	if len(c.parts) == 1 && cap(c.parts[0]) != chunkSize {
		return c.parts[0]
	}
	b := make([]byte, c.read)
	off := 0
	for _, p := range c.parts {
		off += copy(b[off:], p)
	}
	return b
}

// whole returns a body read to its end, joined. The copy is reserved while the pieces are
// still held; then the pieces' share is given back (free returns them to the pool).
func (c *chunks) whole(r *reservation) readBody {
	if len(c.parts) == 1 && cap(c.parts[0]) != chunkSize {
		return readBody{body: c.parts[0], drain: true}
	}
	if err := r.reserve(context.Background(), c.read); err != nil { // never the first: no wait
		return readBody{err: err}
	}
	body := c.join()
	r.give(c.size)
	return readBody{body: body, drain: true}
}

// broken returns a body that broke off: what arrived of an error body, nothing of a 2xx.
func (c *chunks) broken(keepOver bool, err error) readBody {
	rb := readBody{err: err}
	if keepOver {
		rb.body = c.join()
	}
	return rb
}

// fill reads into buf until it is full or the reader fails; unlike io.ReadFull it returns
// io.EOF as is, so the end of the body is told apart from a body cut short
// (io.ErrUnexpectedEOF from the transport).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// more reads one byte past the limit: over is true when there was one.
func more(r io.Reader) (over bool, err error) {
	var one [1]byte
	n, err := fill(r, one[:])
	if n > 0 {
		return true, nil
	}
	if err == io.EOF {
		return false, nil
	}
	return false, err
}
