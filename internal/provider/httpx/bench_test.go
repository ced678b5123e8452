package httpx

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// BenchmarkReadBody compares Do's read path with io.ReadAll (the old path: io.ReadAll through
// a LimitReader at limit+1) on a 1 MiB body arriving 16 KiB per Read, with and without a
// declared length. Run with -benchmem: allocs/op and B/op are the point.
func BenchmarkReadBody(b *testing.B) {
	data := bytes.Repeat([]byte{'x'}, 1<<20)
	size := int64(len(data))
	limit := DefaultAudioLimit
	ctx := context.Background()
	res := &reservation{b: newBudget(DefaultMaxInFlightBytes)}
	r := bytes.NewReader(data)
	var body io.Reader = pieces{r, 16 << 10}
	check := func(b *testing.B, got []byte, err error) {
		if err != nil || len(got) != len(data) {
			b.Fatalf("read %d bytes: %v", len(got), err)
		}
	}
	b.Run("declared", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			r.Reset(data)
			rb := read(ctx, body, size, limit, false, res)
			res.release()
			check(b, rb.body, rb.err)
		}
	})
	b.Run("unknown", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			r.Reset(data)
			rb := read(ctx, body, -1, limit, false, res)
			res.release()
			check(b, rb.body, rb.err)
		}
	})
	b.Run("io.ReadAll", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			r.Reset(data)
			got, err := io.ReadAll(io.LimitReader(body, limit+1))
			check(b, got, err)
		}
	})
}
