package redact

import (
	"net/url"
	"slices"
	"strings"
)

// MinURLSegmentLen is the shortest path segment URLSecrets takes for a token: shorter ones
// ("hooks", "sendMessage", "v1") are words of the route, and redacting them would mangle
// every message that names the route.
const MinURLSegmentLen = 16

// minURLValueLen is the shortest query value URLSecrets returns on its own ("json", "true"
// are not secrets); a shorter value is still covered by the path and query returned whole.
const minURLValueLen = 8

// URLSecrets returns the pieces of rawURL that may carry a credential, for a Redactor
// (Add each) or Text: the URL as given; its path and query as a request sends them
// ("/hooks/catch/123/<token>/?sig=…", what a receiver quoting the request shows) and its
// path alone, escaped and decoded; every query value of at least 8 characters, as sent and
// decoded; every path segment of at least MinURLSegmentLen characters (a token in the path,
// "bot<token>"); the user and password of a user@ or user:password@ part. It works whatever
// the case of the scheme and with user info in the URL, unlike trimming the URL's origin
// off it. An unparsable URL gives the URL and everything after its host. Values are
// unique; empty ones are left out.
func URLSecrets(rawURL string) []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(rawURL)
	raw := strings.TrimSpace(rawURL)
	add(raw)
	u, err := url.Parse(raw)
	if err != nil {
		// Everything after scheme://host, so that the path of a URL that does not parse is
		// still covered.
		rest := raw
		if _, after, ok := strings.Cut(rest, "://"); ok {
			rest = after
		}
		if i := strings.IndexAny(rest, "/?"); i >= 0 && len(rest[i:]) > 1 {
			add(rest[i:])
		}
		return out
	}
	if u.User != nil {
		add(u.User.Username())
		if p, ok := u.User.Password(); ok {
			add(p)
		}
	}
	if u.Opaque != "" {
		add(u.Opaque)
	}
	if u.Path != "" && u.Path != "/" {
		add(u.RequestURI())
		add(u.EscapedPath())
		add(u.Path)
	}
	if u.RawQuery != "" {
		add(u.RequestURI())
		add(u.RawQuery)
		for _, kv := range strings.FieldsFunc(u.RawQuery, func(r rune) bool { return r == '&' || r == ';' }) {
			_, v, _ := strings.Cut(kv, "=")
			if len(v) >= minURLValueLen {
				add(v)
			}
			if dv, err := url.QueryUnescape(v); err == nil && len(dv) >= minURLValueLen {
				add(dv)
			}
		}
	}
	for _, p := range []string{u.EscapedPath(), u.Path} {
		for seg := range strings.SplitSeq(p, "/") {
			if len(seg) >= MinURLSegmentLen {
				add(seg)
			}
		}
	}
	return out
}
