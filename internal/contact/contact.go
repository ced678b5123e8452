package contact

import (
	"errors"
	"fmt"
	"github.com/callagent/resilience/internal/redact"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of the contact rules (see the package documentation).
const (
	// MaxIDLen is the longest id, in characters (ids are ASCII).
	MaxIDLen = 128
	// MaxNameLen is the longest name, in characters.
	MaxNameLen = 200
	// MinLanguageLen and MaxLanguageLen bound the language tag, in characters.
	MinLanguageLen, MaxLanguageLen = 2, 35
	// MaxVariables is the largest number of variables of one contact.
	MaxVariables = 64
	// MaxVariableNameLen is the longest variable name, in characters.
	MaxVariableNameLen = 64
	// MaxVariableValueLen is the longest variable value, in characters.
	MaxVariableValueLen = 2000
	// MinPhoneDigits and MaxPhoneDigits bound the digits of an E.164 number.
	MinPhoneDigits, MaxPhoneDigits = 7, 15
)

// Contact is one person to call.
type Contact struct {
	// ID identifies the contact; it becomes the message id and checkpoint key.
	ID string `json:"id"`
	// Name is how the contact is addressed; optional.
	Name string `json:"name,omitempty"`
	// Phone is the E.164 number to call.
	Phone string `json:"phone"`
	// Language is the BCP 47 tag of the call's language; optional.
	Language string `json:"language,omitempty"`
	// Variables fill the prompt template; optional.
	Variables map[string]string `json:"variables,omitempty"`
}

// DisplayName is how logs and alerts name the contact: its Name, or "Contact <ID>"
// when Name is blank (the seed prints "Processing contact: Contact 1").
func (c Contact) DisplayName() string {
	if strings.TrimSpace(c.Name) == "" {
		return "Contact " + c.ID
	}
	return c.Name
}

// Validate checks c against the rules of the package documentation. It returns
// nil, or an [*InvalidError] (without position) listing every problem at once.
func (c Contact) Validate() error {
	ps := c.problems(nil)
	if len(ps) == 0 {
		return nil
	}
	return &InvalidError{ID: c.ID, Problems: ps}
}

// problems returns c's rule problems in report order, leaving out the field paths
// in skip (fields that already have a decoding problem).
func (c Contact) problems(skip map[string]bool) []FieldProblem {
	var ps []FieldProblem
	add := func(field, problem string, err error) {
		if !skip[field] {
			ps = append(ps, FieldProblem{Field: field, Problem: problem, Err: err})
		}
	}
	if msg, err := checkID(c.ID); err != nil {
		add("id", msg, err)
	}
	if msg, err := checkName(c.Name); err != nil {
		add("name", msg, err)
	}
	if msg, err := checkPhone(c.Phone); err != nil {
		add("phone", msg, err)
	}
	if c.Language != "" && !validLanguage(c.Language) {
		add("language", fmt.Sprintf("%s is not a language tag (expected letters, digits and '-', like en, en-US or pt-BR)",
			quote(c.Language)), ErrInvalidValue)
	}
	if n := len(c.Variables); n > MaxVariables {
		vp := tooManyVariables(n)
		add(vp.Field, vp.Problem, vp.Err)
	}
	for k, v := range c.Variables { // sortProblems orders them
		if vp, ok := variableProblem(k, v); ok {
			add(vp.Field, vp.Problem, vp.Err)
		}
	}
	sortProblems(ps)
	return ps
}

func tooManyVariables(n int) FieldProblem {
	return FieldProblem{Field: "variables", Problem: fmt.Sprintf("has %d entries, at most %d allowed", n, MaxVariables), Err: ErrInvalidValue}
}

// variableProblem is the rule problem of variable k with value v, if any.
func variableProblem(k, v string) (FieldProblem, bool) {
	if !validVariableName(k) {
		return FieldProblem{Field: variablePath(k), Problem: fmt.Sprintf("is not a valid variable name (expected a letter or '_', then up to %d letters, digits or '_')",
			MaxVariableNameLen-1), Err: ErrInvalidValue}, true
	}
	if msg, err := checkText(v, MaxVariableValueLen, false); err != nil {
		return FieldProblem{Field: variablePath(k), Problem: msg, Err: err}, true
	}
	return FieldProblem{}, false
}

func checkID(id string) (string, error) {
	if id == "" {
		return "is required", ErrRequired
	}
	for _, r := range id {
		if !isIDChar(r) {
			return fmt.Sprintf("%s contains %s; only A–Z a–z 0–9 . _ - = are allowed", quote(id), quoteRune(r)), ErrInvalidValue
		}
	}
	if len(id) > MaxIDLen {
		return fmt.Sprintf("%s is %d characters long, at most %d allowed", quote(id), len(id), MaxIDLen), ErrInvalidValue
	}
	if id[0] == '.' || id[len(id)-1] == '.' {
		return fmt.Sprintf("%s must not start or end with '.'", quote(id)), ErrInvalidValue
	}
	if strings.Contains(id, "..") {
		return fmt.Sprintf(`%s must not contain ".."`, quote(id)), ErrInvalidValue
	}
	return "", nil
}

func isIDChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '.' || r == '_' || r == '-' || r == '='
}

