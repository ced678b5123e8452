package redact_test

import (
	"testing"

	"github.com/callagent/resilience/internal/redact"
)

// Most log lines hold nothing to redact; they must cost little. The second line has a key, a
// bearer token and a phone number.
func BenchmarkText(b *testing.B) {
	r := redact.New()
	r.Add("el-test-key-9876543210fedcba")
	for name, line := range map[string]string{
		"plain":  "Step 2: Converting text to speech with ElevenLabs (contact 1234, attempt 2 of 3)",
		"secret": "POST failed: Authorization: Bearer abcdef123456 for +14155550123 with el-test-key-9876543210fedcba",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = r.Text(line)
			}
		})
	}
}
