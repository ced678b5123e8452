package contact

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"unicode/utf8"
)

// MaxRecordBytes is the longest record a [Reader] accepts: an NDJSON line, or an
// array element with the separator and whitespace before it. A longer one is a
// [*SyntaxError] wrapping [ErrTooLarge]. It bounds the reader's memory.
const MaxRecordBytes = 1 << 20

// Format is the layout of a contacts file.
type Format int

// Contacts file formats.
const (
	// FormatUnknown is the format before the first call to [Reader.Next], or of
	// a file that is empty or neither an array nor NDJSON.
	FormatUnknown Format = iota
	// JSONArray is one JSON array of contact objects.
	JSONArray
	// NDJSON is one contact object per line.
	NDJSON
)

// String names the format for humans.
func (f Format) String() string {
	switch f {
	case JSONArray:
		return "JSON array"
	case NDJSON:
		return "NDJSON"
	}
	return "unknown format"
}

// Reader streams the contacts of a contacts file (a JSON array or NDJSON, see
// the package documentation), one at a time, with constant memory apart from
// about 24 bytes per contact for finding repeated ids. It is not safe for
// concurrent use.
type Reader struct {
	br     *bufio.Reader
	format Format
	err    error // sticky: a fatal error or io.EOF
	index  int   // index of the next record

	// JSON array
	dec    *json.Decoder
	lr     *lineReader
	base   int64 // file offset of the decoder's offset 0
	opened bool  // the '[' was read
	raw    json.RawMessage

	// NDJSON
	sc        *bufio.Scanner
	advance   int   // bytes the scanner consumed for the last line
	line      int   // number of the last line scanned
	off       int64 // file offset of the next line's bytes
	lineStart int64 // file offset where the next line starts (before off for the first)

	seed maphash.Seed
	seen map[uint64]uint64 // hash of an id → packed position of its first contact
}

// NewReader returns a Reader of the contacts file r. It reads nothing before
// the first call to Next.
func NewReader(r io.Reader) *Reader {
	return &Reader{
		br:   bufio.NewReaderSize(r, 64<<10),
		seed: maphash.MakeSeed(),
		seen: make(map[uint64]uint64),
	}
}

// Format returns the format of the file, known after the first call to Next.
func (r *Reader) Format() Format { return r.format }

// Next returns the next contact and its position.
//
// Errors: io.EOF after the last contact. An [*InvalidError] is a contact that is
// well-formed JSON but not valid (including an id repeated from an earlier
// contact); the Contact is then zero and the caller may call Next again. A
// [*SyntaxError], [ErrEmpty] or an error reading the file is fatal: Next returns
// it again on every later call.
func (r *Reader) Next() (Contact, Position, error) {
	if r.err != nil {
		return Contact{}, Position{}, r.err
	}
	var (
		c   Contact
		pos Position
		err error
	)
	switch {
	case r.format == FormatUnknown:
		if err = r.start(); err == nil {
			return r.Next()
		}
	case r.format == JSONArray:
		c, pos, err = r.nextElement()
	default:
		c, pos, err = r.nextLine()
	}
	if err != nil && !isInvalid(err) {
		r.err = err
		var se *SyntaxError
		if errors.As(err, &se) {
			pos = se.Pos
		}
	}
	return c, pos, err
}

// start skips a byte order mark and leading whitespace, and picks the format by
// the first other byte.
func (r *Reader) start() error {
	var off, lineStart int64
	line := 1
	if b, _ := r.br.Peek(3); bytes.Equal(b, []byte("\xEF\xBB\xBF")) {
		_, _ = r.br.Discard(3)
		off, lineStart = 3, 3
	}
	for {
		c, err := r.br.ReadByte()
		if err == io.EOF {
			return ErrEmpty
		}
		if err != nil {
			return fmt.Errorf("read line %d: %w", line, err)
		}
		if !isSpace(c) {
			_ = r.br.UnreadByte()
			break
		}
		off++
		if c == '\n' {
			line++
			lineStart = off
		}
	}
	first, _ := r.br.Peek(utf8.UTFMax)
	switch first[0] {
	case '[':
		r.format = JSONArray
		r.base = off
		r.lr = newLineReader(r.br, off, line, lineStart)
		r.dec = json.NewDecoder(r.lr)
	case '{':
		r.format = NDJSON
		r.line = line - 1
		r.off, r.lineStart = off, lineStart
		r.sc = bufio.NewScanner(r.br)
		r.sc.Buffer(make([]byte, 0, 64<<10), MaxRecordBytes+2) // room for "\r\n"
		r.sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
			advance, token, err := bufio.ScanLines(data, atEOF)
			if token != nil {
				r.advance = advance
			}
			return advance, token, err
		})
	default:
		ch, _ := utf8.DecodeRune(first)
		return &SyntaxError{
			Pos:    Position{Line: line},
			Column: int(off-lineStart) + 1,
			Offset: off,
			Err: fmt.Errorf("a contacts file must be a JSON array (starting with '[') or NDJSON (one '{' object per line), not start with %s",
				quoteRune(ch)),
		}
	}
	return nil
}

