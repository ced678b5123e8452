#!/usr/bin/env bash
# The `make run` demo: a worker with the embedded NATS server, the example contacts enqueued
# with the real publisher, the seed's ElevenLabs-503 flow, then a clean stop and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
env_file=deploy/demo.env
data=$(mktemp -d -t call-agent-demo.XXXXXX)
worker_pid=
cleanup() {
  if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then kill -TERM "$worker_pid"; wait "$worker_pid" || true; fi
  rm -rf "$data"
}
trap cleanup EXIT

echo "== Demo settings: $env_file (data in $data)"
bin/worker --env-file "$env_file" --embedded-nats --data-dir "$data" &
worker_pid=$!

# Wait (bounded) until the worker's embedded server is up and the stream exists.
for _ in $(seq 1 100); do
  bin/publisher --env-file "$env_file" status >/dev/null 2>&1 && break
  kill -0 "$worker_pid" 2>/dev/null || { echo "worker exited early" >&2; exit 1; }
  sleep 0.1
done

echo "== Enqueue deploy/contacts.json"
bin/publisher --env-file "$env_file" enqueue deploy/contacts.json
bin/publisher --env-file "$env_file" wait --timeout 50s >/dev/null
echo "== Queue idle"
bin/publisher --env-file "$env_file" status

echo "== Stopping the worker (SIGINT)"
kill -INT "$worker_pid"
wait "$worker_pid"
worker_pid=
echo "== JSON log: logs/error_recovery.log"
