package callwindow

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func zoneNames(zones []*time.Location) []string {
	names := make([]string, len(zones))
	for i, z := range zones {
		names[i] = z.String()
	}
	return names
}

func TestZonesFromPhone(t *testing.T) {
	tests := []struct {
		phone string
		want  []string
		note  string
	}{
		{"+12125550123", []string{"America/New_York"}, "phone +12*******23 (US, +1) is in America/New_York only"},
		{"+14155550101", []string{"America/Los_Angeles"}, "phone +14*******01 (US, +1) is in America/Los_Angeles only"},
		{"+442071838750", []string{"Europe/London"}, "phone +44********50 (GB, +44) is in Europe/London only"},
		{"+919876543210", []string{"Asia/Calcutta"}, "(IN, +91) is in Asia/Calcutta only"}, // the library's (backward) name for Asia/Kolkata
		// The demo contacts in deploy/contacts.json all resolve.
		{"+2348055550104", []string{"Africa/Lagos"}, "is in Africa/Lagos only"},
		{"+4930555501050", []string{"Europe/Berlin"}, "is in Europe/Berlin only"},
		{"+5511955550102", []string{"America/Sao_Paulo"}, "is in America/Sao_Paulo only"},
		// North Dakota's area code 701 spans Mountain and Central time.
		{"+17015550100", []string{"America/Denver", "America/North_Dakota/Center"},
			"phone +17*******00 (US, +1) spans 2 time zones (America/Denver, America/North_Dakota/Center): allowed hours are those open in all of them"},
		// Idaho's 208 spans Mountain and Pacific time.
		{"+12085550100", []string{"America/Boise", "America/Los_Angeles"}, "spans 2 time zones (America/Boise, America/Los_Angeles)"},
	}
	for _, tt := range tests {
		t.Run(tt.phone, func(t *testing.T) {
			zones, note, err := Zones(tt.phone, "")
			if err != nil {
				t.Fatalf("Zones: %v", err)
			}
			if got := zoneNames(zones); !slices.Equal(got, tt.want) {
				t.Errorf("zones = %v, want %v", got, tt.want)
			}
			if !strings.Contains(note, tt.note) {
				t.Errorf("note = %q, want it to contain %q", note, tt.note)
			}
			if strings.Contains(note, tt.phone) {
				t.Errorf("note %q shows the whole phone number", note)
			}
		})
	}
}

func TestZonesTollFreeSpansManyZones(t *testing.T) {
	zones, note, err := Zones("+18005550100", "")
	if err != nil {
		t.Fatal(err)
	}
	names := zoneNames(zones)
	for _, want := range []string{"America/St_Johns", "America/New_York", "America/Los_Angeles", "Pacific/Honolulu", "Pacific/Guam", "Pacific/Pago_Pago"} {
		if !slices.Contains(names, want) {
			t.Errorf("zones %v lack %s", names, want)
		}
	}
	wantNote := "spans " + strconv.Itoa(len(zones)) + " time zones ("
	if !strings.Contains(note, wantNote) || !strings.Contains(note, " and "+strconv.Itoa(len(zones)-maxListedZones)+" more)") {
		t.Errorf("note = %q, want %q and the count of unlisted zones", note, wantNote)
	}
}

func TestZonesExplicitWins(t *testing.T) {
	zones, note, err := Zones("+12125550123", "Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	if got := zoneNames(zones); !slices.Equal(got, []string{"Europe/London"}) {
		t.Fatalf("zones = %v, want only Europe/London", got)
	}
	if note != "timezone Europe/London set on the contact (the phone number is not used)" {
		t.Fatalf("note = %q", note)
	}
	// Even a number whose zone cannot be derived is fine with a timezone.
	zones, _, err = Zones("+80012345678", " Asia/Kolkata ")
	if err != nil || zoneNames(zones)[0] != "Asia/Kolkata" {
		t.Fatalf("Zones = %v, %v", zones, err)
	}
}

func TestZonesBadExplicit(t *testing.T) {
	for _, name := range []string{"America/New_Yrok", "EST5EDT-ish", "../../etc/passwd", "Local"} {
		zones, _, err := Zones("+12125550123", name)
		if !errors.Is(err, ErrBadTimezone) || zones != nil {
			t.Fatalf("Zones(%q) = %v, %v; want ErrBadTimezone", name, zones, err)
		}
		if !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("error %q does not name %q", err, name)
		}
	}
}

func TestZonesCannotDerive(t *testing.T) {
	tests := []struct {
		name, phone, msg string
	}{
		{"international freephone maps to Etc/Unknown", "+80012345678", "phone +80*******78 (+800) has no known time zone: set timezone"},
		{"satellite", "+881612345678", "(+881) has no known time zone: set timezone"},
		{"invalid number", "+15555550100", "phone +15*******00 is not a valid number (country code +1), so its time zone is unknown: set timezone"},
		{"no country code", "14155550101", "does not parse as an international number"},
		{"not a number", "+1 call me", "set timezone"},
		{"empty", "", "no phone number and no timezone: set timezone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			zones, note, err := Zones(tt.phone, "")
			if !errors.Is(err, ErrNoZone) || zones != nil || note != "" {
				t.Fatalf("Zones = %v, %q, %v; want ErrNoZone", zones, note, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error = %q, want it to contain %q", err, tt.msg)
			}
			if len(tt.phone) > 8 && strings.Contains(err.Error(), tt.phone) {
				t.Errorf("error %q shows the whole phone number", err)
			}
		})
	}
}

func TestZonesConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for _, phone := range []string{"+12125550123", "+17015550100", "+919876543210"} {
				if _, _, err := Zones(phone, ""); err != nil {
					t.Errorf("goroutine %d: %v", i, err)
				}
			}
			if _, _, err := Zones("", "Europe/London"); err != nil {
				t.Errorf("goroutine %d: %v", i, err)
			}
		})
	}
	wg.Wait()
}
