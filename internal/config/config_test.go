package config_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/callagent/resilience/internal/config"
)

// env is a lookup function over a map, as tests pass to Load.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// load registers scope's flags on a fresh flag set, parses args and loads
// with environment e. ENV_FILE="" keeps a stray .env out unless e sets it.
func load(t *testing.T, scope config.Scope, args []string, e env) (config.Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	l := config.Register(fs, scope)
	config.SkipComponents(l)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse flags %v: %v", args, err)
	}
	if _, ok := e["ENV_FILE"]; !ok && !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--env-file") }) {
		e = withEnv(e, "ENV_FILE", "")
	}
	return l.Load(e.lookup)
}

func withEnv(e env, k, v string) env {
	out := env{k: v}
	for kk, vv := range e {
		out[kk] = vv
	}
	return out
}

// validationError asserts err is a *ValidationError and returns it.
func validationError(t *testing.T, err error) *config.ValidationError {
	t.Helper()
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *config.ValidationError", err, err)
	}
	return ve
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	want := config.Config{
		NATS: config.NATS{URL: "nats://127.0.0.1:4222", ConnectTimeout: 2 * time.Minute, DataDir: "./data"},
		Topology: config.Topology{
			ContactsStream: "CONTACTS", ContactsSubject: "contacts.queue", Consumer: "workers",
			CheckpointBucket: "contact-records", AudioBucket: "audio",
			CheckpointTTL: 168 * time.Hour, DeadLetterStream: "DEAD_LETTERS",
			DeadLetterSubject: "deadletter.contacts", DeadLetterMaxAge: 720 * time.Hour,
			DedupeWindow: 6 * time.Hour, Replicas: 1,
			AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 256,
		},
		Worker:    config.Worker{Concurrency: 16, PullBatch: 8, ShutdownGrace: 25 * time.Second, OnBreakerOpen: config.OnBreakerOpenHold},
		Publisher: config.Publisher{Window: 4096},
		Retry: config.Retry{
			InitialDelay: 5 * time.Second, MaxAttempts: 3, Multiplier: 2, MaxDelay: 60 * time.Second,
			RetryAfterCap: 30 * time.Second,
		},
		Breaker:  config.Breaker{FailureThreshold: 3, SuccessThreshold: 2, OpenTimeout: 30 * time.Second},
		Health:   config.Health{Interval: 60 * time.Second, Timeout: 5 * time.Second, OpenInterval: time.Second},
		Bulkhead: config.Bulkhead{LLM: 16, TTS: 5, CRM: 16},
		Timeouts: config.Timeouts{LLM: 30 * time.Second, TTS: 30 * time.Second, CRM: 10 * time.Second},
		Sim:      config.Sim{Latency: 50 * time.Millisecond, TTSOutage: 20 * time.Second},
		Log:      config.Log{File: "logs/error_recovery.log", Level: "info", Format: "human", MaxSizeMB: 100, MaxBackups: 5, MaxAgeDays: 28},
		LLM: config.LLM{Model: "gpt-4o-mini", BaseURL: "https://api.openai.com/v1", MaxTokens: 300,
			TokenParam: "auto", FallbackTokenParam: "auto"},
		ElevenLabs: config.ElevenLabs{ModelID: "eleven_flash_v2_5", OutputFormat: "mp3_44100_128", BaseURL: "https://api.elevenlabs.io"},
		TTSFallback: config.TTSFallback{Kind: "none", OpenAIBaseURL: "https://api.openai.com/v1", OpenAIModel: "gpt-4o-mini-tts",
			OpenAIVoice: "alloy", OpenAIFormat: "mp3"},
		Metrics: config.Metrics{Addr: ":8397"},
		Fleet:   config.Fleet{Bucket: "fleet", TTL: 30 * time.Second},
		Sheets:  config.Sheets{Range: "A1", BatchSize: 50, FlushInterval: 5 * time.Second, Buffer: 1000, Level: "warn"},
		Alerts: config.Alerts{Stream: "ALERTS", SubjectPrefix: "alerts", Consumer: "alert-dispatcher", IncidentsBucket: "alert-incidents",
			MaxAge: 168 * time.Hour, ServiceDownAfter: 5 * time.Minute, SummaryWindow: time.Minute, ReporterTTL: 15 * time.Minute,
			QueueSize: 1024, Timeout: 10 * time.Second, EmailMinSeverity: "info", SMTPHost: "smtp.gmail.com", SMTPPort: 587,
			TelegramMinSeverity: "info", TelegramAPIURL: "https://api.telegram.org", WebhookMinSeverity: "info",
			SlackMinSeverity: "info", PagerDutyMinSeverity: "critical", PagerDutyURL: "https://events.pagerduty.com/v2/enqueue",
			PagerDutySource: "callagent"},
	}
	if got := config.Defaults(); got != want {
		t.Errorf("Defaults() =\n%+v\nwant\n%+v", got, want)
	}

	for _, scope := range []config.Scope{config.ScopeWorker, config.ScopePublisher} {
		got, err := load(t, scope, nil, env{})
		if err != nil {
			t.Fatalf("Load(%v) with nothing set: %v", scope, err)
		}
		if scope == config.ScopeWorker {
			if got.Worker.ID == "" {
				t.Errorf("worker Load left Worker.ID empty")
			}
			got.Worker.ID = ""
		}
		if got != want {
			t.Errorf("Load(%v) with nothing set =\n%+v\nwant the defaults", scope, got)
		}
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	const dotenv = "testdata/precedence.env" // WORKER_CONCURRENCY=3
	tests := []struct {
		name string
		args []string
		env  env
		want int
	}{
		{name: "default", env: env{"ENV_FILE": ""}, want: 16},
		{name: ".env over default", env: env{"ENV_FILE": dotenv}, want: 3},
		{name: "environment over .env", env: env{"ENV_FILE": dotenv, "WORKER_CONCURRENCY": "4"}, want: 4},
		{name: "flag over environment", args: []string{"--worker-concurrency=5"}, env: env{"ENV_FILE": dotenv, "WORKER_CONCURRENCY": "4"}, want: 5},
		{name: "flag set to the default still wins", args: []string{"--worker-concurrency", "16"}, env: env{"ENV_FILE": dotenv, "WORKER_CONCURRENCY": "4"}, want: 16},
		{name: "empty environment value is a value", env: env{"ENV_FILE": dotenv, "WORKER_CONCURRENCY": ""}, want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := load(t, config.ScopeWorker, tt.args, tt.env)
			if tt.want < 0 {
				ve := validationError(t, err)
				want := config.Problem{Setting: "WORKER_CONCURRENCY", Source: "environment", Value: "", Reason: "not a whole number"}
				if len(ve.Problems) != 1 || ve.Problems[0] != want {
					t.Fatalf("problems = %+v, want [%+v]", ve.Problems, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.Worker.Concurrency != tt.want {
				t.Errorf("Worker.Concurrency = %d, want %d", cfg.Worker.Concurrency, tt.want)
			}
		})
	}
}

func TestEnvFileForms(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, config.ScopeWorker, []string{"--env-file=testdata/precedence.env"}, env{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Worker.Concurrency != 3 || cfg.Log.Level != "warn" || cfg.Sim.Scenario != config.ScenarioHealthy {
		t.Errorf("from .env: concurrency %d, level %q, scenario %q; want 3, warn, healthy",
			cfg.Worker.Concurrency, cfg.Log.Level, cfg.Sim.Scenario)
	}
	if _, set := os.LookupEnv("NOT_A_SETTING"); set {
		t.Errorf("reading the .env file changed the process environment")
	}
}

func TestDefaultEnvFileMayBeMissing(t *testing.T) {
	// Not parallel: it changes the working directory.
	t.Chdir(t.TempDir())
	l := config.Register(pflag.NewFlagSet("test", pflag.ContinueOnError), config.ScopeWorker)
	config.SkipComponents(l)
	if _, err := l.Load(env{}.lookup); err != nil {
		t.Fatalf("Load without .env: %v", err)
	}
	if err := os.WriteFile(".env", []byte("WORKER_CONCURRENCY=7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := l.Load(env{}.lookup)
	if err != nil {
		t.Fatalf("Load with .env: %v", err)
	}
	if cfg.Worker.Concurrency != 7 {
		t.Errorf("Worker.Concurrency = %d, want 7 from the default .env", cfg.Worker.Concurrency)
	}
	cfg, err = l.Load(env{"ENV_FILE": ""}.lookup)
	if err != nil {
		t.Fatalf("Load with ENV_FILE empty: %v", err)
	}
	if cfg.Worker.Concurrency != 16 {
		t.Errorf("ENV_FILE=\"\" should disable .env; Worker.Concurrency = %d, want 16", cfg.Worker.Concurrency)
	}
}

func TestEnvFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		env      env
		wantMsg  string
		wantLine int
		wantIs   error
		noLeak   string
	}{
		{
			name:    "missing file named by flag",
			args:    []string{"--env-file=testdata/missing.env"},
			wantMsg: `env file "testdata/missing.env" (from flag --env-file): open testdata/missing.env: no such file or directory`,
			wantIs:  fs.ErrNotExist,
		},
		{
			name:    "missing file named by environment",
			env:     env{"ENV_FILE": "testdata/missing.env"},
			wantMsg: `env file "testdata/missing.env" (from environment): open testdata/missing.env: no such file or directory`,
			wantIs:  fs.ErrNotExist,
		},
		{
			name:     "bad variable name",
			args:     []string{"--env-file=testdata/bad-key.env"},
			wantMsg:  `env file "testdata/bad-key.env" (from flag --env-file) line 3: unexpected character "-" in variable name`,
			wantLine: 3,
			noLeak:   "sk_0123456789abcdef",
		},
		{
			name:     "bad variable name with crlf line ends",
			env:      env{"ENV_FILE": "testdata/crlf-bad-key.env"},
			wantMsg:  `env file "testdata/crlf-bad-key.env" (from environment) line 3: unexpected character "@" in variable name`,
			wantLine: 3,
			noLeak:   "tok-abcdefgh",
		},
		{
			name:     "unterminated quote",
			args:     []string{"--env-file", "testdata/unterminated.env"},
			wantMsg:  `env file "testdata/unterminated.env" (from flag --env-file) line 2: unterminated quoted value`,
			wantLine: 2,
			noLeak:   "secretsecret",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := tt.env
			if e == nil {
				e = env{}
			}
			_, err := load(t, config.ScopeWorker, tt.args, e)
			var fe *config.EnvFileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *config.EnvFileError", err, err)
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("error =\n%s\nwant\n%s", err, tt.wantMsg)
			}
			if fe.Line != tt.wantLine {
				t.Errorf("Line = %d, want %d", fe.Line, tt.wantLine)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if tt.noLeak != "" && strings.Contains(err.Error(), tt.noLeak) {
				t.Errorf("error leaks the file's contents: %v", err)
			}
		})
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		env, value, reason string
	}{
		{"NATS_URL", "", "must not be empty"},
		{"NATS_URL", "http://h:4222", `scheme "http" is not one of nats, tls, ws, wss`},
		{"NATS_URL", "nats://h", "missing port (want scheme://host:port)"},
		{"NATS_URL", "nats://:4222", "missing host (want scheme://host:port)"},
		{"NATS_URL", "nats://h:0", "port must be between 1 and 65535"},
		{"NATS_URL", "nats://h:65536", "port must be between 1 and 65535"},
		{"NATS_URL", "://h:1", "not a URL (want scheme://host:port)"},
		{"NATS_URL", "nats://a:4222,http://b:1", `URL 2: scheme "http" is not one of nats, tls, ws, wss`},
		{"NATS_URL", "nats://a:4222,", "URL 2: empty URL"},
		{"NATS_CREDS", filepath.Join(dir, "missing.creds"), "file does not exist"},
		{"NATS_CREDS", dir, "is a directory, not a file"},
		{"NATS_CONNECT_TIMEOUT", "-1s", "must not be negative"},
		{"NATS_CONNECT_TIMEOUT", "2", "not a duration (use Go syntax such as 250ms, 5s, 1m30s)"},
		{"EMBEDDED_NATS", "maybe", "not a boolean (use true, false, 1, 0, yes or no)"},
		{"DATA_DIR", " ", "must not be empty"},
		{"CONTACTS_STREAM", "", "must not be empty"},
		{"CONTACTS_STREAM", "a b", "invalid stream name: contains whitespace"},
		{"CONTACTS_STREAM", "a.b", `invalid stream name: contains "."`},
		{"CONTACTS_STREAM", "a*", `invalid stream name: contains "*"`},
		{"CONTACTS_STREAM", "a>", `invalid stream name: contains ">"`},
		{"CONTACTS_STREAM", "a/b", `invalid stream name: contains "/"`},
		{"CONTACTS_STREAM", `a\b`, `invalid stream name: contains "\\"`},
		{"CONTACTS_SUBJECT", "", "must not be empty"},
		{"CONTACTS_SUBJECT", "contacts.*", "invalid subject: wildcards (* and >) are not allowed"},
		{"CONTACTS_SUBJECT", "contacts.>", "invalid subject: wildcards (* and >) are not allowed"},
		{"CONTACTS_SUBJECT", "contacts..queue", "invalid subject: empty token (leading, trailing or double dot)"},
		{"CONTACTS_SUBJECT", "contacts.", "invalid subject: empty token (leading, trailing or double dot)"},
		{"CONTACTS_SUBJECT", "contacts queue", "invalid subject: contains whitespace"},
		{"CONSUMER_NAME", "work.ers", `invalid consumer name: contains "."`},
		{"CHECKPOINT_BUCKET", "", "must not be empty"},
		{"CHECKPOINT_BUCKET", "con.tacts", "invalid bucket name: only letters, digits, _ and - are allowed"},
		{"CHECKPOINT_BUCKET", "check points", "invalid bucket name: only letters, digits, _ and - are allowed"},
		{"AUDIO_BUCKET", "", "must not be empty"},
		{"CHECKPOINT_TTL", "0s", "must be greater than 0"},
		{"DEAD_LETTER_STREAM", "DEAD.LETTERS", `invalid stream name: contains "."`},
		{"DEAD_LETTER_SUBJECT", "deadletter.*", "invalid subject: wildcards (* and >) are not allowed"},
		{"DEAD_LETTER_MAX_AGE", "-1h", "must be greater than 0"},
		{"DEDUPE_WINDOW", "0s", "must be greater than 0"},
		{"DEDUPE_WINDOW", "6", "not a duration (use Go syntax such as 250ms, 5s, 1m30s)"},
		{"STREAM_REPLICAS", "0", "must be between 1 and 5"},
		{"STREAM_REPLICAS", "6", "must be between 1 and 5"},
		{"ACK_WAIT", "2999ms", "must be at least 3s"},
		{"MAX_DELIVER", "0", "must be at least 1"},
		{"MAX_ACK_PENDING", "-1", "must be at least 1"},
		{"WORKER_ID", "worker 1", "invalid worker id: only letters, digits, ., _ and - are allowed"},
		{"WORKER_ID", strings.Repeat("w", 65), "must be at most 64 characters"},
		{"WORKER_CONCURRENCY", "abc", "not a whole number"},
		{"WORKER_CONCURRENCY", "1.5", "not a whole number"},
		{"WORKER_CONCURRENCY", "99999999999999999999", "whole number out of range"},
		{"WORKER_CONCURRENCY", "0", "must be between 1 and 4096"},
		{"WORKER_CONCURRENCY", "4097", "must be between 1 and 4096"},
		{"PULL_BATCH", "257", "must be between 1 and 256"},
		{"SHUTDOWN_GRACE", "-1s", "must not be negative"},
		{"ON_BREAKER_OPEN", "skip", "unknown policy; one of: hold, deadletter"},
		{"PUBLISH_WINDOW", "65537", "must be between 1 and 65536"},
		{"RETRY_INITIAL_DELAY", "-5s", "must not be negative"},
		{"RETRY_MAX_ATTEMPTS", "0", "must be at least 1"},
		{"RETRY_MULTIPLIER", "0.5", "must be at least 1"},
		{"RETRY_MULTIPLIER", "two", "not a number"},
		{"RETRY_MULTIPLIER", "NaN", "not a finite number"},
		{"RETRY_MULTIPLIER", "1e400", "not a finite number"},
		{"RETRY_MAX_DELAY", "-1ms", "must not be negative"},
		{"RETRY_JITTER", "on", "not a boolean (use true, false, 1, 0, yes or no)"},
		{"RETRY_AFTER_CAP", "-30s", "must not be negative"},
		{"BREAKER_FAILURE_THRESHOLD", "0", "must be at least 1"},
		{"BREAKER_SUCCESS_THRESHOLD", "0", "must be at least 1"},
		{"BREAKER_OPEN_TIMEOUT", "0", "must be greater than 0"},
		{"HEALTH_CHECK_INTERVAL", "0s", "must be greater than 0"},
		{"HEALTH_CHECK_TIMEOUT", "-1s", "must be greater than 0"},
		{"HEALTH_CHECK_OPEN_INTERVAL", "0s", "must be greater than 0"},
		{"LLM_MAX_CONCURRENCY", "0", "must be at least 1"},
		{"ELEVENLABS_MAX_CONCURRENCY", "0", "must be at least 1"},
		{"CRM_MAX_CONCURRENCY", "0", "must be at least 1"},
		{"LLM_TIMEOUT", "0s", "must be greater than 0"},
		{"ELEVENLABS_TIMEOUT", "-1s", "must be greater than 0"},
		{"CRM_TIMEOUT", "0ms", "must be greater than 0"},
		{"SIMULATE", "tts-500", "unknown scenario; one of: healthy, tts-503"},
		{"SIM_LATENCY", "-1ms", "must not be negative"},
		{"SIM_TTS_OUTAGE", "-1s", "must not be negative"},
		{"LOG_LEVEL", "trace", "unknown level; one of: debug, info, warn, error"},
		{"LOG_FORMAT", "logfmt", "unknown format; one of: human, json"},
		{"LOG_FORMAT", "", "unknown format; one of: human, json"},
		{"LOG_MAX_SIZE_MB", "0", "must be at least 1"},
		{"LOG_MAX_BACKUPS", "-1", "must not be negative"},
		{"LOG_MAX_AGE_DAYS", "-1", "must not be negative"},
		{"LLM_MODEL", "", "must not be empty"},
		{"LLM_BASE_URL", "ftp://api.openai.com", "must be an absolute http:// or https:// URL with a host"},
		{"LLM_BASE_URL", "https://api.openai.com/v1?org=x", "must not contain a query (?…)"},
		{"LLM_SYSTEM_PROMPT_FILE", "/nonexistent/prompt.tmpl", "file does not exist"},
		{"LLM_TOKEN_PARAM", "max_length", "unknown token parameter; one of: auto, max_tokens, max_completion_tokens"},
		{"LLM_FALLBACK_TOKEN_PARAM", "tokens", "unknown token parameter; one of: auto, max_tokens, max_completion_tokens"},
		{"LLM_MAX_TOKENS", "0", "must be between 1 and 32768"},
		{"LLM_FALLBACK_BASE_URL", "https://user@api.groq.com/openai/v1", "must not contain credentials (user:password@)"},
		{"ELEVENLABS_VOICE_ID", "a/b", `"a/b" is not a voice id (letters and digits, as shown in the ElevenLabs voice library)`},
		{"ELEVENLABS_MODEL_ID", "", "must not be empty"},
		{"ELEVENLABS_OUTPUT_FORMAT", "", "must not be empty"},
		{"ELEVENLABS_OUTPUT_FORMAT", "flac", `"flac" is not an ElevenLabs output format; use one of mp3_{22050_32,24000_48,44100_32,44100_64,44100_96,44100_128,44100_192}, pcm_{8000,16000,22050,24000,32000,44100,48000}, wav_{8000,16000,22050,24000,32000,44100,48000}, ulaw_8000, alaw_8000, opus_{48000_32,48000_64,48000_96,48000_128,48000_192}`},
		{"ELEVENLABS_BASE_URL", "api.elevenlabs.io", "must be an absolute http:// or https:// URL with a host"},
		{"ELEVENLABS_VOICE_SETTINGS", "stability=1", "not a JSON object"},
		{"TTS_FALLBACK", "polly", "unknown fallback; one of: none, elevenlabs, openai"},
		{"ELEVENLABS_FALLBACK_VOICE_ID", "a b", `"a b" is not a voice id (letters and digits, as shown in the ElevenLabs voice library)`},
		{"OPENAI_TTS_BASE_URL", "", "must not be empty"},
		{"OPENAI_TTS_MODEL", "", "must not be empty"},
		{"OPENAI_TTS_VOICE", "", "must not be empty"},
		{"OPENAI_TTS_FORMAT", "ogg", "unknown format; one of: mp3, opus, aac, flac, wav, pcm"},
		{"CRM_HEALTH_URL", "https://", "must be an absolute http:// or https:// URL with a host"},
		{"CRM_HEALTH_URL", "https://crm.example/health#x", "must not contain a fragment (#…)"},
		{"METRICS_ADDR", "8397", "not host:port (e.g. :8397 or 127.0.0.1:8397)"},
		{"FLEET_BUCKET", "fl.eet", "invalid bucket name: only letters, digits, _ and - are allowed"},
		{"FLEET_TTL", "1s", "must be at least 3s"},
		{"SHEETS_ENABLED", "maybe", "not a boolean (use true, false, 1, 0, yes or no)"},
		{"SHEETS_CREDENTIALS_FILE", "/nonexistent/key.json", "file does not exist"},
		{"SHEETS_SPREADSHEET_ID", "a/b", "not a spreadsheet id (letters, digits, '_' and '-')"},
		{"SHEETS_RANGE", "", "must not be empty"},
		{"SHEETS_BATCH_SIZE", "0", "must be between 1 and 10000"},
		{"SHEETS_FLUSH_INTERVAL", "0s", "must be greater than 0"},
		{"SHEETS_BUFFER", "0", "must be at least 1"},
		{"SHEETS_LEVEL", "info", "unknown level; one of: warn, error"},
		{"ALERTS_STREAM", "ALERTS.X", `stream name "ALERTS.X" must be letters, digits, '_' or '-' (at most 64)`},
		{"ALERTS_STREAM", "ALERTS@1", `stream name "ALERTS@1" must be letters, digits, '_' or '-' (at most 64)`},
		{"ALERTS_SUBJECT_PREFIX", "alerts.>", "invalid subject: wildcards (* and >) are not allowed"},
		{"ALERT_DISPATCHER_CONSUMER", "a b", `consumer name "a b" must be letters, digits, '_' or '-' (at most 64)`},
		{"ALERT_INCIDENTS_BUCKET", "a.b", `bucket name "a.b" must be letters, digits, '_' or '-' (at most 64)`},
		{"ALERTS_MAX_AGE", "30s", "must be at least 1m0s"},
		{"SERVICE_DOWN_ALERT_AFTER", "0s", "must be greater than 0"},
		{"ALERT_SUMMARY_WINDOW", "0s", "must be greater than 0"},
		{"ALERT_REPORTER_TTL", "0s", "must be greater than 0"},
		{"ALERT_QUEUE_SIZE", "0", "must be at least 1"},
		{"ALERT_TIMEOUT", "0s", "must be greater than 0"},
		{"EMAIL_ENABLED", "sometimes", "not a boolean (use true, false, 1, 0, yes or no)"},
		{"EMAIL_MIN_SEVERITY", "high", "unknown severity; one of: info, warning, critical"},
		{"SMTP_PORT", "0", "must be between 1 and 65535"},
		{"TELEGRAM_ENABLED", "2", "not a boolean (use true, false, 1, 0, yes or no)"},
		{"TELEGRAM_MIN_SEVERITY", "debug", "unknown severity; one of: info, warning, critical"},
		{"TELEGRAM_API_URL", "api.telegram.org", "must be an absolute http:// or https:// URL with a host"},
		{"WEBHOOK_ENABLED", "y", "not a boolean (use true, false, 1, 0, yes or no)"},
		{"WEBHOOK_MIN_SEVERITY", "x", "unknown severity; one of: info, warning, critical"},
		{"WEBHOOK_URL", "hooks.example.com", "must be an absolute http:// or https:// URL with a host"},
		{"WEBHOOK_URL", "https://ops@hooks.example.com/x", "must not contain credentials (user:password@)"},
		{"SLACK_ENABLED", "on", "not a boolean (use true, false, 1, 0, yes or no)"},
		{"SLACK_MIN_SEVERITY", "x", "unknown severity; one of: info, warning, critical"},
		{"PAGERDUTY_ENABLED", "on", "not a boolean (use true, false, 1, 0, yes or no)"},
		{"PAGERDUTY_MIN_SEVERITY", "x", "unknown severity; one of: info, warning, critical"},
		{"PAGERDUTY_URL", "", "must not be empty"},
		{"PAGERDUTY_SOURCE", "", "must not be empty"},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.env] = true
		t.Run(tt.env+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, config.ScopeAll, nil, env{tt.env: tt.value})
			ve := validationError(t, err)
			want := config.Problem{Setting: tt.env, Source: "environment", Value: tt.value, Reason: tt.reason}
			if len(ve.Problems) != 1 || ve.Problems[0] != want {
				t.Fatalf("problems = %+v\nwant [%+v]", ve.Problems, want)
			}
			wantMsg := fmt.Sprintf("invalid configuration (1 problem):\n  %s=%q (from environment): %s", tt.env, tt.value, tt.reason)
			if err.Error() != wantMsg {
				t.Errorf("error =\n%s\nwant\n%s", err, wantMsg)
			}
		})
	}
	// Every setting with a rule has a rejection case above.
	for _, s := range config.Settings(config.ScopeAll) {
		switch s.Env {
		case "ENV_FILE", "LOG_FILE", // any value is valid
			"LLM_API_KEY", "LLM_FALLBACK_API_KEY", "ELEVENLABS_API_KEY", "ELEVENLABS_FALLBACK_API_KEY",
			"OPENAI_TTS_API_KEY", "CRM_TOKEN", "LLM_FALLBACK_MODEL", "ELEVENLABS_FALLBACK_MODEL_ID",
			"SMTP_HOST", "SMTP_USERNAME", "EMAIL_PASSWORD", "EMAIL_FROM", "EMAIL_TO", "TELEGRAM_BOT_TOKEN",
			"TELEGRAM_CHAT_ID", "WEBHOOK_SECRET", "PAGERDUTY_ROUTING_KEY", // checked by the channel when enabled
			"SLACK_WEBHOOK_URL", // secret URL, rejected as CRM_WEBHOOK_URL is
			"CRM_WEBHOOK_URL":   // secret: its rejection is TestSecretURLRejectedWithoutShowingIt
			continue
		}
		if !covered[s.Env] {
			t.Errorf("no rejection case for %s", s.Env)
		}
	}
}

