package contact

import (
	"bytes"
	"errors"
	"io"
)

// errLimit is returned by lineReader.Read once the read position reaches the
// limit; the reader turns it into a SyntaxError wrapping ErrTooLarge.
var errLimit = errors.New("read limit reached")

// lineReader sits between the file and the JSON decoder. It remembers the file
// offsets of the newlines it passes on, so that the line and column of a decoder
// offset can be computed, and it stops at a limit so that the decoder never
// buffers more than one record.
//
// Memory stays bounded: locate drops the newlines before the offset it is asked
// about, and offsets are asked in increasing order, so only the newlines between
// the decoder's position and its read-ahead are kept.
type lineReader struct {
	r     io.Reader
	pos   int64 // file offset of the next byte to read
	limit int64 // Read fails with errLimit at this file offset

	newlines []int64 // offsets of newlines read and not yet passed by locate
	head     int     // newlines[:head] are passed
	line     int     // 1-based line of the last offset located
	start    int64   // file offset where that line starts
}

// newLineReader reads r, whose first byte is at file offset pos on line line,
// a line that starts at offset lineStart.
func newLineReader(r io.Reader, pos int64, line int, lineStart int64) *lineReader {
	return &lineReader{r: r, pos: pos, limit: noLimit, line: line, start: lineStart}
}

const noLimit = int64(^uint64(0) >> 1)

// Read implements io.Reader.
func (t *lineReader) Read(p []byte) (int, error) {
	if t.pos >= t.limit {
		return 0, errLimit
	}
	if room := t.limit - t.pos; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := t.r.Read(p)
	for i, rest := 0, p[:n]; ; {
		j := bytes.IndexByte(rest[i:], '\n')
		if j < 0 {
			break
		}
		i += j
		t.newlines = append(t.newlines, t.pos+int64(i))
		i++
	}
	t.pos += int64(n)
	return n, err
}

// locate returns the 1-based line and byte column of file offset off. Calls must
// come with offsets that never decrease.
func (t *lineReader) locate(off int64) (line, col int) {
	for t.head < len(t.newlines) && t.newlines[t.head] < off {
		t.line++
		t.start = t.newlines[t.head] + 1
		t.head++
	}
	// Forget passed newlines: reuse the slice when all are passed, move the
	// rest down when most are.
	switch {
	case t.head == len(t.newlines):
		t.newlines, t.head = t.newlines[:0], 0
	case t.head > 1024 && t.head > len(t.newlines)/2:
		n := copy(t.newlines, t.newlines[t.head:])
		t.newlines, t.head = t.newlines[:n], 0
	}
	return t.line, int(off-t.start) + 1
}
