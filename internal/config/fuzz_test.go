package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/redact"
)

// Secret values the fuzz target plants in secret settings. None has a credential shape that
// package redact would catch on its own, so only the loader's secret handling keeps them out
// of the report.
const (
	fuzzLLMKey     = "tok_Q9vX2mLr7Tz4Wk8Pb3Nc6Hd1Yf5Js0Ga"      // LLM_API_KEY, in the .env file
	fuzzWebhookKey = "Wq7Zr2Kp9Lm4Xv8Nt3Bc6Hs1Jd5Fg0Ya"          // path of CRM_WEBHOOK_URL, in the .env file
	fuzzCRMToken   = "crmtok_Hh4Jj8Kk2Ll6Mm0Nn3Pp7Qq1Rr5Ss9"     // CRM_TOKEN, in the environment
	fuzzTailMarker = "Zq8SecretTail"                             // appended to a fuzzed secret value
	fuzzEnvMarker  = "ENV_FILE=should-not-be-read-from-the-file" // ENV_FILE inside the file is ignored
)

// FuzzLoadEnvFile loads the full configuration (every scope) from a fuzzed .env file and one
// fuzzed setting given in the environment or as a flag, next to secret values in secret
// settings. Whatever the input:
//   - Load does not panic and returns nil, a *ValidationError or an *EnvFileError;
//   - every problem names a known setting and says where the value came from and why it is
//     wrong, and the error text names each blamed setting;
//   - a secret setting's value is shown as <redacted>, and no planted secret (nor the fuzzed
//     value of a secret setting) ever appears in the error text or in the printed Config,
//     even when the value is invalid or the file is broken around it;
//   - an *EnvFileError names the file and a line that exists;
//   - loading twice gives the same result.
func FuzzLoadEnvFile(f *testing.F) {
	seeds := []struct {
		content  string
		setting  uint16
		value    string
		viaFlag  bool
		badHook  bool
		fromFile string // a testdata file to take content from instead
	}{
		{content: "LOG_LEVEL=debug\nWORKER_CONCURRENCY=4\n", setting: 0, value: "nats://127.0.0.1:4222"},
		{content: "export WORKER_CONCURRENCY=3\nLOG_LEVEL=\"warn\"   # quoted, with a comment\nSIMULATE='healthy'\n", setting: 5, value: "abc"},
		{content: "# comment only\n", setting: 14, value: "-5s", viaFlag: true},
		{content: "BAD-KEY=value\nELEVENLABS_API_KEY=sk_0123456789abcdef0123456789abcdef\n", setting: 3, value: "yes"},
		{content: "OPENAI_API_KEY=\"never closed\nWORKER_CONCURRENCY=4\n", setting: 20, value: "1e400"},
		{content: "A=1\r\nB=2\r\nC+D=3\r\n", setting: 7, value: "", badHook: true},
		{content: "A=\"one\ntwo\"\nB-C=1\n", setting: 9, value: "not a url"},
		{content: "NATS_URL=nats://a:1,nats://b:2\nEMBEDDED_NATS=true\n", setting: 2, value: "true"},
		{content: "SHEETS_ENABLED=true\nHEALTH_CHECK_INTERVAL=1s\nHEALTH_CHECK_TIMEOUT=5s\n", setting: 11, value: "2s"},
		{content: "LLM_BASE_URL=https://user:pw123456@api.example/v1\nLOG_LEVEL=${LLM_MODEL}\n", setting: 30, value: "http://u:p@host/"},
		{content: fuzzEnvMarker + "\nWORKER_ID=node 1\n", setting: 40, value: "ftp://x/" + strings.Repeat("k", 40), badHook: true},
		{content: "LLM_API_KEY\n", setting: 0, value: "\x00\xff"},
		{content: "X='it\\'s\nY=1\n", setting: 60, value: "  padded  ", viaFlag: true},
		{fromFile: "testdata/bad-key.env", setting: 1, value: "x"},
		{fromFile: "testdata/bad-values.env", setting: 50, value: "y", badHook: true},
		{fromFile: "testdata/unterminated.env", setting: 70, value: "z"},
		{fromFile: "testdata/precedence.env", setting: 80, value: "9"},
	}
	for _, s := range seeds {
		content := s.content
		if s.fromFile != "" {
			b, err := os.ReadFile(s.fromFile)
			if err != nil {
				f.Fatal(err)
			}
			content = string(b)
		}
		f.Add(content, s.setting, s.value, s.viaFlag, s.badHook)
	}
	// Every secret setting once, with an invalid and a valid-looking value.
	for i, s := range config.Settings(config.ScopeAll) {
		if s.Secret {
			f.Add("LOG_LEVEL=info\n", uint16(i), "ftp://not-http/"+strings.Repeat("s", 20), i%2 == 0, false)
			f.Add("", uint16(i), "https://crm.example/hook/abcdef0123456789", i%2 == 1, true)
		}
	}

	rows := config.Settings(config.ScopeAll)
	known := map[string]config.Setting{}
	for _, s := range rows {
		known[s.Env] = s
	}

	// One file, rewritten by every input: inputs run one at a time in each process, and a
	// fresh directory per input would cost more than the load.
	path := filepath.Join(f.TempDir(), "fuzz.env")

	f.Fuzz(func(t *testing.T, content string, idx uint16, value string, viaFlag, badHook bool) {
		s := rows[int(idx)%len(rows)]
		if s.Env == "ENV_FILE" {
			return // names the file itself; covered by the content
		}
		webhook := "https://crm.example/hooks/" + fuzzWebhookKey
		if badHook {
			webhook = "ftp://crm.example/hooks/" + fuzzWebhookKey // invalid: not http(s)
		}
		// One planted secret comes before the fuzzed content, which may refer to it
		// (${LLM_API_KEY}); the other after it, so a syntax error in the content (whose
		// godotenv message quotes the rest of the file) sits before it.
		file := "LLM_API_KEY=" + fuzzLLMKey + "\n" + content + "\nCRM_WEBHOOK_URL=" + webhook + "\n"
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}

		fuzzed := value
		if s.Secret {
			fuzzed = value + fuzzTailMarker
			viaFlag = false // secrets are never flags
		}
		env := map[string]string{"ENV_FILE": path, "CRM_TOKEN": fuzzCRMToken}
		if !viaFlag {
			env[s.Env] = fuzzed
		}

		load := func() (config.Config, *pflag.FlagSet, error) {
			fs := pflag.NewFlagSet("fuzz", pflag.ContinueOnError)
			l := config.Register(fs, config.ScopeAll)
			config.SkipComponents(l)
			if viaFlag {
				if err := fs.Set(s.Flag, fuzzed); err != nil {
					t.Fatalf("flag --%s refused %q: %v (Load must report bad values, not the flag)", s.Flag, fuzzed, err)
				}
			}
			cfg, err := l.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			return cfg, fs, err
		}
		cfg, fs, err := load()

		// Secrets that the report must never show. A planted secret the fuzzer copied
		// into the content or the value could be echoed as some non-secret setting's
		// (rejected) value; only check the ones it did not.
		var secrets []string
		for _, sec := range []string{fuzzLLMKey, fuzzWebhookKey, fuzzCRMToken, fuzzTailMarker} {
			if !strings.Contains(content, sec) && !strings.Contains(value, sec) {
				secrets = append(secrets, sec)
			}
		}
		leak := func(where, text string) {
			t.Helper()
			for _, sec := range secrets {
				if strings.Contains(text, sec) {
					t.Fatalf("%s shows the secret %q:\n%s\n(setting %s=%q, file %q)", where, sec, text, s.Env, fuzzed, file)
				}
			}
		}
		if fs.Lookup(s.Flag) != nil {
			leak("flag usage", fs.FlagUsages())
		}

		// The file sets an ftp:// webhook on a line of its own that only the fuzzed setting
		// could override: unless the file is broken, it must be reported.
		mustBlameHook := badHook && s.Env != "CRM_WEBHOOK_URL"
		if err == nil {
			if mustBlameHook {
				t.Fatalf("Load accepted the file's ftp:// CRM_WEBHOOK_URL (file %q)", file)
			}
			leak("printed Config", fmt.Sprintf("%v\n%+v\n%#v", cfg, cfg, cfg))
		} else {
			text := err.Error()
			leak("error", text)
			var ve *config.ValidationError
			var fe *config.EnvFileError
			switch {
			case errors.As(err, &ve):
				if len(ve.Problems) == 0 {
					t.Fatalf("ValidationError without problems: %q", text)
				}
				for _, p := range ve.Problems {
					row, ok := known[p.Setting]
					if !ok {
						t.Fatalf("problem for unknown setting %q: %+v", p.Setting, p)
					}
					if p.Reason == "" || strings.TrimSpace(p.Reason) != p.Reason {
						t.Fatalf("%s: reason %q does not say what is wrong", p.Setting, p.Reason)
					}
					switch {
					case p.Source == config.SourceEnvironment, p.Source == config.SourceDefault,
						p.Source == path, p.Source == "flag --"+row.Flag:
					default:
						t.Fatalf("%s: source %q is none of environment, default, %s, flag --%s", p.Setting, p.Source, path, row.Flag)
					}
					if row.Secret && p.Value != redact.Placeholder {
						t.Fatalf("%s is secret but the problem shows %q", p.Setting, p.Value)
					}
					if !strings.Contains(text, p.Setting+"=") {
						t.Fatalf("error text does not name %s:\n%s", p.Setting, text)
					}
					leak("reason of "+p.Setting, p.Reason)
				}
				if mustBlameHook && !strings.Contains(text, "CRM_WEBHOOK_URL=") {
					t.Fatalf("the file's ftp:// CRM_WEBHOOK_URL is not reported:\n%s", text)
				}
			case errors.As(err, &fe):
				if fe.Path != path || fe.Source != config.SourceEnvironment {
					t.Fatalf("EnvFileError names %q from %q, want %q from environment", fe.Path, fe.Source, path)
				}
				lines := strings.Count(strings.ReplaceAll(file, "\r\n", "\n"), "\n") + 1
				if fe.Line < 0 || fe.Line > lines {
					t.Fatalf("EnvFileError at line %d of a %d-line file", fe.Line, lines)
				}
				if !strings.Contains(text, path) || fe.Err == nil || fe.Err.Error() == "" {
					t.Fatalf("EnvFileError %q does not name the file and the problem", text)
				}
			default:
				t.Fatalf("Load returned %T %q, want *ValidationError or *EnvFileError", err, text)
			}
		}

		// Deterministic: the same inputs give the same configuration or the same report.
		cfg2, _, err2 := load()
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) || cfg != cfg2 {
			t.Fatalf("two loads differ:\n%v / %+v\n%v / %+v", err, cfg, err2, cfg2)
		}
	})
}
