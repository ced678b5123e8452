package contact

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// bigNDJSON is an NDJSON file of several lookahead chunks, with what the lookahead must
// carry over their boundaries: blank lines, CRLF, invalid and repeated contacts, a syntax
// error at the end.
func bigNDJSON(records int) []byte {
	var b bytes.Buffer
	b.WriteString("\xEF\xBB\xBF\n  \n")
	for i := range records {
		switch {
		case i%997 == 5:
			fmt.Fprintf(&b, `{"id":"c-%d","phone":"+1 415 555 0100"}`, i) // invalid phone
		case i%1499 == 7:
			b.WriteString(`{"id":"c-3","phone":"+14155550100"}`) // repeats contact #4
		case i%613 == 11:
			fmt.Fprintf(&b, `{"id":"c-%d","phone":"+14155550100","name":"caf\u00e9"}`, i) // an escape: the full check
		default:
			fmt.Fprintf(&b, `{"id":"c-%d","name":"Contact %d","phone":"+1415%07d","variables":{"topic":"%s"}}`, i, i, i, strings.Repeat("x", i%300))
		}
		switch i % 7 {
		case 0:
			b.WriteString("\r\n")
		case 1:
			b.WriteString("\n\n \t\n")
		default:
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// TestCheckReadsAheadAsNextReads: over many chunks, Check (which reads ahead) returns the
// positions, errors and raw records that Next returns, up to the final error.
func TestCheckReadsAheadAsNextReads(t *testing.T) {
	big := bigNDJSON(20_000)
	for name, data := range map[string][]byte{
		"clean end":    big,
		"syntax error": append(bytes.Clone(big), `{"id":"z","phone":"+14155550100"`+"\n"+`{"id":"y"}`...),
		"too long":     append(bytes.Clone(big), append(bytes.Repeat([]byte(" "), MaxRecordBytes+10), "\n{}"...)...),
		"no newline":   bytes.TrimRight(big, "\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			next, check := NewReader(bytes.NewReader(data)), NewReader(iotest.HalfReader(bytes.NewReader(data)))
			compareCheck(t, next, check)
		})
	}
	t.Run("read error", func(t *testing.T) {
		errDisk := errors.New("disk on fire")
		src := func() io.Reader { return io.MultiReader(bytes.NewReader(big), iotest.ErrReader(errDisk)) }
		if err := compareCheck(t, NewReader(src()), NewReader(src())); !errors.Is(err, errDisk) {
			t.Fatalf("last error %v, want %v", err, errDisk)
		}
	})
}

// compareCheck reads next with Next and check with Check to the end, fails t where they
// differ, and returns the final error.
func compareCheck(t *testing.T, next, check *Reader) error {
	t.Helper()
	invalid := 0
	for n := 0; ; n++ {
		c, pos, err := next.Next()
		checkPos, checkErr := check.Check()
		if checkPos != pos || !sameError(checkErr, err) || !bytes.Equal(check.Raw(), next.Raw()) {
			t.Fatalf("record %d: Check = %v, %v, %q; Next = %v, %v, %q", n, checkPos, checkErr, check.Raw(), pos, err, next.Raw())
		}
		var ie *InvalidError
		switch {
		case err == nil && c.ID == "":
			t.Fatalf("record %d: no id", n)
		case errors.As(err, &ie):
			invalid++
		case err != nil:
			if _, again := check.Check(); again != checkErr {
				t.Fatalf("Check after %v = %v, want the same error", checkErr, again)
			}
			if invalid == 0 {
				t.Fatal("no invalid contact: the test file is wrong")
			}
			return err
		}
	}
}

// TestCheckThenOtherReads: after Check has read ahead, Next and Skim go on from the next
// record.
func TestCheckThenOtherReads(t *testing.T) {
	data := bigNDJSON(3000)
	ref := NewReader(bytes.NewReader(data))
	r := NewReader(bytes.NewReader(data))
	for n := 0; ; n++ {
		c, pos, err := ref.Next()
		var got Contact
		var gotPos Position
		var gotErr error
		switch n % 3 {
		case 0:
			gotPos, gotErr = r.Check()
			got = c
		case 1:
			got, gotPos, gotErr = r.Next()
		case 2:
			var id string
			id, gotPos, gotErr = r.Skim()
			got = c
			if err == nil && id != c.ID {
				t.Fatalf("record %d: Skim id %q, want %q", n, id, c.ID)
			}
			if _, ok := err.(*InvalidError); ok {
				gotErr = err // Skim does not validate
			}
		}
		if gotPos != pos || !sameError(gotErr, err) || got.ID != c.ID {
			t.Fatalf("record %d: %v %v %q; Next: %v %v %q", n, gotPos, gotErr, got.ID, pos, err, c.ID)
		}
		if err == io.EOF {
			return
		}
	}
}

// TestCheckLeavesNoGoroutine: a Reader dropped half-way through a check leaves no goroutine
// reading ahead.
func TestCheckLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 20 {
		r := NewReader(bytes.NewReader(bigNDJSON(5000)))
		for range 1000 {
			if _, err := r.Check(); err != nil && !isInvalid(err) {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
