package callwindow

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func load(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustParse(t testing.TB, s string) Window {
	t.Helper()
	w, err := ParseWindow(s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

type openCase struct {
	name     string
	at       string // RFC 3339 instant
	wantOpen bool
	next     string // the expected NextOpen; at when open
}

// checkCases checks Open, NextOpen and ClampRetry at each instant, and that
// the instant just before a later opening is closed.
func checkCases(t *testing.T, w Window, zones []*time.Location, cases []openCase) {
	t.Helper()
	for _, c := range cases {
		at := utc(t, c.at)
		if got := Open(w, zones, at); got != c.wantOpen {
			t.Errorf("%s: Open(%s) = %v, want %v", c.name, c.at, got, c.wantOpen)
		}
		want := at
		if c.next != "" {
			want = utc(t, c.next)
		}
		got, err := NextOpen(w, zones, at)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: NextOpen(%s) = %s, %v; want %s", c.name, c.at, got.UTC().Format(time.RFC3339Nano), err, want.Format(time.RFC3339))
			continue
		}
		if !Open(w, zones, got) {
			t.Errorf("%s: NextOpen(%s) = %s, which is not open", c.name, c.at, got)
		}
		if got.After(at) && Open(w, zones, got.Add(-time.Nanosecond)) {
			t.Errorf("%s: NextOpen(%s) = %s, but the nanosecond before is open too", c.name, c.at, got)
		}
		clamped, err := ClampRetry(w, zones, at)
		if err != nil || !clamped.Equal(want) {
			t.Errorf("%s: ClampRetry(%s) = %s, %v; want %s", c.name, c.at, clamped, err, want)
		}
	}
}

func TestOpenAcrossZones(t *testing.T) {
	w := DefaultWindow()
	// 2026-05-04 is a Monday; the US and the UK are on summer time.
	t.Run("America/Los_Angeles", func(t *testing.T) {
		checkCases(t, w, []*time.Location{load(t, "America/Los_Angeles")}, []openCase{
			{"07:59:59 PDT", "2026-05-04T14:59:59Z", false, "2026-05-04T15:00:00Z"},
			{"08:00 PDT", "2026-05-04T15:00:00Z", true, ""},
			{"20:59 PDT", "2026-05-05T03:59:00Z", true, ""},
			{"20:59:59.999999999 PDT", "2026-05-05T03:59:59.999999999Z", true, ""},
			{"21:00 PDT", "2026-05-05T04:00:00Z", false, "2026-05-05T15:00:00Z"},
		})
	})
	t.Run("America/New_York", func(t *testing.T) {
		checkCases(t, w, []*time.Location{load(t, "America/New_York")}, []openCase{
			{"07:00 EDT", "2026-05-04T11:00:00Z", false, "2026-05-04T12:00:00Z"},
			{"20:59 EDT", "2026-05-05T00:59:00Z", true, ""},
			{"21:00 EDT", "2026-05-05T01:00:00Z", false, "2026-05-05T12:00:00Z"},
		})
	})
	t.Run("Europe/London", func(t *testing.T) {
		checkCases(t, w, []*time.Location{load(t, "Europe/London")}, []openCase{
			{"07:30 BST", "2026-05-04T06:30:00Z", false, "2026-05-04T07:00:00Z"},
			{"21:00 BST", "2026-05-04T20:00:00Z", false, "2026-05-05T07:00:00Z"},
			// In winter London is on UTC.
			{"08:00 GMT", "2026-01-05T08:00:00Z", true, ""},
			{"21:00 GMT", "2026-01-05T21:00:00Z", false, "2026-01-06T08:00:00Z"},
		})
	})
	t.Run("Asia/Kolkata half-hour offset", func(t *testing.T) {
		checkCases(t, w, []*time.Location{load(t, "Asia/Kolkata")}, []openCase{
			{"07:59 IST", "2026-05-04T02:29:00Z", false, "2026-05-04T02:30:00Z"},
			{"08:00 IST", "2026-05-04T02:30:00Z", true, ""},
			{"20:59:59 IST", "2026-05-04T15:29:59Z", true, ""},
			{"21:00 IST", "2026-05-04T15:30:00Z", false, "2026-05-05T02:30:00Z"},
		})
	})
	t.Run("Asia/Kathmandu quarter-hour offset", func(t *testing.T) {
		checkCases(t, w, []*time.Location{load(t, "Asia/Kathmandu")}, []openCase{
			{"07:00 NPT", "2026-05-04T01:15:00Z", false, "2026-05-04T02:15:00Z"},
		})
	})
	t.Run("one instant, four contacts", func(t *testing.T) {
		// 15:10Z: 08:10 in Los Angeles, 11:10 in New York, 16:10 in London, 20:40 in Kolkata.
		at := utc(t, "2026-05-04T15:10:00Z")
		for _, name := range []string{"America/Los_Angeles", "America/New_York", "Europe/London", "Asia/Kolkata"} {
			if !Open(w, []*time.Location{load(t, name)}, at) {
				t.Errorf("closed in %s at %s", name, at)
			}
		}
		// 15:30Z: 21:00 in Kolkata: closed there only.
		at = utc(t, "2026-05-04T15:30:00Z")
		for _, name := range []string{"America/Los_Angeles", "America/New_York", "Europe/London", "Asia/Kolkata"} {
			if got := Open(w, []*time.Location{load(t, name)}, at); got != (name != "Asia/Kolkata") {
				t.Errorf("Open in %s at %s = %v", name, at, got)
			}
		}
	})
}

func TestNextOpenKeepsLocation(t *testing.T) {
	ny := load(t, "America/New_York")
	zones := []*time.Location{load(t, "America/Los_Angeles")}
	at := time.Date(2026, 5, 4, 9, 0, 0, 0, ny) // 06:00 in Los Angeles
	got, err := NextOpen(DefaultWindow(), zones, at)
	if err != nil {
		t.Fatal(err)
	}
	if got.Location() != ny || got.Format("15:04 MST") != "11:00 EDT" {
		t.Fatalf("NextOpen = %s in %s, want 11:00 EDT", got, got.Location())
	}
	open := time.Date(2026, 5, 4, 12, 0, 0, 0, ny)
	if got, _ := NextOpen(DefaultWindow(), zones, open); got != open {
		t.Fatalf("NextOpen of an open instant = %v, want it unchanged", got)
	}
}

func TestDSTNewYork(t *testing.T) {
	ny := []*time.Location{load(t, "America/New_York")}
	// 2026-03-08: at 02:00 EST (07:00Z) clocks jump to 03:00 EDT.
	t.Run("spring forward 08:00-21:00", func(t *testing.T) {
		checkCases(t, DefaultWindow(), ny, []openCase{
			{"21:00 EST the day before", "2026-03-07T02:00:00Z", false, "2026-03-07T13:00:00Z"},
			{"00:00 EST", "2026-03-08T05:00:00Z", false, "2026-03-08T12:00:00Z"}, // 08:00 EDT
			{"07:59 EDT", "2026-03-08T11:59:00Z", false, "2026-03-08T12:00:00Z"},
			{"20:59 EDT", "2026-03-09T00:59:00Z", true, ""},
			{"21:00 EDT", "2026-03-09T01:00:00Z", false, "2026-03-09T12:00:00Z"},
		})
	})
	t.Run("spring forward 01:30-02:30 closes at the jump", func(t *testing.T) {
		// Open while the clock reads 01:30–01:59:59 EST; the next reading is
		// 03:00 EDT, past the end: 30 real minutes.
		checkCases(t, mustParse(t, "01:30-02:30"), ny, []openCase{
			{"00:00 EST", "2026-03-08T05:00:00Z", false, "2026-03-08T06:30:00Z"},
			{"01:59:59 EST", "2026-03-08T06:59:59Z", true, ""},
			{"03:00 EDT", "2026-03-08T07:00:00Z", false, "2026-03-09T05:30:00Z"}, // 01:30 EDT the next day
		})
	})
	t.Run("spring forward 02:15-04:00 opens after the gap", func(t *testing.T) {
		checkCases(t, mustParse(t, "02:15-04:00"), ny, []openCase{
			{"00:00 EST", "2026-03-08T05:00:00Z", false, "2026-03-08T07:00:00Z"}, // 03:00 EDT
			{"01:59:59 EST", "2026-03-08T06:59:59Z", false, "2026-03-08T07:00:00Z"},
			{"03:59 EDT", "2026-03-08T07:59:00Z", true, ""},
			{"04:00 EDT", "2026-03-08T08:00:00Z", false, "2026-03-09T06:15:00Z"},
		})
	})
	t.Run("spring forward 02:00-02:30 lies in the gap: no opening that day", func(t *testing.T) {
		checkCases(t, mustParse(t, "02:00-02:30"), ny, []openCase{
			{"00:00 EST", "2026-03-08T05:00:00Z", false, "2026-03-09T06:00:00Z"}, // 02:00 EDT on 03-09
		})
	})
	// 2026-11-01: at 02:00 EDT (06:00Z) clocks go back to 01:00 EST.
	t.Run("fall back 08:00-21:00", func(t *testing.T) {
		checkCases(t, DefaultWindow(), ny, []openCase{
			{"00:00 EDT", "2026-11-01T04:00:00Z", false, "2026-11-01T13:00:00Z"}, // 08:00 EST
			{"20:59 EST", "2026-11-02T01:59:00Z", true, ""},
			{"21:00 EST", "2026-11-02T02:00:00Z", false, "2026-11-02T13:00:00Z"},
		})
	})
	t.Run("fall back 01:30-02:30 opens in both repeated hours", func(t *testing.T) {
		checkCases(t, mustParse(t, "01:30-02:30"), ny, []openCase{
			{"00:00 EDT", "2026-11-01T04:00:00Z", false, "2026-11-01T05:30:00Z"}, // 01:30 EDT
			{"01:59:59 EDT", "2026-11-01T05:59:59Z", true, ""},
			{"01:00 EST (repeated)", "2026-11-01T06:00:00Z", false, "2026-11-01T06:30:00Z"}, // 01:30 EST
			{"02:29:59 EST", "2026-11-01T07:29:59Z", true, ""},
			{"02:30 EST", "2026-11-01T07:30:00Z", false, "2026-11-02T06:30:00Z"},
		})
	})
}

func TestClampRetry(t *testing.T) {
	ny := []*time.Location{load(t, "America/New_York")}
	w := DefaultWindow()
	// A retry planned for 21:30 EDT moves to 08:00 EDT the next day.
	at := utc(t, "2026-05-05T01:30:00Z")
	got, err := ClampRetry(w, ny, at)
	if err != nil || !got.Equal(utc(t, "2026-05-05T12:00:00Z")) {
		t.Fatalf("ClampRetry(21:30 EDT) = %s, %v; want 08:00 EDT the next day", got, err)
	}
	// One inside the window stays where it is.
	at = utc(t, "2026-05-04T14:00:00Z")
	if got, err := ClampRetry(w, ny, at); err != nil || got != at {
		t.Fatalf("ClampRetry(10:00 EDT) = %s, %v; want it unchanged", got, err)
	}
	// One for a contact whose window never opens is an error, not a time.
	never := []*time.Location{load(t, "Pacific/Kiritimati"), load(t, "America/Adak")}
	if _, err := ClampRetry(mustParse(t, "08:00-21:00 mon"), never, at); !errors.Is(err, ErrNoOpening) {
		t.Fatalf("ClampRetry with no opening: %v, want ErrNoOpening", err)
	}
}

func TestMultiZoneNumber(t *testing.T) {
	// +1 701 (North Dakota) is in Mountain and Central time: open from
	// 08:00 Mountain (09:00 Central) to 21:00 Central (20:00 Mountain).
	zones, _, err := Zones("+17015550100", "")
	if err != nil || len(zones) != 2 {
		t.Fatalf("Zones = %v, %v", zones, err)
	}
	checkCases(t, DefaultWindow(), zones, []openCase{
		{"07:30 MDT / 08:30 CDT", "2026-07-15T13:30:00Z", false, "2026-07-15T14:00:00Z"},
		{"08:00 MDT / 09:00 CDT", "2026-07-15T14:00:00Z", true, ""},
		{"19:59 MDT / 20:59 CDT", "2026-07-16T01:59:00Z", true, ""},
		{"20:00 MDT / 21:00 CDT", "2026-07-16T02:00:00Z", false, "2026-07-16T14:00:00Z"},
	})
	for _, z := range zones {
		// Each zone alone is open at 13:30Z or 02:00Z; together they are not.
		if !Open(DefaultWindow(), []*time.Location{z}, utc(t, "2026-07-15T13:30:00Z")) &&
			!Open(DefaultWindow(), []*time.Location{z}, utc(t, "2026-07-16T02:00:00Z")) {
			t.Errorf("%s alone is closed at both edges", z)
		}
	}

	// A toll-free number maps to every NANP zone, from St. John's
	// (UTC-3:30) to Guam (UTC+10): the common hours are 08:00 in Guam
	// (22:00Z) to 21:00 in St. John's (00:30Z in winter, 23:30Z in summer).
	zones, _, err = Zones("+18005550100", "")
	if err != nil {
		t.Fatal(err)
	}
	checkCases(t, DefaultWindow(), zones, []openCase{
		{"January noon UTC", "2026-01-15T12:00:00Z", false, "2026-01-15T22:00:00Z"},
		{"January 00:29Z", "2026-01-16T00:29:00Z", true, ""},
		{"January 00:30Z", "2026-01-16T00:30:00Z", false, "2026-01-16T22:00:00Z"},
		{"July 23:29Z", "2026-07-15T23:29:00Z", true, ""},
		{"July 23:30Z", "2026-07-15T23:30:00Z", false, "2026-07-16T22:00:00Z"},
	})
}

func TestSundayExcluded(t *testing.T) {
	la := []*time.Location{load(t, "America/Los_Angeles")}
	w := mustParse(t, "08:00-21:00 mon-sat")
	// 2026-05-09 is a Saturday.
	checkCases(t, w, la, []openCase{
		{"Saturday 20:59 PDT", "2026-05-10T03:59:00Z", true, ""},
		{"Saturday 21:00 PDT", "2026-05-10T04:00:00Z", false, "2026-05-11T15:00:00Z"}, // Monday 08:00
		{"Sunday noon PDT", "2026-05-10T19:00:00Z", false, "2026-05-11T15:00:00Z"},
	})
	// Florida's 08:00-20:00 with no Sundays, for a contact in Miami.
	fl := mustParse(t, "08:00-20:00 mon-sat")
	checkCases(t, fl, []*time.Location{load(t, "America/New_York")}, []openCase{
		{"Saturday 20:00 EDT", "2026-05-10T00:00:00Z", false, "2026-05-11T12:00:00Z"},
	})
}

func TestSkipDates(t *testing.T) {
	ny := []*time.Location{load(t, "America/New_York")}
	checkCases(t, mustParse(t, "08:00-21:00 skip=2026-12-25"), ny, []openCase{
		{"Christmas Eve 21:00 EST", "2026-12-25T02:00:00Z", false, "2026-12-26T13:00:00Z"},
		{"Christmas noon", "2026-12-25T17:00:00Z", false, "2026-12-26T13:00:00Z"},
	})
	// Friday 2026-12-25 skipped and no weekends: Thursday evening waits until Monday.
	checkCases(t, mustParse(t, "08:00-21:00 mon-fri skip=2026-12-25,2027-01-01"), ny, []openCase{
		{"Thursday 21:00 EST", "2026-12-25T02:00:00Z", false, "2026-12-28T13:00:00Z"},
	})
	// A skip date is the contact's local date: 2026-12-25 10:00 UTC is
	// still the 24th in Los Angeles but already the 25th in Kolkata.
	w := mustParse(t, "00:00-24:00 skip=2026-12-25")
	at := utc(t, "2026-12-25T06:00:00Z")
	if !Open(w, []*time.Location{load(t, "America/Los_Angeles")}, at) {
		t.Error("Los Angeles is on the 24th and should be open")
	}
	if Open(w, []*time.Location{load(t, "Asia/Kolkata")}, at) {
		t.Error("Kolkata is on the 25th and should be closed")
	}
}

func TestNoOpening(t *testing.T) {
	start := utc(t, "2026-05-04T12:00:00Z")
	tests := []struct {
		name  string
		w     Window
		zones []string
	}{
		// Monday 08:00–21:00 in Kiritimati (UTC+14) is Sunday in Adak (UTC-10/-9).
		{"days never overlap", mustParse(t, "08:00-21:00 mon"), []string{"Pacific/Kiritimati", "America/Adak"}},
		// 08:00–09:00 in Kolkata is 02:30–03:30Z; in New York 12:00–14:00Z.
		{"hours never overlap", mustParse(t, "08:00-09:00"), []string{"Asia/Kolkata", "America/New_York"}},
		{"every allowed day skipped", func() Window {
			w := mustParse(t, "08:00-21:00 mon")
			for d := 0; d < 420; d += 7 {
				w.Skip = append(w.Skip, DateOf(time.Date(2026, 5, 4+d, 0, 0, 0, 0, time.UTC)))
			}
			return w
		}(), []string{"UTC"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var zones []*time.Location
			for _, n := range tt.zones {
				zones = append(zones, load(t, n))
			}
			got, err := NextOpen(tt.w, zones, start)
			if !errors.Is(err, ErrNoOpening) || !got.IsZero() {
				t.Fatalf("NextOpen = %v, %v; want ErrNoOpening", got, err)
			}
			if !strings.Contains(err.Error(), "no opening in 400 days") {
				t.Errorf("error = %q", err)
			}
		})
	}
	// The skipped Mondays run out after 420 days: the search limit, not
	// the data, ended the previous case.
	w := tests[2].w
	w.Skip = w.Skip[:10]
	if got, err := NextOpen(w, []*time.Location{time.UTC}, start); err != nil || !got.Equal(utc(t, "2026-07-13T08:00:00Z")) {
		t.Fatalf("NextOpen = %v, %v; want the 11th Monday", got, err)
	}
}

func TestZonesOverlapPartOfTheYear(t *testing.T) {
	// Kiritimati (UTC+14) and Adak (UTC-10, -9 in summer) show the same
	// clock time in winter and an hour apart in summer, so a 30-minute
	// window overlaps only after Adak falls back on 2026-11-01.
	zones := []*time.Location{load(t, "Pacific/Kiritimati"), load(t, "America/Adak")}
	checkCases(t, mustParse(t, "10:00-10:30"), zones, []openCase{
		{"July", "2026-07-01T00:00:00Z", false, "2026-11-01T20:00:00Z"},
	})
}

func TestInvalidArguments(t *testing.T) {
	at := utc(t, "2026-05-04T15:00:00Z")
	ny := load(t, "America/New_York")
	if Open(DefaultWindow(), nil, at) || Open(DefaultWindow(), []*time.Location{ny, nil}, at) || Open(Window{}, []*time.Location{ny}, at) {
		t.Error("Open with no zones, a nil zone or an invalid window is true")
	}
	if _, err := NextOpen(DefaultWindow(), nil, at); !errors.Is(err, ErrNoOpening) || !strings.Contains(err.Error(), "no time zones") {
		t.Errorf("NextOpen with no zones: %v", err)
	}
	if _, err := NextOpen(DefaultWindow(), []*time.Location{nil}, at); !errors.Is(err, ErrNoOpening) || !strings.Contains(err.Error(), "nil time zone") {
		t.Errorf("NextOpen with a nil zone: %v", err)
	}
	if _, err := NextOpen(Window{}, []*time.Location{ny}, at); !errors.Is(err, ErrInvalidWindow) {
		t.Errorf("NextOpen with the zero window: %v", err)
	}
}

// bruteNextOpen scans minute by minute; every zone in pool has whole-minute
// offsets and transitions, so openings fall on minutes.
func bruteNextOpen(w Window, zones []*time.Location, t time.Time, minutes int) (time.Time, bool) {
	if Open(w, zones, t) {
		return t, true
	}
	m := t.Truncate(time.Minute)
	for range minutes {
		m = m.Add(time.Minute)
		if Open(w, zones, m) {
			return m, true
		}
	}
	return time.Time{}, false
}

// TestNextOpenMatchesBruteForce compares NextOpen with a minute scan for
// random windows, zones and instants around 2026's DST changes.
func TestNextOpenMatchesBruteForce(t *testing.T) {
	pool := []string{"America/Los_Angeles", "America/New_York", "America/St_Johns", "America/Adak", "America/Sao_Paulo",
		"Europe/London", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tehran", "Australia/Lord_Howe", "Australia/Sydney",
		"Pacific/Chatham", "Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"}
	// Instants near DST changes: US, Europe, Lord Howe (30-minute shift), Chatham.
	anchors := []string{"2026-03-08T06:00:00Z", "2026-11-01T06:00:00Z", "2026-03-29T00:30:00Z", "2026-10-25T00:30:00Z",
		"2026-04-04T15:00:00Z", "2026-10-03T15:30:00Z", "2026-04-04T13:45:00Z", "2026-06-15T12:00:00Z"}
	rng := rand.New(rand.NewPCG(1, 2))
	const scan = 9 * 24 * 60 // minutes
	cases := 150
	if testing.Short() {
		cases = 30
	}
	for i := range cases {
		start := rng.IntN(MinutesPerDay - 15)
		w := Window{Start: start, End: start + 1 + rng.IntN(MinutesPerDay-start), Days: Weekdays(1 + rng.IntN(int(AllDays)))}
		anchor := utc(t, anchors[rng.IntN(len(anchors))])
		at := anchor.Add(time.Duration(rng.Int64N(int64(48*time.Hour))) - 24*time.Hour)
		if rng.IntN(2) == 0 {
			at = at.Truncate(time.Minute)
		}
		for range rng.IntN(3) {
			w.Skip = append(w.Skip, DateOf(at.AddDate(0, 0, rng.IntN(4))))
		}
		var zones []*time.Location
		for range 1 + rng.IntN(3) {
			zones = append(zones, load(t, pool[rng.IntN(len(pool))]))
		}
		got, err := NextOpen(w, zones, at)
		want, found := bruteNextOpen(w, zones, at, scan)
		switch {
		case found && (err != nil || !got.Equal(want)):
			t.Errorf("case %d: NextOpen(%s, %v, %s) = %s, %v; minute scan found %s", i, w, zones, at, got, err, want)
		case !found && err == nil && got.Before(at.Add(scan*time.Minute)):
			t.Errorf("case %d: NextOpen(%s, %v, %s) = %s, but the minute scan found nothing before %s",
				i, w, zones, at, got, at.Add(scan*time.Minute))
		case !found && err == nil && !Open(w, zones, got):
			t.Errorf("case %d: NextOpen(%s, %v, %s) = %s, which is closed", i, w, zones, at, got)
		}
	}
}
