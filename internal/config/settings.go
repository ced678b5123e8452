package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/email"
	"github.com/callagent/resilience/internal/alert/pagerduty"
	"github.com/callagent/resilience/internal/alert/telegram"
	"github.com/callagent/resilience/internal/provider/elevenlabs"
	"github.com/callagent/resilience/internal/provider/openai"
)

// Scope is the set of binaries a setting belongs to. A binary registers and
// loads only the settings of its scope; the others keep their defaults.
type Scope uint8

// Scopes. A setting belongs to one or both binaries.
const (
	// ScopeWorker marks settings of the worker daemon.
	ScopeWorker Scope = 1 << iota
	// ScopePublisher marks settings of the publisher tool.
	ScopePublisher
	// ScopeAll marks settings of both binaries.
	ScopeAll = ScopeWorker | ScopePublisher
)

// String names the binaries in the scope: "worker", "publisher" or
// "worker, publisher".
func (s Scope) String() string {
	var names []string
	if s&ScopeWorker != 0 {
		names = append(names, "worker")
	}
	if s&ScopePublisher != 0 {
		names = append(names, "publisher")
	}
	if rest := s &^ ScopeAll; rest != 0 {
		names = append(names, fmt.Sprintf("Scope(%#x)", uint8(rest)))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Setting describes one configuration value, for help texts and the README.
type Setting struct {
	// Env is the environment variable, also the key in the .env file.
	Env string
	// Flag is the command-line flag without its dashes; empty for secrets, which are never
	// flags (see Env+"_FILE").
	Flag string
	// Default is the value used when no source sets one, as text.
	Default string
	// Description says what the setting does and which values it accepts.
	Description string
	// Secret is true for credentials: their values are never shown.
	Secret bool
	// Scope is the set of binaries that read the setting.
	Scope Scope
	// Field is the Config field the setting fills, such as
	// "Retry.InitialDelay"; empty for ENV_FILE, which only locates the .env
	// file.
	Field string
}

// setting is a row of the table: its description and its binder.
type setting struct {
	Setting
	bind binder // zero for ENV_FILE
}

// envFileEnv is the setting that names the .env file.
const envFileEnv = "ENV_FILE"

// defaultEnvFile is read when no --env-file or ENV_FILE names another file;
// it may be missing.
const defaultEnvFile = ".env"

const (
	w    = ScopeWorker
	p    = ScopePublisher
	both = ScopeAll
)

// row builds a table row; the flag name and field name are derived.
func row(env, def string, scope Scope, desc string, b binder) setting {
	return setting{Setting: Setting{Env: env, Default: def, Description: desc, Scope: scope, Secret: b.secret}, bind: b}
}

// table is every setting, in the order of help texts and problem reports.
// Adding a setting is adding a row (and its Config field).
var table = finish([]setting{
	{Setting: Setting{Env: envFileEnv, Default: defaultEnvFile, Scope: both,
		Description: "The .env file read for settings not given as flags or environment variables; a missing default file is ignored, a missing named one is an error; empty disables it."}},

	row("NATS_URL", "nats://127.0.0.1:4222", both,
		"NATS server URLs, comma-separated, each scheme://host:port with scheme nats, tls, ws or wss; with EMBEDDED_NATS a single URL where the embedded server listens.",
		stringField(func(c *Config) *string { return &c.NATS.URL }, natsURLs)),
	row("NATS_CREDS", "", both,
		"NATS credentials file; empty means none. Must exist when set.",
		stringField(func(c *Config) *string { return &c.NATS.CredsFile }, existingFile)),
	row("NATS_CONNECT_TIMEOUT", "2m", both,
		"How long the process waits for NATS at start, retrying with backoff, before it gives up; 0 tries once and fails at once. At least 0.",
		durationField(func(c *Config) *time.Duration { return &c.NATS.ConnectTimeout }, nonNegative)),
	row("EMBEDDED_NATS", "false", w,
		"Run a JetStream server inside the worker, listening on NATS_URL.",
		boolField(func(c *Config) *bool { return &c.NATS.Embedded })),
	row("DATA_DIR", "./data", w,
		"Directory of the embedded server's JetStream data.",
		stringField(func(c *Config) *string { return &c.NATS.DataDir }, nonEmpty)),

	row("CONTACTS_STREAM", "CONTACTS", both,
		"JetStream stream of queued contacts; no whitespace, '.', '*', '>', '/' or '\\'.",
		stringField(func(c *Config) *string { return &c.Topology.ContactsStream }, natsName("stream"))),
	row("CONTACTS_SUBJECT", "contacts.queue", both,
		"Subject contacts are published on; no wildcards.",
		stringField(func(c *Config) *string { return &c.Topology.ContactsSubject }, literalSubject)),
	row("CONSUMER_NAME", "workers", w,
		"Durable pull consumer shared by every worker replica; same rule as a stream name.",
		stringField(func(c *Config) *string { return &c.Topology.Consumer }, natsName("consumer"))),
	row("CHECKPOINT_BUCKET", "contact-records", both,
		"Key-value bucket of per-contact records: progress (claim, paid step results) and completion; letters, digits, '_' and '-'.",
		stringField(func(c *Config) *string { return &c.Topology.CheckpointBucket }, kvBucket)),
	row("AUDIO_BUCKET", "audio", both,
		"Object Store bucket of synthesized audio (the TTS step's checkpoint); letters, digits, '_' and '-'.",
		stringField(func(c *Config) *string { return &c.Topology.AudioBucket }, kvBucket)),
	row("CHECKPOINT_TTL", "168h", both,
		"How long an unfinished contact's progress and its audio are kept after their last write (completed records are kept); > 0.",
		durationField(func(c *Config) *time.Duration { return &c.Topology.CheckpointTTL }, positive)),
	row("DEAD_LETTER_STREAM", "DEAD_LETTERS", both,
		"Stream of written-off contacts with their reason (Limits retention); same rule as CONTACTS_STREAM.",
		stringField(func(c *Config) *string { return &c.Topology.DeadLetterStream }, natsName("stream"))),
	row("DEAD_LETTER_SUBJECT", "deadletter.contacts", both,
		"Subject dead letters are published on; no wildcards.",
		stringField(func(c *Config) *string { return &c.Topology.DeadLetterSubject }, literalSubject)),
	row("DEAD_LETTER_MAX_AGE", "720h", both,
		"How long a dead letter is kept (default 30 days); > 0.",
		durationField(func(c *Config) *time.Duration { return &c.Topology.DeadLetterMaxAge }, positive)),
	row("DEDUPE_WINDOW", "6h", both,
		"How long the stream drops a re-published contact with the same message id; > 0.",
		durationField(func(c *Config) *time.Duration { return &c.Topology.DedupeWindow }, positive)),
	row("STREAM_REPLICAS", "1", both,
		"Replicas of the streams, 1 to 5; 3 in production clusters.",
		intField(func(c *Config) *int { return &c.Topology.Replicas }, between(1, 5))),
	row("ACK_WAIT", "30s", both,
		"How long the server waits for an ack before redelivering; at least 3s.",
		durationField(func(c *Config) *time.Duration { return &c.Topology.AckWait }, atLeast(3*time.Second))),
	row("MAX_DELIVER", "5", both,
		"Failed deliveries of a contact before it is dead-lettered; at least 1. The consumer allows 3x as many deliveries in all, so deliveries that failed nothing (a shutdown, a crash) do not use them up.",
		intField(func(c *Config) *int { return &c.Topology.MaxDeliver }, atLeast(1))),
	row("MAX_ACK_PENDING", "256", both,
		"Contacts in flight across all replicas; about replicas × WORKER_CONCURRENCY; at least 1.",
		intField(func(c *Config) *int { return &c.Topology.MaxAckPending }, atLeast(1))),

	row("WORKER_ID", "", w,
		"Name of this worker in logs and checkpoints; letters, digits, '.', '_', '-', at most 64; empty means <hostname>-<pid>.",
		stringField(func(c *Config) *string { return &c.Worker.ID }, workerID)),
	row("WORKER_CONCURRENCY", "16", w,
		"Contacts one worker process works on at once, 1 to 4096.",
		intField(func(c *Config) *int { return &c.Worker.Concurrency }, between(1, 4096))),
	row("PULL_BATCH", "8", w,
		"Messages asked for in one pull, 1 to 256.",
		intField(func(c *Config) *int { return &c.Worker.PullBatch }, between(1, 256))),
	row("SHUTDOWN_GRACE", "25s", w,
		"How long a stopping worker waits for running contacts; at least 0.",
		durationField(func(c *Config) *time.Duration { return &c.Worker.ShutdownGrace }, nonNegative)),
	row("ON_BREAKER_OPEN", OnBreakerOpenHold, w,
		"What happens to a contact whose provider's breaker is open: hold (delay it in the queue) or deadletter (skip it).",
		enumField(func(c *Config) *string { return &c.Worker.OnBreakerOpen }, "policy", false, func() []string { return BreakerOpenPolicies })),

	row("PUBLISH_WINDOW", "4096", p,
		"Most asynchronous publishes awaiting their ack, 1 to 65536.",
		intField(func(c *Config) *int { return &c.Publisher.Window }, between(1, 65536))),

	row("RETRY_INITIAL_DELAY", "5s", w,
		"Wait before the second attempt of a provider call; at least 0.",
		durationField(func(c *Config) *time.Duration { return &c.Retry.InitialDelay }, nonNegative)),
	row("RETRY_MAX_ATTEMPTS", "3", w,
		"Attempts of a provider call in all, the first included; at least 1.",
		intField(func(c *Config) *int { return &c.Retry.MaxAttempts }, atLeast(1))),
	row("RETRY_MULTIPLIER", "2", w,
		"Factor from one wait to the next; at least 1.",
		floatField(func(c *Config) *float64 { return &c.Retry.Multiplier }, atLeast(1.0))),
	row("RETRY_MAX_DELAY", "60s", w,
		"Cap on one in-process wait, a redelivery delay and a provider's Retry-After; 0 means no cap in process and an hour for redeliveries.",
		durationField(func(c *Config) *time.Duration { return &c.Retry.MaxDelay }, nonNegative)),
	row("RETRY_JITTER", "false", w,
		"Randomise each wait between 0 and its computed value (full jitter).",
		boolField(func(c *Config) *bool { return &c.Retry.Jitter })),
	row("RETRY_AFTER_CAP", "30s", w,
		"Longest provider Retry-After slept in process; a longer one sends the contact back to the queue; at least 0.",
		durationField(func(c *Config) *time.Duration { return &c.Retry.RetryAfterCap }, nonNegative)),

	row("BREAKER_FAILURE_THRESHOLD", "3", w,
		"Consecutive failed attempts that open a provider's breaker; at least 1.",
		intField(func(c *Config) *int { return &c.Breaker.FailureThreshold }, atLeast(1))),
	row("BREAKER_SUCCESS_THRESHOLD", "2", w,
		"Successes in half-open that close the breaker; at least 1.",
		intField(func(c *Config) *int { return &c.Breaker.SuccessThreshold }, atLeast(1))),
	row("BREAKER_OPEN_TIMEOUT", "30s", w,
		"How long a breaker stays open before it lets a probe through; > 0.",
		durationField(func(c *Config) *time.Duration { return &c.Breaker.OpenTimeout }, positive)),

	row("HEALTH_CHECK_INTERVAL", "60s", w,
		"Time between two health checks of a provider; > 0.",
		durationField(func(c *Config) *time.Duration { return &c.Health.Interval }, positive)),
	row("HEALTH_CHECK_OPEN_INTERVAL", "1s", w,
		"Wait between health checks while a breaker is open: the first after half to one interval, then every interval for the first 10 intervals of the outage, then a tenth of the outage's age, at most BREAKER_OPEN_TIMEOUT; > 0.",
		durationField(func(c *Config) *time.Duration { return &c.Health.OpenInterval }, positive)),
	row("HEALTH_CHECK_TIMEOUT", "5s", w,
		"Bound on one health check; > 0 and not more than HEALTH_CHECK_INTERVAL.",
		durationField(func(c *Config) *time.Duration { return &c.Health.Timeout }, positive)),

	row("LLM_MAX_CONCURRENCY", "16", w,
		"Concurrent LLM calls per worker process; at least 1.",
		intField(func(c *Config) *int { return &c.Bulkhead.LLM }, atLeast(1))),
	row("ELEVENLABS_MAX_CONCURRENCY", "5", w,
		"Concurrent ElevenLabs calls per worker process; at least 1 (plans allow 2 to 15 per account).",
		intField(func(c *Config) *int { return &c.Bulkhead.TTS }, atLeast(1))),
	row("CRM_MAX_CONCURRENCY", "16", w,
		"Concurrent CRM calls per worker process; at least 1.",
		intField(func(c *Config) *int { return &c.Bulkhead.CRM }, atLeast(1))),

	row("LLM_TIMEOUT", "30s", w,
		"Bound on one LLM attempt; > 0.",
		durationField(func(c *Config) *time.Duration { return &c.Timeouts.LLM }, positive)),
	row("ELEVENLABS_TIMEOUT", "30s", w,
		"Bound on one ElevenLabs attempt; > 0.",
		durationField(func(c *Config) *time.Duration { return &c.Timeouts.TTS }, positive)),
	row("CRM_TIMEOUT", "10s", w,
		"Bound on one CRM attempt; > 0.",
		durationField(func(c *Config) *time.Duration { return &c.Timeouts.CRM }, positive)),

	row("SIMULATE", "", w,
		"Simulated providers for demos: healthy or tts-503; empty means real providers.",
		enumField(func(c *Config) *string { return &c.Sim.Scenario }, "scenario", true, func() []string { return Scenarios })),
	row("SIM_LATENCY", "50ms", w,
		"Duration of each simulated call; at least 0.",
		durationField(func(c *Config) *time.Duration { return &c.Sim.Latency }, nonNegative)),
	row("SIM_TTS_OUTAGE", "20s", w,
		"How long the simulated ElevenLabs answers 503 in the tts-503 scenario; at least 0.",
		durationField(func(c *Config) *time.Duration { return &c.Sim.TTSOutage }, nonNegative)),

	row("LLM_API_KEY", "", w,
		"API key of the OpenAI-compatible LLM, sent as a Bearer token; required when SIMULATE is unset.",
		secretField(func(c *Config) *Secret { return &c.LLM.APIKey })),
	row("LLM_MODEL", openai.DefaultChatModel, w,
		"Chat model that writes the call script.",
		stringField(func(c *Config) *string { return &c.LLM.Model }, nonEmpty)),
	row("LLM_BASE_URL", openai.DefaultBaseURL, w,
		"OpenAI-compatible base URL including the version path (Groq: https://api.groq.com/openai/v1).",
		stringField(func(c *Config) *string { return &c.LLM.BaseURL }, providerURL(false, false))),
	row("LLM_SYSTEM_PROMPT_FILE", "", w,
		"Go template of the system prompt over .Name, .Language and .Variables; empty uses the built-in prompt.",
		stringField(func(c *Config) *string { return &c.LLM.SystemPromptFile }, existingFile)),
	row("LLM_MAX_TOKENS", strconv.Itoa(openai.DefaultMaxTokens), w,
		"max_tokens of the script, 1 to 32768.",
		intField(func(c *Config) *int { return &c.LLM.MaxTokens }, between(1, 32768))),
	row("LLM_TOKEN_PARAM", string(openai.TokenParamAuto), w,
		"Request field of LLM_MAX_TOKENS: auto (max_completion_tokens at api.openai.com, max_tokens elsewhere), max_tokens or max_completion_tokens.",
		enumField(func(c *Config) *string { return &c.LLM.TokenParam }, "token parameter", false, func() []string { return TokenParams })),
	row("LLM_FALLBACK_BASE_URL", "", w,
		"A second OpenAI-compatible endpoint used while the LLM's breaker is open; empty means no fallback.",
		stringField(func(c *Config) *string { return &c.LLM.FallbackBaseURL }, providerURL(true, false))),
	row("LLM_FALLBACK_MODEL", "", w,
		"Model at the fallback endpoint; empty means LLM_MODEL.",
		stringField(func(c *Config) *string { return &c.LLM.FallbackModel })),
	row("LLM_FALLBACK_API_KEY", "", w,
		"API key of the fallback endpoint; empty means LLM_API_KEY.",
		secretField(func(c *Config) *Secret { return &c.LLM.FallbackAPIKey })),
	row("LLM_FALLBACK_TOKEN_PARAM", string(openai.TokenParamAuto), w,
		"LLM_TOKEN_PARAM for the fallback endpoint (not inherited).",
		enumField(func(c *Config) *string { return &c.LLM.FallbackTokenParam }, "token parameter", false, func() []string { return TokenParams })),

	row("ELEVENLABS_API_KEY", "", w,
		"ElevenLabs API key (xi-api-key); required when SIMULATE is unset.",
		secretField(func(c *Config) *Secret { return &c.ElevenLabs.APIKey })),
	row("ELEVENLABS_VOICE_ID", "", w,
		"ElevenLabs voice; required when SIMULATE is unset.",
		stringField(func(c *Config) *string { return &c.ElevenLabs.VoiceID }, voiceID)),
	row("ELEVENLABS_MODEL_ID", elevenlabs.DefaultModelID, w,
		"ElevenLabs model.",
		stringField(func(c *Config) *string { return &c.ElevenLabs.ModelID }, nonEmpty)),
	row("ELEVENLABS_OUTPUT_FORMAT", elevenlabs.DefaultOutputFormat, w,
		"Audio format, codec_samplerate[_bitrate], one of the API's (e.g. mp3_44100_128, pcm_16000); ulaw_8000 for telephony.",
		stringField(func(c *Config) *string { return &c.ElevenLabs.OutputFormat }, elevenlabsFormat)),
	row("ELEVENLABS_BASE_URL", elevenlabs.DefaultBaseURL, w,
		"ElevenLabs API base URL.",
		stringField(func(c *Config) *string { return &c.ElevenLabs.BaseURL }, providerURL(false, false))),
	row("ELEVENLABS_VOICE_SETTINGS", "", w,
		`Voice settings as JSON, e.g. {"stability":0.5,"similarity_boost":0.75}; empty uses the voice's own.`,
		stringField(func(c *Config) *string { return &c.ElevenLabs.VoiceSettings }, jsonObject)),

	row("TTS_FALLBACK", "none", w,
		"Text-to-speech used while ElevenLabs' breaker is open or its bulkhead is full: none, elevenlabs (ELEVENLABS_FALLBACK_*) or openai (OPENAI_TTS_*).",
		enumField(func(c *Config) *string { return &c.TTSFallback.Kind }, "fallback", false, func() []string { return TTSFallbacks })),
	row("ELEVENLABS_FALLBACK_API_KEY", "", w,
		"API key of the fallback ElevenLabs voice; empty means ELEVENLABS_API_KEY.",
		secretField(func(c *Config) *Secret { return &c.TTSFallback.ElevenLabsAPIKey })),
	row("ELEVENLABS_FALLBACK_VOICE_ID", "", w,
		"Fallback ElevenLabs voice; empty means ELEVENLABS_VOICE_ID.",
		stringField(func(c *Config) *string { return &c.TTSFallback.ElevenLabsVoiceID }, voiceID)),
	row("ELEVENLABS_FALLBACK_MODEL_ID", "", w,
		"Fallback ElevenLabs model; empty means ELEVENLABS_MODEL_ID.",
		stringField(func(c *Config) *string { return &c.TTSFallback.ElevenLabsModelID })),
	row("OPENAI_TTS_API_KEY", "", w,
		"API key of the OpenAI-compatible speech fallback; empty means LLM_API_KEY.",
		secretField(func(c *Config) *Secret { return &c.TTSFallback.OpenAIAPIKey })),
	row("OPENAI_TTS_BASE_URL", openai.DefaultBaseURL, w,
		"Base URL of the OpenAI-compatible speech fallback (POST {base}/audio/speech).",
		stringField(func(c *Config) *string { return &c.TTSFallback.OpenAIBaseURL }, providerURL(false, false))),
	row("OPENAI_TTS_MODEL", openai.DefaultSpeechModel, w,
		"Speech model of the fallback.",
		stringField(func(c *Config) *string { return &c.TTSFallback.OpenAIModel }, nonEmpty)),
	row("OPENAI_TTS_VOICE", openai.DefaultVoice, w,
		"Voice of the speech fallback.",
		stringField(func(c *Config) *string { return &c.TTSFallback.OpenAIVoice }, nonEmpty)),
	row("OPENAI_TTS_FORMAT", openai.DefaultSpeechFormat, w,
		"Audio format of the speech fallback: mp3, opus, aac, flac, wav or pcm.",
		enumField(func(c *Config) *string { return &c.TTSFallback.OpenAIFormat }, "format", false, func() []string { return SpeechFormats })),

	row("CRM_WEBHOOK_URL", "", w,
		"URL that receives each completed call as a JSON POST with Idempotency-Key = contact id; empty means no CRM step. Kept secret: it may hold a token.",
		secretField(func(c *Config) *Secret { return &c.CRM.WebhookURL }, providerURL(true, true))),
	row("CRM_HEALTH_URL", "", w,
		"URL that answers 2xx to GET while the CRM is healthy; empty means the CRM is not probed.",
		stringField(func(c *Config) *string { return &c.CRM.HealthURL }, providerURL(true, true))),
	row("CRM_TOKEN", "", w,
		"Bearer token sent to the CRM; empty means none.",
		secretField(func(c *Config) *Secret { return &c.CRM.Token })),

	row("METRICS_ADDR", ":8397", w,
		"Address of /metrics (Prometheus), /healthz and /readyz; empty disables the endpoint.",
		stringField(func(c *Config) *string { return &c.Metrics.Addr }, listenAddr)),
	row("FLEET_BUCKET", "fleet", both,
		"Key-value bucket where workers publish their breaker states for 'publisher status'; letters, digits, '_' and '-'.",
		stringField(func(c *Config) *string { return &c.Fleet.Bucket }, kvBucket)),
	row("FLEET_TTL", "30s", w,
		"How long a stopped worker's breaker report lingers; live workers refresh theirs every third of it. At least 3s.",
		durationField(func(c *Config) *time.Duration { return &c.Fleet.TTL }, atLeast(3*time.Second))),
	row("SHEETS_ENABLED", "false", w,
		"Append warning and error records to a Google Sheet (the seed's optional error log).",
		boolField(func(c *Config) *bool { return &c.Sheets.Enabled })),
	row("SHEETS_CREDENTIALS_FILE", "", w,
		"Google service-account JSON key file; required with SHEETS_ENABLED.",
		stringField(func(c *Config) *string { return &c.Sheets.CredentialsFile }, existingFile)),
	row("SHEETS_SPREADSHEET_ID", "", w,
		"Spreadsheet id (from its URL); required with SHEETS_ENABLED.",
		stringField(func(c *Config) *string { return &c.Sheets.SpreadsheetID }, sheetID)),
	row("SHEETS_RANGE", "A1", w,
		"Table to append to in A1 notation, e.g. Errors!A1.",
		stringField(func(c *Config) *string { return &c.Sheets.Range }, nonEmpty)),
	row("SHEETS_BATCH_SIZE", "50", w,
		"Rows per append request, 1 to 10000.",
		intField(func(c *Config) *int { return &c.Sheets.BatchSize }, between(1, 10000))),
	row("SHEETS_FLUSH_INTERVAL", "5s", w,
		"Send a partial batch after this long; > 0.",
		durationField(func(c *Config) *time.Duration { return &c.Sheets.FlushInterval }, positive)),
	row("SHEETS_BUFFER", "1000", w,
		"Records waiting to be sent before new ones are dropped (counted and logged, never blocking); at least 1.",
		intField(func(c *Config) *int { return &c.Sheets.Buffer }, atLeast(1))),
	row("SHEETS_LEVEL", "warn", w,
		"Least severe level sent to the sheet: warn or error.",
		enumField(func(c *Config) *string { return &c.Sheets.Level }, "level", false, func() []string { return []string{"warn", "error"} })),

	row("ALERTS_STREAM", alert.DefaultStream, both,
		"Stream of alert events and per-channel notifications; letters, digits, '_' and '-', at most 64.",
		stringField(func(c *Config) *string { return &c.Alerts.Stream }, alertName("stream"))),
	row("ALERTS_SUBJECT_PREFIX", alert.DefaultSubjectPrefix, w,
		"Alert events are published on <prefix>.<severity>.<kind>; no wildcards.",
		stringField(func(c *Config) *string { return &c.Alerts.SubjectPrefix }, literalSubject)),
	row("ALERT_DISPATCHER_CONSUMER", alert.DefaultConsumer, w,
		"Durable consumer of alert events shared by every worker, so each alert is delivered once; letters, digits, '_' and '-', at most 64.",
		stringField(func(c *Config) *string { return &c.Alerts.Consumer }, alertName("consumer"))),
	row("ALERT_INCIDENTS_BUCKET", alert.DefaultBucket, both,
		"Key-value bucket of open incidents (shown by 'publisher status'); letters, digits, '_' and '-', at most 64.",
		stringField(func(c *Config) *string { return &c.Alerts.IncidentsBucket }, alertName("bucket"))),
	row("ALERTS_MAX_AGE", "168h", w,
		"How long an alert that could not be delivered is kept for a channel to recover; at least 1m.",
		durationField(func(c *Config) *time.Duration { return &c.Alerts.MaxAge }, atLeast(time.Minute))),
	row("SERVICE_DOWN_ALERT_AFTER", "5m", w,
		"A breaker open this long raises a service_down alert; > 0.",
		durationField(func(c *Config) *time.Duration { return &c.Alerts.ServiceDownAfter }, positive)),
	row("ALERT_SUMMARY_WINDOW", "1m", w,
		"Call-failure alerts after the first are summarised per window; > 0.",
		durationField(func(c *Config) *time.Duration { return &c.Alerts.SummaryWindow }, positive)),
	row("ALERT_REPORTER_TTL", "15m", w,
		"A worker that stopped reporting an open breaker this long ago (it died) no longer holds its incident open; > 0.",
		durationField(func(c *Config) *time.Duration { return &c.Alerts.ReporterTTL }, positive)),
	row("ALERT_QUEUE_SIZE", "1024", w,
		"Alert events waiting to be published; more are dropped and counted, never blocking calls. At least 1.",
		intField(func(c *Config) *int { return &c.Alerts.QueueSize }, atLeast(1))),
	row("ALERT_TIMEOUT", "10s", w,
		"Bound of one delivery attempt to a channel; > 0.",
		durationField(func(c *Config) *time.Duration { return &c.Alerts.Timeout }, positive)),
	row("EMAIL_ENABLED", "false", w,
		"Send alerts by email (SMTP, always encrypted: implicit TLS on port 465, mandatory STARTTLS elsewhere).",
		boolField(func(c *Config) *bool { return &c.Alerts.EmailEnabled })),
	row("EMAIL_MIN_SEVERITY", "info", w,
		"Least severe alert sent on this channel: info, warning or critical.",
		enumField(func(c *Config) *string { return &c.Alerts.EmailMinSeverity }, "severity", false, func() []string { return Severities })),
	row("SMTP_HOST", "smtp.gmail.com", w,
		"SMTP server for email alerts.",
		stringField(func(c *Config) *string { return &c.Alerts.SMTPHost })),
	row("SMTP_PORT", strconv.Itoa(email.DefaultPort), w,
		"SMTP port, 1 to 65535: 587 is submission with STARTTLS, 465 implicit TLS.",
		intField(func(c *Config) *int { return &c.Alerts.SMTPPort }, between(1, 65535))),
	row("SMTP_USERNAME", "", w,
		"SMTP login; empty means EMAIL_FROM.",
		stringField(func(c *Config) *string { return &c.Alerts.SMTPUsername })),
	row("EMAIL_PASSWORD", "", w,
		"SMTP password (an app password for Gmail).",
		secretField(func(c *Config) *Secret { return &c.Alerts.EmailPassword })),
	row("EMAIL_FROM", "", w,
		"Sender address of email alerts.",
		stringField(func(c *Config) *string { return &c.Alerts.EmailFrom })),
	row("EMAIL_TO", "", w,
		"Recipients of email alerts, comma-separated.",
		stringField(func(c *Config) *string { return &c.Alerts.EmailTo })),
	row("TELEGRAM_ENABLED", "false", w,
		"Send alerts to Telegram (Bot API sendMessage).",
		boolField(func(c *Config) *bool { return &c.Alerts.TelegramEnabled })),
	row("TELEGRAM_MIN_SEVERITY", "info", w,
		"Least severe alert sent on this channel: info, warning or critical.",
		enumField(func(c *Config) *string { return &c.Alerts.TelegramMinSeverity }, "severity", false, func() []string { return Severities })),
	row("TELEGRAM_BOT_TOKEN", "", w,
		"Telegram bot token.",
		secretField(func(c *Config) *Secret { return &c.Alerts.TelegramBotToken })),
	row("TELEGRAM_CHAT_ID", "", w,
		"Telegram chat that receives alerts.",
		stringField(func(c *Config) *string { return &c.Alerts.TelegramChatID })),
	row("TELEGRAM_API_URL", telegram.DefaultAPIURL, w,
		"Telegram Bot API base URL.",
		stringField(func(c *Config) *string { return &c.Alerts.TelegramAPIURL }, channelURL(false))),
	row("WEBHOOK_ENABLED", "false", w,
		"Send alerts to a webhook, signed the Standard Webhooks way.",
		boolField(func(c *Config) *bool { return &c.Alerts.WebhookEnabled })),
	row("WEBHOOK_MIN_SEVERITY", "info", w,
		"Least severe alert sent on this channel: info, warning or critical.",
		enumField(func(c *Config) *string { return &c.Alerts.WebhookMinSeverity }, "severity", false, func() []string { return Severities })),
	row("WEBHOOK_URL", "", w,
		"URL that receives each alert as a signed JSON POST.",
		stringField(func(c *Config) *string { return &c.Alerts.WebhookURL }, channelURL(true))),
	row("WEBHOOK_SECRET", "", w,
		"Signing secret, whsec_ followed by the standard (padded) base64 of a 24 to 64 byte key, as Standard Webhooks specifies; required with WEBHOOK_ENABLED.",
		secretField(func(c *Config) *Secret { return &c.Alerts.WebhookSecret })),
	row("SLACK_ENABLED", "false", w,
		"Send alerts to Slack (incoming webhook).",
		boolField(func(c *Config) *bool { return &c.Alerts.SlackEnabled })),
	row("SLACK_MIN_SEVERITY", "info", w,
		"Least severe alert sent on this channel: info, warning or critical.",
		enumField(func(c *Config) *string { return &c.Alerts.SlackMinSeverity }, "severity", false, func() []string { return Severities })),
	row("SLACK_WEBHOOK_URL", "", w,
		"Slack incoming-webhook URL (secret).",
		secretField(func(c *Config) *Secret { return &c.Alerts.SlackWebhookURL }, channelURL(true))),
	row("PAGERDUTY_ENABLED", "false", w,
		"Send alerts to PagerDuty (Events API v2: trigger and resolve).",
		boolField(func(c *Config) *bool { return &c.Alerts.PagerDutyEnabled })),
	row("PAGERDUTY_MIN_SEVERITY", "critical", w,
		"Least severe alert sent on this channel: info, warning or critical.",
		enumField(func(c *Config) *string { return &c.Alerts.PagerDutyMinSeverity }, "severity", false, func() []string { return Severities })),
	row("PAGERDUTY_ROUTING_KEY", "", w,
		"PagerDuty integration (routing) key.",
		secretField(func(c *Config) *Secret { return &c.Alerts.PagerDutyRoutingKey })),
	row("PAGERDUTY_URL", pagerduty.DefaultURL, w,
		"PagerDuty Events API v2 endpoint.",
		stringField(func(c *Config) *string { return &c.Alerts.PagerDutyURL }, channelURL(false))),
	row("PAGERDUTY_SOURCE", pagerduty.DefaultSource, w,
		"The source field of PagerDuty events.",
		stringField(func(c *Config) *string { return &c.Alerts.PagerDutySource }, nonEmpty)),

	row("LOG_FILE", "logs/error_recovery.log", both,
		"JSON-lines log file, rotated; empty disables it. Independent of LOG_FORMAT.",
		stringField(func(c *Config) *string { return &c.Log.File })),
	row("LOG_FORMAT", LogFormatHuman, both,
		"What stdout receives: human (the bare message, as the seed prints it) or json (the JSON lines of LOG_FILE, same fields and redaction, one object per line, for log collectors).",
		enumField(func(c *Config) *string { return &c.Log.Format }, "format", false, func() []string { return LogFormats })),
	row("LOG_LEVEL", "info", both,
		"Least severe level logged: debug, info, warn or error.",
		enumField(func(c *Config) *string { return &c.Log.Level }, "level", false, func() []string { return LogLevels })),
	row("LOG_MAX_SIZE_MB", "100", both,
		"Size in megabytes at which the log file is rotated; at least 1.",
		intField(func(c *Config) *int { return &c.Log.MaxSizeMB }, atLeast(1))),
	row("LOG_MAX_BACKUPS", "5", both,
		"Rotated log files kept; 0 keeps all.",
		intField(func(c *Config) *int { return &c.Log.MaxBackups }, nonNegative)),
	row("LOG_MAX_AGE_DAYS", "28", both,
		"Days rotated log files are kept; 0 keeps them regardless of age.",
		intField(func(c *Config) *int { return &c.Log.MaxAgeDays }, nonNegative)),
})

// crossRule validates a setting against others once all of them parsed.
type crossRule struct {
	env  string   // the setting blamed
	deps []string // settings that must have loaded without problems
	// check returns "" or the reason the blamed setting is invalid.
	check func(c *Config) string
}

// crossRules are checked after every setting parsed; a rule is skipped when
// any setting it involves is out of scope or already has a problem.
var crossRules = []crossRule{
	{env: "NATS_URL", deps: []string{"EMBEDDED_NATS"}, check: func(c *Config) string {
		if c.NATS.Embedded && strings.Contains(c.NATS.URL, ",") {
			return "must be a single URL when EMBEDDED_NATS is true (the embedded server listens there)"
		}
		return ""
	}},
	{env: "SHEETS_CREDENTIALS_FILE", deps: []string{"SHEETS_ENABLED"}, check: func(c *Config) string {
		if c.Sheets.Enabled && c.Sheets.CredentialsFile == "" {
			return "is required when SHEETS_ENABLED is true"
		}
		return ""
	}},
	{env: "SHEETS_SPREADSHEET_ID", deps: []string{"SHEETS_ENABLED"}, check: func(c *Config) string {
		if c.Sheets.Enabled && c.Sheets.SpreadsheetID == "" {
			return "is required when SHEETS_ENABLED is true"
		}
		return ""
	}},
	{env: "HEALTH_CHECK_TIMEOUT", deps: []string{"HEALTH_CHECK_INTERVAL"}, check: func(c *Config) string {
		if c.Health.Timeout > c.Health.Interval {
			return fmt.Sprintf("must not be more than HEALTH_CHECK_INTERVAL (%v)", c.Health.Interval)
		}
		return ""
	}},
}

// finish derives each row's flag and field name and checks the table is
// consistent; a broken table is a programming error and panics at init.
func finish(rows []setting) []setting {
	seen := map[string]bool{}
	for i := range rows {
		s := &rows[i]
		if seen[s.Env] {
			panic("config: duplicate setting " + s.Env)
		}
		seen[s.Env] = true
		s.Flag = flagName(s.Env)
		if s.Secret {
			s.Flag = ""
			s.Description += " Never a flag (command lines show in ps): set it in the environment or .env, or put it in a file named by " + s.Env + fileSuffix + "."
		}
		if s.bind.ptr != nil {
			s.Field = fieldPath(s.bind)
			if s.Field == "" {
				panic("config: setting " + s.Env + " does not point into Config")
			}
		}
	}
	return rows
}

// flagName is the flag for an environment name: lower case, '-' for '_'.
func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(env), "_", "-")
}

