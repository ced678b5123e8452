package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/joho/godotenv"
	"github.com/spf13/pflag"
)

// secretRows is a table with a secret setting, as later issues add for API
// keys; it stores into a variable outside Config.
func secretRows(dst *Secret) []setting {
	rows := []setting{
		row("TEST_API_KEY", "", ScopeWorker, "a key that must be at least 8 long",
			secretField(func(*Config) *Secret { return dst }, func(v string) string {
				if len(v) < 8 {
					return "must be at least 8 characters"
				}
				return ""
			})),
	}
	// Not finish: the field lies outside Config on purpose.
	rows[0].Flag = flagName(rows[0].Env)
	return rows
}

func TestSecretSettingValueRedacted(t *testing.T) {
	t.Parallel()
	var key Secret
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	l := register(fs, ScopeWorker, secretRows(&key))
	l.skipComponents = true
	if fs.Lookup("test-api-key") != nil {
		t.Fatal("a secret is a flag: command lines show in ps")
	}
	env := map[string]string{"TEST_API_KEY": "short"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	_, err := l.Load(lookup)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	want := `invalid configuration (1 problem):
  TEST_API_KEY="<redacted>" (from environment): must be at least 8 characters`
	if err.Error() != want {
		t.Errorf("error =\n%s\nwant\n%s", err, want)
	}

	env["TEST_API_KEY"] = "long-enough-key"
	if _, err := l.Load(lookup); err != nil {
		t.Fatalf("Load with a valid key: %v", err)
	}
	if key.Reveal() != "long-enough-key" {
		t.Errorf("key = %q, want the flag's value", key.Reveal())
	}
}

func TestNonSecretProblemValueRedacted(t *testing.T) {
	t.Parallel()
	p := newProblem(nil, setting{Setting: Setting{Env: "NATS_URL"}}, SourceEnvironment, "nats://u:pw123456@h", "x")
	if p.Value != "nats://u:<redacted>@h" {
		t.Errorf("Value = %q, want the password redacted", p.Value)
	}
}

func TestLocateEnvError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		content    string
		wantLine   int
		wantReason string
	}{
		{"bad name on first line", "A-B=1\n", 1, `unexpected character "-" in variable name`},
		{"bad name after comments", "# c\n\nA=1\nB C.D!=2\nE=3\n", 4, `unexpected character "!" in variable name`},
		{"name without value at end of line", "A=1\nB\nC=3\n", 2, `unexpected character "\n" in variable name`},
		{"unterminated double quote", "A=\"x\"\nB=\"never closed\nC=3\n", 2, "unterminated quoted value"},
		{"unterminated single quote after escaped", "A='it\\'s\nB=1\n", 1, "unterminated quoted value"},
		{"multi-line value before the error", "A=\"one\ntwo\"\nB-C=1\n", 3, `unexpected character "-" in variable name`},
		{"crlf", "A=1\r\nB=2\r\nC+D=3\r\n", 3, `unexpected character "+" in variable name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := godotenv.UnmarshalBytes([]byte(tt.content))
			if err == nil {
				t.Fatalf("godotenv accepted %q", tt.content)
			}
			line, reason := locateEnvError([]byte(tt.content), err)
			if line != tt.wantLine || reason != tt.wantReason {
				t.Errorf("locateEnvError = %d, %q; want %d, %q (godotenv said %v)", line, reason, tt.wantLine, tt.wantReason, err)
			}
		})
	}
	if line, reason := locateEnvError(nil, errors.New("something else")); line != 0 || reason != "something else" {
		t.Errorf("unknown error: %d, %q; want 0 and the message", line, reason)
	}
}

func TestDefaultWorkerID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		host string
		err  error
		pid  int
		want string
	}{
		{"plain", "node-1.example", nil, 42, "node-1.example-42"},
		{"bad characters replaced", "my host_ä", nil, 7, "my-host_--7"},
		{"hostname error", "", errors.New("no host"), 9, "worker-9"},
		{"long host cut to 64", strings.Repeat("h", 80), nil, 12345, strings.Repeat("h", 58) + "-12345"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := defaultWorkerID(func() (string, error) { return tt.host, tt.err }, tt.pid)
			if got != tt.want {
				t.Errorf("defaultWorkerID = %q, want %q", got, tt.want)
			}
			if reason := workerID(got); reason != "" {
				t.Errorf("%q breaks the WORKER_ID rule: %s", got, reason)
			}
		})
	}
}

func TestLoaderComputesWorkerID(t *testing.T) {
	t.Parallel()
	l := Register(nil, ScopeWorker)
	l.skipComponents = true
	l.hostname = func() (string, error) { return "pod-a", nil }
	l.pid = func() int { return 1 }
	cfg, err := l.Load(func(k string) (string, bool) { return "", k == envFileEnv })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Worker.ID != "pod-a-1" {
		t.Errorf("Worker.ID = %q, want pod-a-1", cfg.Worker.ID)
	}
}

// FuzzSetting feeds any text to any setting: Load never panics, a rejected
// value is reported for exactly that setting, and an accepted one passes the
// setting's own rule again when loaded back from the stored value's source.
func FuzzSetting(f *testing.F) {
	f.Add(0, "nats://a:1")
	f.Add(5, "contacts.*")
	f.Add(14, "-5s")
	f.Add(20, "1e400")
	f.Add(3, "yes")
	f.Fuzz(func(t *testing.T, idx int, value string) {
		rows := Settings(ScopeAll)
		if idx < 0 {
			idx = -idx
		}
		s := rows[idx%len(rows)]
		if s.Env == envFileEnv || s.Env == "NATS_CREDS" { // touch the file system
			return
		}
		env := map[string]string{envFileEnv: "", s.Env: value}
		l := Register(nil, ScopeAll)
		l.skipComponents = true
		_, err := l.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err == nil {
			return
		}
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("%s=%q: error %v is not a *ValidationError", s.Env, value, err)
		}
		for _, p := range ve.Problems {
			if p.Reason == "" || p.Source == "" {
				t.Fatalf("%s=%q: incomplete problem %+v", s.Env, value, p)
			}
			// A cross rule may blame HEALTH_CHECK_TIMEOUT for a short
			// interval, or NATS_URL for EMBEDDED_NATS; otherwise the
			// problem is the fuzzed setting's.
			if p.Setting != s.Env && p.Source != SourceDefault {
				t.Fatalf("%s=%q: problem for another setting: %+v", s.Env, value, p)
			}
		}
	})
}

// FuzzLocateEnvError checks that any godotenv syntax error is located without
// panicking and on a line that exists.
func FuzzLocateEnvError(f *testing.F) {
	f.Add([]byte("A-B=1\n"))
	f.Add([]byte("A=\"x\nB=2"))
	f.Add([]byte("A=1\r\nB C!=2"))
	f.Fuzz(func(t *testing.T, content []byte) {
		_, err := godotenv.UnmarshalBytes(content)
		if err == nil {
			return
		}
		line, reason := locateEnvError(content, err)
		lines := strings.Count(strings.ReplaceAll(string(content), "\r\n", "\n"), "\n") + 1
		if line < 0 || line > lines || reason == "" {
			t.Fatalf("locateEnvError(%q) = %d, %q (file has %d lines)", content, line, reason, lines)
		}
		known := strings.HasPrefix(reason, "unexpected character") || reason == "unterminated quoted value"
		if known && line == 0 {
			t.Fatalf("locateEnvError(%q) did not find the line of %q", content, reason)
		}
		if strings.Contains(reason, " near ") {
			t.Fatalf("reason %q still quotes the file", reason)
		}
	})
}
