// Package config holds every setting of the worker and the publisher in one
// documented struct and loads it from, in order of precedence, command-line
// flags, the environment, a .env file and the defaults.
//
// Each setting is one row of a table (see Settings): its environment name, its
// flag name (the environment name lower-cased with '_' replaced by '-'), its
// default, the binaries it belongs to and the function that parses and
// validates it. Load reports every bad value at once in a *ValidationError,
// each naming the setting and where its value came from.
package config

import (
	"time"

	"github.com/callagent/resilience/internal/provider/openai"
)

// Config is the whole configuration of both binaries. Each field's comment
// names its environment variable and says what it is for; its default, valid
// values and flag are in its row of the settings table (settings.go), the one
// place they are written, from which the README's table is generated. The
// flag is the variable's name in lower case with '-' for '_'
// (WORKER_CONCURRENCY is --worker-concurrency). Settings of the other binary
// keep their defaults.
type Config struct {
	NATS      NATS
	Topology  Topology
	Worker    Worker
	Publisher Publisher
	Retry     Retry
	Breaker   Breaker
	Health    Health
	Bulkhead  Bulkhead
	Timeouts  Timeouts
	Sim       Sim
	Log       Log
	// Providers used when SIMULATE is unset.
	LLM         LLM
	ElevenLabs  ElevenLabs
	TTSFallback TTSFallback
	CRM         CRM
	Metrics     Metrics
	Fleet       Fleet
	Sheets      Sheets
	Alerts      Alerts
}

// Alerts are the alert events, their shared dispatcher and its channels. Every channel is
// disabled by default; disabled, the log still shows "Sending alert: <subject>".
type Alerts struct {
	// Stream (ALERTS_STREAM) holds alert events and per-channel notifications.
	Stream string
	// SubjectPrefix (ALERTS_SUBJECT_PREFIX): events go to
	// <prefix>.<severity>.<kind>.
	SubjectPrefix string
	// Consumer (ALERT_DISPATCHER_CONSUMER) is the durable consumer all
	// replicas share, so each alert is delivered once.
	Consumer string
	// IncidentsBucket (ALERT_INCIDENTS_BUCKET) keeps open incidents.
	IncidentsBucket string
	// MaxAge (ALERTS_MAX_AGE) is how long an undelivered alert is kept.
	MaxAge time.Duration
	// ServiceDownAfter (SERVICE_DOWN_ALERT_AFTER) escalates a breaker open that long.
	ServiceDownAfter time.Duration
	// SummaryWindow (ALERT_SUMMARY_WINDOW) groups call-failure alerts.
	SummaryWindow time.Duration
	// ReporterTTL (ALERT_REPORTER_TTL) forgets a worker that stopped reporting an
	// open breaker (it died), so its incident can resolve.
	ReporterTTL time.Duration
	// QueueSize (ALERT_QUEUE_SIZE) bounds events waiting to be published.
	QueueSize int
	// Timeout (ALERT_TIMEOUT) bounds one delivery attempt.
	Timeout time.Duration

	EmailEnabled     bool
	EmailMinSeverity string
	SMTPHost         string
	SMTPPort         int
	SMTPUsername     string
	EmailPassword    Secret
	EmailFrom        string
	EmailTo          string

	TelegramEnabled     bool
	TelegramMinSeverity string
	TelegramBotToken    Secret
	TelegramChatID      string
	TelegramAPIURL      string

	WebhookEnabled     bool
	WebhookMinSeverity string
	WebhookURL         string
	WebhookSecret      Secret

	SlackEnabled     bool
	SlackMinSeverity string
	SlackWebhookURL  Secret

	PagerDutyEnabled     bool
	PagerDutyMinSeverity string
	PagerDutyRoutingKey  Secret
	PagerDutyURL         string
	PagerDutySource      string
}

// Severities lists the accepted *_MIN_SEVERITY values, least severe first.
var Severities = []string{"info", "warning", "critical"}

// Metrics is the worker's HTTP endpoint for Prometheus and Kubernetes probes.
type Metrics struct {
	// Addr (METRICS_ADDR) serves /metrics, /healthz, /readyz.
	Addr string
}

// Fleet is where workers publish their breaker states for `publisher status`.
type Fleet struct {
	// Bucket (FLEET_BUCKET) is the KV bucket of breaker reports.
	Bucket string
	// TTL (FLEET_TTL) is how long a dead worker's report lingers;
	// live workers rewrite theirs every TTL/3.
	TTL time.Duration
}

