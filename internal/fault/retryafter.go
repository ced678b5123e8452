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
// delay-seconds (fractions accepted) or as an HTTP-date measured from now, and when neither
// is there the reset time of an exhausted OpenAI-style rate limit (see RateLimitReset). It
// returns 0 when the headers are absent, garbage, negative or in the past, and at most
// MaxRetryAfter.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if d, ok := parseUnits(v, float64(time.Millisecond)); ok {
			return d
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return RateLimitReset(h)
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

// RateLimitReset reads OpenAI-style rate-limit headers (OpenAI, Groq, Together):
// x-ratelimit-remaining-{requests,tokens} and x-ratelimit-reset-{requests,tokens}, the reset
// given as a Go-style duration ("1s", "6m0s", "2m59.56s", "20ms") or as seconds. It returns
// the longest reset among the limits whose remaining count is 0, or 0 when none is exhausted
// (these headers come with every response, so a reset alone says nothing about this failure).
func RateLimitReset(h http.Header) time.Duration {
	var longest time.Duration
	for _, limit := range []string{"requests", "tokens"} {
		if strings.TrimSpace(h.Get("X-Ratelimit-Remaining-"+limit)) != "0" {
			continue
		}
		v := strings.TrimSpace(h.Get("X-Ratelimit-Reset-" + limit))
		d, err := time.ParseDuration(v)
		if err != nil {
			var ok bool
			if d, ok = parseUnits(v, float64(time.Second)); !ok {
				continue
			}
		}
		longest = max(longest, min(d, MaxRetryAfter))
	}
	return longest
}

// ParseShouldRetry reads OpenAI's x-should-retry header: "true" is HintRetry, "false"
// HintDoNotRetry, anything else HintNone.
func ParseShouldRetry(h http.Header) Hint {
	switch strings.ToLower(strings.TrimSpace(h.Get("X-Should-Retry"))) {
	case "true":
		return HintRetry
	case "false":
		return HintDoNotRetry
	}
	return HintNone
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
