package callwindow

import (
	"errors"
	"fmt"
	"time"
)

// ErrNoOpening is wrapped when a window never opens (in every zone at once)
// within SearchLimit.
var ErrNoOpening = errors.New("calling window never opens")

// SearchLimit is how far ahead NextOpen looks for an opening.
const SearchLimit = 400 * 24 * time.Hour

const secondsPerDay = 24 * 60 * 60

// Open reports whether a call may start at t: the window is open at t in
// every one of zones. It is false for no zones, a nil zone or an invalid
// window.
func Open(w Window, zones []*time.Location, t time.Time) bool {
	if len(zones) == 0 || w.Validate() != nil {
		return false
	}
	for _, z := range zones {
		if z == nil || !w.openIn(z, t) {
			return false
		}
	}
	return true
}

// openIn reports whether w is open at t in loc: the local date is allowed
// and the local clock reading is in [Start, End).
func (w Window) openIn(loc *time.Location, t time.Time) bool {
	lt := t.In(loc)
	if !w.allows(DateOf(lt), lt.Weekday()) {
		return false
	}
	h, m, s := lt.Clock()
	sec := h*3600 + m*60 + s // nanoseconds only matter at End, where [.., End) already excludes them
	return w.Start*60 <= sec && sec < w.End*60
}

// NextOpen returns the earliest instant at or after t at which Open(w, zones,
// ·) is true: t itself when open (unchanged), else the first instant of the
// next opening, in t's location. It is exact to the nanosecond, across DST
// changes and for any UTC offset (half hours, quarter hours). It fails with
// ErrNoOpening when there is no opening within SearchLimit (every day
// skipped, or zones whose windows never overlap), and on an invalid window,
// no zones or a nil zone.
func NextOpen(w Window, zones []*time.Location, t time.Time) (time.Time, error) {
	if err := w.Validate(); err != nil {
		return time.Time{}, err
	}
	if len(zones) == 0 {
		return time.Time{}, fmt.Errorf("%w: no time zones given", ErrNoOpening)
	}
	for _, z := range zones {
		if z == nil {
			return time.Time{}, fmt.Errorf("%w: nil time zone", ErrNoOpening)
		}
	}
	limit := t.Add(SearchLimit)
	// Each zone's open set is a union of intervals. Jump to the latest of
	// the zones' next openings until all zones are open at the same
	// instant: no instant skipped over can be open in every zone, since
	// some zone is closed from cur until its own next opening.
	cur := t
	for {
		next := cur
		for _, z := range zones {
			n, ok := w.nextOpenIn(z, cur, limit)
			if !ok {
				return time.Time{}, fmt.Errorf("%w: %s in %s: no opening in %d days after %s",
					ErrNoOpening, w, zoneList(zones), int(SearchLimit/(24*time.Hour)), t.Format(time.RFC3339))
			}
			if n.After(next) {
				next = n
			}
		}
		if next.Equal(cur) {
			if cur.Equal(t) {
				return t, nil
			}
			return cur.In(t.Location()), nil
		}
		cur = next
	}
}

// ClampRetry returns when a retry planned for at may start: at itself when
// the window is open then, else the next opening (NextOpen). The error is
// NextOpen's: a contact whose window never opens cannot be retried, and the
// caller should dead-letter it rather than retry at some arbitrary time.
func ClampRetry(w Window, zones []*time.Location, at time.Time) (time.Time, error) {
	return NextOpen(w, zones, at)
}

// nextOpenIn returns the earliest instant in [from, limit] at which w is open
// in loc.
//
// Between two UTC offset changes of loc (a zone segment, from ZoneBounds) the
// local clock is the instant plus a fixed offset, so the open instants of the
// local day D are exactly [D+Start-offset, D+End-offset), cut to the segment.
// A window cut at a segment's start (it began inside a DST gap) opens at that
// start; one wholly inside a gap never meets its segment and stays closed.
func (w Window) nextOpenIn(loc *time.Location, from, limit time.Time) (time.Time, bool) {
	if w.openIn(loc, from) {
		return from, true
	}
	for u := from; !u.After(limit); {
		lt := u.In(loc)
		_, offset := lt.Zone()
		_, segEnd := lt.ZoneBounds()
		if segEnd.IsZero() || segEnd.After(limit) {
			segEnd = limit.Add(time.Second) // past the limit: the search ends with this segment
		}
		off := int64(offset)
		for day := floorDiv(u.Unix()+off, secondsPerDay); ; day++ {
			midnight := day*secondsPerDay - off // the instant the local clock would read 00:00 on this day
			open := time.Unix(midnight+int64(w.Start)*60, 0)
			if !open.Before(segEnd) {
				break
			}
			civil := time.Unix(day*secondsPerDay, 0).UTC() // the local date, as a UTC date
			if !w.allows(DateOf(civil), civil.Weekday()) {
				continue
			}
			closeAt := time.Unix(midnight+int64(w.End)*60, 0)
			if segEnd.Before(closeAt) {
				closeAt = segEnd
			}
			if open.Before(u) {
				open = u
			}
			if open.Before(closeAt) {
				return open, true
			}
		}
		u = segEnd
	}
	return time.Time{}, false
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func zoneList(zones []*time.Location) string {
	if len(zones) == 1 {
		return zones[0].String()
	}
	s := ""
	for i, z := range zones {
		if i == maxListedZones {
			return fmt.Sprintf("%s and %d more zones", s, len(zones)-i)
		}
		if i > 0 {
			s += ", "
		}
		s += z.String()
	}
	return s
}
