package contact

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

const fixtures = "../../testdata/contacts"

// event describes one result of Next: "id at contact #n (line l)" for a
// contact, the error text otherwise.
func event(c Contact, pos Position, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%s at %v", c.ID, pos)
}

// readAll calls Next until io.EOF or a fatal error and returns the events (the
// final io.EOF included) and the last error.
func readAll(t *testing.T, r *Reader) ([]string, error) {
	t.Helper()
	var events []string
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("Next did not stop")
		}
		c, pos, err := r.Next()
		events = append(events, event(c, pos, err))
		var invalid *InvalidError
		switch {
		case err == nil:
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Next returned an invalid contact: %v", verr)
			}
		case errors.As(err, &invalid):
			if invalid.Pos != pos {
				t.Fatalf("InvalidError.Pos = %v, Next returned %v", invalid.Pos, pos)
			}
		default:
			// Fatal errors are sticky.
			if _, _, again := r.Next(); again != err {
				t.Fatalf("Next after %v = %v, want the same error", err, again)
			}
			return events, err
		}
	}
}

func readString(t *testing.T, s string) ([]string, error) {
	t.Helper()
	return readAll(t, NewReader(strings.NewReader(s)))
}

func TestReaderFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file   string
		format Format
		events []string
		last   error
	}{
		{file: "valid.json", format: JSONArray, last: io.EOF, events: []string{
			"c-1 at contact #1 (line 2)",
			"c-2 at contact #2 (line 3)",
			"c-3 at contact #3 (line 4)",
			"c-4 at contact #4 (line 5)",
			"c-5 at contact #5 (line 6)",
			"EOF",
		}},
		{file: "valid.ndjson", format: NDJSON, last: io.EOF, events: []string{
			"c-1 at contact #1 (line 1)",
			"c-2 at contact #2 (line 2)",
			"c-3 at contact #3 (line 3)",
			"c-4 at contact #4 (line 4)",
			"c-5 at contact #5 (line 5)",
			"EOF",
		}},
		{file: "bad-json.json", format: JSONArray, last: &SyntaxError{}, events: []string{
			"c-1 at contact #1 (line 2)",
			"c-2 at contact #2 (line 3)",
			`line 4, column 40: invalid character '"' after object key:value pair`,
		}},
		{file: "bad-phone.json", format: JSONArray, last: io.EOF, events: []string{
			"c-1 at contact #1 (line 2)",
			"c-2 at contact #2 (line 3)",
			`contact #3 (line 4): phone: "+1 (5**) ***-**00" is not an E.164 number (expected + and 7–15 digits with no spaces or punctuation: +15*******00)`,
			"c-4 at contact #4 (line 5)",
			"c-5 at contact #5 (line 6)",
			"EOF",
		}},
		{file: "missing-id.ndjson", format: NDJSON, last: io.EOF, events: []string{
			"c-1 at contact #1 (line 1)",
			"c-2 at contact #2 (line 2)",
			"contact #3 (line 3): id: is required",
			"c-4 at contact #4 (line 4)",
			"c-5 at contact #5 (line 5)",
			"EOF",
		}},
		{file: "wrong-type.json", format: JSONArray, last: io.EOF, events: []string{
			"c-1 at contact #1 (line 2)",
			"contact #2 (line 3): phone: must be a string, not a number",
			"c-3 at contact #3 (line 4)",
			"c-4 at contact #4 (line 5)",
			"c-5 at contact #5 (line 6)",
			"EOF",
		}},
		{file: "duplicate-id.json", format: JSONArray, last: io.EOF, events: []string{
			"c-1 at contact #1 (line 2)",
			"c-2 at contact #2 (line 3)",
			"c-3 at contact #3 (line 4)",
			`contact #4 (line 5): id: "c-2" repeats contact #2 (line 3)`,
			"c-5 at contact #5 (line 6)",
			"EOF",
		}},
		{file: "empty.json", format: JSONArray, last: ErrEmpty, events: []string{
			"contacts file holds no contacts",
		}},
		{file: "unknown-field.json", format: JSONArray, last: io.EOF, events: []string{
			"c-1 at contact #1 (line 2)",
			"c-2 at contact #2 (line 3)",
			`contact #3 (line 4): lang: unknown field (did you mean "language"?)`,
			"c-4 at contact #4 (line 5)",
			"c-5 at contact #5 (line 6)",
			"EOF",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(filepath.Join(fixtures, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			// Whole reads, and one byte at a time: chunking must not matter.
			for _, src := range []io.Reader{strings.NewReader(string(data)), iotest.OneByteReader(strings.NewReader(string(data)))} {
				r := NewReader(src)
				events, last := readAll(t, r)
				if !reflect.DeepEqual(events, tt.events) {
					t.Errorf("events:\n%s\nwant:\n%s", strings.Join(events, "\n"), strings.Join(tt.events, "\n"))
				}
				var se *SyntaxError
				if _, wantSyntax := tt.last.(*SyntaxError); wantSyntax && !errors.As(last, &se) || !wantSyntax && last != tt.last {
					t.Errorf("last error = %#v, want %T %v", last, tt.last, tt.last)
				}
				if got := r.Format(); got != tt.format {
					t.Errorf("Format() = %v, want %v", got, tt.format)
				}
			}
		})
	}
}

// TestFixturesHoldOneProblem checks the promise of testdata/contacts/README.md:
// each broken fixture holds exactly one problem, the valid ones none.
func TestFixturesHoldOneProblem(t *testing.T) {
	t.Parallel()
	want := map[string]error{
		"valid.json":         nil,
		"valid.ndjson":       nil,
		"bad-json.json":      &SyntaxError{},
		"bad-phone.json":     ErrInvalidValue,
		"missing-id.ndjson":  ErrRequired,
		"wrong-type.json":    ErrWrongType,
		"duplicate-id.json":  ErrDuplicateID,
		"empty.json":         ErrEmpty,
		"unknown-field.json": ErrUnknownField,
	}
	files, err := filepath.Glob(filepath.Join(fixtures, "*json"))
	if err != nil || len(files) != len(want) {
		t.Fatalf("fixtures = %v (%v), want the %d files of README.md", files, err, len(want))
	}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		events, last := readAll(t, NewReader(f))
		f.Close()
		var problems []error
		if last != io.EOF {
			problems = append(problems, last)
		}
		for i := 0; i < len(events)-1; i++ {
			if !strings.Contains(events[i], " at contact #") {
				problems = append(problems, errors.New(events[i]))
			}
		}
		name := filepath.Base(file)
		var invalid *InvalidError
		switch wantErr := want[name]; {
		case wantErr == nil && len(problems) != 0:
			t.Errorf("%s: problems %v, want none", name, problems)
		case wantErr != nil && len(problems) != 1:
			t.Errorf("%s: problems %v, want exactly one", name, problems)
		case wantErr != nil && errors.As(last, &invalid):
			t.Errorf("%s: last error %v", name, last)
		}
	}
}

