package contact_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/callagent/resilience/internal/contact"
)

// A worker decodes the payload of one message.
func ExampleDecode() {
	c, err := contact.Decode([]byte(`{"id":"c-1","name":"Ada Lovelace","phone":"+14155550101","variables":{"plan":"pro"}}`))
	fmt.Println(c.DisplayName(), c.Phone, c.Variables["plan"], err)

	_, err = contact.Decode([]byte(`{"id":"c-2","phone_number":"+1 (555) 010-0100"}`))
	fmt.Println(err)
	fmt.Println(errors.Is(err, contact.ErrUnknownField), errors.Is(err, contact.ErrRequired))
	// Output:
	// Ada Lovelace +14155550101 pro <nil>
	// contact "c-2": phone_number: unknown field (did you mean "phone"?); phone: is required
	// true true
}

// The publisher streams a contacts file, listing the invalid contacts and
// stopping at the first fatal error.
func ExampleReader() {
	file := strings.NewReader(`[
  {"id": "c-1", "name": "Ada Lovelace", "phone": "+14155550101"},
  {"id": "c-2", "phone": "+1 (555) 010-0100"},
  {"id": "c-1", "name": "Ada again", "phone": "+14155550101"},
  {"id": "c-4", "phone": "+442079460104", "language": "en-GB"}
]`)
	r := contact.NewReader(file)
	for {
		c, pos, err := r.Next()
		var invalid *contact.InvalidError
		switch {
		case err == io.EOF:
			fmt.Println("format:", r.Format())
			return
		case errors.As(err, &invalid):
			fmt.Println("skip:", err)
			continue
		case err != nil: // *contact.SyntaxError, contact.ErrEmpty, a read error
			fmt.Println("stop:", err)
			return
		}
		fmt.Printf("%v: %s %s\n", pos, c.DisplayName(), c.Phone)
	}
	// Output:
	// contact #1 (line 2): Ada Lovelace +14155550101
	// skip: contact #2 (line 3): phone: "+1 (5**) ***-**00" is not an E.164 number (expected + and 7–15 digits with no spaces or punctuation: +15*******00)
	// skip: contact #3 (line 4): id: "c-1" repeats contact #1 (line 2)
	// contact #4 (line 5): Contact c-4 +442079460104
	// format: JSON array
}

// A malformed file stops the reader with a *SyntaxError naming the line.
func ExampleSyntaxError() {
	r := contact.NewReader(strings.NewReader("{\"id\": \"c-1\", \"phone\": \"+14155550101\"}\n{\"id\": \"c-2\",\n"))
	for {
		_, _, err := r.Next()
		var se *contact.SyntaxError
		if errors.As(err, &se) {
			fmt.Println(se.Pos.Line, se)
			return
		}
	}
	// Output:
	// 2 line 2, column 14: unexpected end of line: NDJSON holds one complete JSON object per line
}
