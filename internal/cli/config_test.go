package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callagent/resilience/internal/cli"
)

// TestEveryConfigurationProblemAtOnce: one bad value for each component (the settings
// table, an LLM client, the ElevenLabs client and its fallback, the CRM client, an alert
// channel, the alert topology, a secret file, the Sheets key file), from the environment, the .env file and a
// flag, give one report and exit 2 before anything connects; each problem names its
// setting once, with where its value came from.
func TestEveryConfigurationProblemAtOnce(t *testing.T) {
	dir := t.TempDir()
	dotenv := filepath.Join(dir, "worker.env")
	keyFile := filepath.Join(dir, "elevenlabs.key")
	if err := os.WriteFile(keyFile, []byte("xi-key-from-a-file-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	saFile := filepath.Join(dir, "sheets.json")
	if err := os.WriteFile(saFile, []byte(`{"type":"authorized_user"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dotenv, []byte(
		"ELEVENLABS_OUTPUT_FORMAT=flac\n"+
			"ELEVENLABS_API_KEY_FILE="+keyFile+"\n"+
			"WORKER_CONCURENCY=4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"ENV_FILE":                dotenv,
		"LOG_FILE":                "",
		"LLM_API_KEY":             "sk-test-0123456789abcdef",
		"LLM_BASE_URL":            "https://api.openai.com/v1?org=x", // the client's URL rule, which the table uses too
		"ELEVENLABS_VOICE_ID":     "voice1",
		"TTS_FALLBACK":            "elevenlabs", // inherits the bad output format: still reported once
		"CRM_WEBHOOK_URL":         "https://crm.example/hook#fragment",
		"WEBHOOK_ENABLED":         "true",
		"WEBHOOK_URL":             "https://alerts.example/hook",
		"WEBHOOK_SECRET":          "not-a-standard-webhooks-secret",
		"ALERTS_STREAM":           "ALERTS@1",
		"TELEGRAM_BOT_TOKEN_FILE": filepath.Join(dir, "missing.token"),
		// The Sheets log's key file exists (the table's rule) but is not a service-account key.
		"SHEETS_ENABLED":          "true",
		"SHEETS_SPREADSHEET_ID":   "sheet-1",
		"SHEETS_CREDENTIALS_FILE": saFile,
	}
	var out, errOut bytes.Buffer
	code := cli.Execute(cli.NewWorkerCommand(env(vars), &out), []string{"--worker-concurrency=0"}, &errOut)
	stderr := errOut.String()
	if code != 2 {
		t.Fatalf("exit code %d, want 2; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		`WORKER_CONCURRENCY="0" (from flag --worker-concurrency): must be between 1 and 4096`,
		`LLM_BASE_URL="https://api.openai.com/v1?org=x" (from environment): must not contain a query (?…)`,
		`ELEVENLABS_OUTPUT_FORMAT="flac" (from ` + dotenv + `): "flac" is not an ElevenLabs output format`,
		`CRM_WEBHOOK_URL="<redacted>" (from environment): must not contain a fragment (#…)`,
		`WEBHOOK_SECRET="<redacted>" (from environment): must be whsec_ followed by`,
		`ALERTS_STREAM="ALERTS@1" (from environment): stream name "ALERTS@1" must be letters, digits, '_' or '-'`,
		`TELEGRAM_BOT_TOKEN_FILE="` + filepath.Join(dir, "missing.token") + `" (from environment): cannot read the file: no such file or directory`,
		"warning: WORKER_CONCURENCY in " + dotenv + " is not a setting; did you mean WORKER_CONCURRENCY?",
		`SHEETS_CREDENTIALS_FILE="` + saFile + `" (from environment): `,
		`type is "authorized_user", want "service_account"`,
		"invalid configuration (8 problems)",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, setting := range []string{"WORKER_CONCURRENCY=", "LLM_BASE_URL", "ELEVENLABS_OUTPUT_FORMAT", "CRM_WEBHOOK_URL",
		"WEBHOOK_SECRET", "ALERTS_STREAM", "SHEETS_CREDENTIALS_FILE"} {
		if n := strings.Count(stderr, setting); n != 1 {
			t.Errorf("%s named %d times, want once:\n%s", setting, n, stderr)
		}
	}
	// The key came from its file, the fallback inherits it, and no setting that does not
	// exist is named.
	if strings.Contains(stderr, "ELEVENLABS_API_KEY") || strings.Contains(stderr, "FALLBACK") ||
		strings.Contains(stderr, "xi-key-from-a-file") || strings.Contains(stderr, "sk-test") {
		t.Errorf("stderr names a good or inherited setting, or shows a key:\n%s", stderr)
	}
}

// The publisher checks the alert topology it reads too, and secrets are not flags.
func TestPublisherConfigurationProblems(t *testing.T) {
	var out, errOut bytes.Buffer
	vars := map[string]string{"ENV_FILE": "", "LOG_FILE": "", "ALERTS_STREAM": "ALERTS@1"}
	code := cli.Execute(cli.NewPublisherCommand(env(vars), &out, &errOut), []string{"status"}, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), `ALERTS_STREAM="ALERTS@1" (from environment)`) {
		t.Errorf("exit %d, stderr:\n%s", code, errOut.String())
	}
	errOut.Reset()
	code = cli.Execute(cli.NewWorkerCommand(env(map[string]string{"ENV_FILE": ""}), &out), []string{"--llm-api-key=sk-x"}, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "unknown flag: --llm-api-key") {
		t.Errorf("a secret flag: exit %d, stderr:\n%s", code, errOut.String())
	}
}
