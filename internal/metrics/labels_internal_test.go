package metrics

import (
	"regexp"
	"testing"
)

// The hand-written label checks agree with the patterns they replace.
var (
	labelPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_. -]{0,39}$`)
	modelPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/ -]{0,79}$`)
)

func FuzzLabelChecks(f *testing.F) {
	for _, s := range []string{"", "a", "ElevenLabs", "OpenAI TTS", "gpt-4o-mini", "meta-llama/Llama-3.1-8B",
		"llama3:8b", "9lives", "-x", "a\n", "é", "a/b", "x:y", string(make([]byte, 41)), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isLabelName(s), labelPattern.MatchString(s); got != want {
			t.Fatalf("isLabelName(%q) = %v, the pattern says %v", s, got, want)
		}
		if got, want := isModelName(s), modelPattern.MatchString(s); got != want {
			t.Fatalf("isModelName(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}
