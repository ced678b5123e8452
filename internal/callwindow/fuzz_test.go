package callwindow

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// FuzzParseWindow: ParseWindow never panics; what it accepts is valid and
// String() round-trips it; what it rejects is a *ParseError.
func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{
		"08:00-21:00", "09:00-20:00 mon-sat", "08:00-21:00 mon,tue,wed,thu,fri skip=2026-12-25,2027-01-01",
		"8:00-20:00 SAT,Sunday", "00:00-24:00 fri-mon", "08:00-21:00 skip=2028-02-29 mon", "21:00-08:00",
		"08:00-21:00 skip=2026-02-29", "08:00-24:30", "09:00-20:00 mon,,fri", "", " \t", "08:00-21:00 ſun",
		"08:00-21:00 skip=", "99:99-99:99", "08:00-21:00 mon sat",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWindow(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalidWindow) || pe.Column < 1 {
				t.Fatalf("ParseWindow(%q) error %v is not a *ParseError with a column", s, err)
			}
			return
		}
		if err := w.Validate(); err != nil {
			t.Fatalf("ParseWindow(%q) = %#v, which does not validate: %v", s, w, err)
		}
		str := w.String()
		again, err := ParseWindow(str)
		if err != nil {
			t.Fatalf("ParseWindow(%q).String() = %q, which does not parse: %v", s, str, err)
		}
		if !reflect.DeepEqual(again, w) {
			t.Fatalf("round trip of %q through %q: %#v != %#v", s, str, again, w)
		}
		if again.String() != str {
			t.Fatalf("String() is not canonical: %q then %q", str, again.String())
		}
	})
}

// FuzzNextOpen: for any window, zone pair and instant NextOpen never panics,
// and what it returns is open, not before t, and (when later than t) the
// very first open instant.
func FuzzNextOpen(f *testing.F) {
	zones := []string{"America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Kolkata",
		"Australia/Lord_Howe", "Pacific/Chatham", "Pacific/Kiritimati", "America/Adak"}
	locs := make([]*time.Location, len(zones))
	for i, n := range zones {
		locs[i] = load(f, n)
	}
	f.Add(8*60, 21*60, uint8(AllDays), int64(1772949600), uint8(0), uint8(0)) // 2026-03-08 06:00Z, New York
	f.Add(90, 150, uint8(AllDays), int64(1793512800), uint8(0), uint8(0))     // 01:30-02:30 on fall-back day
	f.Add(600, 630, uint8(AllDays), int64(1782864000), uint8(6), uint8(7))    // Kiritimati + Adak in July
	f.Add(8*60, 21*60, uint8(2), int64(1777896000), uint8(6), uint8(7))       // Mondays only: never overlap
	f.Fuzz(func(t *testing.T, start, end int, days uint8, unix int64, z1, z2 uint8) {
		w := Window{Start: start, End: end, Days: Weekdays(days)}
		if w.Validate() != nil {
			return
		}
		// Keep to years the zone data describes well: 1990–2100.
		const lo, hi = 631152000, 4102444800
		at := time.Unix(lo+((unix%(hi-lo))+(hi-lo))%(hi-lo), int64(days)*1e6)
		zs := []*time.Location{locs[int(z1)%len(locs)], locs[int(z2)%len(locs)]}
		got, err := NextOpen(w, zs, at)
		if err != nil {
			if !errors.Is(err, ErrNoOpening) {
				t.Fatalf("NextOpen(%s, %v, %s): %v", w, zs, at, err)
			}
			return
		}
		if got.Before(at) || !Open(w, zs, got) {
			t.Fatalf("NextOpen(%s, %v, %s) = %s: before t or closed", w, zs, at, got)
		}
		if got.After(at) && Open(w, zs, got.Add(-time.Nanosecond)) {
			t.Fatalf("NextOpen(%s, %v, %s) = %s, but the instant before is open", w, zs, at, got)
		}
	})
}
