package contact

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// FuzzReader feeds arbitrary files to the Reader: it must never panic or loop,
// every error must be one of the documented kinds, positions must make sense,
// and what it accepts must be what encoding/json accepts.
func FuzzReader(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(fixtures, "*json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, seed := range []string{
		"", "[]", "[", "{", "\xEF\xBB\xBF[\r\n]", "[1,\"x\",null]", "[{}]x", "{}\n\n{\"id\":\"a\"}\r\n",
		`[{"id":"a","phone":"+14155550101","variables":{"a":"\u00e9","a":1}},{"id":"a"}]`,
		`{"id":"a\"","phone":"+14155550101","x":[{"y":"]}"}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		checker := NewReader(bytes.NewReader(data)) // Check must find what Next finds
		skimmer := NewReader(bytes.NewReader(data)) // Skim must frame records as Next does
		skimmer.IgnoreRepeatedIDs()
		lines := bytes.Count(data, []byte("\n")) + 1
		prevLine := 0
		for calls := 0; ; calls++ {
			if calls > len(data)+1 {
				t.Fatalf("Next called %d times on %d bytes without a final error", calls, len(data))
			}
			c, pos, err := r.Next()
			checkPos, checkErr := checker.Check()
			if checkPos != pos || !sameError(checkErr, err) {
				t.Fatalf("Check = %v, %v; Next = %v, %v", checkPos, checkErr, pos, err)
			}
			if !bytes.Equal(checker.Raw(), r.Raw()) {
				t.Fatalf("Check's Raw %q, Next's %q", checker.Raw(), r.Raw())
			}
			var invalid *InvalidError
			var se *SyntaxError
			if err == nil || errors.As(err, &invalid) {
				id, skimPos, skimErr := skimmer.Skim()
				if skimErr != nil || skimPos != pos || !bytes.Equal(skimmer.Raw(), r.Raw()) || err == nil && id != c.ID {
					t.Fatalf("Skim = %q, %v, %v, raw %q; Next = %+v, %v, %v, raw %q", id, skimPos, skimErr, skimmer.Raw(), c, pos, err, r.Raw())
				}
			}
			switch {
			case err == nil || errors.As(err, &invalid):
				if pos.Index != calls || pos.Line < prevLine || pos.Line < 1 || pos.Line > lines {
					t.Fatalf("record %d at %+v after line %d of %d", calls, pos, prevLine, lines)
				}
				prevLine = pos.Line
				if err == nil {
					if verr := c.Validate(); verr != nil {
						t.Fatalf("Next returned an invalid contact: %v", verr)
					}
					continue
				}
				if invalid.Pos != pos || len(invalid.Problems) == 0 || !reflect.DeepEqual(c, Contact{}) {
					t.Fatalf("bad InvalidError %+v with contact %+v at %v", invalid, c, pos)
				}
				for _, p := range invalid.Problems {
					if p.Err == nil || p.Problem == "" {
						t.Fatalf("problem without kind or text: %+v", p)
					}
				}
				continue
			case errors.As(err, &se):
				if se.Pos.Line < 1 || se.Pos.Line > lines || se.Offset < 0 || se.Offset > int64(len(data)) {
					t.Fatalf("syntax error %v at %+v offset %d in %d bytes", se, se.Pos, se.Offset, len(data))
				}
				if r.Format() == JSONArray && json.Valid(bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))) {
					t.Fatalf("syntax error %v in a well-formed JSON array", se)
				}
			case err == io.EOF:
				checkAccepted(t, r.Format(), data)
			case err == ErrEmpty:
				if trimmed := bytes.Trim(bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF")), " \t\r\n[]"); len(trimmed) != 0 {
					t.Fatalf("ErrEmpty for %q", data)
				}
			default:
				t.Fatalf("untyped error %T: %v", err, err)
			}
			if _, _, again := r.Next(); again != err {
				t.Fatalf("Next after %v = %v, want the same error", err, again)
			}
			return
		}
	})
}

// sameError reports whether Check's error a is Next's error b: the same kind, position and
// problems (the order of problems on one field path may differ: two long invalid variable
// names can share a path).
func sameError(a, b error) bool {
	var ia, ib *InvalidError
	if errors.As(a, &ia) && errors.As(b, &ib) {
		if ia.Pos != ib.Pos || ia.ID != ib.ID || len(ia.Problems) != len(ib.Problems) {
			return false
		}
		var pa, pb []string
		for i := range ia.Problems {
			pa, pb = append(pa, ia.Problems[i].String()), append(pb, ib.Problems[i].String())
		}
		slices.Sort(pa)
		slices.Sort(pb)
		return slices.Equal(pa, pb)
	}
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}

// checkAccepted checks that a file read to io.EOF is well-formed for its format.
func checkAccepted(t *testing.T, format Format, data []byte) {
	t.Helper()
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	switch format {
	case JSONArray:
		if !json.Valid(data) {
			t.Fatalf("read to the end a malformed JSON array %q", data)
		}
	case NDJSON:
		for _, line := range bytes.Split(data, []byte("\n")) {
			if len(bytes.Trim(line, " \t\r\n")) > 0 && !json.Valid(line) {
				t.Fatalf("read to the end NDJSON with the malformed line %q", line)
			}
		}
	default:
		t.Fatalf("io.EOF with format %v", format)
	}
}

// FuzzDecode checks that Decode never panics, fails only with *InvalidError, and
// that what it accepts is valid and survives encoding/json.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"id":"c-1","phone":"+14155550101"}`,
		`{"id":"c-1","name":"Zo\u00eb","phone":"+14155550101","language":"en-US","variables":{"a":"b"}}`,
		`{"id":1}`, `[]`, ``, `{"id":"c-1","phone":"+14155550101"} {}`, `{"variables":{"a":{"b":[1,"}"]}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := Decode(payload)
		if err != nil {
			var invalid *InvalidError
			if !errors.As(err, &invalid) || len(invalid.Problems) == 0 {
				t.Fatalf("Decode error %T %v, want *InvalidError with problems", err, err)
			}
			return
		}
		if verr := c.Validate(); verr != nil {
			t.Fatalf("Decode accepted an invalid contact: %v", verr)
		}
		var std Contact
		err = json.Unmarshal(payload, &std)
		if len(std.Variables) == 0 {
			std.Variables = nil // Decode leaves an empty object absent
		}
		if err != nil || !reflect.DeepEqual(std, c) {
			t.Fatalf("Decode = %+v, encoding/json = %+v (%v)", c, std, err)
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := Decode(again); err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("Decode(Marshal(%+v)) = %+v, %v", c, back, err)
		}
	})
}