// fieldPath finds the Config field b stores into, such as "Retry.InitialDelay".
func fieldPath(b binder) string {
	var c Config
	ptr := reflect.ValueOf(b.ptr(&c))
	return findField(reflect.ValueOf(&c).Elem(), ptr.Pointer(), ptr.Type().Elem(), "")
}

func findField(v reflect.Value, addr uintptr, typ reflect.Type, prefix string) string {
	for i := range v.NumField() {
		f := v.Field(i)
		name := prefix + v.Type().Field(i).Name
		if f.Addr().Pointer() == addr && f.Type() == typ {
			return name
		}
		if f.Kind() == reflect.Struct {
			if found := findField(f, addr, typ, name+"."); found != "" {
				return found
			}
		}
	}
	return ""
}

// Settings lists the settings of the binaries in scope, in table order,
// ENV_FILE first. Use ScopeAll for every setting.
func Settings(scope Scope) []Setting {
	var out []Setting
	for _, s := range table {
		if s.Scope&scope != 0 {
			out = append(out, s.Setting)
		}
	}
	return out
}

// Defaults returns the configuration with every setting at its default.
// Worker.ID is left empty: Load computes it from the host name and process
// id.
func Defaults() Config {
	var c Config
	for _, s := range table {
		if s.bind.set == nil {
			continue
		}
		if err := s.bind.set(&c, s.Default); err != nil {
			panic(fmt.Sprintf("config: default of %s %q is invalid: %v", s.Env, s.Default, err))
		}
	}
	return c
}
