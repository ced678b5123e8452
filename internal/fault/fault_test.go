package fault_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/fault/faulttest"
)

func TestClassifyTable(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, c := range faulttest.ClassificationCases() {
		if seen[c.Name] {
			t.Fatalf("duplicate case name %q", c.Name)
		}
		seen[c.Name] = true
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			err := fault.Classify(c.Facts)
			var se *fault.ServiceError
			if !errors.As(err, &se) {
				t.Fatalf("Classify(%+v) = %T %v, want *ServiceError", c.Facts, err, err)
			}
			if se.Kind != c.Want {
				t.Fatalf("kind = %s, want %s", se.Kind, c.Want)
			}
			if got := fault.KindOf(err); got != c.Want {
				t.Fatalf("KindOf = %s, want %s", got, c.Want)
			}
			if se.Provider != c.Facts.Provider || se.Status != c.Facts.Status || se.Code != c.Facts.Code ||
				se.Message != c.Facts.Message || se.RetryAfter != c.Facts.RetryAfter || se.Err != c.Facts.Err {
				t.Fatalf("facts not carried: %+v from %+v", *se, c.Facts)
			}
			retried := c.Want.Transient() && c.Facts.ShouldRetry != fault.HintDoNotRetry
			if got, want := errors.Is(err, fault.ErrTransient), retried; got != want {
				t.Fatalf("errors.Is(ErrTransient) = %v, want %v", got, want)
			}
			if got, want := errors.Is(err, fault.ErrPermanent), !retried; got != want {
				t.Fatalf("errors.Is(ErrPermanent) = %v, want %v", got, want)
			}
			if c.Facts.Err != nil && !errors.Is(err, c.Facts.Err) {
				t.Fatalf("underlying error %v not reachable through Unwrap", c.Facts.Err)
			}
			// Served rows must carry what a client needs to extract the facts.
			if c.Status != 0 {
				if c.Status != c.Facts.Status {
					t.Fatalf("row status %d disagrees with facts status %d", c.Status, c.Facts.Status)
				}
				if ra := fault.ParseRetryAfter(c.Header, time.Now()); ra != c.Facts.RetryAfter {
					t.Fatalf("header Retry-After parses to %s, facts say %s", ra, c.Facts.RetryAfter)
				}
			}
		})
	}
	for _, k := range []fault.Kind{fault.KindTimeout, fault.KindNetwork, fault.KindUnavailable, fault.KindRateLimited,
		fault.KindConcurrencyLimit, fault.KindBadResponse, fault.KindAuthentication, fault.KindInvalidPayload,
		fault.KindQuota, fault.KindConfiguration, fault.KindUnknown} {
		found := false
		for _, c := range faulttest.ClassificationCases() {
			found = found || c.Want == k
		}
		if !found {
			t.Errorf("no row of the table expects kind %s", k)
		}
	}
}

func TestClassifyCodeIsCaseInsensitiveAndWinsOverStatus(t *testing.T) {
	t.Parallel()
	err := fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 503, Code: " Quota_Exceeded "})
	if k := fault.KindOf(err); k != fault.KindQuota {
		t.Fatalf("kind = %s, want quota_exceeded", k)
	}
}

func TestClassifyCancellationPassesThrough(t *testing.T) {
	t.Parallel()
	wrapped := fmt.Errorf("post tts: %w", context.Canceled)
	for _, f := range []fault.Facts{
		{Provider: "LLM", Err: context.Canceled},
		{Provider: "LLM", Err: wrapped},
		{Provider: "LLM", Status: 503, Err: wrapped},
	} {
		err := fault.Classify(f)
		if err != f.Err {
			t.Fatalf("Classify(%+v) = %v, want the cancellation unchanged", f, err)
		}
		var se *fault.ServiceError
		if errors.As(err, &se) || fault.IsTransient(err) {
			t.Fatalf("a cancellation became a provider error: %v", err)
		}
	}
}

func TestClassifyNegativeRetryAfter(t *testing.T) {
	t.Parallel()
	var se *fault.ServiceError
	if !errors.As(fault.Classify(fault.Facts{Status: 429, RetryAfter: -time.Second}), &se) || se.RetryAfter != 0 {
		t.Fatalf("negative RetryAfter kept: %+v", se)
	}
}

