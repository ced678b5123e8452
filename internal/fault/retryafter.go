package fault

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter bounds what ParseRetryAfter returns, so a garbage header cannot overflow a
// time.Duration or park a contact for years.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads how long a provider asked us to wait from response headers:
// retry-after-ms (OpenAI, milliseconds, may be fractional) first, then Retry-After as
// delay-seconds (fractions accepted) or as an HTTP-date measured from now. It returns 0 when
// the headers are absent, garbage, negative or in the past, and at most MaxRetryAfter.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if d, ok := parseUnits(v, float64(time.Millisecond)); ok {
			return d
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if d, ok := parseUnits(v, float64(time.Second)); ok {
		return d
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, MaxRetryAfter)
		}
	}
	return 0
}

// parseUnits parses a non-negative decimal number of unit; ok is false when v is not a
// number, so an HTTP-date can be tried next.
func parseUnits(v string, unit float64) (time.Duration, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	if f <= 0 {
		return 0, true
	}
	ns := f * unit
	if ns >= float64(MaxRetryAfter) {
		return MaxRetryAfter, true
	}
	return time.Duration(ns), true
}