func TestReaderPositions(t *testing.T) {
	t.Parallel()
	a := `{"id": "a", "phone": "+14155550101"}`
	b := `{"id": "b", "phone": "+14155550102"}`
	c := `{"id": "c", "phone": "+14155550103"}`
	tests := []struct {
		name   string
		input  string
		format Format
		events []string
	}{
		{
			name:   "array elements over several lines",
			input:  "[\n  {\n    \"id\": \"a\",\n    \"phone\": \"+14155550101\"\n  },\n  " + b + ", " + c + "\n]\n",
			format: JSONArray,
			events: []string{"a at contact #1 (line 2)", "b at contact #2 (line 6)", "c at contact #3 (line 6)", "EOF"},
		},
		{
			name:   "array on one line",
			input:  "[" + a + "," + b + "]",
			format: JSONArray,
			events: []string{"a at contact #1 (line 1)", "b at contact #2 (line 1)", "EOF"},
		},
		{
			name:   "array after blank lines",
			input:  "\n\n  [\n" + a + "]",
			format: JSONArray,
			events: []string{"a at contact #1 (line 4)", "EOF"},
		},
		{
			name:   "array with byte order mark",
			input:  "\xEF\xBB\xBF[\n" + a + "\n]",
			format: JSONArray,
			events: []string{"a at contact #1 (line 2)", "EOF"},
		},
		{
			name:   "array with CRLF",
			input:  "[\r\n" + a + ",\r\n\r\n" + b + "\r\n]\r\n",
			format: JSONArray,
			events: []string{"a at contact #1 (line 2)", "b at contact #2 (line 4)", "EOF"},
		},
		{
			name:   "array of non-objects",
			input:  "[1, \"x\", null, [],\n" + a + "]",
			format: JSONArray,
			events: []string{
				"contact #1 (line 1): must be a JSON object, not a number",
				"contact #2 (line 1): must be a JSON object, not a string",
				"contact #3 (line 1): must be a JSON object, not null",
				"contact #4 (line 1): must be a JSON object, not an array",
				"a at contact #5 (line 2)",
				"EOF",
			},
		},
		{
			name:   "NDJSON with blank lines",
			input:  "\n\n \t\n" + a + "\n\n   \n" + b + "\n" + c,
			format: NDJSON,
			events: []string{"a at contact #1 (line 4)", "b at contact #2 (line 7)", "c at contact #3 (line 8)", "EOF"},
		},
		{
			name:   "NDJSON with byte order mark and CRLF",
			input:  "\xEF\xBB\xBF" + a + "\r\n\r\n" + b + "\r\n",
			format: NDJSON,
			events: []string{"a at contact #1 (line 1)", "b at contact #2 (line 3)", "EOF"},
		},
		{
			name:   "NDJSON with indented lines",
			input:  "  " + a + "\n\t" + b + "  \n",
			format: NDJSON,
			events: []string{"a at contact #1 (line 1)", "b at contact #2 (line 2)", "EOF"},
		},
		{
			name:   "NDJSON line that is not an object",
			input:  a + "\n[1]\n\"x\"\n" + b,
			format: NDJSON,
			events: []string{
				"a at contact #1 (line 1)",
				"contact #2 (line 2): must be a JSON object, not an array",
				"contact #3 (line 3): must be a JSON object, not a string",
				"b at contact #4 (line 4)",
				"EOF",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewReader(strings.NewReader(tt.input))
			if got := r.Format(); got != FormatUnknown {
				t.Errorf("Format() before Next = %v, want %v", got, FormatUnknown)
			}
			events, _ := readAll(t, r)
			if !reflect.DeepEqual(events, tt.events) {
				t.Errorf("events:\n%s\nwant:\n%s", strings.Join(events, "\n"), strings.Join(tt.events, "\n"))
			}
			if got := r.Format(); got != tt.format {
				t.Errorf("Format() = %v, want %v", got, tt.format)
			}
		})
	}
}