// nextElement reads the next element of a JSON array.
func (r *Reader) nextElement() (Contact, Position, error) {
	if !r.opened {
		if _, err := r.dec.Token(); err != nil { // the '[' seen by start
			return Contact{}, Position{}, r.arrayError(err, r.dec.InputOffset())
		}
		r.opened = true
	}
	r.lr.limit = r.base + r.dec.InputOffset() + MaxRecordBytes
	if !r.dec.More() {
		return Contact{}, Position{}, r.closeArray()
	}
	if r.index > 0 {
		// More stopped at the byte after the previous element: it must be a comma.
		var next [utf8.UTFMax]byte
		n, _ := r.dec.Buffered().Read(next[:])
		if n == 0 || next[0] != ',' {
			ch, _ := utf8.DecodeRune(next[:n])
			return Contact{}, Position{}, r.syntaxError(r.dec.InputOffset(),
				fmt.Errorf("expected ',' or ']' after contact #%d, found %s", r.index, quoteRune(ch)))
		}
	}
	if err := r.dec.Decode(&r.raw); err != nil { // reuses r.raw's memory
		return Contact{}, Position{}, r.decodeError(err)
	}
	raw := r.raw
	start := r.base + r.dec.InputOffset() - int64(len(raw))
	line, _ := r.lr.locate(start)
	pos := Position{Index: r.index, Line: line}
	r.index++
	c, ps := parseValue(raw)
	return r.finish(c, ps, pos)
}

// closeArray reads the ']' (or fails), then makes sure only whitespace follows.
// It returns io.EOF, or ErrEmpty for "[]".
func (r *Reader) closeArray() error {
	at := r.dec.InputOffset()
	tok, err := r.dec.Token()
	if err != nil {
		return r.arrayError(err, at)
	}
	if tok != json.Delim(']') { // More is false only before ']' or '}'; Token rejects '}'
		return r.syntaxError(at, fmt.Errorf("unexpected %v after contact #%d", tok, r.index))
	}
	r.lr.limit = noLimit
	off := r.dec.InputOffset()
	rest := io.MultiReader(r.dec.Buffered(), r.lr)
	buf := make([]byte, 4096)
	for {
		n, err := rest.Read(buf)
		for i, c := range buf[:n] {
			if !isSpace(c) {
				ch, _ := utf8.DecodeRune(buf[i:n])
				return r.syntaxError(off+int64(i), fmt.Errorf("unexpected %s after the closing ']'", quoteRune(ch)))
			}
		}
		off += int64(n)
		r.lr.locate(r.base + off) // drop the newlines passed
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read after the closing ']': %w", err)
		}
	}
	if r.index == 0 {
		return ErrEmpty
	}
	return io.EOF
}

// decodeError turns an error of decoding an array element into a SyntaxError.
func (r *Reader) decodeError(err error) error {
	// After a failed Decode the decoder's buffer still starts where the element
	// (after its comma) starts, and holds the byte in error: scan it again to
	// find that byte, as the decoder's own offset counts only the bytes it
	// scanned in values (not '[', ',' or whitespace before them). If the scan
	// finds nothing, the error is placed at the element's start.
	start := r.dec.InputOffset()
	buffered, _ := io.ReadAll(r.dec.Buffered())
	lead := int64(len(buffered) - len(bytes.TrimLeft(buffered, " \t\r\n")))
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		at := start
		if se2 := jsonSyntaxError(buffered); se2 != nil {
			at += max(se2.Offset-1, 0)
		}
		return r.syntaxError(at, err)
	case errors.Is(err, errLimit):
		return r.syntaxError(start+lead, causef(ErrTooLarge, "contact #%d is longer than %d bytes", r.index+1, MaxRecordBytes))
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		if lead == int64(len(buffered)) { // only whitespace after the comma
			return r.syntaxError(r.lr.pos-r.base,
				causef(io.ErrUnexpectedEOF, "unexpected end of file: contact #%d or the closing ']' is missing", r.index+1))
		}
		return r.syntaxError(r.lr.pos-r.base, causef(io.ErrUnexpectedEOF, "unexpected end of file in contact #%d", r.index+1))
	}
	return r.arrayError(err, start+lead)
}

