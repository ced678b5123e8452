package callwindow

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseWindow(t *testing.T) {
	tests := []struct {
		in   string
		want Window
		str  string // canonical String(); in when empty
	}{
		{in: "08:00-21:00", want: DefaultWindow()},
		{in: "09:00-20:00 mon-sat", want: Window{Start: 9 * 60, End: 20 * 60,
			Days: WeekdaysOf(time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday)}},
		{
			in: "08:00-21:00 mon,tue,wed,thu,fri skip=2026-12-25,2027-01-01",
			want: Window{Start: DefaultStart, End: DefaultEnd,
				Days: WeekdaysOf(time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday),
				Skip: []Date{{2026, time.December, 25}, {2027, time.January, 1}}},
			str: "08:00-21:00 mon-fri skip=2026-12-25,2027-01-01",
		},
		{in: "8:00-20:00", want: Window{Start: 8 * 60, End: 20 * 60, Days: AllDays}, str: "08:00-20:00"},
		{in: "00:00-24:00", want: Window{Start: 0, End: MinutesPerDay, Days: AllDays}},
		{in: "  08:30-17:45\tSAT,Sunday  ", want: Window{Start: 8*60 + 30, End: 17*60 + 45,
			Days: WeekdaysOf(time.Saturday, time.Sunday)}, str: "08:30-17:45 sat,sun"},
		{in: "08:00-21:00 mon-sun", want: DefaultWindow(), str: "08:00-21:00"},
		{in: "08:00-21:00 sun-sat", want: DefaultWindow(), str: "08:00-21:00"},
		{in: "08:00-21:00 fri-mon", want: Window{Start: DefaultStart, End: DefaultEnd,
			Days: WeekdaysOf(time.Friday, time.Saturday, time.Sunday, time.Monday)}, str: "08:00-21:00 mon,fri-sun"},
		{in: "08:00-21:00 mon,wed,fri,mon", want: Window{Start: DefaultStart, End: DefaultEnd,
			Days: WeekdaysOf(time.Monday, time.Wednesday, time.Friday)}, str: "08:00-21:00 mon,wed,fri"},
		// Clauses in either order; dates sorted and deduplicated.
		{in: "08:00-21:00 skip=2027-01-01,2026-12-25,2027-01-01 Mon-Fri", want: Window{Start: DefaultStart, End: DefaultEnd,
			Days: WeekdaysOf(time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday),
			Skip: []Date{{2026, time.December, 25}, {2027, time.January, 1}}},
			str: "08:00-21:00 mon-fri skip=2026-12-25,2027-01-01"},
		{in: "08:00-21:00 SKIP=2028-02-29", want: Window{Start: DefaultStart, End: DefaultEnd, Days: AllDays,
			Skip: []Date{{2028, time.February, 29}}}, str: "08:00-21:00 skip=2028-02-29"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseWindow(tt.in)
			if err != nil {
				t.Fatalf("ParseWindow: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseWindow = %#v, want %#v", got, tt.want)
			}
			want := tt.str
			if want == "" {
				want = tt.in
			}
			if got.String() != want {
				t.Fatalf("String() = %q, want %q", got.String(), want)
			}
			again, err := ParseWindow(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip: ParseWindow(%q) = %#v, %v; want %#v", got.String(), again, err, got)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestParseWindowErrors(t *testing.T) {
	tests := []struct {
		in     string
		column int
		msg    string // substring of the message
	}{
		{"", 1, "empty: want hours like 08:00-21:00"},
		{"   ", 1, "empty"},
		{"mon-fri", 1, `start "mon": want HH:MM`},
		{"0800-2100", 1, `start "0800": want HH:MM`},
		{"08:00", 1, `hours "08:00": want START-END like 08:00-21:00`},
		{"08:00-", 7, `end "": want HH:MM`},
		{"08:00-21:00-22:00", 7, `end "21:00-22:00": want HH:MM`},
		{"25:00-26:00", 1, "hour 25 is out of range 00–24"},
		{"08:00-21:60", 7, "minute 60 is out of range 00–59"},
		{"08:00-24:30", 7, `"24:30": is after 24:00`},
		{"24:00-24:00", 1, "start 24:00 is out of range"},
		{"21:00-08:00", 1, "start 21:00 is not before end 08:00 (windows that cross midnight are not supported)"},
		{"09:00-09:00", 1, "start 09:00 is not before end 09:00"},
		{"08:00 - 21:00", 1, `hours "08:00": want START-END`},
		{"09:00-20:00 mon-sot", 17, `unknown day "sot": want mon, tue, wed, thu, fri, sat or sun`},
		{"09:00-20:00 mon,,fri", 17, "empty day in the list"},
		{"09:00-20:00 mon-fri sat", 21, "days given twice (first at column 13)"},
		{"09:00-20:00 xyz", 13, `unknown day "xyz"`},
		{"09:00-20:00 13:00-17:00", 13, `unexpected "13:00-17:00": after the hours come days`},
		{"09:00-20:00 tz=UTC", 13, `unexpected "tz=UTC"`},
		{"08:00-21:00 skip=", 13, "skip= has no dates"},
		{"08:00-21:00 skip=2026-12-25,2026-13-01", 29, `skip date "2026-13-01": month 13 is out of range 01–12`},
		{"08:00-21:00 skip=2026-02-29", 18, "day 29 is out of range 01–28 for 2026-02"},
		{"08:00-21:00 skip=2026-12-25,", 29, "empty date in the list"},
		{"08:00-21:00 skip=26-12-25", 18, "want YYYY-MM-DD"},
		{"08:00-21:00 skip=0000-01-01", 18, "year 0000"},
		{"08:00-21:00 skip=2026-12-25 skip=2027-01-01", 29, "skip= given twice (first at column 13)"},
		{"08:00-21:00 mön", 13, `unknown day "mön"`},
		{"08:00-21:00 ſun,xyz", 17, `unknown day "xyz"`}, // columns count characters ("ſ" is two bytes and folds to "s")
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			w, err := ParseWindow(tt.in)
			if err == nil {
				t.Fatalf("ParseWindow = %v, want an error", w)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *ParseError", err, err)
			}
			if !errors.Is(err, ErrInvalidWindow) {
				t.Errorf("error does not wrap ErrInvalidWindow")
			}
			if pe.Column != tt.column || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("error = %q (column %d), want column %d and %q", err, pe.Column, tt.column, tt.msg)
			}
			if !strings.Contains(err.Error(), "column ") {
				t.Errorf("error %q does not say where", err)
			}
		})
	}
}

