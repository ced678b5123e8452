package contact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Decode decodes and validates one contact from a message payload: exactly one
// JSON object, decoded strictly (see the package documentation), then checked
// with [Contact.Validate]. Every error is an [*InvalidError] without position; a
// payload that is not well-formed JSON has one problem with Err [ErrMalformed].
// On error the returned Contact is the zero value.
func Decode(payload []byte) (Contact, error) {
	if !validJSON(payload) {
		msg := "payload is not well-formed JSON"
		se := jsonSyntaxError(payload)
		switch {
		case len(bytes.TrimLeft(payload, " \t\r\n")) == 0:
			msg = "payload is empty, expected a JSON object"
		case se != nil && isUnexpectedEnd(se):
			msg = fmt.Sprintf("payload is not well-formed JSON: %v", se)
		case se != nil:
			msg = fmt.Sprintf("payload is not well-formed JSON: %v at offset %d", se, se.Offset-1)
		}
		return Contact{}, &InvalidError{Problems: []FieldProblem{{Problem: msg, Err: ErrMalformed}}}
	}
	c, ps := parseValue(payload)
	if len(ps) > 0 {
		return Contact{}, &InvalidError{ID: c.ID, Problems: ps}
	}
	return c, nil
}

// isUnexpectedEnd reports whether se says the input ended inside a value (its
// offset is then the input's length, not a byte in error).
func isUnexpectedEnd(se *json.SyntaxError) bool {
	return se.Error() == "unexpected end of JSON input"
}

// jsonSyntaxError returns the syntax error of malformed JSON data, or nil.
func jsonSyntaxError(data []byte) *json.SyntaxError {
	var raw json.RawMessage
	var se *json.SyntaxError
	if errors.As(json.Unmarshal(data, &raw), &se) {
		return se
	}
	return nil
}

// parseValue decodes one well-formed JSON value into a contact and returns it
// with every problem, in report order. The value must be an object.
func parseValue(data []byte) (Contact, []FieldProblem) {
	return parse(data, nil)
}

// checkValue finds the same problems as parseValue without building the contact, for
// validating a file: the strings of the returned Contact share memory with data (copy ID to
// keep it) and its Variables are left out. sc is memory reused from one record to the next.
func checkValue(data []byte, sc *scratch) (Contact, []FieldProblem) {
	return parse(data, sc)
}

func parse(data []byte, sc *scratch) (Contact, []FieldProblem) {
	if kind := jsonKind(data); kind != "object" {
		return Contact{}, []FieldProblem{{Problem: "must be a JSON object, not " + article(kind), Err: ErrWrongType}}
	}
	p := parser{check: sc}
	p.object(data)
	ps := append(p.problems, p.c.problems(p.bad)...)
	if sc != nil && p.vars > 0 {
		// What Contact.problems finds in the variables, from what p.checkVariables kept.
		if p.vars > MaxVariables && !p.bad["variables"] {
			ps = append(ps, tooManyVariables(p.vars))
		}
		for _, vp := range sc.problems {
			if !p.bad[vp.Field] {
				ps = append(ps, vp)
			}
		}
	}
	sortProblems(ps)
	return p.c, ps
}

// parser collects a contact and its decoding problems.
type parser struct {
	c        Contact
	problems []FieldProblem
	bad      map[string]bool // field paths with a decoding problem: not validated
	repeats  map[string]bool // field paths reported as given more than once

	check *scratch // not nil: validate only (see checkValue)
	vars  int      // check: the number of variables
}

// scratch is the memory a Reader lends the parser from one record to the next when it only
// validates.
type scratch struct {
	keys     []string            // variable names of the record, sharing its memory
	set      map[string]struct{} // the same, once there are many
	problems []FieldProblem      // rule problems of the record's variables
}

// maxListedKeys is how many variable names are compared one by one before a map is worth it.
const maxListedKeys = 16

func (sc *scratch) reset() {
	clear(sc.keys)
	sc.keys, sc.set, sc.problems = sc.keys[:0], nil, sc.problems[:0]
}

// add adds a variable name and reports whether it was there already.
func (sc *scratch) add(k string) (repeated bool) {
	if sc.set != nil {
		if _, ok := sc.set[k]; ok {
			return true
		}
		sc.set[k] = struct{}{}
		return false
	}
	for _, x := range sc.keys {
		if x == k {
			return true
		}
	}
	sc.keys = append(sc.keys, k)
	if len(sc.keys) > maxListedKeys {
		sc.set = make(map[string]struct{}, 2*len(sc.keys))
		for _, x := range sc.keys {
			sc.set[x] = struct{}{}
		}
	}
	return false
}

func (sc *scratch) count() int {
	if sc.set != nil {
		return len(sc.set)
	}
	return len(sc.keys)
}

