package contact

import (
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// contactStream generates a contacts file of n contacts on the fly, so that a
// test holds the file neither in memory nor on disk. Each contact is followed by
// padding whitespace: it makes the stream (about 50 MB for 200,000 contacts)
// larger than the memory bound of the test while costing little to parse, even
// under the race detector (which makes JSON scanning ~10× slower).
type contactStream struct {
	format  Format
	n, next int
	opened  bool
	closed  bool
	num     [8]byte
	store   []byte
	pending []byte
}

var padding = strings.Repeat(" ", 60)

func (s *contactStream) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		switch {
		case s.closed:
			return 0, io.EOF
		case !s.opened:
			s.opened = true
			if s.format == JSONArray {
				s.pending = append(s.store[:0], "[\n"...)
			}
		case s.next == s.n:
			s.closed = true
			if s.format == JSONArray {
				s.pending = append(s.store[:0], "]\n"...)
			}
		default:
			num := strconv.AppendInt(s.num[:0], int64(10_000_000+s.next), 10)[1:] // 7 digits
			b := append(s.store[:0], `{"id":"c-`...)
			b = append(b, num...)
			b = append(b, `","phone":"+1415`...)
			b = append(b, num...)
			b = append(b, `"}`...)
			switch {
			case s.format == NDJSON: // padding as a blank line
				b = append(b, '\n')
				b = append(b, padding...)
				b = append(b, '\n')
			case s.next < s.n-1: // padding before the comma
				b = append(b, padding...)
				b = append(b, ",\n"...)
			default:
				b = append(b, '\n')
			}
			s.store, s.pending = b, b
			s.next++
		}
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// liveHeap returns the bytes of live heap objects.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestReaderLargeInputBoundedMemory reads 200,000 contacts (a 50 MB stream) and
// checks that the live heap never grows by more than 16 MiB: the id index takes
// about 4–6 MiB, while keeping the file would take 50 MB and keeping the
// contacts about 24 MB.
func TestReaderLargeInputBoundedMemory(t *testing.T) {
	const (
		n     = 200_000
		bound = 16 << 20
	)
	for _, format := range []Format{JSONArray, NDJSON} {
		t.Run(format.String(), func(t *testing.T) {
			before := liveHeap()
			r := NewReader(&contactStream{format: format, n: n})
			var peak uint64
			count := 0
			for {
				c, pos, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("contact %d: %v", count, err)
				}
				if count%20_000 == 0 {
					if want := fmt.Sprintf("c-%07d", count); c.ID != want || pos.Index != count {
						t.Fatalf("got id %q at %v, want %q at index %d", c.ID, pos, want, count)
					}
				}
				count++
				if count%50_000 == 0 {
					peak = max(peak, liveHeap())
				}
			}
			peak = max(peak, liveHeap())
			runtime.KeepAlive(r)
			if count != n {
				t.Fatalf("read %d contacts, want %d", count, n)
			}
			grew := int64(peak) - int64(before)
			t.Logf("%s: live heap grew by %.1f MiB for %d contacts", format, float64(grew)/(1<<20), n)
			if grew > bound {
				t.Fatalf("live heap grew by %d bytes reading %d contacts, want < %d", grew, n, bound)
			}
		})
	}
}