func checkName(name string) (string, error) {
	return checkText(name, MaxNameLen, true)
}

// checkText checks a free-text value: valid UTF-8, at most limit characters
// and, when noControl is set, no control characters.
func checkText(s string, limit int, noControl bool) (string, error) {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8", ErrInvalidValue
	}
	if n := utf8.RuneCountInString(s); n > limit {
		return fmt.Sprintf("is %d characters long, at most %d allowed", n, limit), ErrInvalidValue
	}
	if noControl {
		for _, r := range s {
			if unicode.IsControl(r) {
				return fmt.Sprintf("contains the control character %U", r), ErrInvalidValue
			}
		}
	}
	return "", nil
}

func checkPhone(phone string) (string, error) {
	if phone == "" {
		return "is required", ErrRequired
	}
	if validE164(phone) {
		return "", nil
	}
	// The value is masked (redact.Phone) because this message reaches logs, dead letters and
	// alerts: an invalid number is still someone's number.
	// A number written for humans ("+1 (555) 010-0100"): show the E.164 form.
	if compact := stripPhonePunctuation(phone); compact != phone && validE164(compact) {
		return fmt.Sprintf("%s is not an E.164 number (expected + and %d–%d digits with no spaces or punctuation: %s)",
			quote(redact.Phone(phone)), MinPhoneDigits, MaxPhoneDigits, redact.Phone(compact)), ErrInvalidValue
	}
	return fmt.Sprintf("%s is not an E.164 number (expected + and %d–%d digits, like +14155550123)",
		quote(redact.Phone(phone)), MinPhoneDigits, MaxPhoneDigits), ErrInvalidValue
}

// validE164 reports whether s is '+', a digit 1–9, then 6–14 more digits.
func validE164(s string) bool {
	digits := len(s) - 1
	if digits < MinPhoneDigits || digits > MaxPhoneDigits || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// stripPhonePunctuation removes the separators people write into phone numbers.
func stripPhonePunctuation(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')', '/', '\t', '\u00a0':
			return -1
		}
		return r
	}, s)
}

// validLanguage accepts BCP 47 style tags: subtags of 1–8 letters or digits
// separated by single '-', the first subtag 2–8 letters, 2–35 characters in all.
func validLanguage(s string) bool {
	if len(s) < MinLanguageLen || len(s) > MaxLanguageLen {
		return false
	}
	// SplitSeq, unlike Split, allocates nothing; i numbers the subtags.
	i := 0
	for sub := range strings.SplitSeq(s, "-") {
		if len(sub) < 1 || len(sub) > 8 || i == 0 && len(sub) < 2 {
			return false
		}
		for j := 0; j < len(sub); j++ {
			c := sub[j]
			letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			if !letter && (i == 0 || c < '0' || c > '9') {
				return false
			}
		}
		i++
	}
	return true
}

// validVariableName reports whether k matches [A-Za-z_][A-Za-z0-9_]{0,63}.
func validVariableName(k string) bool {
	if len(k) == 0 || len(k) > MaxVariableNameLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// variablePath is the field path of variable k: "variables.k", or
// `variables["k"]` when k is not a valid name (so odd keys print safely).
func variablePath(k string) string {
	if validVariableName(k) {
		return "variables." + k
	}
	return "variables[" + quote(k) + "]"
}

// quoteRune quotes r as 'x', or as U+XXXX when it is not printable.
func quoteRune(r rune) string {
	if r == utf8.RuneError || !unicode.IsPrint(r) {
		return fmt.Sprintf("%U", r)
	}
	return fmt.Sprintf("%q", r)
}

// Field order of reports: the whole record, unknown fields, then the contact's
// fields in declaration order.
var fieldRank = map[string]int{"": 0, "id": 2, "name": 3, "phone": 4, "language": 5, "variables": 6}

func rankOf(p FieldProblem) (int, string) {
	if errors.Is(p.Err, ErrUnknownField) {
		return 1, "" // keep document order
	}
	if r, ok := fieldRank[p.Field]; ok {
		return r, ""
	}
	return 6, p.Field // a variable: by name
}

// sortProblems puts ps in report order, keeping the given order within a field.
func sortProblems(ps []FieldProblem) {
	slices.SortStableFunc(ps, func(a, b FieldProblem) int {
		ra, ka := rankOf(a)
		rb, kb := rankOf(b)
		if ra != rb {
			return ra - rb
		}
		return strings.Compare(ka, kb)
	})
}
