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

	ahead *lookahead // not nil: lines are read through it, ahead (see lookahead)

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
// positions and errors, several allocations a contact fewer, and most records validated in
// one pass over their bytes (see quickCheck). From a first call on an NDJSON file, the Reader
// reads and checks the file a chunk ahead of the caller, in another goroutine (see
// lookahead), so that the caller's work on each record overlaps that of the next ones.
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
	if r.ahead == nil && mode == checkRecord && r.index == 0 {
		r.ahead = newLookahead() // a pass that validates a whole file: read ahead (see lookahead)
	}
	l, err := r.scanLine()
	if err != nil {
		return Contact{}, Position{}, err
	}
	data := l.data
	pos := Position{Index: r.index, Line: l.line}
	if mode == skimRecord {
		r.index++
		r.last = data
		return r.record(data, pos, mode)
	}
	if mode == checkRecord {
		if !l.checked {
			l.id, l.valid = quickCheck(data)
		}
		if l.valid {
			r.index++
			r.last = data
			return r.checked(l.id, pos)
		}
	}
	if !validJSON(data) {
		var cause error = errors.New("malformed JSON")
		at := l.segment
		if se := jsonSyntaxError(data); se != nil {
			cause = se
			at += max(se.Offset-1, 0) // the byte in error
			if isUnexpectedEnd(se) {
				cause = causef(se, "unexpected end of line: NDJSON holds one complete JSON object per line")
				at = l.segment + se.Offset // the end of the line
			}
		}
		return Contact{}, pos, &SyntaxError{Pos: pos, Column: int(at-l.lineStart) + 1, Offset: at, Err: cause}
	}
	r.index++
	r.last = data
	return r.record(data, pos, mode)
}

// ndLine is a non-blank NDJSON line.
type ndLine struct {
	data      []byte
	line      int   // its number
	segment   int64 // the file offset of data
	lineStart int64 // the file offset where the line starts (before segment for the first)
	// checked: quickCheck was run on data, and found it valid (with id) or not.
	checked, valid bool
	id             string
	end            int // in a chunk: where data ends in buf
}

// scanLine returns the next non-blank line, from the lookahead when there is one, or the
// error that ends the lines.
func (r *Reader) scanLine() (ndLine, error) {
	if r.ahead != nil {
		return r.ahead.next(r)
	}
	for {
		l, ok := r.scan()
		if !ok {
			return ndLine{}, r.scanEnd(r.sc.Err(), r.line, r.off)
		}
		if len(trimSpace(l.data)) > 0 {
			return l, nil
		}
	}
}

// scan reads the next line, blank or not, counting lines and offsets. Its data is valid
// until the next call.
func (r *Reader) scan() (ndLine, bool) {
	if !r.sc.Scan() {
		return ndLine{}, false
	}
	r.line++
	l := ndLine{data: r.sc.Bytes(), line: r.line, segment: r.off, lineStart: r.lineStart}
	r.off += int64(r.advance)
	r.lineStart = r.off
	return l, true
}

// scanEnd is the error that ends the lines: io.EOF (ErrEmpty when there was no record), or
// the scanner's error err after line number line, at file offset off.
func (r *Reader) scanEnd(err error, line int, off int64) error {
	switch {
	case err == nil && r.index == 0:
		return ErrEmpty
	case err == nil:
		return io.EOF
	case errors.Is(err, bufio.ErrTooLong):
		return &SyntaxError{
			Pos:    Position{Index: r.index, Line: line + 1},
			Offset: off,
			Err:    causef(ErrTooLarge, "the line is longer than %d bytes", MaxRecordBytes),
		}
	}
	return fmt.Errorf("read line %d: %w", line+1, err)
}

// lookahead reads the lines of an NDJSON file a chunk ahead of the caller, in a goroutine
// that also runs quickCheck on them, so that validating a file keeps two cores busy: one
// reads and checks the next chunk while the caller's goroutine looks up the ids of this one
// (and does what the caller does with each record). Each goroutine reads one chunk and
// ends: a Reader dropped half-way leaves none running once that chunk is read. Memory: two
// chunks of about lookaheadBytes (or of one longer line), reused.
type lookahead struct {
	cur, ahead *chunk
	i          int // the next line of cur
}

