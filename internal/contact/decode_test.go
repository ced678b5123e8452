package contact

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload string
		want    Contact
	}{
		{
			name:    "all fields",
			payload: `{"id":"c-1","name":"Ada Lovelace","phone":"+14155550101","language":"en-US","variables":{"first_name":"Ada","plan":"pro"}}`,
			want: Contact{ID: "c-1", Name: "Ada Lovelace", Phone: "+14155550101", Language: "en-US",
				Variables: map[string]string{"first_name": "Ada", "plan": "pro"}},
		},
		{
			name:    "required fields, whitespace around",
			payload: " \r\n\t{ \"phone\" : \"+14155550101\" , \"id\" : \"c-1\" }\n",
			want:    Contact{ID: "c-1", Phone: "+14155550101"},
		},
		{
			name:    "null optional fields are absent",
			payload: `{"id":"c-1","phone":"+14155550101","name":null,"language":null,"variables":null}`,
			want:    Contact{ID: "c-1", Phone: "+14155550101"},
		},
		{
			name:    "empty variables",
			payload: `{"id":"c-1","phone":"+14155550101","variables":{}}`,
			want:    Contact{ID: "c-1", Phone: "+14155550101"},
		},
		{
			name:    "escapes in keys and values",
			payload: `{"\u0069d":"c\u002d1","phone":"+14155550101","name":"Zo\u00eb \"Z\"","variables":{"note":"a\/b\nc"}}`,
			want: Contact{ID: "c-1", Phone: "+14155550101", Name: `Zoë "Z"`,
				Variables: map[string]string{"note": "a/b\nc"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Decode([]byte(tt.payload))
			if err != nil {
				t.Fatalf("Decode() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	t.Parallel()
	const ok = `"id":"c-1","phone":"+14155550101"`
	tests := []struct {
		name    string
		payload string
		errs    []error // each must match
		text    string  // exact error text, when given
	}{
		// Wrong JSON types name the field.
		{name: "phone number", payload: `{"id":"c-1","phone":14155550101}`, errs: []error{ErrWrongType},
			text: `contact "c-1": phone: must be a string, not a number`},
		{name: "id number", payload: `{"id":7,"phone":"+14155550101"}`, errs: []error{ErrWrongType},
			text: `contact: id: must be a string, not a number`},
		{name: "name boolean", payload: `{` + ok + `,"name":true}`, errs: []error{ErrWrongType},
			text: `contact "c-1": name: must be a string, not a boolean`},
		{name: "language array", payload: `{` + ok + `,"language":["en"]}`, errs: []error{ErrWrongType},
			text: `contact "c-1": language: must be a string, not an array`},
		{name: "phone object", payload: `{"id":"c-1","phone":{"number":"+14155550101"}}`, errs: []error{ErrWrongType},
			text: `contact "c-1": phone: must be a string, not an object`},
		{name: "variables array", payload: `{` + ok + `,"variables":["a"]}`, errs: []error{ErrWrongType},
			text: `contact "c-1": variables: must be an object of strings, not an array`},
		{name: "variables string", payload: `{` + ok + `,"variables":"a=1"}`, errs: []error{ErrWrongType},
			text: `contact "c-1": variables: must be an object of strings, not a string`},
		{name: "variable number", payload: `{` + ok + `,"variables":{"a":1}}`, errs: []error{ErrWrongType},
			text: `contact "c-1": variables.a: must be a string, not a number`},
		{name: "variable null", payload: `{` + ok + `,"variables":{"a":null}}`, errs: []error{ErrWrongType},
			text: `contact "c-1": variables.a: must be a string, not null`},
		{name: "variable object with odd key", payload: `{` + ok + `,"variables":{"a b":{}}}`, errs: []error{ErrWrongType},
			text: `contact "c-1": variables["a b"]: must be a string, not an object`},

		// Missing and null required fields.
		{name: "empty object", payload: `{}`, errs: []error{ErrRequired},
			text: `contact: id: is required; phone: is required`},
		{name: "null id", payload: `{"id":null,"phone":"+14155550101"}`, errs: []error{ErrRequired},
			text: `contact: id: is required`},
		{name: "empty phone", payload: `{"id":"c-1","phone":""}`, errs: []error{ErrRequired},
			text: `contact "c-1": phone: is required`},

		// Unknown fields: typo protection.
		{name: "phone_number", payload: `{"id":"c-1","phone_number":"+14155550101"}`, errs: []error{ErrUnknownField, ErrRequired},
			text: `contact "c-1": phone_number: unknown field (did you mean "phone"?); phone: is required`},
		{name: "capitalised field", payload: `{"ID":"c-1","phone":"+14155550101"}`, errs: []error{ErrUnknownField, ErrRequired},
			text: `contact: ID: unknown field (did you mean "id"?); id: is required`},
		{name: "unrelated field", payload: `{` + ok + `,"email":"ada@example.com"}`, errs: []error{ErrUnknownField},
			text: `contact "c-1": email: unknown field (known fields: id, name, phone, language, variables)`},
		{name: "odd unknown key is quoted", payload: `{` + ok + `,"x\ny":1}`, errs: []error{ErrUnknownField},
			text: `contact "c-1": "x\ny": unknown field (known fields: id, name, phone, language, variables)`},
		{name: "unknown fields in document order, reported once", payload: `{"zeta":1,` + ok + `,"alpha":2,"zeta":3}`,
			errs: []error{ErrUnknownField},
			text: `contact "c-1": zeta: unknown field (known fields: id, name, phone, language, variables); ` +
				`alpha: unknown field (known fields: id, name, phone, language, variables)`},

		// Keys given twice.
		{name: "id twice", payload: `{` + ok + `,"id":"c-2"}`, errs: []error{ErrDuplicateKey},
			text: `contact "c-1": id: is given more than once`},
		{name: "key many times, reported once", payload: `{` + ok + `,"id":"c-2","id":"c-3","variables":{"a":"1","a":"2","a":"3"}}`,
			errs: []error{ErrDuplicateKey},
			text: `contact "c-1": id: is given more than once; variables.a: is given more than once`},
		{name: "variable twice", payload: `{` + ok + `,"variables":{"a":"1","a":"2"}}`, errs: []error{ErrDuplicateKey},
			text: `contact "c-1": variables.a: is given more than once`},

		// Not one JSON object.
		{name: "empty payload", payload: ``, errs: []error{ErrMalformed},
			text: `contact: payload is empty, expected a JSON object`},
		{name: "truncated", payload: `{"id":"c-1"`, errs: []error{ErrMalformed},
			text: `contact: payload is not well-formed JSON: unexpected end of JSON input`},
		{name: "trailing data", payload: `{` + ok + `} x`, errs: []error{ErrMalformed},
			text: `contact: payload is not well-formed JSON: invalid character 'x' after top-level value at offset 36`},
		{name: "two objects", payload: `{` + ok + `}{` + ok + `}`, errs: []error{ErrMalformed}},
		{name: "trailing comma", payload: `{` + ok + `,}`, errs: []error{ErrMalformed}},
		{name: "single quotes", payload: `{'id':'c-1'}`, errs: []error{ErrMalformed}},
		{name: "array", payload: `[{` + ok + `}]`, errs: []error{ErrWrongType},
			text: `contact: must be a JSON object, not an array`},
		{name: "string", payload: `"c-1"`, errs: []error{ErrWrongType},
			text: `contact: must be a JSON object, not a string`},
		{name: "null", payload: `null`, errs: []error{ErrWrongType},
			text: `contact: must be a JSON object, not null`},

		// Decoding and validation problems together.
		{name: "wrong type and bad value", payload: `{"id":"c 1","phone":1,"language":"en_GB"}`,
			errs: []error{ErrWrongType, ErrInvalidValue},
			text: `contact "c 1": id: "c 1" contains ' '; only A–Z a–z 0–9 . _ - = are allowed; ` +
				`phone: must be a string, not a number; ` +
				`language: "en_GB" is not a language tag (expected letters, digits and '-', like en, en-US or pt-BR)`},
		{name: "too many variables, one not a string", payload: `{` + ok + `,"variables":{` + manyVariables(64) + `,"x":1}}`,
			errs: []error{ErrWrongType, ErrInvalidValue},
			text: `contact "c-1": variables: has 65 entries, at most 64 allowed; variables.x: must be a string, not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Decode([]byte(tt.payload))
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("Decode() error = %v, want *InvalidError", err)
			}
			for _, want := range tt.errs {
				if !errors.Is(err, want) {
					t.Errorf("Decode() error = %v, want it to match %v", err, want)
				}
			}
			if tt.text != "" && err.Error() != tt.text {
				t.Errorf("Decode() error = %q\nwant              %q", err, tt.text)
			}
			if !reflect.DeepEqual(c, Contact{}) {
				t.Errorf("Decode() contact = %+v, want the zero Contact on error", c)
			}
			if !invalid.Pos.IsZero() {
				t.Errorf("Pos = %v, want none", invalid.Pos)
			}
		})
	}
}

func manyVariables(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = `"v` + strings.Repeat("x", i) + `":"1"`
	}
	return strings.Join(parts, ",")
}

func TestDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	want := valid()
	payload, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(payload)
	if err != nil {
		t.Fatalf("Decode(%s) error = %v", payload, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode(Marshal(c)) = %+v, want %+v", got, want)
	}
}
