package callwindow

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInvalidWindow is wrapped by every error from ParseWindow and
// Window.Validate.
var ErrInvalidWindow = errors.New("invalid calling window")

// Default window bounds, in minutes since local midnight: 08:00–21:00, the
// TCPA hours (47 CFR 64.1200(c)(1)).
const (
	DefaultStart = 8 * 60
	DefaultEnd   = 21 * 60

	// MinutesPerDay is the largest valid End (24:00).
	MinutesPerDay = 24 * 60
)

// Window is a campaign's calling window in the contact's local time.
//
// The zero Window is not the default (it is invalid: Start is not before
// End); use DefaultWindow or ParseWindow.
type Window struct {
	// Start is the local clock time the window opens, in minutes since
	// midnight (0–1439).
	Start int
	// End is the local clock time the window closes, in minutes since
	// midnight (1–1440, 1440 meaning 24:00). It is exclusive: a window
	// ending at 21:00 is open at 20:59:59.999 and closed at 21:00. Windows
	// that cross midnight are not supported.
	End int
	// Days are the allowed local weekdays. It must not be empty.
	Days Weekdays
	// Skip lists local dates on which the window stays closed (holidays).
	// ParseWindow returns it sorted without duplicates, or nil.
	Skip []Date
}

// DefaultWindow returns 08:00–21:00 local, every day, no skipped dates.
func DefaultWindow() Window {
	return Window{Start: DefaultStart, End: DefaultEnd, Days: AllDays}
}

// Validate reports whether w is usable: hours within 00:00–24:00, Start
// before End, at least one day, and real skip dates.
func (w Window) Validate() error {
	switch {
	case w.Start == 0 && w.End == 0 && w.Days == 0 && len(w.Skip) == 0:
		return fmt.Errorf("%w: the window is not set (zero value): use DefaultWindow or ParseWindow", ErrInvalidWindow)
	case w.Start < 0 || w.Start >= MinutesPerDay:
		return fmt.Errorf("%w: start %s is outside 00:00–23:59", ErrInvalidWindow, clockString(w.Start))
	case w.End <= 0 || w.End > MinutesPerDay:
		return fmt.Errorf("%w: end %s is outside 00:01–24:00", ErrInvalidWindow, clockString(w.End))
	case w.Start >= w.End:
		return fmt.Errorf("%w: start %s is not before end %s (windows that cross midnight are not supported)",
			ErrInvalidWindow, clockString(w.Start), clockString(w.End))
	case w.Days&AllDays == 0:
		return fmt.Errorf("%w: no day of the week is allowed", ErrInvalidWindow)
	case w.Days&^AllDays != 0:
		return fmt.Errorf("%w: days %#x has bits that are not weekdays", ErrInvalidWindow, uint8(w.Days))
	}
	for _, d := range w.Skip {
		if !d.valid() {
			return fmt.Errorf("%w: skip date %04d-%02d-%02d is not a real date", ErrInvalidWindow, d.Year, int(d.Month), d.Day)
		}
	}
	return nil
}

// String returns w in the grammar ParseWindow reads, in canonical form:
// "08:00-21:00", then the days unless all are allowed, then "skip=" and the
// sorted dates if any, e.g. "09:00-20:00 mon-sat skip=2026-12-25".
func (w Window) String() string {
	var b strings.Builder
	b.WriteString(clockString(w.Start))
	b.WriteByte('-')
	b.WriteString(clockString(w.End))
	if w.Days != AllDays {
		b.WriteByte(' ')
		b.WriteString(w.Days.String())
	}
	if len(w.Skip) > 0 {
		b.WriteString(" skip=")
		for i, d := range normalizeDates(w.Skip) {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(d.String())
		}
	}
	return b.String()
}

