// Package callwindow decides when a contact may be called: a campaign's
// calling window (local hours, days of the week, dates to skip) evaluated in
// the contact's local time zone or zones.
//
// In the US the TCPA allows telemarketing calls only between 08:00 and 21:00
// in the called person's local time (47 CFR 64.1200(c)(1)), which is the
// default window here; a campaign may set a stricter one (Florida ends at
// 20:00, some states ban Sundays). A contact's zones come from an explicit
// IANA time zone name or, failing that, from the phone number
// (github.com/nyaruka/phonenumbers). A number that spans several zones (a US
// area code split by a zone line, a toll-free number) is open only when the
// window is open in every one of them.
//
// Semantics are wall-clock: an instant is open in a zone when that zone's
// local date is an allowed weekday and not skipped, and its local clock
// reading is in [Start, End). Across a DST change this means:
//
//   - a window still opens at its local Start and closes at its local End
//     (08:00–21:00 is 08:00–21:00 local on both change days);
//   - on a spring-forward day the local clock jumps over the skipped hour, so
//     a window that starts inside the gap opens at the first instant after it
//     (02:15–04:00 in America/New_York on 2026-03-08 opens at 03:00 EDT), one
//     that ends inside it closes at the jump (01:30–02:30 is open from 01:30
//     EST until 03:00 EDT, 30 real minutes), and one that lies wholly inside
//     the gap (02:00–02:30) does not open that day at all;
//   - on a fall-back day the repeated hour is open both times the clock shows
//     it (01:30–02:30 on 2026-11-01 is open 01:30–02:00 EDT and again
//     01:30–02:30 EST).
//
// Everything is pure: the current time is always an argument, nothing is
// read from a clock, a file or the network. Time zone data is embedded
// (time/tzdata), so the package works in images without /usr/share/zoneinfo.
package callwindow
