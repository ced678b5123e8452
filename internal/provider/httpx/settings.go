package httpx

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrInvalidSetting matches every *SettingError.
var ErrInvalidSetting = errors.New("invalid provider setting")

// SettingError is a provider client option that is missing or invalid, named by the setting
// (environment variable) that fills it, so the worker can refuse to start with a message the
// operator can act on.
type SettingError struct {
	// Setting is the environment variable, e.g. "ELEVENLABS_API_KEY".
	Setting string
	// Problem completes the sentence, e.g. "is required when SIMULATE is unset".
	Problem string
}

// Error reads "<Setting> <Problem>".
func (e *SettingError) Error() string { return e.Setting + " " + e.Problem }

// Is makes errors.Is(err, ErrInvalidSetting) true.
func (e *SettingError) Is(target error) bool { return target == ErrInvalidSetting }

// RequiredProblem is the Problem of a missing required setting.
const RequiredProblem = "is required when SIMULATE is unset"

// Settings collects the problems of one client's options, each named by a prefix (such as
// "ELEVENLABS_" or "ELEVENLABS_FALLBACK_") and the setting's suffix ("API_KEY").
type Settings struct {
	prefix string
	errs   []error
}

// NewSettings starts a check of the settings named prefix+suffix.
func NewSettings(prefix string) *Settings { return &Settings{prefix: prefix} }

// Name returns the full setting name of suffix.
func (s *Settings) Name(suffix string) string { return s.prefix + suffix }

// Problemf records that the setting suffix has the problem described by format.
func (s *Settings) Problemf(suffix, format string, args ...any) {
	s.errs = append(s.errs, &SettingError{Setting: s.Name(suffix), Problem: fmt.Sprintf(format, args...)})
}

// Required records a problem when value is blank.
func (s *Settings) Required(suffix, value string) {
	if strings.TrimSpace(value) == "" {
		s.Problemf(suffix, "%s", RequiredProblem)
	}
}

// BaseURL checks an API base URL (absolute http or https, a host, no credentials, query or
// fragment) and returns it without its trailing slashes. Blank values are reported as
// required.
func (s *Settings) BaseURL(suffix, value string) string {
	u, ok := s.url(suffix, value, false)
	if !ok {
		return ""
	}
	return strings.TrimRight(u.String(), "/")
}

// EndpointURL checks a full endpoint URL such as a webhook (as BaseURL, but a query is
// allowed and the value is kept as given). The value never appears in a problem: it may hold
// a token. A blank value is accepted when optional.
func (s *Settings) EndpointURL(suffix, value string, optional bool) string {
	if optional && strings.TrimSpace(value) == "" {
		return ""
	}
	if _, ok := s.url(suffix, value, true); !ok {
		return ""
	}
	return strings.TrimSpace(value)
}

func (s *Settings) url(suffix, value string, queryOK bool) (*url.URL, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		s.Problemf(suffix, "%s", RequiredProblem)
		return nil, false
	}
	u, err := url.Parse(value)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		s.Problemf(suffix, "must be an absolute http:// or https:// URL with a host")
	case u.User != nil:
		s.Problemf(suffix, "must not contain credentials (user:password@)")
	case u.Fragment != "" || strings.Contains(value, "#"):
		s.Problemf(suffix, "must not contain a fragment (#…)")
	case !queryOK && (u.RawQuery != "" || u.ForceQuery):
		s.Problemf(suffix, "must not contain a query (?…)")
	default:
		return u, true
	}
	return nil, false
}

// Err returns nil, or every problem recorded joined with errors.Join (one per line); each
// is a *SettingError.
func (s *Settings) Err() error { return errors.Join(s.errs...) }
