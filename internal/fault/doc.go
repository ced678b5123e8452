// Package fault is the error taxonomy of the call pipeline: what went wrong with a provider
// (ElevenLabs, the LLM, the CRM) and whether trying again can help.
//
// Providers only report facts — HTTP status, the error code and message from the body, a
// Retry-After, the transport error — and [Classify] turns them into a [*ServiceError] with a
// [Kind]. Classification happens here and nowhere else, so the retry loop, the circuit
// breaker, the outcome table, logs, metrics and dead letters all agree on what an error is.
//
// # Classification
//
// The provider's error code wins over the HTTP status (ElevenLabs reports quota_exceeded as a
// 401 and OpenAI reports insufficient_quota as a 429, and neither may be retried). Codes are
// compared case-insensitively.
//
//	code (ElevenLabs detail.code/status, OpenAI error.code/type) kind              retried
//	quota_exceeded, insufficient_quota, insufficient_credits,
//	payment_required                                           quota_exceeded     no
//	too_many_concurrent_requests, concurrent_limit_exceeded    concurrency_limit  yes (not a provider failure)
//	system_busy, rate_limit_exceeded                           rate_limited       yes
//	max_character_limit_exceeded                               invalid_payload    no
//	voice_not_found, model_not_found, model_decommissioned,
//	unsupported_parameter, unsupported_value,
//	subscription_required, output_format_not_allowed,
//	paid_plan_required, only_for_creator+                      configuration      no (fallback, then hold)
//	missing_permissions; a 401/403 saying "Missing scopes" or
//	"insufficient permissions"                                 permission_denied  no (fallback, then hold;
//	                                                                              healthy on a probe)
//	invalid_api_key, missing_api_key, invalid_authentication,
//	unauthorized                                               authentication     no
//	a 400/422 whose param names a setting (model, model_id,
//	max_tokens, output_format, voice_id, …)                     configuration      no (fallback, then hold)
//
//	status (when the code is absent or unknown)                kind               retried
//	401, 403                                                   authentication     no
//	402                                                        quota_exceeded     no
//	400, 422                                                   invalid_payload    no
//	404, 410                                                   configuration      no
//	408                                                        timeout            yes
//	409 (OpenAI: "retry")                                      service_unavailable yes
//	429                                                        rate_limited       yes
//	498 (Groq: flex capacity exceeded)                         service_unavailable yes
//	5xx                                                        service_unavailable yes
//	other 4xx                                                  invalid_payload    no
//	2xx (the body was unusable)                                bad_response       once
//	1xx, 3xx (unexpected)                                      bad_response       once
//
//	no status, transport error only                            kind               retried
//	context.Canceled                                           (returned unchanged: a cancellation is not a provider error)
//	context.DeadlineExceeded, net.Error with Timeout()         timeout            yes
//	other net.Error, io.EOF, io.ErrUnexpectedEOF, syscall      network            yes
//	anything else, or nothing                                  unknown            no
//
// The provider's explicit word wins over the status: x-should-retry: false makes a transient
// error final, x-should-retry: true makes a status-only permanent error service_unavailable
// (it never overrides a code: a quota or a key needs a human). The wait comes from
// retry-after-ms, Retry-After, or else the reset time of an exhausted x-ratelimit-* limit.
// A provider's request id is carried into the error text for support tickets.
//
// bad_response is transient once: a second unusable body in a row is treated as permanent
// (see [Retryable] and [Final]).
//
// Test tables of provider responses and their expected kind live in package faulttest, so
// every HTTP client checks itself against the same rows.
package fault
