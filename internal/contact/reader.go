package contact

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
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
// 15–21 bytes per contact for finding repeated ids. It is not safe for
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

	last    []byte   // the record last returned by Next
	ids     *idIndex // nil: repeated ids are not looked for
	scratch *scratch // for Check
}

// NewReader returns a Reader of the contacts file r. It reads nothing before
// the first call to Next.
func NewReader(r io.Reader) *Reader {
	return &Reader{
		br:  bufio.NewReaderSize(r, 64<<10),
		ids: newIDIndex(),
	}
}

// IgnoreRepeatedIDs makes the reader keep nothing per contact and no longer report an id
// repeated within the file: for a second pass over a file whose first pass found the repeats.
// Call it before the first record is read.
func (r *Reader) IgnoreRepeatedIDs() { r.ids = nil }

// Raw returns the JSON text of the record last returned by Next, Check or Skim, contact
// or [*InvalidError], as it is in the file (an NDJSON line without its line end, an array
// element without the whitespace around it). It is valid until the next call; nil before
// the first record, at the end and after a fatal error.
func (r *Reader) Raw() []byte { return r.last }

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
	return r.next(decodeRecord)
}

// Check is Next without the contact, for a pass that only validates: the same records,
// positions and errors, several allocations a contact fewer.
func (r *Reader) Check() (Position, error) {
	_, pos, err := r.next(checkRecord)
	return pos, err
}

// Skim reads the next record without validating it, for a second pass over a file that a
// first pass validated (see [Reader.IgnoreRepeatedIDs]): records, positions and the end of
// the file are found as Next finds them, but a record is neither checked nor decoded beyond
// its id, read leniently ("" when the record has no string id), so that the caller can
// publish [Reader.Raw] as it is. The caller must make sure the record is the one validated
// (by comparing a hash of Raw, say). A record that is not well-formed JSON is returned
// as it is in NDJSON and is a fatal *SyntaxError in a JSON array (the array cannot be
// followed past it).
func (r *Reader) Skim() (id string, pos Position, err error) {
	c, pos, err := r.next(skimRecord)
	return c.ID, pos, err
}

// readMode is what Next, Check and Skim do with a record.
type readMode uint8

const (
	decodeRecord readMode = iota // validate and decode
	checkRecord                  // validate
	skimRecord                   // read the id only
)

func (r *Reader) next(mode readMode) (Contact, Position, error) {
	r.last = nil
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
			return r.next(mode)
		}
	case r.format == JSONArray:
		c, pos, err = r.nextElement(mode)
	default:
		c, pos, err = r.nextLine(mode)
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
func (r *Reader) nextElement(mode readMode) (Contact, Position, error) {
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
	r.last = raw
	return r.record(raw, pos, mode)
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
func (r *Reader) nextLine(mode readMode) (Contact, Position, error) {
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
		if len(trimSpace(data)) == 0 {
			continue
		}
		pos := Position{Index: r.index, Line: r.line}
		if mode == skimRecord {
			r.index++
			r.last = data
			return r.record(data, pos, mode)
		}
		if !validJSON(data) {
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
		r.last = data
		return r.record(data, pos, mode)
	}
}

// record reads the well-formed record data (or any record, to skim it) at pos.
func (r *Reader) record(data []byte, pos Position, mode readMode) (Contact, Position, error) {
	switch mode {
	case skimRecord:
		return Contact{ID: skimID(data)}, pos, nil
	case checkRecord:
		if r.scratch == nil {
			r.scratch = new(scratch)
		}
		c, ps := checkValue(data, r.scratch)
		_, pos, err := r.finish(c, ps, pos, true)
		return Contact{}, pos, err
	}
	c, ps := parseValue(data)
	return r.finish(c, ps, pos, false)
}

// finish records the contact's id for finding repeats and returns the contact,
// or an InvalidError with its problems.
// When aliased, c's strings share memory with the record (see checkValue): the id is copied
// into the errors.
func (r *Reader) finish(c Contact, ps []FieldProblem, pos Position, aliased bool) (Contact, Position, error) {
	id := func() string {
		if aliased {
			return strings.Clone(c.ID)
		}
		return c.ID
	}
	if r.ids != nil {
		if first, repeated := r.ids.add(c.ID, pos); repeated {
			ps = append(ps, FieldProblem{
				Field:   "id",
				Problem: fmt.Sprintf("%s repeats %s", quote(c.ID), first),
				Err:     &DuplicateIDError{ID: id(), First: first},
			})
			sortProblems(ps)
		}
	}
	if len(ps) > 0 {
		return Contact{}, pos, &InvalidError{Pos: pos, ID: id(), Problems: ps}
	}
	return c, pos, nil
}

// skimID returns the string value of the first top-level "id" key of a record, or "". It
// walks the record's members up to that key only (the id comes first in most files).
func skimID(data []byte) string {
	w := walker{data: data}
	w.space()
	if !w.take('{') {
		return ""
	}
	for {
		w.space()
		rawKey, ok := w.string()
		if !ok {
			return ""
		}
		if w.space(); !w.take(':') {
			return ""
		}
		w.space()
		val, ok := w.value()
		if !ok {
			return ""
		}
		if string(rawKey) == `"id"` || bytes.IndexByte(rawKey, '\\') >= 0 && unquoted(rawKey) == "id" {
			if len(val) >= 2 && val[0] == '"' {
				id, _ := unquote(val)
				return id
			}
			return ""
		}
		if w.space(); !w.take(',') {
			return ""
		}
	}
}

// unquoted is the string of a JSON string literal, or "" when it is malformed.
func unquoted(raw []byte) string {
	s, _ := unquote(raw)
	return s
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
