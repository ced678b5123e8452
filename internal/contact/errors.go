package contact

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Each [FieldProblem] carries one of them (or a
// [*DuplicateIDError]) in Err, and [*InvalidError] unwraps to all of them, so
// callers can count problems by kind with [errors.Is].
var (
	// ErrEmpty means a contacts file holds no contacts: it is empty, holds only
	// whitespace, or is "[]". It is fatal.
	ErrEmpty = errors.New("contacts file holds no contacts")

	// ErrDuplicateID marks a contact whose id was already used by an earlier
	// contact of the same file. The problem's Err is a [*DuplicateIDError].
	ErrDuplicateID = errors.New("duplicate contact id")

	// ErrRequired marks a required field (id, phone) that is missing, empty or null.
	ErrRequired = errors.New("required field missing")

	// ErrWrongType marks a field whose JSON type is not the expected one, or a
	// record that is not a JSON object.
	ErrWrongType = errors.New("wrong JSON type")

	// ErrUnknownField marks an object key that is not a contact field.
	ErrUnknownField = errors.New("unknown field")

	// ErrDuplicateKey marks a key given twice in one JSON object.
	ErrDuplicateKey = errors.New("duplicate key")

	// ErrInvalidValue marks a value of the right type that breaks a rule (format,
	// length, count).
	ErrInvalidValue = errors.New("invalid value")

	// ErrMalformed marks a payload given to [Decode] that is not well-formed JSON.
	ErrMalformed = errors.New("malformed JSON")

	// ErrTooLarge marks a record (an NDJSON line, or an array element with the
	// whitespace before it) longer than [MaxRecordBytes]. It is wrapped in a
	// [*SyntaxError].
	ErrTooLarge = errors.New("record too large")
)

// Position locates a contact in a contacts file. The zero Position means "no
// position" (a contact decoded from a message payload).
type Position struct {
	// Index is the 0-based element index in a JSON array, or the 0-based record
	// number in NDJSON (blank lines are not records).
	Index int
	// Line is the 1-based line where the record starts in the file (for a
	// [*SyntaxError]: the line of the error); 0 means no position.
	Line int
}

// IsZero reports whether p is "no position".
func (p Position) IsZero() bool { return p.Line == 0 }

// String names the position for humans as "contact #3 (line 12)", with a 1-based
// contact number (#3 is Index 2), for both file formats. The zero Position is
// "unknown position".
func (p Position) String() string {
	if p.IsZero() {
		return "unknown position"
	}
	return fmt.Sprintf("contact #%d (line %d)", p.Index+1, p.Line)
}

// FieldProblem is one reason a contact is invalid.
type FieldProblem struct {
	// Field is the field path: "id", "phone", "variables.first_name",
	// `variables["first name"]` for a key that is not a valid name, the key
	// itself for an unknown field; empty when the problem is the whole record
	// (not a JSON object, malformed payload).
	Field string
	// Problem says what is wrong, lower-case, without the field name.
	Problem string
	// Err is the kind of problem: one of the sentinel errors of this package, or
	// a [*DuplicateIDError].
	Err error
}

// String returns "field: problem", or the problem alone when Field is empty.
func (p FieldProblem) String() string {
	if p.Field == "" {
		return p.Problem
	}
	return p.Field + ": " + p.Problem
}

// InvalidError is a contact that is well-formed JSON but not a valid contact.
// It is recoverable: a [Reader] can continue with the next contact.
type InvalidError struct {
	// Pos is where the contact is in its file; zero when it comes from [Decode]
	// or [Contact.Validate].
	Pos Position
	// ID is the contact's id when it decoded as a non-empty string, for listing.
	// It may itself be invalid: quote it when printing.
	ID string
	// Problems lists every problem of the contact, at least one.
	Problems []FieldProblem
}

// Error lists the problems, joined with "; ", after the position (or the id
// when there is no position): `contact #3 (line 12): phone: "+12" is not an
// E.164 number (expected + and 7–15 digits, like +14155550123)`. Past 11
// problems it lists 10 and counts the others ("and 25 more problems"), so that
// a hostile record cannot make a huge message.
func (e *InvalidError) Error() string {
	const maxListed = 10
	var b strings.Builder
	switch {
	case !e.Pos.IsZero():
		b.WriteString(e.Pos.String())
	case e.ID != "":
		b.WriteString("contact ")
		b.WriteString(quote(e.ID))
	default:
		b.WriteString("contact")
	}
	b.WriteString(": ")
	if len(e.Problems) == 0 {
		b.WriteString("invalid")
	}
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		if i == maxListed && len(e.Problems) > maxListed+1 {
			fmt.Fprintf(&b, "and %d more problems", len(e.Problems)-maxListed)
			break
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap returns the Err of every problem, so that errors.Is(err, ErrRequired)
// and errors.As(err, &dup) look into the problems.
func (e *InvalidError) Unwrap() []error {
	errs := make([]error, 0, len(e.Problems))
	for _, p := range e.Problems {
		if p.Err != nil {
			errs = append(errs, p.Err)
		}
	}
	return errs
}

// DuplicateIDError is the Err of the problem reported for the second and later
// occurrences of an id within one file. It unwraps to [ErrDuplicateID].
type DuplicateIDError struct {
	// ID is the repeated id.
	ID string
	// First is the position of the first contact with this id.
	First Position
}

// Error reads `id "c-7" repeats contact #2 (line 5)`.
func (e *DuplicateIDError) Error() string {
	return fmt.Sprintf("id %s repeats %s", quote(e.ID), e.First)
}

// Unwrap returns [ErrDuplicateID].
func (e *DuplicateIDError) Unwrap() error { return ErrDuplicateID }

// SyntaxError means a contacts file cannot be read on: malformed JSON, a file that
// is neither a JSON array nor NDJSON, a record over [MaxRecordBytes], data after
// the closing ']'. It is fatal.
type SyntaxError struct {
	// Pos holds the index of the record being read and the line of the error.
	Pos Position
	// Column is the 1-based byte column of the error in its line; 0 when unknown.
	Column int
	// Offset is the byte offset of the error in the file (a byte order mark
	// counts).
	Offset int64
	// Err is the cause: a *json.SyntaxError, [ErrTooLarge], io.ErrUnexpectedEOF,
	// or an error describing the problem.
	Err error
}

// Error reads "line 12, column 5: invalid character '}' looking for beginning of
// object key string".
func (e *SyntaxError) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("line %d, column %d: %v", e.Pos.Line, e.Column, e.Err)
	}
	return fmt.Sprintf("line %d: %v", e.Pos.Line, e.Err)
}

// Unwrap returns Err.
func (e *SyntaxError) Unwrap() error { return e.Err }

// quote quotes s for an error message, cut to maxQuoted characters, so that a
// huge or hostile value (newlines, control characters) cannot flood or forge
// log lines.
func quote(s string) string {
	const maxQuoted = 40
	n := 0
	for i := range s {
		if n == maxQuoted {
			return fmt.Sprintf("%q…", s[:i])
		}
		n++
	}
	return fmt.Sprintf("%q", s)
}