// lookaheadBytes is about how much of the file a chunk holds.
const lookaheadBytes = 64 << 10

type chunk struct {
	buf   []byte
	lines []ndLine // their data is in buf
	// end: no line follows these; err is then the scanner's error (nil at the end of the
	// file), after line number line, at file offset off.
	end  bool
	err  error
	line int
	off  int64
	done chan struct{} // a value when filled
}

func newLookahead() *lookahead { return &lookahead{cur: new(chunk), ahead: new(chunk)} }

// next returns the next non-blank line, or the error that ends the lines.
func (a *lookahead) next(r *Reader) (ndLine, error) {
	for a.i == len(a.cur.lines) {
		if a.cur.end {
			return ndLine{}, r.scanEnd(a.cur.err, a.cur.line, a.cur.off)
		}
		if a.ahead.done == nil { // the first chunk
			a.start(r, a.ahead)
		}
		<-a.ahead.done
		a.cur, a.ahead, a.i = a.ahead, a.cur, 0
		if !a.cur.end {
			a.start(r, a.ahead) // while the caller works on cur
		}
	}
	l := a.cur.lines[a.i]
	a.i++
	return l, nil
}

// start fills c in a goroutine; meanwhile only that goroutine uses the scanner and the
// line counts.
func (a *lookahead) start(r *Reader, c *chunk) {
	if c.done == nil {
		c.done = make(chan struct{}, 1)
	}
	go func() {
		c.fill(r)
		c.done <- struct{}{}
	}()
}

// fill reads the next lines into c and checks them.
func (c *chunk) fill(r *Reader) {
	c.buf, c.lines = c.buf[:0], c.lines[:0]
	for len(c.buf) < lookaheadBytes {
		l, ok := r.scan()
		if !ok {
			c.end, c.err, c.line, c.off = true, r.sc.Err(), r.line, r.off
			break
		}
		if len(trimSpace(l.data)) == 0 {
			continue
		}
		c.buf = append(c.buf, l.data...)
		l.data, l.end = nil, len(c.buf)
		c.lines = append(c.lines, l)
	}
	start := 0
	for i := range c.lines {
		l := &c.lines[i]
		l.data = c.buf[start:l.end:l.end]
		start = l.end
		l.id, l.valid = quickCheck(l.data)
		l.checked = true
	}
}