func TestAcceptedValues(t *testing.T) {
	t.Parallel()
	creds := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(creds, []byte("creds"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(t, config.ScopeWorker, nil, env{
		"NATS_URL":             "nats://a:4222, tls://b:4443,ws://c:80,WSS://d:443",
		"NATS_CREDS":           creds,
		"EMBEDDED_NATS":        "NO",
		"WORKER_CONCURRENCY":   " 32 ",
		"RETRY_JITTER":         "Yes",
		"RETRY_MULTIPLIER":     "1.5",
		"RETRY_INITIAL_DELAY":  "1m30s",
		"RETRY_MAX_DELAY":      "0",
		"ON_BREAKER_OPEN":      "DeadLetter",
		"LOG_LEVEL":            "DEBUG",
		"LOG_FORMAT":           " JSON ",
		"NATS_CONNECT_TIMEOUT": "0",
		"LOG_FILE":             "",
		"SIMULATE":             "TTS-503",
		"WORKER_ID":            "w-1.a_b",
		"ACK_WAIT":             "3s",
		"CONTACTS_SUBJECT":     "a.b-c.d_e",
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"NATS.URL", cfg.NATS.URL, "nats://a:4222, tls://b:4443,ws://c:80,WSS://d:443"},
		{"NATS.CredsFile", cfg.NATS.CredsFile, creds},
		{"NATS.Embedded", cfg.NATS.Embedded, false},
		{"Worker.Concurrency", cfg.Worker.Concurrency, 32},
		{"Retry.Jitter", cfg.Retry.Jitter, true},
		{"Retry.Multiplier", cfg.Retry.Multiplier, 1.5},
		{"Retry.InitialDelay", cfg.Retry.InitialDelay, 90 * time.Second},
		{"Retry.MaxDelay", cfg.Retry.MaxDelay, time.Duration(0)},
		{"Worker.OnBreakerOpen", cfg.Worker.OnBreakerOpen, config.OnBreakerOpenDeadLetter},
		{"Log.Level", cfg.Log.Level, "debug"},
		{"Log.Format", cfg.Log.Format, config.LogFormatJSON},
		{"NATS.ConnectTimeout", cfg.NATS.ConnectTimeout, time.Duration(0)},
		{"Log.File", cfg.Log.File, ""},
		{"Sim.Scenario", cfg.Sim.Scenario, config.ScenarioTTS503},
		{"Worker.ID", cfg.Worker.ID, "w-1.a_b"},
		{"Topology.AckWait", cfg.Topology.AckWait, 3 * time.Second},
		{"Topology.ContactsSubject", cfg.Topology.ContactsSubject, "a.b-c.d_e"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestSeveralProblemsAtOnce(t *testing.T) {
	t.Parallel()
	_, err := load(t, config.ScopeWorker,
		[]string{"--retry-initial-delay=-5s", "--env-file=testdata/bad-values.env", "--embedded-nats"},
		env{
			"WORKER_CONCURRENCY":    "abc",
			"HEALTH_CHECK_INTERVAL": "1s",
			"NATS_URL":              "nats://alice:wonderland@a:4222,nats://b:4222",
		})
	ve := validationError(t, err)
	want := `invalid configuration (5 problems):
  NATS_URL="nats://alice:<redacted>@a:4222,nats://b:4222" (from environment): must be a single URL when EMBEDDED_NATS is true (the embedded server listens there)
  WORKER_CONCURRENCY="abc" (from environment): not a whole number
  RETRY_INITIAL_DELAY="-5s" (from flag --retry-initial-delay): must not be negative
  HEALTH_CHECK_TIMEOUT="5s" (from default): must not be more than HEALTH_CHECK_INTERVAL (1s)
  SIMULATE="tts-500" (from testdata/bad-values.env): unknown scenario; one of: healthy, tts-503`
	if err.Error() != want {
		t.Errorf("error =\n%s\nwant\n%s", err, want)
	}
	if len(ve.Problems) != 5 {
		t.Errorf("%d problems, want 5", len(ve.Problems))
	}
}

func TestCrossRulesSkipInvalidDependencies(t *testing.T) {
	t.Parallel()
	// The interval is itself invalid, so the timeout is not compared with it;
	// EMBEDDED_NATS is invalid, so NATS_URL may list several servers.
	_, err := load(t, config.ScopeWorker, nil, env{
		"HEALTH_CHECK_INTERVAL": "soon",
		"EMBEDDED_NATS":         "perhaps",
		"NATS_URL":              "nats://a:1,nats://b:2",
	})
	ve := validationError(t, err)
	var settings []string
	for _, p := range ve.Problems {
		settings = append(settings, p.Setting)
	}
	if want := []string{"EMBEDDED_NATS", "HEALTH_CHECK_INTERVAL"}; !slices.Equal(settings, want) {
		t.Errorf("problems for %v, want %v", settings, want)
	}
	// A valid single URL with the embedded server is fine.
	if _, err := load(t, config.ScopeWorker, []string{"--embedded-nats=true"}, env{"NATS_URL": "nats://127.0.0.1:14222"}); err != nil {
		t.Errorf("embedded with one URL: %v", err)
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	// The publisher ignores worker settings, even invalid ones, and the
	// other way round.
	pub, err := load(t, config.ScopePublisher, nil, env{"SIMULATE": "bogus", "WORKER_CONCURRENCY": "x", "WORKER_ID": "a b"})
	if err != nil {
		t.Fatalf("publisher Load with invalid worker settings: %v", err)
	}
	if pub.Sim.Scenario != "" || pub.Worker.Concurrency != 16 || pub.Worker.ID != "" {
		t.Errorf("publisher got worker settings from the environment: %+v %+v", pub.Sim, pub.Worker)
	}
	wrk, err := load(t, config.ScopeWorker, nil, env{"PUBLISH_WINDOW": "0"})
	if err != nil {
		t.Fatalf("worker Load with an invalid publisher setting: %v", err)
	}
	if wrk.Publisher.Window != 4096 {
		t.Errorf("Publisher.Window = %d, want the default 4096", wrk.Publisher.Window)
	}

	fs := pflag.NewFlagSet("publisher", pflag.ContinueOnError)
	config.Register(fs, config.ScopePublisher)
	if err := fs.Parse([]string{"--worker-concurrency=3"}); err == nil {
		t.Errorf("publisher accepted the worker flag --worker-concurrency")
	}

	for _, tt := range []struct {
		scope config.Scope
		want  string
	}{
		{config.ScopeWorker, "worker"}, {config.ScopePublisher, "publisher"},
		{config.ScopeAll, "worker, publisher"}, {0, "none"},
	} {
		if got := tt.scope.String(); got != tt.want {
			t.Errorf("Scope(%d).String() = %q, want %q", tt.scope, got, tt.want)
		}
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	config.Register(fs, config.ScopeWorker)
	for _, s := range config.Settings(config.ScopeWorker) {
		if s.Secret {
			if s.Flag != "" || fs.Lookup(strings.ReplaceAll(strings.ToLower(s.Env), "_", "-")) != nil {
				t.Errorf("%s is a flag: command lines show in ps", s.Env)
			}
			continue
		}
		f := fs.Lookup(s.Flag)
		if f == nil {
			t.Errorf("no flag --%s for %s", s.Flag, s.Env)
			continue
		}
		if f.DefValue != s.Default {
			t.Errorf("--%s default %q, want %q", s.Flag, f.DefValue, s.Default)
		}
		if !strings.Contains(f.Usage, "(env "+s.Env+")") {
			t.Errorf("--%s usage %q does not name %s", s.Flag, f.Usage, s.Env)
		}
	}
	types := map[string]string{
		"worker-concurrency": "int", "retry-initial-delay": "duration", "retry-multiplier": "float",
		"embedded-nats": "bool", "nats-url": "string", "env-file": "string",
	}
	for name, typ := range types {
		if got := fs.Lookup(name).Value.Type(); got != typ {
			t.Errorf("--%s type %q, want %q", name, got, typ)
		}
	}
	usage := fs.FlagUsages()
	for _, line := range []string{
		"--embedded-nats ",
		"--worker-concurrency int ",
		"(default 16)",
		`--log-file string `,
		`(default "logs/error_recovery.log")`,
	} {
		if !strings.Contains(usage, line) {
			t.Errorf("flag usage lacks %q:\n%s", line, usage)
		}
	}
	// A boolean flag alone means true; parse errors never come from pflag.
	fs2 := pflag.NewFlagSet("w", pflag.ContinueOnError)
	l2 := config.Register(fs2, config.ScopeWorker)
	config.SkipComponents(l2)
	if err := fs2.Parse([]string{"--embedded-nats", "--worker-concurrency", "not-a-number"}); err != nil {
		t.Fatalf("flag parse rejected a value Load should report: %v", err)
	}
	_, err := l2.Load(env{"ENV_FILE": ""}.lookup)
	ve := validationError(t, err)
	want := config.Problem{Setting: "WORKER_CONCURRENCY", Source: "flag --worker-concurrency", Value: "not-a-number", Reason: "not a whole number"}
	if len(ve.Problems) != 1 || ve.Problems[0] != want {
		t.Fatalf("problems = %+v, want [%+v]", ve.Problems, want)
	}
	cfg, err := load(t, config.ScopeWorker, []string{"--embedded-nats"}, env{})
	if err != nil || !cfg.NATS.Embedded {
		t.Errorf("--embedded-nats alone: Embedded=%v err=%v, want true, nil", cfg.NATS.Embedded, err)
	}
}

func TestNilFlagSetAndEnvironment(t *testing.T) {
	t.Parallel()
	l := config.Register(nil, config.ScopeWorker)
	config.SkipComponents(l)
	cfg, err := l.Load(env{"ENV_FILE": "", "PULL_BATCH": "4"}.lookup)
	if err != nil || cfg.Worker.PullBatch != 4 {
		t.Fatalf("Load without flags: PullBatch=%d err=%v, want 4, nil", cfg.Worker.PullBatch, err)
	}
	if _, err := config.Register(nil, config.ScopePublisher).Load(nil); err != nil {
		// nil lookup means an empty environment; the default .env in the
		// package directory does not exist.
		t.Fatalf("Load(nil): %v", err)
	}
}

func TestWorkerIDComputed(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, config.ScopeWorker, nil, env{})
	if err != nil {
		t.Fatal(err)
	}
	id := cfg.Worker.ID
	if !regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`).MatchString(id) {
		t.Errorf("computed Worker.ID %q breaks the WORKER_ID rule", id)
	}
	if suffix := "-" + strconv.Itoa(os.Getpid()); !strings.HasSuffix(id, suffix) {
		t.Errorf("computed Worker.ID %q does not end with %q", id, suffix)
	}
}

// TestSettingsComplete proves every Config field is reachable from exactly
// one setting, and every setting is well formed.
func TestSettingsComplete(t *testing.T) {
	t.Parallel()
	var leaves []string
	var walk func(typ reflect.Type, prefix string)
	walk = func(typ reflect.Type, prefix string) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, prefix+f.Name+".")
				continue
			}
			leaves = append(leaves, prefix+f.Name)
		}
	}
	walk(reflect.TypeFor[config.Config](), "")

	all := config.Settings(config.ScopeAll)
	byField := map[string][]string{}
	for _, s := range all {
		if want := strings.ReplaceAll(strings.ToLower(s.Env), "_", "-"); s.Flag != want && (!s.Secret || s.Flag != "") {
			t.Errorf("%s: flag %q is not the env name lower-cased with - for _", s.Env, s.Flag)
		}
		if s.Description == "" || s.Scope == 0 {
			t.Errorf("%s: description %q, scope %v; want both set", s.Env, s.Description, s.Scope)
		}
		if s.Field != "" {
			byField[s.Field] = append(byField[s.Field], s.Env)
		} else if s.Env != "ENV_FILE" {
			t.Errorf("%s fills no Config field", s.Env)
		}
	}
	for _, leaf := range leaves {
		if got := byField[leaf]; len(got) != 1 {
			t.Errorf("Config.%s is filled by %v, want exactly one setting", leaf, got)
		}
		delete(byField, leaf)
	}
	for field, envs := range byField {
		t.Errorf("settings %v name %q, which is not a Config field", envs, field)
	}
	if all[0].Env != "ENV_FILE" {
		t.Errorf("first setting %s, want ENV_FILE", all[0].Env)
	}

	worker, publisher := config.Settings(config.ScopeWorker), config.Settings(config.ScopePublisher)
	if len(worker)+len(publisher) <= len(all) || len(worker) >= len(all) || len(publisher) >= len(all) {
		t.Errorf("scopes overlap wrongly: worker %d, publisher %d, all %d", len(worker), len(publisher), len(all))
	}
	for _, s := range publisher {
		if s.Scope&config.ScopePublisher == 0 {
			t.Errorf("Settings(ScopePublisher) lists %s of scope %v", s.Env, s.Scope)
		}
	}
}

func TestSecretURLRejectedWithoutShowingIt(t *testing.T) {
	t.Parallel()
	_, err := load(t, config.ScopeAll, nil, env{"CRM_WEBHOOK_URL": "crm.example.com/hook?token=abc123"})
	ve := validationError(t, err)
	want := config.Problem{Setting: "CRM_WEBHOOK_URL", Source: "environment", Value: "<redacted>", Reason: "must be an absolute http:// or https:// URL with a host"}
	if len(ve.Problems) != 1 || ve.Problems[0] != want {
		t.Fatalf("problems = %+v, want [%+v]", ve.Problems, want)
	}
	if strings.Contains(err.Error(), "abc123") {
		t.Fatalf("the error shows the secret URL: %v", err)
	}
}

// A secret's value can show up in the problem of a setting that is not secret: godotenv
// expands LOG_LEVEL=${LLM_API_KEY} in the .env file, or a key is pasted into the wrong
// setting. Every problem is redacted of every secret setting's value.
func TestSecretValueRedactedFromOtherSettingsProblems(t *testing.T) {
	t.Parallel()
	const key = "gsk_Q9vX2mLr7Tz4Wk8Pb3Nc6Hd1Yf5Js0Ga" // no credential shape redact knows
	dotenv := filepath.Join(t.TempDir(), "secret.env")
	content := "LLM_API_KEY=" + key + "\nLOG_LEVEL=${LLM_API_KEY}\nWORKER_CONCURRENCY=x${LLM_API_KEY}y\n"
	if err := os.WriteFile(dotenv, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]env{
		"expanded in the .env file":   {"ENV_FILE": dotenv},
		"pasted into the environment": {"CRM_TOKEN": "crmtok_abcdefgh12", "LOG_LEVEL": "crmtok_abcdefgh12", "WORKER_CONCURRENCY": " crmtok_abcdefgh12 "},
	} {
		_, err := load(t, config.ScopeAll, nil, e)
		ve := validationError(t, err)
		var blamed []string
		for _, p := range ve.Problems {
			blamed = append(blamed, p.Setting)
			if strings.Contains(p.Value, key) || strings.Contains(p.Reason, key) || strings.Contains(p.Value, "crmtok_abcdefgh12") {
				t.Errorf("%s: problem %+v shows a secret", name, p)
			}
		}
		if text := err.Error(); strings.Contains(text, key) || strings.Contains(text, "crmtok_abcdefgh12") {
			t.Errorf("%s: error shows a secret:\n%s", name, text)
		}
		if !slices.Contains(blamed, "LOG_LEVEL") || !slices.Contains(blamed, "WORKER_CONCURRENCY") {
			t.Errorf("%s: problems %v, want LOG_LEVEL and WORKER_CONCURRENCY blamed", name, blamed)
		}
	}

	// A short secret value is not redacted elsewhere: it would mangle ordinary words.
	_, err := load(t, config.ScopeAll, nil, env{"CRM_TOKEN": "debugx", "LOG_LEVEL": "debugx"})
	ve := validationError(t, err)
	if len(ve.Problems) != 1 || ve.Problems[0].Value != "debugx" {
		t.Errorf("problems = %+v, want LOG_LEVEL=\"debugx\" shown", ve.Problems)
	}
}

func TestSheetsNeedsCredentialsAndASheet(t *testing.T) {
	t.Parallel()
	_, err := load(t, config.ScopeWorker, nil, env{"SHEETS_ENABLED": "true"})
	ve := validationError(t, err)
	if len(ve.Problems) != 2 || ve.Problems[0].Setting != "SHEETS_CREDENTIALS_FILE" || ve.Problems[1].Setting != "SHEETS_SPREADSHEET_ID" ||
		ve.Problems[0].Reason != "is required when SHEETS_ENABLED is true" {
		t.Fatalf("problems = %+v", ve.Problems)
	}
}

// Unknown names in .env, and project-prefixed environment variables that name no setting,
// are warnings with the closest setting, not errors; a shared .env may hold the other
// binary's settings and a secret's _FILE.
func TestUnknownNamesWarn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "w.env")
	if err := os.WriteFile(path, []byte("WORKER_CONCURENCY=4\nPUBLISH_WINDOW=10\nLLM_API_KEY_FILE=/dev/null\nZZZ_UNRELATED=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := config.Register(nil, config.ScopeWorker)
	config.SkipComponents(l)
	l.EnvNames = func() []string { return []string{"HOME", "LLM_MODLE", "SLACK_ENABLED", "OPENAI_API_KEY"} }
	e := env{"ENV_FILE": path, "LLM_MODLE": "x", "SLACK_ENABLED": "false", "HOME": "/root", "OPENAI_API_KEY": "k"}
	cfg, err := l.Load(e.lookup)
	if err != nil || cfg.Worker.Concurrency != 16 {
		t.Fatalf("Load = %v, concurrency %d", err, cfg.Worker.Concurrency)
	}
	want := []string{
		"WORKER_CONCURENCY in " + path + " is not a setting; did you mean WORKER_CONCURRENCY?",
		"ZZZ_UNRELATED in " + path + " is not a setting",
		"LLM_MODLE in the environment is not a setting; did you mean LLM_MODEL?",
	}
	if got := l.Warnings(); !slices.Equal(got, want) {
		t.Errorf("warnings =\n%q\nwant\n%q", got, want)
	}
}

// A secret comes from X or from the file X_FILE names, trimmed: the environment before the
// .env file, X before X_FILE in each.
func TestSecretFromFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("  key-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dotenv := filepath.Join(dir, "x.env")
	if err := os.WriteFile(dotenv, []byte("LLM_API_KEY=key-from-dotenv\nCRM_TOKEN_FILE="+keyFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(t, config.ScopeWorker, nil, env{"ENV_FILE": dotenv, "LLM_API_KEY_FILE": keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LLM.APIKey.Reveal() != "key-from-file" || cfg.CRM.Token.Reveal() != "key-from-file" {
		t.Errorf("LLM key %q, CRM token %q; want both from the file", cfg.LLM.APIKey.Reveal(), cfg.CRM.Token.Reveal())
	}
	cfg, err = load(t, config.ScopeWorker, nil, env{"ENV_FILE": dotenv, "LLM_API_KEY_FILE": keyFile, "LLM_API_KEY": "key-from-env"})
	if err != nil || cfg.LLM.APIKey.Reveal() != "key-from-env" {
		t.Errorf("LLM_API_KEY beside LLM_API_KEY_FILE: %q, %v", cfg.LLM.APIKey.Reveal(), err)
	}
	_, err = load(t, config.ScopeWorker, nil, env{"ENV_FILE": "", "EMAIL_PASSWORD_FILE": filepath.Join(dir, "nope")})
	ve := validationError(t, err)
	want := config.Problem{Setting: "EMAIL_PASSWORD_FILE", Source: config.SourceEnvironment, Value: filepath.Join(dir, "nope"),
		Reason: "cannot read the file: no such file or directory"}
	if len(ve.Problems) != 1 || ve.Problems[0] != want {
		t.Errorf("problems = %+v, want [%+v]", ve.Problems, want)
	}
}