// alias is the string of b without a copy: it must not outlive b's contents.
func alias(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// unquote decodes a JSON string literal; when validating only, a plain one is not copied.
func (p *parser) unquote(raw []byte) (string, error) {
	if p.check != nil {
		if inner := raw[1 : len(raw)-1]; plainString(inner) {
			return alias(inner), nil
		}
	}
	return unquote(raw)
}

func (p *parser) fail(field, problem string, err error) {
	p.problems = append(p.problems, FieldProblem{Field: field, Problem: problem, Err: err})
	if p.bad == nil {
		p.bad = make(map[string]bool)
	}
	p.bad[field] = true
}

// repeated reports a key given more than once, once per field.
func (p *parser) repeated(field string) {
	if p.repeats[field] {
		return
	}
	if p.repeats == nil {
		p.repeats = make(map[string]bool)
	}
	p.repeats[field] = true
	p.fail(field, "is given more than once", ErrDuplicateKey)
}

// object decodes the top-level object data, which is well-formed JSON.
func (p *parser) object(data []byte) {
	var seen uint8              // known fields seen, one bit each
	var unknown map[string]bool // unknown fields seen
	err := members(data, func(rawKey []byte, raw json.RawMessage) {
		bit := uint8(1) << fieldRank[string(rawKey)] // fieldRank is 0 for unknown keys
		if bit > 1 {
			if seen&bit != 0 {
				p.repeated(string(rawKey))
				return
			}
			seen |= bit
		}
		switch string(rawKey) { // constant field names: no string is allocated for the key
		case "id":
			p.str("id", raw, &p.c.ID)
		case "name":
			p.str("name", raw, &p.c.Name)
		case "phone":
			p.str("phone", raw, &p.c.Phone)
		case "language":
			p.str("language", raw, &p.c.Language)
		case "variables":
			p.variables(raw)
		default:
			key := string(rawKey)
			if !unknown[key] { // a repeated unknown key is reported once
				if unknown == nil {
					unknown = make(map[string]bool)
				}
				unknown[key] = true
				p.problems = append(p.problems, FieldProblem{Field: keyName(key), Problem: unknownFieldProblem(key), Err: ErrUnknownField})
			}
		}
	})
	if err != nil { // cannot happen for well-formed input; report rather than panic
		p.fail("", "invalid JSON: "+err.Error(), ErrMalformed)
	}
}

// str decodes a string field; null leaves it empty (absent).
func (p *parser) str(field string, raw json.RawMessage, dst *string) {
	switch kind := jsonKind(raw); kind {
	case "null":
	case "string":
		s, err := p.unquote(raw)
		if err != nil {
			p.fail(field, "invalid JSON string: "+err.Error(), ErrMalformed)
		}
		*dst = s
	default:
		p.fail(field, "must be a string, not "+article(kind), ErrWrongType)
	}
}

// variables decodes the variables object; null leaves it absent. A value that is
// not a string is a problem of that variable; its name still counts and is
// still checked for the limit on entries.
func (p *parser) variables(raw json.RawMessage) {
	switch kind := jsonKind(raw); kind {
	case "null":
		return
	case "object":
	default:
		p.fail("variables", "must be an object of strings, not "+article(kind), ErrWrongType)
		return
	}
	if p.check != nil {
		p.checkVariables(raw)
		return
	}
	vars := make(map[string]string)
	err := members(raw, func(rawKey []byte, val json.RawMessage) {
		key := string(rawKey)
		if _, dup := vars[key]; dup {
			p.repeated(variablePath(key))
			return
		}
		vars[key] = ""
		if kind := jsonKind(val); kind != "string" {
			p.fail(variablePath(key), "must be a string, not "+article(kind), ErrWrongType)
			return
		}
		s, err := unquote(val)
		if err != nil {
			p.fail(variablePath(key), "invalid JSON string: "+err.Error(), ErrMalformed)
			return
		}
		vars[key] = s
	})
	if err != nil {
		p.fail("variables", "invalid JSON: "+err.Error(), ErrMalformed)
	}
	if len(vars) > 0 {
		p.c.Variables = vars
	}
}

// checkVariables is variables when validating only: the names go to p.check.keys instead of
// a map, and the rule problems that Contact.problems would find in the map are kept in
// p.check.problems (parse drops those of names that turn out to have a decoding problem,
// as Contact.problems skips them).
func (p *parser) checkVariables(raw json.RawMessage) {
	sc := p.check
	sc.reset()
	err := members(raw, func(rawKey []byte, val json.RawMessage) {
		key := alias(rawKey)
		if sc.add(key) {
			p.repeated(variablePath(key))
			return
		}
		if kind := jsonKind(val); kind != "string" {
			p.fail(variablePath(key), "must be a string, not "+article(kind), ErrWrongType)
			return
		}
		s, err := p.unquote(val)
		if err != nil {
			p.fail(variablePath(key), "invalid JSON string: "+err.Error(), ErrMalformed)
			return
		}
		if vp, ok := variableProblem(key, s); ok {
			sc.problems = append(sc.problems, vp)
		}
	})
	if err != nil {
		p.fail("variables", "invalid JSON: "+err.Error(), ErrMalformed)
	}
	p.vars = sc.count()
}

// members calls fn with each key and raw value of the JSON object data, in
// document order. data must be well-formed JSON (checked before, by validJSON
// or json.Decoder): members only walks it, which is several times faster than
// json.Decoder.Token. It still fails rather than panics on malformed input.
//
// The key passed to fn is decoded but may share memory with data: fn must copy
// it (string(key)) to keep it.
func members(data []byte, fn func(key []byte, val json.RawMessage)) error {
	w := walker{data: data}
	w.space()
	if !w.take('{') {
		return w.fail("'{'")
	}
	if w.space(); w.take('}') {
		return nil
	}
	for {
		rawKey, ok := w.string()
		if !ok {
			return w.fail("an object key")
		}
		key := rawKey[1 : len(rawKey)-1]
		if !plainString(key) {
			s, err := unquote(rawKey)
			if err != nil {
				return err
			}
			key = []byte(s)
		}
		if w.space(); !w.take(':') {
			return w.fail("':'")
		}
		w.space()
		val, ok := w.value()
		if !ok {
			return w.fail("a value")
		}
		fn(key, val)
		w.space()
		if w.take('}') {
			return nil
		}
		if !w.take(',') {
			return w.fail("',' or '}'")
		}
		w.space()
	}
}

// walker steps through well-formed JSON.
type walker struct {
	data []byte
	i    int
}

func (w *walker) fail(want string) error {
	return fmt.Errorf("expected %s at offset %d", want, w.i)
}

func (w *walker) space() {
	for w.i < len(w.data) && isSpace(w.data[w.i]) {
		w.i++
	}
}

func (w *walker) take(c byte) bool {
	if w.i < len(w.data) && w.data[w.i] == c {
		w.i++
		return true
	}
	return false
}

// string returns the string literal at the position, quotes included.
func (w *walker) string() ([]byte, bool) {
	start := w.i
	if !w.take('"') {
		return nil, false
	}
	for {
		j := bytes.IndexByte(w.data[w.i:], '"')
		if j < 0 {
			w.i = len(w.data)
			return nil, false
		}
		w.i += j + 1
		// The quote ends the string unless an odd number of backslashes precede it.
		k := w.i - 1
		for k > start+1 && w.data[k-1] == '\\' {
			k--
		}
		if (w.i-1-k)%2 == 0 {
			return w.data[start:w.i], true
		}
	}
}

// value returns the value at the position.
func (w *walker) value() ([]byte, bool) {
	start := w.i
	if w.i >= len(w.data) {
		return nil, false
	}
	switch w.data[w.i] {
	case '"':
		return w.string()
	case '{', '[':
		depth := 0
		for w.i < len(w.data) {
			switch w.data[w.i] {
			case '"':
				if _, ok := w.string(); !ok {
					return nil, false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			w.i++
			if depth == 0 {
				return w.data[start:w.i], true
			}
		}
		return nil, false
	}
	for w.i < len(w.data) { // number, true, false, null
		switch w.data[w.i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return w.data[start:w.i], w.i > start
		}
		w.i++
	}
	return w.data[start:w.i], w.i > start
}

// plainString reports whether the inside of a JSON string literal needs no
// decoding: no escapes, valid UTF-8.
func plainString(inner []byte) bool {
	return bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner)
}

// unquote decodes a JSON string literal, quotes included.
func unquote(raw []byte) (string, error) {
	if inner := raw[1 : len(raw)-1]; plainString(inner) {
		return string(inner), nil
	}
	var s string // escapes or invalid UTF-8: decode as encoding/json does
	err := json.Unmarshal(raw, &s)
	return s, err
}

// jsonKind names the JSON type of the well-formed value data.
func jsonKind(data []byte) string {
	data = trimSpace(data)
	if len(data) == 0 {
		return "nothing"
	}
	switch data[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// trimSpace drops the JSON whitespace at the start of data (bytes.TrimLeft with a cutset
// costs more than the rest of a short value's checks).
func trimSpace(data []byte) []byte {
	i := 0
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return data[i:]
}

// article puts "a" or "an" before a JSON type name ("null" and "nothing" stay bare).
func article(kind string) string {
	switch kind {
	case "null", "nothing":
		return kind
	case "array", "object":
		return "an " + kind
	}
	return "a " + kind
}

// keyName is how an unknown key is shown as a field: as is when it is plain,
// quoted otherwise.
func keyName(key string) string {
	if key == "" || len(key) > MaxVariableNameLen {
		return quote(key)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return quote(key)
		}
	}
	return key
}

// fieldHints maps common misspellings of field names, lower-cased without '_',
// '-' and spaces, to the field meant.
var fieldHints = map[string]string{
	"id": "id", "contactid": "id",
	"name": "name", "fullname": "name", "contactname": "name",
	"phone": "phone", "phonenumber": "phone", "phoneno": "phone", "mobile": "phone",
	"mobilenumber": "phone", "tel": "phone", "telephone": "phone", "msisdn": "phone",
	"language": "language", "lang": "language", "locale": "language",
	"variables": "variables", "variable": "variables", "vars": "variables",
}

var hintNormalizer = strings.NewReplacer("_", "", "-", "", " ", "")

func unknownFieldProblem(key string) string {
	if field, ok := fieldHints[hintNormalizer.Replace(strings.ToLower(key))]; ok {
		return fmt.Sprintf("unknown field (did you mean %q?)", field)
	}
	return "unknown field (known fields: id, name, phone, language, variables)"
}