// Sheets is the optional Google Sheets error log (the seed's GOOGLE_SHEETS_ENABLED).
type Sheets struct {
	// Enabled (SHEETS_ENABLED).
	Enabled bool
	// CredentialsFile (SHEETS_CREDENTIALS_FILE) is a service-account JSON key; required
	// when enabled.
	CredentialsFile string
	// SpreadsheetID (SHEETS_SPREADSHEET_ID) is the id in the sheet's URL; required when enabled.
	SpreadsheetID string
	// Range (SHEETS_RANGE) is the table to append to, e.g. Errors!A1.
	Range string
	// BatchSize (SHEETS_BATCH_SIZE) is the rows per request, 1 to 10000.
	BatchSize int
	// FlushInterval (SHEETS_FLUSH_INTERVAL) sends a partial batch after this long.
	FlushInterval time.Duration
	// Buffer (SHEETS_BUFFER) is how many records may wait; more are dropped
	// and counted, never blocking the worker.
	Buffer int
	// Level (SHEETS_LEVEL) is the least severe level sent: warn or error.
	Level string
}

// LLM is the OpenAI-compatible chat completions provider (OpenAI, Groq, Together, vLLM,
// Ollama, OpenRouter), and an optional second one as fallback.
type LLM struct {
	// APIKey (LLM_API_KEY) is sent as a Bearer token; required with real providers.
	APIKey Secret
	// Model (LLM_MODEL).
	Model string
	// BaseURL (LLM_BASE_URL) includes the version path.
	BaseURL string
	// SystemPromptFile (LLM_SYSTEM_PROMPT_FILE) is a Go template
	// over the contact's name, language and variables.
	SystemPromptFile string
	// MaxTokens (LLM_MAX_TOKENS) bounds the script, 1 to 32768.
	MaxTokens int
	// TokenParam (LLM_TOKEN_PARAM) names the request field that carries
	// MaxTokens: auto sends max_completion_tokens to api.openai.com (gpt-5 and the o-series
	// refuse max_tokens) and max_tokens elsewhere (Ollama accepts nothing else).
	TokenParam string
	// FallbackTokenParam (LLM_FALLBACK_TOKEN_PARAM) is TokenParam for the
	// fallback endpoint; it does not inherit, since the fallback is often another kind of
	// server.
	FallbackTokenParam string
	// FallbackBaseURL (LLM_FALLBACK_BASE_URL) is a second
	// OpenAI-compatible endpoint used while the primary's breaker is open.
	FallbackBaseURL string
	// FallbackModel (LLM_FALLBACK_MODEL).
	FallbackModel string
	// FallbackAPIKey (LLM_FALLBACK_API_KEY).
	FallbackAPIKey Secret
}

// ElevenLabs is the text-to-speech provider.
type ElevenLabs struct {
	// APIKey (ELEVENLABS_API_KEY) is sent as xi-api-key; required with real providers.
	APIKey Secret
	// VoiceID (ELEVENLABS_VOICE_ID) is required with real providers.
	VoiceID string
	// ModelID (ELEVENLABS_MODEL_ID).
	ModelID string
	// OutputFormat (ELEVENLABS_OUTPUT_FORMAT).
	OutputFormat string
	// BaseURL (ELEVENLABS_BASE_URL).
	BaseURL string
	// VoiceSettings (ELEVENLABS_VOICE_SETTINGS) is JSON such
	// as {"stability":0.5,"similarity_boost":0.75}.
	VoiceSettings string
}

// TTSFallback is the text-to-speech provider used while ElevenLabs' breaker is open.
type TTSFallback struct {
	// Kind (TTS_FALLBACK) is none, elevenlabs (a second voice, model or key) or
	// openai (an OpenAI-compatible /audio/speech endpoint).
	Kind string
	// ElevenLabsAPIKey (ELEVENLABS_FALLBACK_API_KEY).
	ElevenLabsAPIKey Secret
	// ElevenLabsVoiceID (ELEVENLABS_FALLBACK_VOICE_ID).
	ElevenLabsVoiceID string
	// ElevenLabsModelID (ELEVENLABS_FALLBACK_MODEL_ID).
	ElevenLabsModelID string
	// OpenAIAPIKey (OPENAI_TTS_API_KEY).
	OpenAIAPIKey Secret
	// OpenAIBaseURL (OPENAI_TTS_BASE_URL).
	OpenAIBaseURL string
	// OpenAIModel (OPENAI_TTS_MODEL).
	OpenAIModel string
	// OpenAIVoice (OPENAI_TTS_VOICE).
	OpenAIVoice string
	// OpenAIFormat (OPENAI_TTS_FORMAT): mp3, opus, aac, flac, wav or pcm.
	OpenAIFormat string
}

