// Package resilience keeps the call pipeline going while providers fail: a per-provider
// Guard (circuit breaker + bulkhead) around every attempt, a Retrier around the attempts of
// one step, and a HealthChecker that probes each provider in the background.
//
// # Shape
//
//	Retrier.Run(ctx, log, guard, op)          retry-go: attempts, backoff, Retry-After
//	  └─ Guard.Do(ctx, op)                    one attempt
//	       ├─ breaker admission               mercari/go-circuitbreaker; fails fast with *OpenError
//	       ├─ bulkhead slot                   at most the adaptive window (≤ MaxConcurrency) in flight;
//	       │                                  refused at once when the breaker opens meanwhile
//	       └─ op(ctx)                         the provider call
//
// Retry is outside the breaker, so every attempt counts: with the defaults, a 503 three times
// in a row opens the breaker on the third attempt ("Circuit breaker OPENED for ElevenLabs")
// and then the retry loop ends ("Max retry attempts (3) reached for ElevenLabs"), in the
// seed's order. An open breaker ends every retry loop at once.
//
// # Retry schedule
//
// Defaults follow the seed's code: 3 attempts in all, waiting 5 s after the first failure and
// 10 s after the second (InitialDelay × Multiplier^(n-1), capped by MaxDelay; a fourth
// attempt would wait 20 s). With Jitter, each wait is drawn uniformly from [0, wait] (full
// jitter), after the MaxDelay cap, so saturated retries do not synchronise. A provider
// Retry-After longer than the wait replaces it, up to RetryAfterCap (30 s); beyond the cap
// Run returns a *DeferError at once so the contact goes back to the queue for that long
// instead of holding a worker. Only transient kinds are retried (fault.Retryable); a
// bad_response is retried once. Waits run on the injected clock and end at once when ctx is
// cancelled.
//
// # Breaker
//
// FailureThreshold (3) consecutive counted failures open the breaker for OpenTimeout (30 s);
// it then goes HALF_OPEN and admits exactly one call at a time (mercari admits everyone; the
// Guard gates it); SuccessThreshold (2) successes close it, one failure re-opens it. While a
// HealthChecker runs for the guard, the half-open probe is reserved for it, so no real
// contact is the guinea pig. Not counted as failures: invalid_payload (the contact's fault),
// concurrency_limit (our concurrency, not the provider's health), errors after the caller's
// ctx ended, and errors that are not *fault.ServiceError (cancellations, bugs). Counted:
// every other kind, including authentication and quota.
//
// # Adaptive concurrency
//
// The bulkhead's window runs a slow start: a new Guard, and a Guard whose breaker has just
// closed, let FailureThreshold calls through (as many as it takes to open the breaker); each
// success doubles the window up to MaxConcurrency (the ceiling, which an ElevenLabs plan
// limit or a concurrency_limit refusal may lower), and each counted failure drops it to one.
// So a provider that is down when the worker starts sees FailureThreshold calls before the
// breaker opens, instead of one call per contact in flight; one that fails under load sees
// the calls already in flight, and no more. Calls waiting for a slot when the breaker opens wake at once with *OpenError, and a
// call granted a slot checks the breaker again before calling. Sporadic failures cost little:
// the calls still in flight double the window back as they succeed.
//
// # Health probes while open
//
// A HealthChecker probes an open breaker's provider half an interval to an interval after
// the opening, then every HEALTH_CHECK_OPEN_INTERVAL (1 s) for the first ten intervals of the
// outage, then every tenth of the outage's age, at most the open timeout: a recovery is seen
// within max(1 s, 10% of the outage), for 10 probes in a 10 s outage and about 155 in an hour.
// Its probe success resets the breaker; the half-open probe is its next scheduled one.
//
// # mercari/go-circuitbreaker v0.0.2 traps handled here
//
//   - Counters reset every second by default: the reset interval is disabled.
//   - HALF_OPEN admits every caller: the Guard admits one probe at a time.
//   - Done recognises Ignore only unwrapped: Ignore is applied last, directly.
//   - Done sniffs ctx: the Guard decides what counts itself and passes the attempt's ctx.
//   - WithOpenTimeout replaces a back-off and a back-off returning Stop makes Reset panic:
//     only a positive OpenTimeout is ever passed.
//   - The state hook runs under the breaker's lock and can repeat a state: transitions are
//     de-duplicated, logged once, and delivered to the StateListener from another goroutine.
//
// # retry-go v4 traps handled here
//
//   - A custom RetryIf replaces the Unrecoverable check: it is kept (IsRecoverable &&).
//   - OnRetry fires after the last attempt too: "Retrying" is only logged when one follows.
//   - MaxDelay caps after jitter and MaxJitter(0) panics: neither is used; the DelayType
//     computes the whole wait.
//   - Attempts(0) means forever: MaxAttempts is at least 1.
//   - The retried function gets no context: it captures the caller's.
package resilience
