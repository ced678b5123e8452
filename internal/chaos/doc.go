// Package chaos is the project's chaos suite: it runs the worker as the operator does (real
// processes: a nats-server, several workers in real-provider mode, the publisher) against
// loopback fake providers, breaks things (SIGKILLed workers, a SIGKILLed server, provider
// outages, poison messages, hostile provider answers) and then checks, from JetStream and
// from what the providers saw, that every contact left the queue exactly once, as a completed
// call or a dead letter, without paying a provider twice for the same work beyond what
// at-least-once delivery makes unavoidable.
//
// Why real processes: an in-process worker cannot be SIGKILLed, shares the test's memory (so
// its peak RSS cannot be measured) and recovers from a server restart through code paths an
// embedded server never exercises. The suite therefore builds nats-server (pinned as a tool
// in go.mod), the worker and the publisher once per test binary and starts them as children
// in their own process groups, each stopped by its pid when its test ends.
//
// Why a proxy in front of the fakes: the fakes of internal/provider/providertest check every
// request against the real API's contract, but they cannot say which contact a request was
// for, whether a request was still unanswered when a worker died, or add latency. Each worker
// gets its own proxies (one per provider), so a request in flight is known by the worker that
// made it; the proxies also inject latency, outages and hostile answers.
//
// Each scenario is one test with a size: the default is small enough for `make test` (CI);
// CHAOS=full runs the sizes of the issue (`make chaos`). Every scenario ends with a table
// (logged, and written to CHAOS_REPORT_DIR when set) and fails when a contact was lost,
// completed twice, stuck, or paid for again beyond the calls in flight at a kill (of a worker or of the server),
// or when a secret or a phone number shows up in a log line, console output, alert or
// dead-letter header.
package chaos