// CRM receives each completed call.
type CRM struct {
	// WebhookURL (CRM_WEBHOOK_URL) receives a JSON POST per
	// completed call with Idempotency-Key = contact id. Secret: it may hold a token.
	WebhookURL Secret
	// HealthURL (CRM_HEALTH_URL) answers 2xx to GET when healthy.
	HealthURL string
	// Token (CRM_TOKEN) is sent as a Bearer token.
	Token Secret
}

// NATS says how to reach the NATS server, or how to run one in process.
type NATS struct {
	// URL (NATS_URL) is one or more
	// comma-separated server URLs with scheme nats, tls, ws or wss and an
	// explicit host and port. With Embedded it must be a single URL: the
	// embedded server listens there.
	URL string
	// CredsFile (NATS_CREDS) is a NATS
	// credentials file; when set it must exist.
	CredsFile string
	// ConnectTimeout (NATS_CONNECT_TIMEOUT) is how long the process waits
	// for NATS at start, retrying with backoff, before it gives up; 0 means
	// one attempt, failing at once. At least 0.
	ConnectTimeout time.Duration
	// Embedded (EMBEDDED_NATS) runs a JetStream
	// server inside the worker, listening on URL.
	Embedded bool
	// DataDir (DATA_DIR) is where the embedded
	// server stores JetStream data. Must not be empty.
	DataDir string
}

// Topology names the JetStream objects and sets their limits.
type Topology struct {
	// ContactsStream (CONTACTS_STREAM) is the stream that
	// holds queued contacts: no whitespace, '.', '*', '>', '/' or '\'.
	ContactsStream string
	// ContactsSubject (CONTACTS_SUBJECT) is the subject
	// contacts are published on: dot-separated tokens, no wildcards.
	ContactsSubject string
	// Consumer (CONSUMER_NAME) is the durable
	// pull consumer every worker replica shares; same rule as a stream name.
	Consumer string
	// CheckpointBucket (CHECKPOINT_BUCKET) is the KV
	// bucket of per-contact records: the progress of a contact being worked on
	// (claim, paid step results, so a redelivered contact resumes instead of
	// paying again) and, once done, its completed record (never call twice).
	CheckpointBucket string
	// AudioBucket (AUDIO_BUCKET) is the Object Store bucket of
	// synthesized audio, the TTS step's checkpoint.
	AudioBucket string
	// CheckpointTTL (CHECKPOINT_TTL) is how long an unfinished
	// contact's progress and its audio are kept after their last write;
	// completed records are kept. Must be > 0.
	CheckpointTTL time.Duration
	// DeadLetterStream (DEAD_LETTER_STREAM) keeps
	// written-off contacts with their reason; same rule as a stream name.
	DeadLetterStream string
	// DeadLetterSubject (DEAD_LETTER_SUBJECT) is
	// the subject dead letters are published on; no wildcards.
	DeadLetterSubject string
	// DeadLetterMaxAge (DEAD_LETTER_MAX_AGE) is how
	// long a dead letter is kept. Must be > 0.
	DeadLetterMaxAge time.Duration
	// DedupeWindow (DEDUPE_WINDOW) is how long the stream
	// remembers a Nats-Msg-Id to drop duplicate publishes. Must be > 0.
	DedupeWindow time.Duration
	// Replicas (STREAM_REPLICAS) is the stream's replica count,
	// 1 to 5; use 3 in production clusters.
	Replicas int
	// AckWait (ACK_WAIT) is how long the server
	// waits for an ack before redelivering. At least 3s.
	AckWait time.Duration
	// MaxDeliver (MAX_DELIVER) is how many failed
	// deliveries a contact gets before it is dead-lettered. At least 1. The
	// consumer's own limit is three times this (see queue.DeliveryBackstop).
	MaxDeliver int
	// MaxAckPending (MAX_ACK_PENDING) caps the
	// contacts in flight across all replicas; about replicas × concurrency.
	// At least 1.
	MaxAckPending int
}

