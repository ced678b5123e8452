// Package field is the error type of component options: each component (a provider client,
// an alert channel) validates its own Options and names the bad ones by their Go field, never
// by an environment variable; internal/config maps the fields back to settings.
package field

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid matches every *Error.
var ErrInvalid = errors.New("invalid option")

// Error is one missing or invalid option, named by its field in the component's Options,
// e.g. {Field: "OutputFormat", Problem: `"flac" is not an ElevenLabs output format; ...`}.
type Error struct {
	// Field is the Options field, e.g. "APIKey".
	Field string
	// Problem completes the sentence, e.g. "is required when SIMULATE is unset".
	Problem string
}

// Error reads "<Field> <Problem>".
func (e *Error) Error() string { return e.Field + " " + e.Problem }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// List collects the problems of one Validate call.
type List struct{ errs []error }

// Addf records that field has the problem described by format.
func (l *List) Addf(field, format string, args ...any) {
	l.errs = append(l.errs, &Error{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// Add records err (an *Error, or joined *Errors) as it is; nil is ignored.
func (l *List) Add(err error) {
	if err != nil {
		l.errs = append(l.errs, err)
	}
}

// Required records problem when value is blank.
func (l *List) Required(field, value, problem string) {
	if strings.TrimSpace(value) == "" {
		l.Addf(field, "%s", problem)
	}
}

// Err returns nil, or every problem recorded joined with errors.Join (one per line).
func (l *List) Err() error { return errors.Join(l.errs...) }

// Errors returns every *Error in err, in order, looking into joins (errors.Join); any other
// error counts as one: its first *Error if it wraps one, else it is returned in rest.
func Errors(err error) (fields []*Error, rest []error) {
	if err == nil {
		return nil, nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			f, r := Errors(e)
			fields, rest = append(fields, f...), append(rest, r...)
		}
		return fields, rest
	}
	var fe *Error
	if errors.As(err, &fe) {
		return []*Error{fe}, nil
	}
	return nil, []error{err}
}
