package redact

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// textWithoutPrefilters is Text as it would be if every shape's expression ran on every
// line: the reference the prefilters must not change.
func textWithoutPrefilters(r *Redactor, s string) string {
	if s == "" {
		return s
	}
	if p := r.secrets.Load(); p != nil {
		s = replaceSecrets(s, *p)
	}
	for _, sh := range shapes {
		s = sh.re.ReplaceAllString(s, sh.repl)
	}
	return phonePattern.ReplaceAllStringFunc(s, Phone)
}

// fragments are pieces of text that make up lines holding credentials, near misses and
// non-ASCII letters that (?i) folds.
var fragments = []string{
	"bearer ", "Bearer\t", "BASIC ", "basic", "bea", "api_key", "API-KEY", "apikey", "x-api-key", "token", "TOKEN",
	"secret", "Secret", "passwd", "password", "PASSW", "key", "Key", "=", ":", ": ", "\"", "'", " ", ",", "&", "}",
	"<", ">", "(", ")", ".", "sk-", "sk_", "SK-", "s", "k", "-", "_", "://", "@", "/", "+", "+14155550123", "+1", "0", "123456",
	"12345", "9876543210", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "abcdefghijklmnopqrstuvwxyz", "bot", "ſ", "\u212a",
	"é", "\xff", "abc", "XYZ", "user", "host", "https", "<redacted>", "el-test-key-9876543210fedcba",
}

func randomLine(rng *rand.Rand) string {
	var b strings.Builder
	for range rng.IntN(12) {
		b.WriteString(fragments[rng.IntN(len(fragments))])
	}
	return b.String()
}

func TestPrefiltersMatchUnfilteredExpressions(t *testing.T) {
	t.Parallel()
	r := New("el-test-key-9876543210fedcba", "hunter22")
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		line := randomLine(rng)
		if got, want := r.Text(line), textWithoutPrefilters(r, line); got != want {
			t.Fatalf("Text(%q) = %q, every expression gives %q", line, got, want)
		}
	}
}

func FuzzPrefilters(f *testing.F) {
	f.Add("Authorization: Bearer abc", "abcd")
	f.Add("https://u:p@h api_key=1 sk-abcdefghijklmnopqrst bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "")
	f.Fuzz(func(t *testing.T, line, secret string) {
		r := New(secret)
		if got, want := r.Text(line), textWithoutPrefilters(r, line); got != want {
			t.Fatalf("Text(%q) = %q, every expression gives %q", line, got, want)
		}
	})
}

// scan finds what the prefilters it replaced tested, one scan per shape.
func TestScanMatchesSeparatePrefilters(t *testing.T) {
	t.Parallel()
	containsFold := func(s, sub string) bool { return strings.Contains(strings.ToLower(s), sub) }
	hasDigitRun := func(s string) bool {
		run := 0
		for i := 0; i < len(s); i++ {
			if s[i] >= '0' && s[i] <= '9' {
				if run++; run >= 6 {
					return true
				}
			} else {
				run = 0
			}
		}
		return false
	}
	old := []func(s string) bool{
		func(s string) bool { return containsFold(s, "bearer") || containsFold(s, "basic") },
		func(s string) bool {
			return strings.ContainsAny(s, ":=") && (containsFold(s, "key") || containsFold(s, "token") ||
				containsFold(s, "secret") || containsFold(s, "passw"))
		},
		func(s string) bool { return strings.IndexByte(s, ':') >= 0 && hasDigitRun(s) },
		func(s string) bool { return strings.Contains(s, "sk-") || strings.Contains(s, "sk_") },
		func(s string) bool { return strings.Contains(s, "://") && strings.IndexByte(s, '@') >= 0 },
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for range 20000 {
		line := randomLine(rng)
		h := scan(line)
		ascii := true
		for i := 0; i < len(line); i++ {
			ascii = ascii && line[i] < 0x80
		}
		if ascii != (h&hintNonASCII == 0) {
			t.Fatalf("scan(%q) non-ASCII = %v", line, h&hintNonASCII != 0)
		}
		if !ascii {
			continue
		}
		for i, sh := range shapes {
			if got, want := sh.may(h), old[i](line); got != want {
				t.Fatalf("shape %d: may(scan(%q)) = %v, the separate prefilter says %v", i, line, got, want)
			}
		}
	}
}

// Plain is exact: whatever it accepts, Text leaves as it is.
func TestPlainIsExact(t *testing.T) {
	t.Parallel()
	r := New("el-test-key-9876543210fedcba", "hunter22", "ab cd")
	rng := rand.New(rand.NewPCG(11, 12))
	plain := 0
	for range 50000 {
		line := randomLine(rng)
		if len(line) > MaxPlainLen {
			line = line[:MaxPlainLen]
		}
		checkPlain(t, r, line)
		if r.Plain(line) {
			plain++
		}
	}
	if plain < 1000 {
		t.Errorf("only %d random lines were plain; the test checks too little", plain)
	}
	for _, s := range []string{"", "ElevenLabs", "LLM (fallback)", "OpenAI TTS", "service_unavailable", "HALF_OPEN", "c-000042",
		"14155550123", "3", "sk", "Basi", "bear", "desk"} {
		if !r.Plain(s) {
			t.Errorf("Plain(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"+14155550123", "sk-proj-AbCdEfGhIjKlMnOpQrStUv", "sk_0123456789abcdef0123", "mask-", "Bearer x",
		"basic", "a=b", "a:b", "x hunter22 y", "ab cd", "é", strings.Repeat("a", MaxPlainLen+1)} {
		if r.Plain(s) {
			t.Errorf("Plain(%q) = true, want false", s)
		}
	}
	var nilRedactor *Redactor
	if !nilRedactor.Plain("ElevenLabs") || nilRedactor.Plain("+14155550123") {
		t.Error("nil Redactor: Plain wrong")
	}
}

func FuzzPlain(f *testing.F) {
	f.Add("ElevenLabs", "abcd")
	f.Add("sk_abcdefghijklmnopqrst", "")
	f.Fuzz(func(t *testing.T, s, secret string) { checkPlain(t, New(secret), s) })
}

func checkPlain(t *testing.T, r *Redactor, s string) {
	t.Helper()
	if r.Plain(s) {
		if got := r.Text(s); got != s {
			t.Fatalf("Plain(%q) but Text gives %q", s, got)
		}
	}
}