func TestReaderDecodesValues(t *testing.T) {
	t.Parallel()
	input := "{\"id\":\"c-1\",\"name\":\"Zoë\",\"phone\":\"+14155550101\",\"variables\":{\"a\":\"x\\ny\"}}\r\n"
	for _, in := range []string{input, "[" + input + "]"} {
		c, _, err := NewReader(strings.NewReader(in)).Next()
		want := Contact{ID: "c-1", Name: "Zoë", Phone: "+14155550101", Variables: map[string]string{"a": "x\ny"}}
		if err != nil || !reflect.DeepEqual(c, want) {
			t.Errorf("Next() = %+v, %v; want %+v", c, err, want)
		}
	}
}

func TestReaderSyntaxErrors(t *testing.T) {
	t.Parallel()
	a := `{"id":"a","phone":"+14155550101"}`
	tests := []struct {
		name   string
		input  string
		text   string
		index  int
		offset int64
		is     error // the cause, when it matters
	}{
		{name: "trailing comma in array", input: "[" + a + ",]",
			text: "line 1, column 36: invalid character ']' looking for beginning of value", index: 1, offset: 35},
		{name: "leading comma in array", input: "[\n ,\n" + a + "]",
			text: "line 2, column 2: invalid character ',' looking for beginning of value", index: 0, offset: 3},
		{name: "missing comma", input: "[" + a + "\n" + a + "]",
			text: "line 2, column 1: expected ',' or ']' after contact #1, found '{'", index: 1, offset: 35},
		{name: "missing comma in object on line 3", input: "[\n" + a + ",\n" + `{"id":"b" "phone":"+14155550102"}` + "\n]",
			text: `line 3, column 11: invalid character '"' after object key:value pair`, index: 1, offset: 47},
		{name: "newline inside a string", input: "[\n" + `{"id":"a` + "\n" + `","phone":"+14155550101"}]`,
			text: `line 2, column 9: invalid character '\n' in string literal`, index: 0, offset: 10},
		{name: "closed with brace", input: "[" + a + "}",
			text: "line 1, column 35: invalid character '}' after array element", index: 1, offset: 34},
		{name: "garbage after array", input: "[" + a + "]\n\n  x",
			text: "line 3, column 3: unexpected 'x' after the closing ']'", index: 1, offset: 39},
		{name: "second array", input: "[" + a + "] [" + a + "]",
			text: "line 1, column 37: unexpected '[' after the closing ']'", index: 1, offset: 36},
		{name: "garbage after empty array", input: "[]x",
			text: "line 1, column 3: unexpected 'x' after the closing ']'", index: 0, offset: 2},
		{name: "array not closed", input: "[\n" + a + "\n",
			text: "line 3, column 1: unexpected end of file: contact #2 or the closing ']' is missing", index: 1, offset: 36,
			is: io.ErrUnexpectedEOF},
		{name: "array not closed after comma", input: "[\n" + a + ",\n",
			text: "line 3, column 1: unexpected end of file: contact #2 or the closing ']' is missing", index: 1, offset: 37,
			is: io.ErrUnexpectedEOF},
		{name: "array cut in a contact", input: "[\n" + `{"id":"a"`,
			text: "line 2, column 10: unexpected end of file in contact #1", index: 0, offset: 11, is: io.ErrUnexpectedEOF},
		{name: "not JSON", input: "id,phone\nc-1,+14155550101\n",
			text:   "line 1, column 1: a contacts file must be a JSON array (starting with '[') or NDJSON (one '{' object per line), not start with 'i'",
			offset: 0},
		{name: "JSON string", input: "\n  \"contacts\"",
			text:   `line 2, column 3: a contacts file must be a JSON array (starting with '[') or NDJSON (one '{' object per line), not start with '"'`,
			offset: 3},
		{name: "not UTF-8 after byte order mark", input: "\xEF\xBB\xBF\xff",
			text:   "line 1, column 1: a contacts file must be a JSON array (starting with '[') or NDJSON (one '{' object per line), not start with U+FFFD",
			offset: 3},
		{name: "NDJSON object over two lines", input: a + "\n" + `{"id":"b",` + "\n" + `"phone":"+14155550102"}`,
			text: "line 2, column 11: unexpected end of line: NDJSON holds one complete JSON object per line", index: 1, offset: 44},
		{name: "NDJSON two objects on a line", input: a + " " + a + "\n",
			text: "line 1, column 35: invalid character '{' after top-level value", index: 0, offset: 34},
		{name: "NDJSON garbage line", input: a + "\r\n\r\nhello\r\n",
			text: "line 3, column 1: invalid character 'h' looking for beginning of value", index: 1, offset: 37},
		{name: "NDJSON array of contacts on line 2", input: a + "\n[" + a + ",]\n",
			text: "line 2, column 36: invalid character ']' looking for beginning of value", index: 1, offset: 69},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, last := readString(t, tt.input)
			var se *SyntaxError
			if !errors.As(last, &se) {
				t.Fatalf("last error = %v, want *SyntaxError", last)
			}
			if se.Error() != tt.text {
				t.Errorf("error = %q\nwant    %q", se.Error(), tt.text)
			}
			if se.Pos.Index != tt.index || se.Offset != tt.offset {
				t.Errorf("index %d, offset %d; want index %d, offset %d", se.Pos.Index, se.Offset, tt.index, tt.offset)
			}
			if tt.is != nil && !errors.Is(se, tt.is) {
				t.Errorf("error %v does not match %v", se, tt.is)
			}
		})
	}
}