// record reads the well-formed record data (or any record, to skim it) at pos.
func (r *Reader) record(data []byte, pos Position, mode readMode) (Contact, Position, error) {
	switch mode {
	case skimRecord:
		return Contact{ID: skimID(data)}, pos, nil
	case checkRecord:
		if r.format == JSONArray { // an NDJSON line was tried by nextLine
			if id, ok := quickCheck(data); ok {
				return r.checked(id, pos)
			}
		}
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

// checked ends Check for a record that quickCheck found valid: only its id remains to be
// looked up among the earlier ones.
func (r *Reader) checked(id string, pos Position) (Contact, Position, error) {
	_, pos, err := r.finish(Contact{ID: id}, nil, pos, true)
	return Contact{}, pos, err
}

// quickCheck validates the common record in one pass over its bytes, several times faster
// than validJSON then checkValue: a JSON object of contact fields given once each, whose
// values are strings without escapes (and a variables object of such strings), every one
// valid. It returns the id (sharing memory with data) and true only for a record that Check
// would find valid, with the same id; false says nothing: anything else (an escape, a null,
// a number, an unknown or repeated key, a problem of any kind) is left to the full check,
// which finds the problems and words them.
func quickCheck(data []byte) (id string, ok bool) {
	var (
		name, phone, language string
		vars                  [maxQuickVariables][2]string
		nvars                 int
		seen                  uint8
	)
	i := quickSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return "", false
	}
	i = quickSpace(data, i+1)
	for {
		key, j, ok := quickString(data, i)
		if !ok {
			return "", false
		}
		if i = quickSpace(data, j); i >= len(data) || data[i] != ':' {
			return "", false
		}
		i = quickSpace(data, i+1)
		var bit uint8
		switch key {
		case "id":
			bit = 1
			id, i, ok = quickString(data, i)
		case "name":
			bit = 2
			name, i, ok = quickString(data, i)
		case "phone":
			bit = 4
			phone, i, ok = quickString(data, i)
		case "language":
			bit = 8
			language, i, ok = quickString(data, i)
		case "variables":
			bit = 16
			nvars, i, ok = quickVariables(data, i, &vars)
		}
		if !ok || bit == 0 || seen&bit != 0 {
			return "", false
		}
		seen |= bit
		if i = quickSpace(data, i); i >= len(data) {
			return "", false
		}
		if data[i] == '}' {
			break
		}
		if data[i] != ',' {
			return "", false
		}
		i = quickSpace(data, i+1)
	}
	if quickSpace(data, i+1) != len(data) {
		return "", false
	}
	// The rules of Contact.problems, each of which finds nothing here.
	if _, err := checkID(id); err != nil {
		return "", false
	}
	if _, err := checkName(name); err != nil {
		return "", false
	}
	if phone == "" || !validE164(phone) {
		return "", false
	}
	if language != "" && !validLanguage(language) {
		return "", false
	}
	for k, kv := range vars[:nvars] {
		if _, bad := variableProblem(kv[0], kv[1]); bad {
			return "", false
		}
		for _, earlier := range vars[:k] {
			if earlier[0] == kv[0] {
				return "", false
			}
		}
	}
	return id, true
}

// maxQuickVariables is the most variables quickCheck checks; a record with more takes the
// full check.
const maxQuickVariables = 16

// quickVariables reads the variables object at data[i] into vars for quickCheck: string
// names and values without escapes.
func quickVariables(data []byte, i int, vars *[maxQuickVariables][2]string) (n, end int, ok bool) {
	if i >= len(data) || data[i] != '{' {
		return 0, i, false
	}
	if i = quickSpace(data, i+1); i < len(data) && data[i] == '}' {
		return 0, i + 1, true
	}
	for {
		if n == len(vars) {
			return 0, i, false
		}
		k, j, ok := quickString(data, i)
		if !ok {
			return 0, i, false
		}
		if i = quickSpace(data, j); i >= len(data) || data[i] != ':' {
			return 0, i, false
		}
		v, j, ok := quickString(data, quickSpace(data, i+1))
		if !ok {
			return 0, i, false
		}
		vars[n] = [2]string{k, v}
		n++
		if i = quickSpace(data, j); i >= len(data) {
			return 0, i, false
		}
		if data[i] == '}' {
			return n, i + 1, true
		}
		if data[i] != ',' {
			return 0, i, false
		}
		i = quickSpace(data, i+1)
	}
}

// quickString reads the JSON string literal at data[i] for quickCheck and returns what it
// stands for (sharing memory with data) and the index after it. It fails on an escape, a
// control character or invalid UTF-8: what a plain string (see plainString) excludes.
func quickString(data []byte, i int) (s string, end int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return "", i, false
	}
	start := i + 1
	ascii := true
	for j := start; j < len(data); j++ {
		c := data[j]
		if !quickStop[c] {
			continue
		}
		switch {
		case c == '"':
			inner := data[start:j]
			if !ascii && !utf8.Valid(inner) {
				return "", j, false
			}
			return alias(inner), j + 1, true
		case c >= utf8.RuneSelf:
			ascii = false
		default: // a backslash or a control character
			return "", j, false
		}
	}
	return "", len(data), false
}

// quickStop marks the bytes that quickString looks at: '"', '\\', control characters and
// the bytes of non-ASCII characters.
var quickStop = func() (t [256]bool) {
	for c := range t {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf
	}
	return t
}()

// quickSpace returns the index of the first byte at or after i that is not JSON whitespace.
func quickSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// skimID returns the string value of the first top-level "id" key of a record, or "". It
// walks the record's members up to that key only (the id comes first in most files).
func skimID(data []byte) string {
	// Most records start with a plain id: take it without walking.
	if rest, ok := bytes.CutPrefix(data, []byte(`{"id":"`)); ok {
		if j := bytes.IndexByte(rest, '"'); j >= 0 && plainString(rest[:j]) {
			return string(rest[:j])
		}
	}
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
