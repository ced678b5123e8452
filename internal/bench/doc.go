// Package bench is the end-to-end benchmark of issue 12: one nats-server process, loopback
// fake providers, and on the same data in the same run both the project's worker
// (daemon.Run with its real OpenAI and ElevenLabs clients) and a bare nats.go JetStream
// consumer that makes the same two HTTP calls and acks, with no retry, breaker or
// checkpoint. For each scenario it prints contacts/s, CPU per contact of the consumer and of
// the nats-server, JetStream API requests and client messages per contact, allocations per
// contact, and the worker's ratio to the bare consumer; then the targets, met or not.
//
// Run it with `make bench` (full size) or, quicker,
//
//	BENCH_E2E=1 BENCH_SCALE=0.1 go test -run '^$' -bench EndToEnd -benchtime 1x ./internal/bench/
//
// Settings (environment):
//
//	BENCH_E2E=1          required; without it BenchmarkEndToEnd skips (so `go test -bench .`
//	                     stays a micro-benchmark run)
//	BENCH_SCALE=0.1      multiplies the contact counts (default 1: 20,000 / 5,000 / 5,000)
//	BENCH_ROUNDS=3       runs each scenario that many times (alternating which consumer
//	                     goes first) and reports medians (default 1)
//	BENCH_SCENARIOS=a,c  runs only these scenarios (default a,b,c)
//	BENCH_CONSUMERS=worker  runs only the worker or only bare (for profiling; no ratio)
//	BENCH_SYNC=always    nats-server fsync: "default" (the server's own 2-minute interval,
//	                     the default here: the figures are then CPU, not the disk's fsync
//	                     latency) or "always" (deploy/nats.conf's sync_interval)
//	BENCH_LOG_FILE=0     the worker writes no JSON log file (by default it writes LOG_FILE, as
//	                     the project's defaults do, in a temp dir)
//	BENCH_BREAKDOWN=1    also counts what each consumer sends to the server, by kind (pull,
//	                     ack, KV write, Object Store chunk, …), with a subscriber on ">";
//	                     that doubles the server's fan-out, so use it for the counts only
//	BENCH_RUN_TIMEOUT=5m bound on one consumer's drain (default 5m)
//	NATS_SERVER_BIN=path a nats-server binary to use instead of building the pinned one
//
// Measurement. The fake providers run in a child process (this test binary re-executed), so
// the benchmark process holds only the consumer under test, its nats.go connection and a
// drain poller that reads the server's HTTP monitor (no NATS traffic). CPU is this process's
// getrusage and the server's utime+stime from /proc; allocations are runtime.MemStats deltas;
// JetStream API requests are the server's /jsz api.total delta and client messages its /varz
// in_msgs delta (every publish, KV or Object Store write, ack, nak and pull request). Each
// window opens when the consumer starts consuming (all contacts already enqueued) and closes
// when the contacts stream is empty; the poller's small share is the same for both consumers.
package bench