func TestReaderEmpty(t *testing.T) {
	t.Parallel()
	for _, input := range []string{"", " \n\t\r\n ", "\xEF\xBB\xBF", "[]", "[ \n ]\n\n", "\xEF\xBB\xBF[]"} {
		events, last := readString(t, input)
		if last != ErrEmpty || len(events) != 1 {
			t.Errorf("%q: events %q, want only ErrEmpty", input, events)
		}
	}
}

func TestReaderDuplicateIDs(t *testing.T) {
	t.Parallel()
	input := `[
  {"id": "a", "phone": "+14155550101"},
  {"id": "b", "phone": "not a phone"},
  {"id": "a", "phone": "+14155550103"},
  {"id": "b", "phone": "+14155550104"},
  {"id": "a", "phone": "also bad"},
  {"id": "c", "phone": "+14155550106"}
]`
	want := []string{
		"a at contact #1 (line 2)",
		`contact #2 (line 3): phone: "***********" is not an E.164 number (expected + and 7–15 digits, like +14155550123)`,
		`contact #3 (line 4): id: "a" repeats contact #1 (line 2)`,
		`contact #4 (line 5): id: "b" repeats contact #2 (line 3)`,
		`contact #5 (line 6): id: "a" repeats contact #1 (line 2); phone: "********" is not an E.164 number (expected + and 7–15 digits, like +14155550123)`,
		"c at contact #6 (line 7)",
		"EOF",
	}
	r := NewReader(strings.NewReader(input))
	var dups []DuplicateIDError
	var events []string
	for {
		c, pos, err := r.Next()
		events = append(events, event(c, pos, err))
		var dup *DuplicateIDError
		if errors.As(err, &dup) {
			if !errors.Is(err, ErrDuplicateID) {
				t.Errorf("%v does not match ErrDuplicateID", err)
			}
			dups = append(dups, *dup)
		}
		if err == io.EOF {
			break
		}
	}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
	}
	wantDups := []DuplicateIDError{
		{ID: "a", First: Position{Index: 0, Line: 2}},
		{ID: "b", First: Position{Index: 1, Line: 3}},
		{ID: "a", First: Position{Index: 0, Line: 2}},
	}
	if !reflect.DeepEqual(dups, wantDups) {
		t.Errorf("duplicates = %+v, want %+v", dups, wantDups)
	}

	// NDJSON too, with blank lines between.
	events, _ = readString(t, "{\"id\":\"x\",\"phone\":\"+14155550101\"}\n\n{\"id\":\"x\",\"phone\":\"+14155550102\"}\n")
	if want := `contact #2 (line 3): id: "x" repeats contact #1 (line 1)`; len(events) != 3 || events[1] != want {
		t.Errorf("NDJSON events %q, want %q second", events, want)
	}
}

