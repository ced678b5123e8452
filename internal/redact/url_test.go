package redact_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/callagent/resilience/internal/redact"
)

func TestURLSecrets(t *testing.T) {
	t.Parallel()
	const (
		pathToken = "Pz8Kq2Wm5Xr9Tn3Vb7Lc1Yd6Hf"
		sig       = "Sg4Nd8Rt2Lp6Qw0Zx3Cv7Bm1Ka"
	)
	tests := []struct {
		name, url string
		want      []string // must be among the secrets
		not       []string // must not be
		// quotes are texts a receiver may send back: none may survive redaction.
		quotes []string
	}{
		{
			name: "webhook with tokens in path and query",
			url:  "https://hooks.example.com/hooks/catch/123/" + pathToken + "/?sig=" + sig,
			want: []string{"/hooks/catch/123/" + pathToken + "/?sig=" + sig, pathToken, sig},
			not:  []string{"hooks", "catch", "123", "https://hooks.example.com"},
			quotes: []string{
				`{"message":"Route POST:/hooks/catch/123/` + pathToken + `/?sig=` + sig + ` not found"}`,
				"request " + pathToken,
				"sig " + sig,
			},
		},
		{
			name:   "upper-case scheme",
			url:    "HTTPS://hooks.slack.com/services/T000/B000/" + pathToken,
			want:   []string{"/services/T000/B000/" + pathToken, pathToken},
			quotes: []string{"POST /services/T000/B000/" + pathToken},
		},
		{
			name:   "user info",
			url:    "https://user@hooks.example.com/in/" + pathToken + "?k=" + sig,
			want:   []string{"/in/" + pathToken + "?k=" + sig, pathToken, sig, "user"},
			quotes: []string{"/in/" + pathToken + "?k=" + sig},
		},
		{
			name:   "user and password",
			url:    "https://alice:" + sig + "@hooks.example.com/x",
			want:   []string{sig},
			quotes: []string{"password " + sig},
		},
		{
			name:   "escaped query value",
			url:    "https://h.example/x?sig=" + sig + "%2F%2B",
			want:   []string{sig + "%2F%2B", sig + "/+"},
			quotes: []string{"sig " + sig + "/+"},
		},
		{
			name: "short query values are not secrets on their own",
			url:  "https://h.example/x?format=json&x=1",
			want: []string{"/x?format=json&x=1"},
			not:  []string{"json", "1"},
		},
		{
			name:   "telegram bot token",
			url:    "https://api.telegram.org/bot7412589630:AAHq3Zx8Wv2Lm7Pk4Tn9Rb5Yc1Jd6Gf0Se/sendMessage",
			want:   []string{"bot7412589630:AAHq3Zx8Wv2Lm7Pk4Tn9Rb5Yc1Jd6Gf0Se"},
			not:    []string{"sendMessage"},
			quotes: []string{"method bot7412589630:AAHq3Zx8Wv2Lm7Pk4Tn9Rb5Yc1Jd6Gf0Se not found"},
		},
		{
			name:   "unparsable url",
			url:    "https://h.example:port/" + pathToken,
			want:   []string{"/" + pathToken},
			quotes: []string{"at /" + pathToken},
		},
		{
			name: "origin only",
			url:  "https://events.pagerduty.com",
			want: []string{"https://events.pagerduty.com"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := redact.URLSecrets(tt.url)
			if !slices.Contains(got, tt.url) {
				t.Errorf("URLSecrets(%q) = %q, lacks the URL itself", tt.url, got)
			}
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("URLSecrets(%q) = %q, lacks %q", tt.url, got, w)
				}
			}
			for _, n := range tt.not {
				if slices.Contains(got, n) {
					t.Errorf("URLSecrets(%q) = %q, holds %q", tt.url, got, n)
				}
			}
			for _, s := range got {
				if s == "" {
					t.Errorf("URLSecrets(%q) holds an empty value", tt.url)
				}
			}
			r := redact.New(got...)
			for _, q := range tt.quotes {
				out := r.Text(q)
				for _, sec := range []string{pathToken, sig, "AAHq3Zx8Wv2Lm7Pk4Tn9Rb5Yc1Jd6Gf0Se"} {
					if strings.Contains(out, sec) {
						t.Errorf("Text(%q) = %q shows %q", q, out, sec)
					}
				}
			}
		})
	}
}