// arrayError turns an error of the decoder at offset at (of the decoder) into
// a SyntaxError, or wraps a read error.
func (r *Reader) arrayError(err error, at int64) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se): // from Token: its offset is exact
		return r.syntaxError(se.Offset, err)
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return r.syntaxError(r.lr.pos-r.base,
			causef(io.ErrUnexpectedEOF, "unexpected end of file: contact #%d or the closing ']' is missing", r.index+1))
	case errors.Is(err, errLimit):
		return r.syntaxError(at, causef(ErrTooLarge, "more than %d bytes without a complete contact", MaxRecordBytes))
	}
	line, _ := r.lr.locate(r.base + at)
	return fmt.Errorf("read line %d: %w", line, err)
}

// syntaxError builds a SyntaxError at decoder offset at in the record being read.
func (r *Reader) syntaxError(at int64, err error) *SyntaxError {
	off := r.base + at
	line, col := r.lr.locate(off)
	return &SyntaxError{Pos: Position{Index: r.index, Line: line}, Column: col, Offset: off, Err: err}
}

// nextLine reads the next non-blank NDJSON line.
func (r *Reader) nextLine() (Contact, Position, error) {
	for {
		if !r.sc.Scan() {
			err := r.sc.Err()
			switch {
			case err == nil && r.index == 0:
				return Contact{}, Position{}, ErrEmpty
			case err == nil:
				return Contact{}, Position{}, io.EOF
			case errors.Is(err, bufio.ErrTooLong):
				return Contact{}, Position{}, &SyntaxError{
					Pos:    Position{Index: r.index, Line: r.line + 1},
					Offset: r.off,
					Err:    causef(ErrTooLarge, "the line is longer than %d bytes", MaxRecordBytes),
				}
			}
			return Contact{}, Position{}, fmt.Errorf("read line %d: %w", r.line+1, err)
		}
		data := r.sc.Bytes()
		r.line++
		segment, lineStart := r.off, r.lineStart
		r.off += int64(r.advance)
		r.lineStart = r.off
		if len(bytes.TrimLeft(data, " \t\r\n")) == 0 {
			continue
		}
		pos := Position{Index: r.index, Line: r.line}
		if !json.Valid(data) {
			var cause error = errors.New("malformed JSON")
			at := segment
			if se := jsonSyntaxError(data); se != nil {
				cause = se
				at += max(se.Offset-1, 0) // the byte in error
				if isUnexpectedEnd(se) {
					cause = causef(se, "unexpected end of line: NDJSON holds one complete JSON object per line")
					at = segment + se.Offset // the end of the line
				}
			}
			return Contact{}, pos, &SyntaxError{Pos: pos, Column: int(at-lineStart) + 1, Offset: at, Err: cause}
		}
		r.index++
		c, ps := parseValue(data)
		return r.finish(c, ps, pos)
	}
}

// finish records the contact's id for finding repeats and returns the contact,
// or an InvalidError with its problems.
func (r *Reader) finish(c Contact, ps []FieldProblem, pos Position) (Contact, Position, error) {
	if c.ID != "" {
		h := maphash.String(r.seed, c.ID)
		if packed, ok := r.seen[h]; ok {
			first := unpack(packed)
			ps = append(ps, FieldProblem{
				Field:   "id",
				Problem: fmt.Sprintf("%s repeats %s", quote(c.ID), first),
				Err:     &DuplicateIDError{ID: c.ID, First: first},
			})
			sortProblems(ps)
		} else {
			r.seen[h] = pack(pos)
		}
	}
	if len(ps) > 0 {
		return Contact{}, pos, &InvalidError{Pos: pos, ID: c.ID, Problems: ps}
	}
	return c, pos, nil
}

// pack stores a position in 64 bits (index and line saturate at 2³²−1).
func pack(p Position) uint64 {
	return uint64(min(p.Index, math.MaxUint32))<<32 | uint64(min(p.Line, math.MaxUint32))
}

func unpack(v uint64) Position {
	return Position{Index: int(v >> 32), Line: int(v & math.MaxUint32)}
}

func isInvalid(err error) bool {
	var invalid *InvalidError
	return errors.As(err, &invalid)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// causeError is an error with its own message that still matches its cause.
type causeError struct {
	msg   string
	cause error
}

func (e *causeError) Error() string { return e.msg }
func (e *causeError) Unwrap() error { return e.cause }

func causef(cause error, format string, args ...any) error {
	return &causeError{msg: fmt.Sprintf(format, args...), cause: cause}
}