// MarshalText implements encoding.TextMarshaler with String.
func (w Window) MarshalText() ([]byte, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	return []byte(w.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseWindow.
func (w *Window) UnmarshalText(text []byte) error {
	p, err := ParseWindow(string(text))
	if err != nil {
		return err
	}
	*w = p
	return nil
}

// Set parses s into w, so that *Window is a flag.Value (and a pflag.Value).
func (w *Window) Set(s string) error { return w.UnmarshalText([]byte(s)) }

// Type names the flag value type for pflag's help output.
func (*Window) Type() string { return "window" }

// skipped reports whether d is one of w's skip dates.
func (w Window) skipped(d Date) bool {
	return slices.Contains(w.Skip, d)
}

// allows reports whether the window may open on local date d.
func (w Window) allows(d Date, wd time.Weekday) bool {
	return w.Days.Has(wd) && !w.skipped(d)
}

func clockString(m int) string {
	if m < 0 || m > MinutesPerDay {
		return fmt.Sprintf("%d minutes", m)
	}
	return fmt.Sprintf("%02d:%02d", m/60, m%60)
}

// Weekdays is a set of time.Weekday values: bit d is set when day d is in the
// set.
type Weekdays uint8

// AllDays is every day of the week.
const AllDays Weekdays = 1<<7 - 1

// WeekdaysOf returns the set holding days.
func WeekdaysOf(days ...time.Weekday) Weekdays {
	var s Weekdays
	for _, d := range days {
		if d >= time.Sunday && d <= time.Saturday {
			s |= 1 << d
		}
	}
	return s
}

// Has reports whether d is in s.
func (s Weekdays) Has(d time.Weekday) bool {
	return d >= time.Sunday && d <= time.Saturday && s&(1<<d) != 0
}

// weekOrder is the order days are written in: the week starts on Monday.
var weekOrder = [7]time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}

var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// String writes s in the days grammar, Monday first, runs of three or more
// days as ranges: "mon-fri", "mon,wed,fri", "mon,fri-sun"; "mon-sun" for all
// days and "" for none.
func (s Weekdays) String() string {
	var parts []string
	for i := 0; i < len(weekOrder); {
		if !s.Has(weekOrder[i]) {
			i++
			continue
		}
		j := i
		for j+1 < len(weekOrder) && s.Has(weekOrder[j+1]) {
			j++
		}
		switch j - i {
		case 0:
			parts = append(parts, dayNames[weekOrder[i]])
		case 1:
			parts = append(parts, dayNames[weekOrder[i]], dayNames[weekOrder[j]])
		default:
			parts = append(parts, dayNames[weekOrder[i]]+"-"+dayNames[weekOrder[j]])
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// Date is a local calendar date, without a time or a zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the date of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// String returns d as YYYY-MM-DD.
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// Compare returns -1, 0 or +1 as d is before, equal to or after e.
func (d Date) Compare(e Date) int {
	if c := compareInt(d.Year, e.Year); c != 0 {
		return c
	}
	if c := compareInt(int(d.Month), int(e.Month)); c != 0 {
		return c
	}
	return compareInt(d.Day, e.Day)
}

func compareInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (d Date) valid() bool {
	return d.Year >= 1 && d.Year <= 9999 && d.Month >= time.January && d.Month <= time.December &&
		d.Day >= 1 && d.Day <= daysIn(d.Year, d.Month)
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// ParseDate reads a date written YYYY-MM-DD (exactly four, two and two
// digits) and checks that it exists.
func ParseDate(s string) (Date, error) {
	d, msg := parseDate(s)
	if msg != "" {
		return Date{}, fmt.Errorf("%w: date %s: %s", ErrInvalidWindow, quote(s), msg)
	}
	return d, nil
}

func parseDate(s string) (Date, string) {
	if len(s) != len("2006-01-02") || s[4] != '-' || s[7] != '-' ||
		!allDigits(s[0:4]) || !allDigits(s[5:7]) || !allDigits(s[8:10]) {
		return Date{}, "want YYYY-MM-DD, like 2026-12-25"
	}
	y, _ := strconv.Atoi(s[0:4])
	m, _ := strconv.Atoi(s[5:7])
	d, _ := strconv.Atoi(s[8:10])
	switch {
	case y < 1:
		return Date{}, "year 0000 is out of range 0001–9999"
	case m < 1 || m > 12:
		return Date{}, fmt.Sprintf("month %02d is out of range 01–12", m)
	case d < 1 || d > daysIn(y, time.Month(m)):
		return Date{}, fmt.Sprintf("day %02d is out of range 01–%02d for %04d-%02d", d, daysIn(y, time.Month(m)), y, m)
	}
	return Date{y, time.Month(m), d}, ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// normalizeDates returns ds sorted without duplicates, in a new slice (nil
// for none).
func normalizeDates(ds []Date) []Date {
	if len(ds) == 0 {
		return nil
	}
	out := slices.Clone(ds)
	slices.SortFunc(out, Date.Compare)
	return slices.Compact(out)
}

// ParseError is a syntax error in a window string. It wraps
// ErrInvalidWindow.
type ParseError struct {
	Input  string // the whole string, as given
	Column int    // 1-based column (in characters) where the problem is
	Msg    string // what is wrong there
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("calling window %s: column %d: %s", truncQuote(e.Input, 80), e.Column, e.Msg)
}

// quote quotes a token for an error message, cut to 32 characters.
func quote(s string) string { return truncQuote(s, 32) }

func truncQuote(s string, max int) string {
	if utf8.RuneCountInString(s) > max {
		return strconv.Quote(string([]rune(s)[:max-3])) + "..."
	}
	return strconv.Quote(s)
}

func (e *ParseError) Unwrap() error { return ErrInvalidWindow }

// ParseWindow reads a window written as
//
//	window = hours [ days ] [ skip ]     (fields separated by spaces; days and skip in either order)
//	hours  = clock "-" clock             08:00-21:00 (start inclusive, end exclusive)
//	clock  = H:MM | HH:MM                00:00 … 24:00 (24:00 only as an end)
//	days   = span *( "," span )          mon-fri | mon,wed,fri | sat,sun | fri-mon (wraps over the weekend)
//	span   = day | day "-" day
//	day    = mon | tue | wed | thu | fri | sat | sun   (or the full name; any case)
//	skip   = "skip=" date *( "," date )  skip=2026-12-25,2027-01-01
//	date   = YYYY-MM-DD                  a local date in the contact's zone
//
// Without days the window is open every day. Examples: "08:00-21:00",
// "09:00-20:00 mon-sat", "08:00-21:00 mon,tue,wed,thu,fri skip=2026-12-25,2027-01-01".
// Errors are *ParseError values naming what is wrong and the column.
func ParseWindow(s string) (Window, error) {
	fields := splitFields(s)
	if len(fields) == 0 {
		return Window{}, &ParseError{Input: s, Column: 1, Msg: "empty: want hours like 08:00-21:00, then optional days (mon-fri) and skip=YYYY-MM-DD,..."}
	}
	col := func(off int) int { return utf8.RuneCountInString(s[:off]) + 1 }
	fail := func(off int, format string, args ...any) (Window, error) {
		return Window{}, &ParseError{Input: s, Column: col(off), Msg: fmt.Sprintf(format, args...)}
	}

	w := Window{Days: AllDays}
	h := fields[0]
	dash := strings.IndexByte(h.text, '-')
	if dash < 0 {
		return fail(h.off, "hours %s: want START-END like 08:00-21:00", quote(h.text))
	}
	var msg string
	if w.Start, msg = parseClock(h.text[:dash]); msg != "" {
		return fail(h.off, "start %s", msg)
	}
	if w.End, msg = parseClock(h.text[dash+1:]); msg != "" {
		return fail(h.off+dash+1, "end %s", msg)
	}
	if w.Start == MinutesPerDay {
		return fail(h.off, "start 24:00 is out of range (a window starts at 23:59 at the latest)")
	}
	if w.Start >= w.End {
		return fail(h.off, "start %s is not before end %s (windows that cross midnight are not supported)",
			clockString(w.Start), clockString(w.End))
	}

	daysAt, skipAt := -1, -1
	for _, f := range fields[1:] {
		if len(f.text) >= len("skip=") && strings.EqualFold(f.text[:len("skip=")], "skip=") {
			if skipAt >= 0 {
				return fail(f.off, "skip= given twice (first at column %d): list every date in one skip=", col(skipAt))
			}
			skipAt = f.off
			list := f.text[len("skip="):]
			if list == "" {
				return fail(f.off, "skip= has no dates: want skip=YYYY-MM-DD[,YYYY-MM-DD...]")
			}
			var dates []Date
			for off, item := range splitList(list) {
				d, msg := parseDate(item)
				if msg != "" {
					if item == "" {
						msg = "empty date in the list"
					}
					return fail(f.off+len("skip=")+off, "skip date %s: %s", quote(item), msg)
				}
				dates = append(dates, d)
			}
			w.Skip = normalizeDates(dates)
			continue
		}
		if strings.Contains(f.text, "=") || strings.Contains(f.text, ":") {
			return fail(f.off, "unexpected %s: after the hours come days (mon-fri) and skip=YYYY-MM-DD,...", quote(f.text))
		}
		if daysAt >= 0 {
			return fail(f.off, "days given twice (first at column %d): join them with commas, like mon-fri,sun", col(daysAt))
		}
		daysAt = f.off
		w.Days = 0
		for off, item := range splitList(f.text) {
			days, relOff, msg := parseSpan(item)
			if msg != "" {
				return fail(f.off+off+relOff, "%s", msg)
			}
			w.Days |= days
		}
	}
	return w, nil
}

type field struct {
	text string
	off  int // byte offset in the input
}

// splitFields splits s at runs of spaces and tabs, keeping each field's byte
// offset.
func splitFields(s string) []field {
	var out []field
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' || s[i] == '\t' {
			if start >= 0 {
				out = append(out, field{s[start:i], start})
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	return out
}

// splitList yields the comma-separated items of s with their byte offsets in
// s, empty items included.
func splitList(s string) func(yield func(int, string) bool) {
	return func(yield func(int, string) bool) {
		off := 0
		for {
			i := strings.IndexByte(s[off:], ',')
			if i < 0 {
				yield(off, s[off:])
				return
			}
			if !yield(off, s[off:off+i]) {
				return
			}
			off += i + 1
		}
	}
}

// parseClock reads H:MM or HH:MM, 00:00 to 24:00, returning minutes since
// midnight or a message.
func parseClock(s string) (int, string) {
	colon := strings.IndexByte(s, ':')
	if colon < 1 || colon > 2 || len(s) != colon+3 || !allDigits(s[:colon]) || !allDigits(s[colon+1:]) {
		return 0, fmt.Sprintf("%s: want HH:MM, like 08:00", quote(s))
	}
	h, _ := strconv.Atoi(s[:colon])
	m, _ := strconv.Atoi(s[colon+1:])
	switch {
	case h > 24:
		return 0, fmt.Sprintf("%q: hour %d is out of range 00–24", s, h)
	case m > 59:
		return 0, fmt.Sprintf("%q: minute %d is out of range 00–59", s, m)
	case h == 24 && m != 0:
		return 0, fmt.Sprintf("%q: is after 24:00", s)
	}
	return h*60 + m, ""
}

// parseSpan reads "mon" or "mon-fri" (wrapping past Sunday: "fri-mon" is
// fri,sat,sun,mon), returning the days or a message with the offset of the
// bad part within s.
func parseSpan(s string) (Weekdays, int, string) {
	if s == "" {
		return 0, 0, "empty day in the list: want days like mon-fri or mon,wed,fri"
	}
	first, last, found := strings.Cut(s, "-")
	a, ok := parseDay(first)
	if !ok {
		return 0, 0, unknownDay(first)
	}
	if !found {
		return 1 << a, 0, ""
	}
	b, ok := parseDay(last)
	if !ok {
		return 0, len(first) + 1, unknownDay(last)
	}
	var days Weekdays
	for d := a; ; d = (d + 1) % 7 {
		days |= 1 << d
		if d == b {
			return days, 0, ""
		}
	}
}

func unknownDay(s string) string {
	return fmt.Sprintf("unknown day %s: want mon, tue, wed, thu, fri, sat or sun", quote(s))
}

var fullDayNames = [7]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

func parseDay(s string) (time.Weekday, bool) {
	for d := range dayNames {
		if strings.EqualFold(s, dayNames[d]) || strings.EqualFold(s, fullDayNames[d]) {
			return time.Weekday(d), true
		}
	}
	return 0, false
}
