package contact

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// valid returns a valid contact to break one rule at a time.
func valid() Contact {
	return Contact{ID: "c-1", Name: "Ada Lovelace", Phone: "+14155550101", Language: "en-US",
		Variables: map[string]string{"first_name": "Ada"}}
}

func vars(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("v%d", i)] = "x"
	}
	return m
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(*Contact)
		field string // "" when valid
		err   error
		text  string // exact FieldProblem text, when given
	}{
		{name: "valid", edit: func(*Contact) {}},
		{name: "only required fields", edit: func(c *Contact) { *c = Contact{ID: "1", Phone: "+14155550101"} }},

		{name: "id missing", edit: func(c *Contact) { c.ID = "" }, field: "id", err: ErrRequired, text: "id: is required"},
		{name: "id all allowed characters", edit: func(c *Contact) { c.ID = "AZaz09._-=x" }},
		{name: "id 128 characters", edit: func(c *Contact) { c.ID = strings.Repeat("a", 128) }},
		{name: "id 129 characters", edit: func(c *Contact) { c.ID = strings.Repeat("a", 129) }, field: "id", err: ErrInvalidValue,
			text: `id: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"… is 129 characters long, at most 128 allowed`},
		{name: "id with space", edit: func(c *Contact) { c.ID = "c 1" }, field: "id", err: ErrInvalidValue,
			text: `id: "c 1" contains ' '; only A–Z a–z 0–9 . _ - = are allowed`},
		{name: "id with slash", edit: func(c *Contact) { c.ID = "c/1" }, field: "id", err: ErrInvalidValue},
		{name: "id with wildcard", edit: func(c *Contact) { c.ID = "c*" }, field: "id", err: ErrInvalidValue},
		{name: "id not ASCII", edit: func(c *Contact) { c.ID = "café" }, field: "id", err: ErrInvalidValue,
			text: `id: "café" contains 'é'; only A–Z a–z 0–9 . _ - = are allowed`},
		{name: "id with newline", edit: func(c *Contact) { c.ID = "a\nb" }, field: "id", err: ErrInvalidValue,
			text: `id: "a\nb" contains U+000A; only A–Z a–z 0–9 . _ - = are allowed`},
		{name: "id starts with dot", edit: func(c *Contact) { c.ID = ".c1" }, field: "id", err: ErrInvalidValue,
			text: `id: ".c1" must not start or end with '.'`},
		{name: "id ends with dot", edit: func(c *Contact) { c.ID = "c1." }, field: "id", err: ErrInvalidValue},
		{name: "id with double dot", edit: func(c *Contact) { c.ID = "c..1" }, field: "id", err: ErrInvalidValue,
			text: `id: "c..1" must not contain ".."`},
		{name: "id with single dots", edit: func(c *Contact) { c.ID = "campaign.7.c-1" }},

		{name: "phone missing", edit: func(c *Contact) { c.Phone = "" }, field: "phone", err: ErrRequired, text: "phone: is required"},
		{name: "phone 7 digits", edit: func(c *Contact) { c.Phone = "+1234567" }},
		{name: "phone 15 digits", edit: func(c *Contact) { c.Phone = "+123456789012345" }},
		{name: "phone 6 digits", edit: func(c *Contact) { c.Phone = "+123456" }, field: "phone", err: ErrInvalidValue},
		{name: "phone 16 digits", edit: func(c *Contact) { c.Phone = "+1234567890123456" }, field: "phone", err: ErrInvalidValue},
		{name: "phone too short", edit: func(c *Contact) { c.Phone = "+12" }, field: "phone", err: ErrInvalidValue,
			text: `phone: "***" is not an E.164 number (expected + and 7–15 digits, like +14155550123)`},
		{name: "phone formatted for humans", edit: func(c *Contact) { c.Phone = "+1 (555) 010-0100" }, field: "phone", err: ErrInvalidValue,
			text: `phone: "+1 (5**) ***-**00" is not an E.164 number (expected + and 7–15 digits with no spaces or punctuation: +15*******00)`},
		{name: "phone with dots", edit: func(c *Contact) { c.Phone = "+44.20.7946.0103" }, field: "phone", err: ErrInvalidValue,
			text: `phone: "+44.**.****.**03" is not an E.164 number (expected + and 7–15 digits with no spaces or punctuation: +44********03)`},
		{name: "phone without plus", edit: func(c *Contact) { c.Phone = "14155550101" }, field: "phone", err: ErrInvalidValue,
			text: `phone: "14*******01" is not an E.164 number (expected + and 7–15 digits, like +14155550123)`},
		{name: "phone starting with 0", edit: func(c *Contact) { c.Phone = "+04155550101" }, field: "phone", err: ErrInvalidValue},
		{name: "phone with letter", edit: func(c *Contact) { c.Phone = "+1415555010a" }, field: "phone", err: ErrInvalidValue},
		{name: "phone with extension", edit: func(c *Contact) { c.Phone = "+14155550101;ext=2" }, field: "phone", err: ErrInvalidValue},
		{name: "phone plus only", edit: func(c *Contact) { c.Phone = "+" }, field: "phone", err: ErrInvalidValue},

		{name: "name empty", edit: func(c *Contact) { c.Name = "" }},
		{name: "name 200 characters", edit: func(c *Contact) { c.Name = strings.Repeat("é", 200) }},
		{name: "name 201 characters", edit: func(c *Contact) { c.Name = strings.Repeat("é", 201) }, field: "name", err: ErrInvalidValue,
			text: "name: is 201 characters long, at most 200 allowed"},
		{name: "name with newline", edit: func(c *Contact) { c.Name = "Ada\nINFO fake log line" }, field: "name", err: ErrInvalidValue,
			text: "name: contains the control character U+000A"},
		{name: "name not UTF-8", edit: func(c *Contact) { c.Name = "Ad\xffa" }, field: "name", err: ErrInvalidValue,
			text: "name: is not valid UTF-8"},

		{name: "language en", edit: func(c *Contact) { c.Language = "en" }},
		{name: "language pt-BR", edit: func(c *Contact) { c.Language = "pt-BR" }},
		{name: "language zh-Hant-TW", edit: func(c *Contact) { c.Language = "zh-Hant-TW" }},
		{name: "language es-419", edit: func(c *Contact) { c.Language = "es-419" }},
		{name: "language 35 characters", edit: func(c *Contact) { c.Language = "en-" + strings.Repeat("abcdefg-", 3) + "abcdefgh" }},
		{name: "language 36 characters", edit: func(c *Contact) { c.Language = "en-" + strings.Repeat("abcdefg-", 4) + "a" },
			field: "language", err: ErrInvalidValue},
		{name: "language underscore", edit: func(c *Contact) { c.Language = "en_US" }, field: "language", err: ErrInvalidValue,
			text: `language: "en_US" is not a language tag (expected letters, digits and '-', like en, en-US or pt-BR)`},
		{name: "language one letter", edit: func(c *Contact) { c.Language = "e" }, field: "language", err: ErrInvalidValue},
		{name: "language digits first", edit: func(c *Contact) { c.Language = "419" }, field: "language", err: ErrInvalidValue},
		{name: "language empty subtag", edit: func(c *Contact) { c.Language = "en--US" }, field: "language", err: ErrInvalidValue},
		{name: "language trailing dash", edit: func(c *Contact) { c.Language = "en-" }, field: "language", err: ErrInvalidValue},
		{name: "language long subtag", edit: func(c *Contact) { c.Language = "en-abcdefghi" }, field: "language", err: ErrInvalidValue},
		{name: "language space", edit: func(c *Contact) { c.Language = "en US" }, field: "language", err: ErrInvalidValue},

		{name: "variables nil", edit: func(c *Contact) { c.Variables = nil }},
		{name: "variables 64", edit: func(c *Contact) { c.Variables = vars(64) }},
		{name: "variables 65", edit: func(c *Contact) { c.Variables = vars(65) }, field: "variables", err: ErrInvalidValue,
			text: "variables: has 65 entries, at most 64 allowed"},
		{name: "variable underscore first", edit: func(c *Contact) { c.Variables = map[string]string{"_x1": "a"} }},
		{name: "variable name 64", edit: func(c *Contact) { c.Variables = map[string]string{strings.Repeat("a", 64): "a"} }},
		{name: "variable name 65", edit: func(c *Contact) { c.Variables = map[string]string{strings.Repeat("a", 65): "a"} },
			field: `variables["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"…]`, err: ErrInvalidValue},
		{name: "variable name digit first", edit: func(c *Contact) { c.Variables = map[string]string{"1st": "a"} },
			field: `variables["1st"]`, err: ErrInvalidValue,
			text: `variables["1st"]: is not a valid variable name (expected a letter or '_', then up to 63 letters, digits or '_')`},
		{name: "variable name with dash", edit: func(c *Contact) { c.Variables = map[string]string{"first-name": "a"} },
			field: `variables["first-name"]`, err: ErrInvalidValue},
		{name: "variable name empty", edit: func(c *Contact) { c.Variables = map[string]string{"": "a"} },
			field: `variables[""]`, err: ErrInvalidValue},
		{name: "variable value 2000", edit: func(c *Contact) { c.Variables = map[string]string{"note": strings.Repeat("ü", 2000)} }},
		{name: "variable value 2001", edit: func(c *Contact) { c.Variables = map[string]string{"note": strings.Repeat("ü", 2001)} },
			field: "variables.note", err: ErrInvalidValue, text: "variables.note: is 2001 characters long, at most 2000 allowed"},
		{name: "variable value multi-line", edit: func(c *Contact) { c.Variables = map[string]string{"note": "line 1\nline 2"} }},
		{name: "variable value empty", edit: func(c *Contact) { c.Variables = map[string]string{"note": ""} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tt.edit(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("Validate() = %v, want *InvalidError", err)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("Validate() = %v, want it to match %v", err, tt.err)
			}
			if len(invalid.Problems) != 1 || invalid.Problems[0].Field != tt.field {
				t.Fatalf("problems = %q, want one on field %q", invalid.Problems, tt.field)
			}
			if tt.text != "" && invalid.Problems[0].String() != tt.text {
				t.Errorf("problem = %q\nwant      %q", invalid.Problems[0].String(), tt.text)
			}
			if !invalid.Pos.IsZero() || invalid.ID != c.ID {
				t.Errorf("Pos = %v, ID = %q; want no position and ID %q", invalid.Pos, invalid.ID, c.ID)
			}
		})
	}
}

