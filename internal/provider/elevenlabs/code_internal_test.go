package elevenlabs

import "testing"

// A code the table does not know must not hide a known legacy status beside it.
func TestDecidingCode(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		codes []string
		want  string
	}{
		{[]string{"brand_new_code", "quota_exceeded", ""}, "quota_exceeded"},
		{[]string{"voice_not_found", "invalid_request", ""}, "voice_not_found"},
		{[]string{"", "", "authentication_error"}, "authentication_error"},
		{[]string{"brand_new_code", "also_new", ""}, "brand_new_code"},
		{[]string{"", "", ""}, ""},
	} {
		if got := decidingCode(tt.codes...); got != tt.want {
			t.Errorf("decidingCode(%q) = %q, want %q", tt.codes, got, tt.want)
		}
	}
}