// Worker tunes one worker process.
type Worker struct {
	// ID (WORKER_ID)
	// names the worker in logs and checkpoints: letters, digits, '.', '_',
	// '-', at most 64 characters.
	ID string
	// Concurrency (WORKER_CONCURRENCY) is how many contacts the
	// process works on at once, 1 to 4096.
	Concurrency int
	// PullBatch (PULL_BATCH) is how many messages one pull asks
	// for, 1 to 256. Keep it small so buffered messages do not expire.
	PullBatch int
	// ShutdownGrace (SHUTDOWN_GRACE) is how long a stopping
	// worker waits for running contacts before abandoning them to
	// redelivery. At least 0.
	ShutdownGrace time.Duration
	// OnBreakerOpen (ON_BREAKER_OPEN) is what happens to a
	// contact whose provider's breaker is open: OnBreakerOpenHold delays it
	// in the queue, OnBreakerOpenDeadLetter dead-letters it (the seed's
	// "skip the contact").
	OnBreakerOpen string
}

// Publisher tunes the publisher.
type Publisher struct {
	// Window (PUBLISH_WINDOW) is the most
	// asynchronous publishes awaiting their ack, 1 to 65536.
	Window int
}

// Retry is the in-process retry policy of one provider call. With the
// defaults a call is tried 3 times, waiting 5s and then 10s.
type Retry struct {
	// InitialDelay (RETRY_INITIAL_DELAY) is the wait before the
	// second attempt. At least 0.
	InitialDelay time.Duration
	// MaxAttempts (RETRY_MAX_ATTEMPTS) counts attempts in all,
	// the first one included. At least 1.
	MaxAttempts int
	// Multiplier (RETRY_MULTIPLIER) multiplies each wait to get
	// the next. At least 1.
	Multiplier float64
	// MaxDelay (RETRY_MAX_DELAY) caps one wait; 0 means no cap.
	MaxDelay time.Duration
	// Jitter (RETRY_JITTER) randomises each wait between 0
	// and its computed value (full jitter).
	Jitter bool
	// RetryAfterCap (RETRY_AFTER_CAP) is the longest provider
	// Retry-After slept in process; a longer one sends the contact back to
	// the queue with that delay. At least 0.
	RetryAfterCap time.Duration
}

// Breaker configures each provider's circuit breaker.
type Breaker struct {
	// FailureThreshold (BREAKER_FAILURE_THRESHOLD) is how many
	// consecutive failed attempts open the breaker. At least 1.
	FailureThreshold int
	// SuccessThreshold (BREAKER_SUCCESS_THRESHOLD) is how many
	// successes in half-open close it again. At least 1.
	SuccessThreshold int
	// OpenTimeout (BREAKER_OPEN_TIMEOUT) is how long the breaker
	// stays open before it lets a probe through. Must be > 0.
	OpenTimeout time.Duration
}

// Health configures the background provider health checks.
type Health struct {
	// Interval (HEALTH_CHECK_INTERVAL) is the time between two
	// checks of one provider. Must be > 0.
	Interval time.Duration
	// Timeout (HEALTH_CHECK_TIMEOUT) bounds one check. Must be
	// > 0 and not more than Interval.
	Timeout time.Duration
	// OpenInterval (HEALTH_CHECK_OPEN_INTERVAL) is the wait between checks while
	// a provider's breaker is open, for the first 10 intervals of the outage; then a tenth of
	// the outage's age (at most the open timeout). A recovery is seen within the longer of
	// one interval and 10% of the outage. Must be > 0.
	OpenInterval time.Duration
}

// Bulkhead caps the concurrent calls per provider within one process.
type Bulkhead struct {
	// LLM (LLM_MAX_CONCURRENCY) is at least 1.
	LLM int
	// TTS (ELEVENLABS_MAX_CONCURRENCY) is at least 1; ElevenLabs
	// plans allow 2 to 15 concurrent requests per account.
	TTS int
	// CRM (CRM_MAX_CONCURRENCY) is at least 1.
	CRM int
}