func TestParseErrorTruncatesLongInput(t *testing.T) {
	_, err := ParseWindow(strings.Repeat("x", 500))
	if err == nil || len(err.Error()) > 200 {
		t.Fatalf("error = %q, want a short one", err)
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultWindow().Validate(); err != nil {
		t.Fatalf("DefaultWindow: %v", err)
	}
	tests := []struct {
		name string
		w    Window
		msg  string
	}{
		{"zero window", Window{}, "not set (zero value): use DefaultWindow"},
		{"negative start", Window{Start: -1, End: 60, Days: AllDays}, "start -1 minutes is outside"},
		{"end past midnight", Window{Start: 0, End: MinutesPerDay + 1, Days: AllDays}, "end 1441 minutes is outside 00:01–24:00"},
		{"start after end", Window{Start: 600, End: 540, Days: AllDays}, "start 10:00 is not before end 09:00"},
		{"no days", Window{Start: 480, End: 1260}, "no day of the week"},
		{"bad day bits", Window{Start: 480, End: 1260, Days: 0x80 | 1}, "not weekdays"},
		{"bad skip date", Window{Start: 480, End: 1260, Days: AllDays, Skip: []Date{{2026, time.February, 30}}}, "2026-02-30 is not a real date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.w.Validate()
			if err == nil || !errors.Is(err, ErrInvalidWindow) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Validate = %v, want ErrInvalidWindow with %q", err, tt.msg)
			}
		})
	}
}

func TestWindowTextAndFlag(t *testing.T) {
	var w Window
	if err := w.UnmarshalText([]byte("09:00-20:00 mon-sat")); err != nil {
		t.Fatal(err)
	}
	b, err := w.MarshalText()
	if err != nil || string(b) != "09:00-20:00 mon-sat" {
		t.Fatalf("MarshalText = %q, %v", b, err)
	}
	if _, err := (Window{}).MarshalText(); !errors.Is(err, ErrInvalidWindow) {
		t.Fatalf("MarshalText of the zero window = %v, want ErrInvalidWindow", err)
	}
	if err := w.Set("bogus"); err == nil {
		t.Fatal("Set(bogus) succeeded")
	}
	if w.String() != "09:00-20:00 mon-sat" {
		t.Fatalf("a failed Set changed the window to %v", w)
	}
	if err := w.Set("08:00-20:00"); err != nil || w.String() != "08:00-20:00" || w.Type() != "window" {
		t.Fatalf("Set: %v, %v", err, w)
	}
}

func TestStringSortsUnsortedSkip(t *testing.T) {
	w := DefaultWindow()
	w.Skip = []Date{{2027, time.January, 1}, {2026, time.December, 25}, {2027, time.January, 1}}
	if got := w.String(); got != "08:00-21:00 skip=2026-12-25,2027-01-01" {
		t.Fatalf("String() = %q", got)
	}
	if w.Skip[0] != (Date{2027, time.January, 1}) {
		t.Fatal("String() reordered the caller's slice")
	}
}

func TestWeekdaysString(t *testing.T) {
	tests := []struct {
		days Weekdays
		want string
	}{
		{AllDays, "mon-sun"},
		{0, ""},
		{WeekdaysOf(time.Sunday), "sun"},
		{WeekdaysOf(time.Saturday, time.Sunday), "sat,sun"},
		{WeekdaysOf(time.Monday, time.Tuesday, time.Wednesday), "mon-wed"},
		{WeekdaysOf(time.Monday, time.Wednesday, time.Thursday, time.Friday, time.Sunday), "mon,wed-fri,sun"},
	}
	for _, tt := range tests {
		if got := tt.days.String(); got != tt.want {
			t.Errorf("%07b.String() = %q, want %q", uint8(tt.days), got, tt.want)
		}
	}
}

func TestParseDate(t *testing.T) {
	d, err := ParseDate("2026-12-25")
	if err != nil || d != (Date{2026, time.December, 25}) || d.String() != "2026-12-25" {
		t.Fatalf("ParseDate = %v, %v", d, err)
	}
	if _, err := ParseDate("2026-12-32"); err == nil || !strings.Contains(err.Error(), `date "2026-12-32": day 32`) {
		t.Fatalf("ParseDate(2026-12-32) error = %v", err)
	}
	if got := DateOf(time.Date(2026, 3, 8, 23, 0, 0, 0, time.UTC)); got != (Date{2026, time.March, 8}) {
		t.Fatalf("DateOf = %v", got)
	}
}
