// Package httpx is the HTTP plumbing the real provider clients share: one tuned transport
// (keep-alives, idle connections sized to the worker's pool, dial/TLS/response-header
// timeouts), a User-Agent naming the project and its version, no redirects (a redirect would
// carry an API key header to another host), response bodies read through a size cap and
// closed (drained when what is left is short, so the connection is reused), and transport
// errors stripped of URL paths and queries (a webhook URL can hold a token).
//
// Memory is bounded per call and per process. A body declaring a Content-Length over its cap
// is refused unread; one within it is read into one allocation of that size; one of unknown
// length is read in chunks that never add up to more than the cap, and stops one byte past
// it. The 2xx bytes being read by all calls of a Client are held to Options.MaxInFlightBytes
// (a weighted semaphore): a call that finds no room fails with a *BudgetError, which Failure
// classifies as service_unavailable — our limit, not the provider's fault — so it is retried
// with backoff. With the defaults (16 MiB audio cap, 48 MiB budget), ten calls at a time
// answered with 100 MB bodies raise a process's peak RSS by about 55 MiB, garbage collector
// slack included (issue #11 asks for at most 64 MiB). A body within its cap belongs to the
// caller once Do returns and is no longer counted: what the callers keep is bounded by their
// concurrency times their caps (set GOMEMLIMIT to bound the collector's slack on top).
//
// It does not interpret responses: each provider client turns what it got into
// fault.Facts, and fault.Classify decides what it means.
package httpx
