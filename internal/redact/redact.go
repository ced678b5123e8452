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
	// may reports, from what one pass over a line found (scan), whether the line can hold
	// a match at all: a cheap test that spares the regular expression (most of the cost
	// of logging) on the lines that cannot.
	may func(h hints) bool
}

// shapes are applied in order, after the registered secrets and before the
// phone numbers.
var shapes = []shape{
	// Authorization headers and their values: "Bearer abc", "Basic abc".
	{regexp.MustCompile(`(?i)\b((?:bearer|basic)\s+)[A-Za-z0-9\-._~+/]+=*`), "${1}" + Placeholder,
		func(h hints) bool { return h&hintAuth != 0 }},
	// key=value and "key": "value" pairs whose key names a credential:
	// xi-api-key, x-api-key, api_key, apikey, access_token, client_secret,
	// password, ... The value ends at whitespace, a quote or a separator.
	{regexp.MustCompile(`(?i)\b((?:[a-z0-9]+[_-])*(?:api[_-]?key|token|secret|password|passwd)["']?\s*[:=]\s*["']?)[^\s"'&,;}<]+`), "${1}" + Placeholder,
		func(h hints) bool { return h&(hintColon|hintEquals) != 0 && h&hintCredWord != 0 }},
	// Telegram bot tokens, bare or in an API URL (".../bot123456:AA.../sendMessage").
	{regexp.MustCompile(`(bot)?\d{6,}:[A-Za-z0-9_-]{30,}`), "${1}" + Placeholder,
		func(h hints) bool { return h&hintColon != 0 && h&hintDigits6 != 0 }},
	// OpenAI-style "sk-..." (including sk-proj-, sk-ant-) and ElevenLabs-style
	// "sk_..." keys.
	{regexp.MustCompile(`\bsk[-_][A-Za-z0-9_-]{16,}`), Placeholder,
		func(h hints) bool { return h&hintSk != 0 }},
	// Passwords in URLs: scheme://user:password@host.
	{regexp.MustCompile(`(://[^/\s:@]+:)[^/\s@]+@`), "${1}" + Placeholder + "@",
		func(h hints) bool { return h&hintScheme != 0 && h&hintAt != 0 }},
}

// hints are what scan found in a line: the conditions of the shapes' prefilters.
type hints uint16

const (
	hintNonASCII hints = 1 << iota // a byte >= 0x80
	hintAuth                       // "bearer" or "basic", in any ASCII case
	hintCredWord                   // "key", "token", "secret" or "passw", in any ASCII case
	hintColon                      // ':'
	hintEquals                     // '='
	hintDigits6                    // six ASCII digits in a row
	hintSk                         // "sk-" or "sk_"
	hintScheme                     // "://"
	hintAt                         // '@'
)

// scan finds in one pass over s every condition the shapes' prefilters test. It stops at
// the first non-ASCII byte: (?i) also folds a few non-ASCII letters (ſ, K), so such a line
// gets every expression anyway.
func scan(s string) hints {
	var h hints
	run := 0 // ASCII digits in a row
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch scanClass[c] {
		case classOther:
			run = 0
			continue
		case classDigit:
			if run++; run >= 6 {
				h |= hintDigits6
			}
			continue
		case classNonASCII:
			return h | hintNonASCII
		}
		run = 0
		switch c | 0x20 { // lower case; ':' '=' '@' stay apart: they become ':' '=' '`'
		case ':':
			h |= hintColon
			if strings.HasPrefix(s[i:], "://") {
				h |= hintScheme
			}
		case '=':
			h |= hintEquals
		case '`':
			h |= hintAt
		case 'b':
			if hasPrefixFold(s[i:], "bearer") || hasPrefixFold(s[i:], "basic") {
				h |= hintAuth
			}
		case 'k':
			if hasPrefixFold(s[i:], "key") {
				h |= hintCredWord
			}
		case 't':
			if hasPrefixFold(s[i:], "token") {
				h |= hintCredWord
			}
		case 'p':
			if hasPrefixFold(s[i:], "passw") {
				h |= hintCredWord
			}
		case 's':
			if hasPrefixFold(s[i:], "secret") {
				h |= hintCredWord
			}
			if c == 's' && i+2 < len(s) && s[i+1] == 'k' && (s[i+2] == '-' || s[i+2] == '_') {
				h |= hintSk
			}
		}
	}
	return h
}

// Classes of bytes for scan: most bytes start nothing a prefilter looks for.
const (
	classOther    = iota // starts nothing scan looks for
	classDigit           // '0'-'9'
	classNonASCII        // >= 0x80
	classStart           // ':' '=' '@' and the first letters of the words scan looks for
)

var scanClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = classDigit
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = classNonASCII
	}
	for _, c := range ":=@bBkKtTpPsS" {
		t[c] = classStart
	}
	return t
}()

// hasPrefixFold reports whether s starts with prefix (lower-case ASCII letters) in any
// ASCII case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if s[i]|0x20 != prefix[i] {
			return false
		}
	}
	return true
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
	// The prefilters test ASCII; (?i) also folds a few non-ASCII letters (ſ, K), so a line
	// with any non-ASCII byte gets every expression. The hints are found once, before any
	// shape is redacted: redacting only removes text and inserts Placeholder, whose '<' and
	// '>' cannot join the text around it into a word a prefilter looks for, so what the
	// later shapes would find in the redacted line the hints already hold.
	h := scan(s)
	for _, sh := range shapes {
		if h&hintNonASCII != 0 || sh.may(h) {
			s = sh.re.ReplaceAllString(s, sh.repl)
		}
	}
	if strings.IndexByte(s, '+') < 0 {
		return s // no phone number without its plus
	}
	return phonePattern.ReplaceAllStringFunc(s, Phone)
}

// MaxPlainLen is the longest value Plain accepts.
const MaxPlainLen = 64

// Plain reports, cheaply, that Text would return s as it is, for the short name-like
// values a program logs (provider names, error categories, breaker states, ids): s has at
// most MaxPlainLen bytes, all ASCII letters, digits, spaces or "_-.()", holds neither
// "sk-"/"sk_" nor "bearer"/"basic" (in any case) and no registered secret. Such text
// cannot hold a phone number (no '+') nor any credential shape: every shape needs a
// character outside that set (':', '=', '/', '@', a quote) or one of those words. False
// says nothing: Text may still leave s as it is.
//
// Plain must stay exact when a shape is added: TestPlainIsExact checks it.
func (r *Redactor) Plain(s string) bool {
	if len(s) > MaxPlainLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case !plainByte[c]:
			return false
		case (c == '-' || c == '_') && i >= 2 && s[i-2] == 's' && s[i-1] == 'k':
			return false
		case c|0x20 == 'b' && (hasPrefixFold(s[i:], "bearer") || hasPrefixFold(s[i:], "basic")):
			return false
		}
	}
	if r == nil {
		return true
	}
	if p := r.secrets.Load(); p != nil {
		for _, sec := range *p {
			if len(sec) <= len(s) && strings.Contains(s, sec) {
				return false
			}
		}
	}
	return true
}

// plainByte are the bytes Plain accepts.
var plainByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range " _-.()" {
		t[c] = true
	}
	return t
}()

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
