package callwindow

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	// Embed the IANA time zone database so that LoadLocation works in images
	// without /usr/share/zoneinfo (distroless).
	_ "time/tzdata"

	"github.com/callagent/resilience/internal/redact"
	"github.com/nyaruka/phonenumbers"
)

var (
	// ErrBadTimezone is wrapped when a contact's explicit timezone is not
	// an IANA time zone name this build knows.
	ErrBadTimezone = errors.New("unknown time zone")
	// ErrNoZone is wrapped when a contact has no explicit timezone and none
	// can be derived from its phone number.
	ErrNoZone = errors.New("time zone cannot be derived from the phone number")
)

// maxListedZones is how many zone names a note lists before "and N more".
const maxListedZones = 6

// Zones returns the time zones a contact must be called in, with a note that
// says where they came from.
//
// A non-empty explicit (an IANA name such as "America/Chicago", surrounding
// spaces ignored) wins and the phone number is not consulted; a name that
// does not load is an error wrapping ErrBadTimezone that names it. "Local" is
// refused: it is the server's zone, not the contact's.
//
// Otherwise the phone number, in international form ("+12125550123"), is
// parsed with phonenumbers.Parse(phone, "") and mapped with
// phonenumbers.GetTimezonesForNumber, and every zone it returns is returned.
// A number that does not parse, is not a valid number (like the Java
// libphonenumber, whose Go port skips this check, zones of an invalid number
// are not trusted), or maps to "Etc/Unknown" (international freephone,
// satellite) is an error wrapping ErrNoZone that says to set timezone.
//
// Phone numbers in notes and errors are masked with redact.Phone: both reach
// logs.
func Zones(phone string, explicit string) (zones []*time.Location, note string, err error) {
	if name := strings.TrimSpace(explicit); name != "" {
		if name == "Local" {
			return nil, "", fmt.Errorf("%w: timezone %q is the server's zone, not the contact's: set an IANA name like America/New_York",
				ErrBadTimezone, name)
		}
		loc, err := loadZone(name)
		if err != nil {
			return nil, "", fmt.Errorf("%w: timezone %q is not an IANA time zone name (like America/New_York or Europe/London)",
				ErrBadTimezone, name)
		}
		return []*time.Location{loc}, fmt.Sprintf("timezone %s set on the contact (the phone number is not used)", loc), nil
	}

	masked := redact.Phone(phone)
	if strings.TrimSpace(phone) == "" {
		return nil, "", fmt.Errorf("%w: the contact has no phone number and no timezone: set timezone", ErrNoZone)
	}
	num, err := phonenumbers.Parse(phone, "")
	if err != nil {
		return nil, "", fmt.Errorf("%w: phone %s does not parse as an international number (%v): set timezone",
			ErrNoZone, masked, err)
	}
	region := phonenumbers.GetRegionCodeForNumber(num)
	if !phonenumbers.IsValidNumber(num) {
		return nil, "", fmt.Errorf("%w: phone %s is not a valid number (country code +%d), so its time zone is unknown: set timezone",
			ErrNoZone, masked, num.GetCountryCode())
	}
	names, err := phonenumbers.GetTimezonesForNumber(num)
	if err != nil {
		return nil, "", fmt.Errorf("%w: phone %s: %v: set timezone", ErrNoZone, masked, err)
	}
	if len(names) == 0 || (len(names) == 1 && names[0] == phonenumbers.UNKNOWN_TIMEZONE) {
		return nil, "", fmt.Errorf("%w: phone %s (%s) has no known time zone: set timezone",
			ErrNoZone, masked, regionName(region, num))
	}
	zones = make([]*time.Location, 0, len(names))
	for _, n := range names {
		if n == phonenumbers.UNKNOWN_TIMEZONE {
			return nil, "", fmt.Errorf("%w: phone %s (%s) has a zone the library cannot name: set timezone",
				ErrNoZone, masked, regionName(region, num))
		}
		loc, err := loadZone(n)
		if err != nil {
			return nil, "", fmt.Errorf("%w: phone %s maps to time zone %q, which this build cannot load: set timezone",
				ErrNoZone, masked, n)
		}
		zones = append(zones, loc)
	}
	if len(zones) == 1 {
		note = fmt.Sprintf("phone %s (%s) is in %s only", masked, regionName(region, num), names[0])
	} else {
		listed := names
		more := ""
		if len(listed) > maxListedZones {
			more = fmt.Sprintf(" and %d more", len(listed)-maxListedZones)
			listed = listed[:maxListedZones]
		}
		note = fmt.Sprintf("phone %s (%s) spans %d time zones (%s%s): allowed hours are those open in all of them",
			masked, regionName(region, num), len(names), strings.Join(listed, ", "), more)
	}
	return zones, note, nil
}

func regionName(region string, num *phonenumbers.PhoneNumber) string {
	if region == "" || region == "ZZ" || region == "001" {
		return fmt.Sprintf("+%d", num.GetCountryCode())
	}
	return fmt.Sprintf("%s, +%d", region, num.GetCountryCode())
}

// zoneCache holds the zones loaded so far by name: time.LoadLocation reads
// and parses the zone data on every call, and a worker resolves the same
// few zones for every contact.
var zoneCache sync.Map // string -> *time.Location

func loadZone(name string) (*time.Location, error) {
	if loc, ok := zoneCache.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zoneCache.Store(name, loc)
	return loc, nil
}