func TestValidateReportsAllProblemsInOrder(t *testing.T) {
	t.Parallel()
	c := Contact{
		ID:        "a b",
		Name:      "x\ty",
		Phone:     "555-0100",
		Language:  "english!",
		Variables: map[string]string{"z": strings.Repeat("v", 2001), "bad key": "v", "a": "ok", "b": strings.Repeat("v", 2001)},
	}
	err := c.Validate()
	want := `contact "a b": ` +
		`id: "a b" contains ' '; only A–Z a–z 0–9 . _ - = are allowed; ` +
		`name: contains the control character U+0009; ` +
		`phone: "********" is not an E.164 number (expected + and 7–15 digits, like +14155550123); ` +
		`language: "english!" is not a language tag (expected letters, digits and '-', like en, en-US or pt-BR); ` +
		`variables.b: is 2001 characters long, at most 2000 allowed; ` +
		`variables.z: is 2001 characters long, at most 2000 allowed; ` +
		`variables["bad key"]: is not a valid variable name (expected a letter or '_', then up to 63 letters, digits or '_')`
	if err == nil || err.Error() != want {
		t.Fatalf("Validate() =\n%v\nwant\n%s", err, want)
	}
	// The same contact gives the same text every time (map order is random).
	for range 20 {
		if got := c.Validate().Error(); got != want {
			t.Fatalf("Validate() changed to\n%s", got)
		}
	}
}

