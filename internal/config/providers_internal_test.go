package config

import (
	"strings"
	"testing"
)

// A phone line wants ulaw_8000; an OpenAI voice cannot speak it, so the operator is told at
// start which calls would carry another format.
func TestFallbackFormatMismatch(t *testing.T) {
	t.Parallel()
	openai := func(format string) TTSFallback {
		return TTSFallback{Kind: TTSFallbackOpenAI, OpenAIFormat: format}
	}
	tests := []struct {
		primary string
		fb      TTSFallback
		warn    bool
	}{
		{"mp3_44100_128", openai("mp3"), false},
		{"ulaw_8000", openai("mp3"), true},
		{"ulaw_8000", openai("wav"), true},
		{"pcm_24000", openai("pcm"), false},
		{"pcm_16000", openai("pcm"), true},
		{"wav_24000", openai("wav"), false},
		{"wav_8000", openai("wav"), true},
		{"opus_48000_64", openai("opus"), false},
		{"ulaw_8000", TTSFallback{Kind: TTSFallbackElevenLabs}, false},
		{"ulaw_8000", TTSFallback{Kind: TTSFallbackNone}, false},
	}
	for _, tt := range tests {
		got := fallbackFormatMismatch(tt.primary, tt.fb)
		if (got != "") != tt.warn {
			t.Errorf("%s with %+v: warning %q, want one: %v", tt.primary, tt.fb, got, tt.warn)
		}
		if got != "" && (!strings.Contains(got, tt.primary) || !strings.Contains(got, "OPENAI_TTS_FORMAT")) {
			t.Errorf("warning does not name the settings: %q", got)
		}
	}
}

func TestReasoningBudgetWarning(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		model string
		max   int
		warn  bool
	}{
		{"gpt-5-mini", 300, true}, {"o3", 300, true}, {"openai/o4-mini", 500, true}, {"gpt-5", 2000, false},
		{"gpt-4o-mini", 300, false}, {"llama-3.1-8b-instant", 300, false}, {"olmo-7b", 300, false},
	} {
		got := reasoningBudgetWarning(tt.model, tt.max)
		if (got != "") != tt.warn {
			t.Errorf("%s with %d: %q, want a warning: %v", tt.model, tt.max, got, tt.warn)
		}
	}
}
