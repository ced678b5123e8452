// Package redact makes text safe to write to logs, alerts and dead letters.
//
// It masks phone numbers (the people we call) and removes credentials: the
// secret values a process registers (API keys read from the configuration)
// and common credential shapes that should never leave the process even when
// nobody registered them (bearer tokens, api_key=… pairs, OpenAI-style and
// ElevenLabs-style keys, Telegram bot tokens, passwords in URLs).
package redact

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Placeholder replaces every secret and credential value.
const Placeholder = "<redacted>"

// MinSecretLen is the shortest secret value that is redacted; shorter values
// would blank out ordinary words and numbers, so they are ignored.
const MinSecretLen = 4

// MinPhoneDigits is the fewest digits a phone number needs before Phone keeps
// its first and last two digits; shorter numbers would stay guessable, so they
// are masked completely.
const MinPhoneDigits = 10

// phonePattern finds E.164-looking numbers: a plus, a non-zero digit, 6 to 14
// more digits.
var phonePattern = regexp.MustCompile(`\+[1-9]\d{6,14}`)

// shape is a credential pattern that is redacted without being registered.
// The replacement keeps capture group 1 (a label such as "Bearer ") when the
// pattern has one.
type shape struct {
	re   *regexp.Regexp
	repl string
	// may reports whether s can hold a match at all: a cheap scan that spares the regular
	// expression (most of the cost of logging) on the lines that cannot.
	may func(s string) bool
}

// shapes are applied in order, after the registered secrets and before the
// phone numbers.
var shapes = []shape{
	// Authorization headers and their values: "Bearer abc", "Basic abc".
	{regexp.MustCompile(`(?i)\b((?:bearer|basic)\s+)[A-Za-z0-9\-._~+/]+=*`), "${1}" + Placeholder,
		func(s string) bool { return containsFold(s, "bearer") || containsFold(s, "basic") }},
	// key=value and "key": "value" pairs whose key names a credential:
	// xi-api-key, x-api-key, api_key, apikey, access_token, client_secret,
	// password, ... The value ends at whitespace, a quote or a separator.
	{regexp.MustCompile(`(?i)\b((?:[a-z0-9]+[_-])*(?:api[_-]?key|token|secret|password|passwd)["']?\s*[:=]\s*["']?)[^\s"'&,;}<]+`), "${1}" + Placeholder,
		func(s string) bool {
			return strings.ContainsAny(s, ":=") && (containsFold(s, "key") || containsFold(s, "token") ||
				containsFold(s, "secret") || containsFold(s, "passw"))
		}},
	// Telegram bot tokens, bare or in an API URL (".../bot123456:AA.../sendMessage").
	{regexp.MustCompile(`(bot)?\d{6,}:[A-Za-z0-9_-]{30,}`), "${1}" + Placeholder,
		func(s string) bool { return strings.IndexByte(s, ':') >= 0 && hasDigitRun(s, 6) }},
	// OpenAI-style "sk-..." (including sk-proj-, sk-ant-) and ElevenLabs-style
	// "sk_..." keys.
	{regexp.MustCompile(`\bsk[-_][A-Za-z0-9_-]{16,}`), Placeholder,
		func(s string) bool { return strings.Contains(s, "sk-") || strings.Contains(s, "sk_") }},
	// Passwords in URLs: scheme://user:password@host.
	{regexp.MustCompile(`(://[^/\s:@]+:)[^/\s@]+@`), "${1}" + Placeholder + "@",
		func(s string) bool { return strings.Contains(s, "://") && strings.IndexByte(s, '@') >= 0 }},
}