func TestReaderTooLarge(t *testing.T) {
	t.Parallel()
	a := `{"id":"a","phone":"+14155550101"}`
	// contactOfSize returns a contact object of n bytes (its name is too long).
	contactOfSize := func(id string, n int) string {
		head := `{"id":"` + id + `","phone":"+14155550101","name":"`
		return head + strings.Repeat("x", n-len(head)-2) + `"}`
	}
	tests := []struct {
		name   string
		input  string
		events []string
		tooBig bool
	}{
		{name: "NDJSON line at the limit", input: a + "\n" + contactOfSize("b", MaxRecordBytes) + "\r\n" + `{"id":"c","phone":"+14155550101"}`,
			events: []string{
				"a at contact #1 (line 1)",
				fmt.Sprintf("contact #2 (line 2): name: is %d characters long, at most 200 allowed", MaxRecordBytes-43),
				"c at contact #3 (line 3)",
				"EOF",
			}},
		{name: "NDJSON line over the limit", input: a + "\n" + contactOfSize("b", MaxRecordBytes+3) + "\n" + a,
			events: []string{"a at contact #1 (line 1)", "line 2: the line is longer than 1048576 bytes"}, tooBig: true},
		{name: "array element at the limit", input: "[" + a + "," + contactOfSize("b", MaxRecordBytes-1) + `,{"id":"c","phone":"+14155550101"}]`,
			events: []string{
				"a at contact #1 (line 1)",
				fmt.Sprintf("contact #2 (line 1): name: is %d characters long, at most 200 allowed", MaxRecordBytes-44),
				"c at contact #3 (line 1)",
				"EOF",
			}},
		{name: "array element over the limit", input: "[" + a + ",\n" + contactOfSize("b", MaxRecordBytes) + "]",
			events: []string{"a at contact #1 (line 1)", "line 2, column 1: contact #2 is longer than 1048576 bytes"}, tooBig: true},
		{name: "array whitespace over the limit", input: "[" + a + strings.Repeat(" ", MaxRecordBytes) + "]",
			events: []string{"a at contact #1 (line 1)", "line 1, column 35: more than 1048576 bytes without a complete contact"}, tooBig: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			events, last := readString(t, tt.input)
			if !reflect.DeepEqual(events, tt.events) {
				t.Errorf("events:\n%.300s\nwant:\n%.300s", strings.Join(events, "\n"), strings.Join(tt.events, "\n"))
			}
			var se *SyntaxError
			if tt.tooBig && (!errors.As(last, &se) || !errors.Is(last, ErrTooLarge)) {
				t.Errorf("last error = %v, want a *SyntaxError matching ErrTooLarge", last)
			}
		})
	}
}

