// Package secret holds Secret, a credential that prints masked everywhere.
package secret

import (
	"fmt"
	"log/slog"
)

// secretMask is what a non-empty Secret prints as.
const secretMask = "<secret>"

// Secret is a credential (an API key, a bot token, a password) that never
// prints: fmt with any verb, JSON, text encoding and slog all give "<secret>",
// so a Config can be logged or dumped whole. An empty Secret prints as "", so
// a dump still shows which credentials are missing. Reveal returns the value
// for the one place that needs it, such as an HTTP header.
//
// fmt cannot call methods on unexported struct fields, so keep Secret values
// in exported fields or print the struct with care.
type Secret string

// Reveal returns the secret value itself.
func (s Secret) Reveal() string { return string(s) }

// String returns "<secret>", or "" when the secret is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return secretMask
}

// GoString returns "<secret>" for %#v, or `""` when the secret is empty.
func (s Secret) GoString() string {
	if s == "" {
		return `""`
	}
	return secretMask
}

// Format prints the mask for every verb, so no verb (%x, %q, %d, ...) can
// reach the value.
func (s Secret) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'q':
		_, _ = fmt.Fprintf(f, "%q", s.String())
	case verb == 'v' && f.Flag('#'):
		_, _ = fmt.Fprint(f, s.GoString())
	default:
		_, _ = fmt.Fprint(f, s.String())
	}
}

// MarshalJSON encodes the mask as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%q", s.String()), nil
}

// MarshalText returns the mask.
func (s Secret) MarshalText() ([]byte, error) {
	return []byte(s.String()), nil
}

// LogValue returns the mask for log/slog.
func (s Secret) LogValue() slog.Value {
	return slog.StringValue(s.String())
}