func TestValidateReturnsUntypedNil(t *testing.T) {
	t.Parallel()
	if err := valid().Validate(); err != nil {
		t.Fatalf("Validate() = %#v, want untyped nil", err)
	}
}

func TestDisplayName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c    Contact
		want string
	}{
		{Contact{ID: "1", Name: "Ada Lovelace"}, "Ada Lovelace"},
		{Contact{ID: "1"}, "Contact 1"},
		{Contact{ID: "c-7", Name: "  "}, "Contact c-7"},
	}
	for _, tt := range tests {
		if got := tt.c.DisplayName(); got != tt.want {
			t.Errorf("%+v.DisplayName() = %q, want %q", tt.c, got, tt.want)
		}
	}
}

func TestPositionString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Position
		want string
	}{
		{Position{Index: 2, Line: 12}, "contact #3 (line 12)"},
		{Position{Index: 0, Line: 1}, "contact #1 (line 1)"},
		{Position{}, "unknown position"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestInvalidErrorText(t *testing.T) {
	t.Parallel()
	problems := []FieldProblem{
		{Field: "phone", Problem: `"***" is not an E.164 number (expected + and 7–15 digits, like +14155550123)`, Err: ErrInvalidValue},
		{Field: "name", Problem: "is 201 characters long, at most 200 allowed", Err: ErrInvalidValue},
	}
	tests := []struct {
		err  *InvalidError
		want string
	}{
		{&InvalidError{Pos: Position{Index: 2, Line: 12}, ID: "c-3", Problems: problems[:1]},
			`contact #3 (line 12): phone: "***" is not an E.164 number (expected + and 7–15 digits, like +14155550123)`},
		{&InvalidError{ID: "c-3", Problems: problems},
			`contact "c-3": phone: "***" is not an E.164 number (expected + and 7–15 digits, like +14155550123); name: is 201 characters long, at most 200 allowed`},
		{&InvalidError{Problems: []FieldProblem{{Problem: "must be a JSON object, not an array", Err: ErrWrongType}}},
			"contact: must be a JSON object, not an array"},
		{&InvalidError{Problems: slices.Repeat(problems[1:], 11)},
			"contact: " + strings.Repeat("name: is 201 characters long, at most 200 allowed; ", 10) + "name: is 201 characters long, at most 200 allowed"},
		{&InvalidError{Problems: slices.Repeat(problems[1:], 13)},
			"contact: " + strings.Repeat("name: is 201 characters long, at most 200 allowed; ", 10) + "and 3 more problems"},
		{&InvalidError{ID: "evil\nINFO forged", Problems: problems[1:]},
			`contact "evil\nINFO forged": name: is 201 characters long, at most 200 allowed`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q\nwant      %q", got, tt.want)
		}
	}
}

func TestInvalidErrorUnwrap(t *testing.T) {
	t.Parallel()
	first := Position{Index: 1, Line: 3}
	err := error(&InvalidError{Pos: Position{Index: 3, Line: 5}, ID: "c-2", Problems: []FieldProblem{
		{Field: "id", Problem: `"c-2" repeats contact #2 (line 3)`, Err: &DuplicateIDError{ID: "c-2", First: first}},
		{Field: "phone", Problem: "is required", Err: ErrRequired},
	}})
	err = fmt.Errorf("enqueue contacts.json: %w", err)
	for _, target := range []error{ErrDuplicateID, ErrRequired} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) = false, want true", err, target)
		}
	}
	for _, target := range []error{ErrWrongType, ErrUnknownField, ErrMalformed} {
		if errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) = true, want false", err, target)
		}
	}
	var dup *DuplicateIDError
	if !errors.As(err, &dup) || dup.ID != "c-2" || dup.First != first {
		t.Fatalf("errors.As DuplicateIDError = %+v, want id c-2 first %v", dup, first)
	}
	if got, want := dup.Error(), `id "c-2" repeats contact #2 (line 3)`; got != want {
		t.Errorf("DuplicateIDError.Error() = %q, want %q", got, want)
	}
}

func TestFormatString(t *testing.T) {
	t.Parallel()
	for f, want := range map[Format]string{FormatUnknown: "unknown format", JSONArray: "JSON array", NDJSON: "NDJSON"} {
		if got := f.String(); got != want {
			t.Errorf("Format(%d).String() = %q, want %q", f, got, want)
		}
	}
}