func TestReaderReadError(t *testing.T) {
	t.Parallel()
	errDisk := errors.New("disk on fire")
	a := `{"id":"a","phone":"+14155550101"}`
	tests := []struct {
		name   string
		input  string
		events int // contacts read before the error
	}{
		{name: "before anything", input: ""},
		{name: "array", input: "[\n" + a + ",\n", events: 1},
		{name: "array in a contact", input: "[" + a + `,{"id":`, events: 1},
		{name: "NDJSON", input: a + "\n" + a + "\n", events: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := io.MultiReader(strings.NewReader(tt.input), iotest.ErrReader(errDisk))
			events, last := readAll(t, NewReader(src))
			if !errors.Is(last, errDisk) {
				t.Fatalf("last error = %v, want it to wrap %v", last, errDisk)
			}
			var se *SyntaxError
			if errors.As(last, &se) {
				t.Errorf("read error reported as syntax error %v", se)
			}
			if len(events) != tt.events+1 {
				t.Errorf("events %q, want %d contacts then the error", events, tt.events)
			}
		})
	}
}

func TestLineReaderForgetsPassedNewlines(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("ab\n", 10_000) + "end"
	lr := newLineReader(strings.NewReader(text), 0, 1, 0)
	buf := make([]byte, 64)
	var off int64
	for {
		n, err := lr.Read(buf)
		off += int64(n)
		// Ask for the line of a byte read earlier, as the decoder's position
		// trails its read-ahead.
		line, col := lr.locate(max(off-10, 0))
		if want := int(max(off-10, 0)/3) + 1; line != want || col != int(max(off-10, 0)%3)+1 {
			t.Fatalf("locate(%d) = line %d col %d, want line %d", off-10, line, col, want)
		}
		if pending := len(lr.newlines) - lr.head; pending > 64/3+1 {
			t.Fatalf("%d newlines pending after locate, want at most those of the read-ahead", pending)
		}
		if len(lr.newlines) > 2048+64 {
			t.Fatalf("%d newlines kept, want passed ones dropped", len(lr.newlines))
		}
		if err == io.EOF {
			break
		}
	}
	if line, col := lr.locate(int64(len(text) - 1)); line != 10_001 || col != 3 {
		t.Errorf("last byte at line %d col %d, want line 10001 col 3", line, col)
	}
}

func TestReaderMissingCommaNamesCharacter(t *testing.T) {
	t.Parallel()
	_, last := readString(t, `[{"id":"a","phone":"+14155550101"} é]`)
	if want := "line 1, column 36: expected ',' or ']' after contact #1, found 'é'"; last == nil || last.Error() != want {
		t.Errorf("error = %v, want %s", last, want)
	}
}
