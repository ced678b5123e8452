// Package alert turns what happens in the worker fleet into the notifications on-call people
// expect: one "ElevenLabs is down" page and one "recovered", not a page per contact or per
// replica, delivered once by every enabled channel, late rather than never.
//
// # Flow
//
//	worker (each replica)                         JetStream                  every replica
//	─────────────────────                         ─────────                  ─────────────
//	BreakerAlerts (resilience.StateListener) ─┐
//	FallbackAlerts (call.FallbackListener) ───┤
//	worker outcome table (FailureEvents) ─────┴─▶ Emitter ─▶ alerts.<severity>.<kind>
//	                                              (bounded queue, never blocks)  │
//	                                                  events consumer (one, shared, MaxAckPending 1)
//	                                                                              ▼
//	                                              Dispatcher: incidents + summary windows
//	                                              in the KV bucket (compare-and-swap)
//	                                                  "Sending alert: <title>" is logged here
//	                                                                              ▼
//	                                              alerts.notify.<severity>.<kind>
//	                                                  one consumer per channel (shared, MaxAckPending 1)
//	                                                                              ▼
//	                                              email · Telegram · webhook · Slack · PagerDuty
//
// Both stages run in every worker on durable consumers shared by all replicas, so each event
// is processed once and each notification delivered once per channel however many replicas
// run. The first stage sees one event at a time for the whole fleet, in stream order, so an
// incident is always opened before it is resolved. Each channel has its own consumer: a
// channel that is down holds back only its own notifications (NakWithDelay keeps the failed
// one pending and first in line), and when it recovers it receives them all, in order.
//
// # Events
//
//	kind                severity  dedup key                 dispatcher
//	breaker_opened      critical  <provider>.down           opens the incident, or repeats it
//	service_down        critical  <provider>.down           escalates the incident once (or opens it)
//	breaker_closed      info      <provider>.down           withdraws the worker's report; the last
//	                                                        one resolves the incident and the
//	                                                        provider's quota/auth/fallback incidents
//	quota_exhausted     critical  <provider>.quota          opens or repeats
//	auth_failed         critical  <provider>.auth           opens or repeats
//	fallback_activated  warning   <provider>.fallback       opens or repeats
//	call_failed         warning   <provider>.call_failed    first of a window sent at once, the rest
//	dead_lettered       warning   <provider>.dead_lettered  summarised when the window ends
//	dead_letter_failed  critical  <provider>.dead_letter_failed  first of a window sent at once, the rest summarised
//
// Events are JSON (see Event) on <prefix>.<severity>.<kind> with Nats-Msg-Id = event id. The
// Emitter redacts their text (registered secrets, credential shapes, phone numbers) and cuts
// it to MaxMessageLen; notifications are built from that text only.
//
// # Incidents
//
// An incident is keyed by provider and condition (incident.<dedup key> in the bucket). It
// records which workers currently report it: the breaker of each replica opens and closes on
// its own, and the incident resolves when the last reporter's breaker closes, so a flapping
// fleet yields one "opened" and one "resolved". While open, repeats are suppressed and
// counted; the resolved notification gives the duration, the count and the suppressed
// repeats. A worker that dies with its breaker open stops refreshing its report (a breaker
// that stays open re-opens after each failed probe, which refreshes it); after the reporter
// TTL its report is dropped. Notifications have ids derived from the causing event, and each
// record remembers the last event applied, so a redelivered event publishes the same id
// again and the stream's dedupe window drops it.
//
// # Channels
//
// A channel is a Notifier — one method, Notify(ctx, n) (retry bool, err error), like
// Alertmanager's — with a name and a minimum severity. Each delivery runs through the
// resilience package: retry-go backoff in process (DefaultChannelRetry) inside a circuit
// breaker per channel. HTTP channels share one status table (CheckHTTP) and one test table
// (package alerttest). Subpackages: email (SMTP with mandatory STARTTLS, go-mail), telegram
// (sendMessage, HTML), webhook (Standard Webhooks signature), slack (incoming webhook),
// pagerduty (Events API v2); package channels builds the enabled ones from settings.
package alert
