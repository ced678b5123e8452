package elevenlabs

import (
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/redact"
	"github.com/callagent/resilience/internal/secret"
)

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

// The code is kept only when it has the shape of a code and shows no secret: it is passed
// through as it is, and ServiceError prints it when the message is empty. Fuzz crashers
// 1d65a4ae634516a9 and 7591777512a712a4 (a control character as detail.status/code).
func TestFailureKeepsOnlyCodeShapedCodes(t *testing.T) {
	t.Parallel()
	const key = "sk_3f9a61c0d84b27e5a1f03c96b8d4e27a0c5f19b3d6e84a72"
	c, err := New(Options{APIKey: secret.Secret(key), VoiceID: "voice-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, body, want string
	}{
		{"control character as legacy status", `{"detail":{"status":"\u000f","message":""}}`, ""},
		{"control character as code", `{"detail":{"type":"validation_error","code":"\u0013","message":"0"}}`, "validation_error"},
		{"huge code", `{"detail":{"code":"` + strings.Repeat("a", 64<<10) + `"}}`, ""},
		{"65 characters", `{"detail":{"code":"` + strings.Repeat("a", 65) + `"}}`, ""},
		{"64 characters", `{"detail":{"code":"` + strings.Repeat("a", 64) + `"}}`, strings.Repeat("a", 64)},
		{"the key as a code", `{"detail":{"code":"` + key + `","message":""}}`, ""},
		{"a sentence", `{"detail":{"code":"not a code","message":""}}`, ""},
		{"ansi escape", `{"detail":{"code":"\u001b[31mred"}}`, ""},
		{"known code", `{"detail":{"code":"invalid_api_key","message":"m"}}`, "invalid_api_key"},
		{"plus in a code", `{"detail":{"status":"only_for_creator+","message":"m"}}`, "only_for_creator+"},
		{"dotted code", `{"detail":{"code":"value_error.missing"}}`, "value_error.missing"},
		{"bad code beside a good status", `{"detail":{"code":"\u0000x","status":"quota_exceeded"}}`, "quota_exceeded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, failed := c.failure(&httpx.Response{Status: 401, Header: http.Header{}, Body: []byte(tt.body)}, nil)
			if !failed || f.Code != tt.want {
				t.Fatalf("code %q (failed %v), want %q", f.Code, failed, tt.want)
			}
			text := fault.Classify(f).Error()
			if strings.IndexFunc(text, unicode.IsControl) >= 0 || strings.Contains(text, key) || len(text) > 1000 {
				t.Errorf("error text %.200q is not short, printable and free of the key", text)
			}
		})
	}
}

// The request id is redacted before it is cut: a key straddling the cut must not survive as
// a prefix. Fuzz crasher requestid-cut-be6c42defc794dd5.
func TestRequestIDRedactedBeforeItIsCut(t *testing.T) {
	t.Parallel()
	const key = "sk_3f9a61c0d84b27e5a1f03c96b8d4e27a0c5f19b3d6e84a72"
	red := redact.New(key)
	for _, id := range []string{
		"\xff00\xcc" + key + key + key,
		strings.Repeat("r", 100) + key,
		strings.Repeat("r", 120) + "custom-secret-value-1234",
	} {
		red := red
		if strings.Contains(id, "custom") {
			red = redact.New(key, "custom-secret-value-1234")
		}
		for _, h := range []http.Header{{"Request-Id": {id}}, {"X-Request-Id": {id}}, {}} {
			got := requestID(red, h, id)
			if len(got) > requestIDLimit || !utf8.ValidString(got) {
				t.Errorf("requestID(%q) = %q: not bounded valid UTF-8", id, got)
			}
			for _, sec := range []string{key[:16], "custom-secret-v"} {
				if strings.Contains(got, sec) {
					t.Errorf("requestID(%q) = %q shows %q", id, got, sec)
				}
			}
		}
	}
}