// Phone masks a phone number for logs: "+14155550123" becomes "+14*******23".
// It keeps a leading "+", the first two and the last two digits, every
// separator, and replaces the other digits with '*'. A number with fewer than
// MinPhoneDigits digits is too short to mask safely: every character becomes
// '*'.
func Phone(p string) string {
	digits := 0
	for _, r := range p {
		if isDigit(r) {
			digits++
		}
	}
	if digits < MinPhoneDigits {
		return strings.Repeat("*", len([]rune(p)))
	}
	var b strings.Builder
	b.Grow(len(p))
	seen := 0
	for _, r := range p {
		if !isDigit(r) {
			b.WriteRune(r)
			continue
		}
		seen++
		if seen <= 2 || seen > digits-2 {
			b.WriteRune(r)
		} else {
			b.WriteByte('*')
		}
	}
	return b.String()
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

// Text returns s with every registered secret replaced by Placeholder, every
// common credential shape redacted and every E.164-looking phone number masked
// with Phone. Secrets shorter than MinSecretLen are ignored.
func Text(s string, secrets ...string) string {
	return New(secrets...).Text(s)
}

// Redactor redacts text with a set of registered secrets that can grow while
// the process runs (for example when a provider key is loaded). The zero value
// is ready to use; a nil *Redactor redacts shapes and phone numbers only. It is
// safe for concurrent use.
type Redactor struct {
	mu      sync.Mutex               // serialises Add
	secrets atomic.Pointer[[]string] // sorted longest first; replaced, never mutated
}

// New returns a Redactor that knows the given secrets.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		r.Add(s)
	}
	return r
}

// Add registers a secret value. Empty values and values shorter than
// MinSecretLen are ignored. The JSON-escaped and URL-escaped forms of the value
// are registered too, so the secret is also found where a provider echoes it
// inside a JSON body or a query string.
func (r *Redactor) Add(secret string) {
	if r == nil || len(secret) < MinSecretLen {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var cur []string
	if p := r.secrets.Load(); p != nil {
		cur = *p
	}
	next := slices.Clone(cur)
	for _, v := range variants(secret) {
		if !slices.Contains(next, v) {
			next = append(next, v)
		}
	}
	if len(next) == len(cur) {
		return
	}
	// Longest first, so that when two secrets start at the same place the
	// whole of the longer one is covered; overlaps are merged anyway.
	slices.SortStableFunc(next, func(a, b string) int { return len(b) - len(a) })
	r.secrets.Store(&next)
}

// variants returns the secret and the escaped forms it takes inside JSON
// strings and URLs, without duplicates.
func variants(secret string) []string {
	out := []string{secret}
	if b, err := json.Marshal(secret); err == nil {
		if v := string(b[1 : len(b)-1]); v != secret {
			out = append(out, v)
		}
	}
	for _, v := range []string{url.QueryEscape(secret), url.PathEscape(secret)} {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// Text returns s with the registered secrets, credential shapes and phone
// numbers redacted, as the package-level Text describes.
func (r *Redactor) Text(s string) string {
	if s == "" {
		return s
	}
	if r != nil {
		if p := r.secrets.Load(); p != nil {
			s = replaceSecrets(s, *p)
		}
	}
	// The prefilters scan ASCII; (?i) also folds a few non-ASCII letters (ſ, K), so a line
	// with any non-ASCII byte gets every expression.
	ascii := isASCII(s)
	for _, sh := range shapes {
		if !ascii || sh.may(s) {
			s = sh.re.ReplaceAllString(s, sh.repl)
		}
	}
	if strings.IndexByte(s, '+') < 0 {
		return s // no phone number without its plus
	}
	return phonePattern.ReplaceAllStringFunc(s, Phone)
}

// containsFold reports whether s contains sub (lower-case ASCII) in any case, without
// allocating.
func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if c := s[i] | 0x20; c == sub[0] && strings.EqualFold(s[i:i+n], sub) {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// hasDigitRun reports whether s holds n or more ASCII digits in a row.
func hasDigitRun(s string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			if run++; run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// replaceSecrets replaces every occurrence of every secret with Placeholder.
// Occurrences that overlap or touch (one secret inside or across another) are
// merged into one placeholder, so no fragment of either survives.
func replaceSecrets(s string, secrets []string) string {
	type span struct{ start, end int }
	var spans []span
	for _, sec := range secrets {
		for from := 0; from < len(s); {
			i := strings.Index(s[from:], sec)
			if i < 0 {
				break
			}
			start := from + i
			spans = append(spans, span{start, start + len(sec)})
			from = start + 1
		}
	}
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var b strings.Builder
	b.Grow(len(s))
	last := 0 // end of the text already written or covered
	for i := 0; i < len(spans); {
		start, end := spans[i].start, spans[i].end
		for i++; i < len(spans) && spans[i].start <= end; i++ {
			end = max(end, spans[i].end)
		}
		b.WriteString(s[last:start])
		b.WriteString(Placeholder)
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}
