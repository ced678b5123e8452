package field_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/callagent/resilience/internal/config/field"
)

func TestErrorsFlattensJoins(t *testing.T) {
	t.Parallel()
	var l field.List
	l.Required("APIKey", " ", "is required")
	l.Required("VoiceID", "v", "is required")
	l.Addf("Port", "must be 1 to 65535, got %d", 0)
	plain := errors.New("voice settings must be a JSON object")
	err := errors.Join(plain, l.Err())
	if want := "voice settings must be a JSON object\nAPIKey is required\nPort must be 1 to 65535, got 0"; err.Error() != want {
		t.Errorf("err =\n%v\nwant\n%s", err, want)
	}
	fields, rest := field.Errors(fmt.Errorf("wrapped: %w", err))
	if len(fields) != 1 || fields[0].Field != "APIKey" || len(rest) != 0 {
		// A wrapper that is not a join is one error: its first field error, if any.
		t.Errorf("wrapped join: %+v, %v", fields, rest)
	}
	fields, rest = field.Errors(err)
	if len(fields) != 2 || fields[0].Field != "APIKey" || fields[1].Field != "Port" || len(rest) != 1 || rest[0] != plain {
		t.Errorf("Errors = %+v, %v", fields, rest)
	}
	if !errors.Is(err, field.ErrInvalid) || (&field.List{}).Err() != nil {
		t.Error("ErrInvalid does not match, or an empty list is an error")
	}
}
