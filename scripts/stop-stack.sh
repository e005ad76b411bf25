#!/usr/bin/env bash
# Stops the services scripts/start-stack.sh started (SIGTERM, so each finishes
# the work in hand), and its Prometheus. PostgreSQL and NATS are left running.
set -uo pipefail
cd "$(dirname "$0")/.."
quiet=${1:-}
for name in ingress-api order-processor notifier prometheus; do
  pid_file=".run/$name.pid"
  [ -f "$pid_file" ] || continue
  pid=$(cat "$pid_file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    [ "$quiet" = --quiet ] || echo "stopped $name"
  fi
  rm -f "$pid_file"
done