func TestKindStringsAreStable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		k         fault.Kind
		want      string
		transient bool
	}{
		{fault.KindUnknown, "unknown", false},
		{fault.KindTimeout, "timeout", true},
		{fault.KindNetwork, "network", true},
		{fault.KindUnavailable, "service_unavailable", true},
		{fault.KindRateLimited, "rate_limited", true},
		{fault.KindConcurrencyLimit, "concurrency_limit", true},
		{fault.KindBadResponse, "bad_response", true},
		{fault.KindAuthentication, "authentication", false},
		{fault.KindInvalidPayload, "invalid_payload", false},
		{fault.KindQuota, "quota_exceeded", false},
		{fault.KindConfiguration, "configuration", false},
		{fault.Kind(200), "unknown", false},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("Kind(%d).String() = %q, want %q", tt.k, got, tt.want)
		}
		if got := tt.k.Transient(); got != tt.transient {
			t.Errorf("%s.Transient() = %v, want %v", tt.want, got, tt.transient)
		}
	}
}

func TestServiceErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  *fault.ServiceError
		want string
	}{
		{"provider message as the seed prints it",
			&fault.ServiceError{Provider: "ElevenLabs", Kind: fault.KindUnavailable, Status: 503, Message: "Service temporarily unavailable"},
			"Service temporarily unavailable"},
		{"status and code",
			&fault.ServiceError{Provider: "LLM", Kind: fault.KindQuota, Status: 429, Code: "insufficient_quota"},
			"LLM: quota exceeded (HTTP 429, code insufficient_quota)"},
		{"transport",
			&fault.ServiceError{Provider: "CRM", Kind: fault.KindTimeout, Err: context.DeadlineExceeded},
			"CRM: timeout: context deadline exceeded"},
		{"code only", &fault.ServiceError{Kind: fault.KindConfiguration, Code: "voice_not_found"},
			"configuration error (code voice_not_found)"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%s: Error() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestHelpersSeeThroughWrapping(t *testing.T) {
	t.Parallel()
	se := &fault.ServiceError{Provider: "ElevenLabs", Kind: fault.KindRateLimited, RetryAfter: 3 * time.Second}
	err := fmt.Errorf("step tts: %w", se)
	if !fault.IsTransient(err) || fault.KindOf(err) != fault.KindRateLimited || fault.RetryAfterOf(err) != 3*time.Second {
		t.Fatalf("helpers lost the wrapped ServiceError: transient=%v kind=%s ra=%s",
			fault.IsTransient(err), fault.KindOf(err), fault.RetryAfterOf(err))
	}
	plain := errors.New("boom")
	if fault.IsTransient(plain) || fault.KindOf(plain) != fault.KindUnknown || fault.RetryAfterOf(plain) != 0 {
		t.Fatal("a plain error looks classified")
	}
	if fault.IsTransient(nil) || fault.KindOf(nil) != fault.KindUnknown {
		t.Fatal("nil looks classified")
	}
}

func TestRetryableAndFinal(t *testing.T) {
	t.Parallel()
	bad := &fault.ServiceError{Provider: "LLM", Kind: fault.KindBadResponse, Status: 200}
	unavailable := &fault.ServiceError{Provider: "LLM", Kind: fault.KindUnavailable, Status: 503}
	auth := &fault.ServiceError{Provider: "LLM", Kind: fault.KindAuthentication, Status: 401}
	tests := []struct {
		name    string
		err     error
		attempt int
		want    bool
	}{
		{"bad response once", bad, 1, true},
		{"bad response twice", bad, 2, false},
		{"unavailable later attempts", unavailable, 5, true},
		{"permanent", auth, 1, false},
		{"unclassified", errors.New("boom"), 1, false},
		{"final", fault.Final(unavailable), 1, false},
	}
	for _, tt := range tests {
		if got := fault.Retryable(tt.err, tt.attempt); got != tt.want {
			t.Errorf("%s: Retryable = %v, want %v", tt.name, got, tt.want)
		}
	}

	final := fault.Final(fmt.Errorf("wrapped: %w", bad))
	if fault.IsTransient(final) || !errors.Is(final, fault.ErrPermanent) || errors.Is(final, fault.ErrTransient) {
		t.Fatalf("Final did not make the error permanent: %v", final)
	}
	if fault.KindOf(final) != fault.KindBadResponse {
		t.Fatalf("Final changed the kind to %s", fault.KindOf(final))
	}
	if !fault.IsTransient(bad) {
		t.Fatal("Final modified the original error")
	}
	plain := errors.New("boom")
	if fault.Final(plain) != plain {
		t.Fatal("Final changed an unclassified error")
	}
}

func TestInvalidContact(t *testing.T) {
	t.Parallel()
	cause := errors.New("phone number is empty")
	err := fault.InvalidContact("ElevenLabs", cause)
	if err.Kind != fault.KindInvalidPayload || err.Provider != "ElevenLabs" || !errors.Is(err, cause) ||
		!errors.Is(err, fault.ErrPermanent) {
		t.Fatalf("InvalidContact = %+v", err)
	}
	if got, want := err.Error(), "invalid contact: phone number is empty"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 30, 0, 17, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"absent", nil, 0},
		{"seconds", map[string]string{"Retry-After": "30"}, 30 * time.Second},
		{"fractional seconds", map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{"milliseconds win", map[string]string{"Retry-After-Ms": "1500", "Retry-After": "2"}, 1500 * time.Millisecond},
		{"garbage milliseconds fall back", map[string]string{"Retry-After-Ms": "soon", "Retry-After": "2"}, 2 * time.Second},
		{"http date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{"http date in the past", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"negative", map[string]string{"Retry-After": "-5"}, 0},
		{"zero", map[string]string{"Retry-After": "0"}, 0},
		{"garbage", map[string]string{"Retry-After": "tomorrow-ish"}, 0},
		{"infinity", map[string]string{"Retry-After": "Inf"}, 0},
		{"huge is capped", map[string]string{"Retry-After": "99999999999999"}, fault.MaxRetryAfter},
		{"exhausted request limit resets", map[string]string{"X-Ratelimit-Remaining-Requests": "0", "X-Ratelimit-Reset-Requests": "6m0s"}, 6 * time.Minute},
		{"groq fractional reset", map[string]string{"X-Ratelimit-Remaining-Tokens": "0", "X-Ratelimit-Reset-Tokens": "7.66s"}, 7660 * time.Millisecond},
		{"longest exhausted reset", map[string]string{"X-Ratelimit-Remaining-Requests": "0", "X-Ratelimit-Reset-Requests": "20ms",
			"X-Ratelimit-Remaining-Tokens": "0", "X-Ratelimit-Reset-Tokens": "2m59.56s"}, 2*time.Minute + 59560*time.Millisecond},
		{"reset in plain seconds", map[string]string{"X-Ratelimit-Remaining-Requests": "0", "X-Ratelimit-Reset-Requests": "12"}, 12 * time.Second},
		{"reset of a limit not exhausted says nothing", map[string]string{"X-Ratelimit-Remaining-Requests": "499", "X-Ratelimit-Reset-Requests": "1s"}, 0},
		{"retry-after wins over resets", map[string]string{"Retry-After": "3", "X-Ratelimit-Remaining-Requests": "0", "X-Ratelimit-Reset-Requests": "6m0s"}, 3 * time.Second},
		{"garbage reset", map[string]string{"X-Ratelimit-Remaining-Requests": "0", "X-Ratelimit-Reset-Requests": "soon"}, 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.header {
			h.Set(k, v)
		}
		if got := fault.ParseRetryAfter(h, now); got != tt.want {
			t.Errorf("%s: ParseRetryAfter = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// x-should-retry is the provider's explicit word; it overrides the status but never a code
// that says a human must act (quota, keys, settings).
func TestShouldRetryHint(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	for v, want := range map[string]fault.Hint{"true": fault.HintRetry, "False": fault.HintDoNotRetry, "": fault.HintNone, "maybe": fault.HintNone} {
		h.Set("X-Should-Retry", v)
		if got := fault.ParseShouldRetry(h); got != want {
			t.Errorf("ParseShouldRetry(%q) = %d, want %d", v, got, want)
		}
	}
	tests := []struct {
		name      string
		facts     fault.Facts
		kind      fault.Kind
		transient bool
	}{
		{"500 told not to retry", fault.Facts{Status: 500, ShouldRetry: fault.HintDoNotRetry}, fault.KindUnavailable, false},
		{"400 told to retry", fault.Facts{Status: 400, ShouldRetry: fault.HintRetry}, fault.KindUnavailable, true},
		{"quota told to retry stays quota", fault.Facts{Status: 429, Code: "insufficient_quota", ShouldRetry: fault.HintRetry}, fault.KindQuota, false},
		{"429 without hint", fault.Facts{Status: 429}, fault.KindRateLimited, true},
	}
	for _, tt := range tests {
		err := fault.Classify(tt.facts)
		if fault.KindOf(err) != tt.kind || fault.IsTransient(err) != tt.transient {
			t.Errorf("%s: kind %s transient %v, want %s %v", tt.name, fault.KindOf(err), fault.IsTransient(err), tt.kind, tt.transient)
		}
	}
}

// Settings, not contacts: a 400/422 that names a field our settings fill is a configuration
// error, one that names the contact's data is the contact's.
func TestClassifyParamNamesASetting(t *testing.T) {
	t.Parallel()
	for param, want := range map[string]fault.Kind{"model": fault.KindConfiguration, "max_tokens": fault.KindConfiguration,
		"output_format": fault.KindConfiguration, "model_id": fault.KindConfiguration, "messages": fault.KindInvalidPayload,
		"text": fault.KindInvalidPayload, "": fault.KindInvalidPayload} {
		for _, status := range []int{400, 422} {
			if got := fault.KindOf(fault.Classify(fault.Facts{Status: status, Param: param})); got != want {
				t.Errorf("%d naming %q = %s, want %s", status, param, got, want)
			}
		}
	}
	if got := fault.KindOf(fault.Classify(fault.Facts{Status: 404, Param: "messages"})); got != fault.KindConfiguration {
		t.Errorf("404 = %s", got)
	}
}

// Support tickets need the provider's request id: it is part of what every log line and
// dead letter shows.
func TestServiceErrorShowsRequestID(t *testing.T) {
	t.Parallel()
	err := fault.Classify(fault.Facts{Provider: "LLM", Status: 500, Message: "The server had an error", RequestID: "req_abc123"})
	if got, want := err.Error(), "The server had an error (request_id req_abc123)"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	err = fault.Classify(fault.Facts{Provider: "ElevenLabs", Status: 503, RequestID: "r1"})
	if got, want := err.Error(), "ElevenLabs: service unavailable (HTTP 503) (request_id r1)"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"30", "0.25", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "1e400", "NaN", ""} {
		f.Add(s, s)
	}
	now := time.Date(2026, 1, 30, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, ra, ms string) {
		h := http.Header{}
		h.Set("Retry-After", ra)
		h.Set("Retry-After-Ms", ms)
		h.Set("X-Ratelimit-Remaining-Tokens", "0")
		h.Set("X-Ratelimit-Reset-Tokens", ra+ms)
		d := fault.ParseRetryAfter(h, now)
		if d < 0 || d > fault.MaxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q, %q) = %s, out of [0, %s]", ra, ms, d, fault.MaxRetryAfter)
		}
	})
}

func TestClassifyTooLargeAndVoiceIDs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		facts fault.Facts
		want  fault.Kind
	}{
		// Groq: a request larger than the tokens-per-minute limit can never fit.
		{fault.Facts{Status: 413, Code: "rate_limit_exceeded", Message: "Request too large for model"}, fault.KindInvalidPayload},
		{fault.Facts{Status: 400, Code: "invalid_uid", Message: "An invalid ID has been received: 'voice 1'."}, fault.KindConfiguration},
		{fault.Facts{Status: 400, Code: "model_can_not_do_text_to_speech"}, fault.KindConfiguration},
	} {
		if got := fault.KindOf(fault.Classify(tt.facts)); got != tt.want {
			t.Errorf("%+v = %s, want %s", tt.facts, got, tt.want)
		}
	}
	if !fault.KnownCode(" Quota_Exceeded ") || fault.KnownCode("brand_new_code") {
		t.Error("KnownCode")
	}
}