// Timeouts bound one attempt of a provider call.
type Timeouts struct {
	// LLM (LLM_TIMEOUT) must be > 0.
	LLM time.Duration
	// TTS (ELEVENLABS_TIMEOUT) must be > 0.
	TTS time.Duration
	// CRM (CRM_TIMEOUT) must be > 0.
	CRM time.Duration
}

// Sim selects simulated providers for demos.
type Sim struct {
	// Scenario (SIMULATE) is one of
	// Scenarios: healthy, or tts-503 (ElevenLabs answers 503 for TTSOutage).
	Scenario string
	// Latency (SIM_LATENCY) is each simulated call's duration.
	// At least 0.
	Latency time.Duration
	// TTSOutage (SIM_TTS_OUTAGE) is how long the simulated
	// ElevenLabs answers 503 in the tts-503 scenario. At least 0.
	TTSOutage time.Duration
}

// Log configures logging (see package logging).
type Log struct {
	// File (LOG_FILE) receives JSON lines;
	// empty disables the file.
	File string
	// Level (LOG_LEVEL) is one of LogLevels.
	Level string
	// Format (LOG_FORMAT) is one of LogFormats: what stdout receives, the
	// human lines (LogFormatHuman) or the JSON lines File receives
	// (LogFormatJSON). Independent of File.
	Format string
	// MaxSizeMB (LOG_MAX_SIZE_MB) rotates the file at this size.
	// At least 1.
	MaxSizeMB int
	// MaxBackups (LOG_MAX_BACKUPS) is how many rotated files are
	// kept; 0 keeps all.
	MaxBackups int
	// MaxAgeDays (LOG_MAX_AGE_DAYS) is how many days rotated files
	// are kept; 0 keeps them regardless of age.
	MaxAgeDays int
}

// Values of Worker.OnBreakerOpen.
const (
	// OnBreakerOpenHold delays the contact in the queue until the breaker
	// may let calls through again.
	OnBreakerOpenHold = "hold"
	// OnBreakerOpenDeadLetter dead-letters the contact at once, like the
	// seed's "skip the contact".
	OnBreakerOpenDeadLetter = "deadletter"
)

// Values of Sim.Scenario besides "" (real providers).
const (
	// ScenarioHealthy simulates providers that always succeed.
	ScenarioHealthy = "healthy"
	// ScenarioTTS503 simulates the seed's scenario: ElevenLabs answers 503
	// for Sim.TTSOutage, then recovers.
	ScenarioTTS503 = "tts-503"
)

// Scenarios lists the accepted SIMULATE values besides "". Append to it when
// a simulated scenario is added; validation reads it at load time.
var Scenarios = []string{ScenarioHealthy, ScenarioTTS503}

// BreakerOpenPolicies lists the accepted ON_BREAKER_OPEN values.
var BreakerOpenPolicies = []string{OnBreakerOpenHold, OnBreakerOpenDeadLetter}

// LogLevels lists the accepted LOG_LEVEL values, least severe first.
var LogLevels = []string{"debug", "info", "warn", "error"}

// Values of Log.Format, the same as package logging's.
const (
	// LogFormatHuman writes the bare message on stdout, as the seed prints it.
	LogFormatHuman = "human"
	// LogFormatJSON writes on stdout the JSON lines of LOG_FILE: same fields,
	// same redaction, one object per line.
	LogFormatJSON = "json"
)

// LogFormats lists the accepted LOG_FORMAT values, the default first.
var LogFormats = []string{LogFormatHuman, LogFormatJSON}

// TTS fallback kinds (TTS_FALLBACK).
const (
	TTSFallbackNone       = "none"
	TTSFallbackElevenLabs = "elevenlabs"
	TTSFallbackOpenAI     = "openai"
)

// TTSFallbacks lists the accepted TTS_FALLBACK values.
var TTSFallbacks = []string{TTSFallbackNone, TTSFallbackElevenLabs, TTSFallbackOpenAI}

// SpeechFormats lists the accepted OPENAI_TTS_FORMAT values: the speech client's.
var SpeechFormats = openai.SpeechFormats

// TokenParams are the values of LLM_TOKEN_PARAM: "auto" picks by endpoint; the others force
// the request field.
var TokenParams = func() []string {
	out := make([]string, len(openai.TokenParams))
	for i, p := range openai.TokenParams {
		out[i] = string(p)
	}
	return out
}()
