// Package httpx is the HTTP plumbing the real provider clients share: one tuned transport
// (keep-alives, idle connections sized to the worker's pool, dial/TLS/response-header
// timeouts), a User-Agent naming the project and its version, no redirects (a redirect would
// carry an API key header to another host), response bodies read through a size cap and
// always drained (bounded) and closed, and transport errors stripped of URL paths and queries
// (a webhook URL can hold a token).
//
// It does not interpret responses: each provider client turns what it got into
// fault.Facts, and fault.Classify decides what it means.
package httpx
