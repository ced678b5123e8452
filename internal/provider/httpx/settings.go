package httpx

import (
	"net/url"
	"strings"

	"github.com/callagent/resilience/internal/config/field"
)

// RequiredProblem is the Problem of a missing required provider option.
const RequiredProblem = "is required when SIMULATE is unset"

// Settings collects the problems of one client's options as *field.Error values, each named
// by its Options field ("APIKey", "BaseURL"); it knows no environment-variable names.
type Settings struct {
	field.List
}

// NewSettings starts a check of one client's options.
func NewSettings() *Settings { return &Settings{} }

// Problemf records that the option name has the problem described by format.
func (s *Settings) Problemf(name, format string, args ...any) { s.Addf(name, format, args...) }

// Required records a problem when value is blank.
func (s *Settings) Required(name, value string) { s.List.Required(name, value, RequiredProblem) }

// BaseURL checks an API base URL (absolute http or https, a host, no credentials, query or
// fragment) and returns it without its trailing slashes. Blank values are reported as
// required.
func (s *Settings) BaseURL(name, value string) string {
	u, ok := s.url(name, value, false)
	if !ok {
		return ""
	}
	return strings.TrimRight(u.String(), "/")
}

// EndpointURL checks a full endpoint URL such as a webhook (as BaseURL, but a query is
// allowed and the value is kept as given). The value never appears in a problem: it may hold
// a token. A blank value is accepted when optional.
func (s *Settings) EndpointURL(name, value string, optional bool) string {
	if optional && strings.TrimSpace(value) == "" {
		return ""
	}
	if _, ok := s.url(name, value, true); !ok {
		return ""
	}
	return strings.TrimSpace(value)
}

func (s *Settings) url(name, value string, queryOK bool) (*url.URL, bool) {
	if strings.TrimSpace(value) == "" {
		s.Problemf(name, "%s", RequiredProblem)
		return nil, false
	}
	if p := URLProblem(value, queryOK); p != "" {
		s.Problemf(name, "%s", p)
		return nil, false
	}
	u, _ := url.Parse(strings.TrimSpace(value))
	return u, true
}

// URLProblem is the rule for a provider URL, "" when value follows it: absolute http or
// https with a host, no credentials, no fragment, and a query only when queryOK (an endpoint
// such as a webhook; a base URL has none). The configuration checks the provider URL
// settings with it, so each has this one rule. value must not be blank.
func URLProblem(value string, queryOK bool) string {
	value = strings.TrimSpace(value)
	u, err := url.Parse(value)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return "must be an absolute http:// or https:// URL with a host"
	case u.User != nil:
		return "must not contain credentials (user:password@)"
	case u.Fragment != "" || strings.Contains(value, "#"):
		return "must not contain a fragment (#…)"
	case !queryOK && (u.RawQuery != "" || u.ForceQuery):
		return "must not contain a query (?…)"
	}
	return ""
}

// TrimBaseURL returns a base URL that Settings.BaseURL accepted in the form it returned:
// parsed and without trailing slashes.
func TrimBaseURL(value string) string {
	u, err := url.Parse(strings.TrimSpace(value))
	if err != nil {
		return strings.TrimRight(strings.TrimSpace(value), "/")
	}
	return strings.TrimRight(u.String(), "/")
}
