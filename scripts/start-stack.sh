#!/usr/bin/env bash
# Starts the whole stack on this machine: PostgreSQL and NATS (found, or
# installed and started), then ingress-api, order-processor and notifier built
# in release mode and run in the background. Logs and pid files go to .run/.
# Prometheus, when installed, scrapes the three services with the alert rules
# of deploy/prometheus on 127.0.0.1:9090. Stop it all with
# scripts/stop-stack.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/dev-services.sh --database orderflow

export DATABASE_URL="${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/orderflow}"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
export ORDERFLOW_HTTP_ADDR="${ORDERFLOW_HTTP_ADDR:-127.0.0.1:8080}"
export ORDERFLOW_ADMIN_EMAIL="${ORDERFLOW_ADMIN_EMAIL:-admin@example.com}"
export ORDERFLOW_ADMIN_PASSWORD="${ORDERFLOW_ADMIN_PASSWORD:-change-me-now}"
export ORDERFLOW_LOG_FORMAT="${ORDERFLOW_LOG_FORMAT:-pretty}"
# This is the local benchmark stack: loadgen (scripts/benchmarks.sh, soak.sh,
# profile-stack.sh) sends thousands of requests a second as a few customers
# from one address, which the per-client rate limit would refuse. Set the
# variable to try the limit.
export ORDERFLOW_RATE_LIMIT_PER_CLIENT="${ORDERFLOW_RATE_LIMIT_PER_CLIENT:-0}"
export RUST_LOG="${RUST_LOG:-info}"

command -v cargo >/dev/null || { echo "cargo is needed: install Rust from rustup" >&2; exit 1; }
cargo build --release --locked --bins -p ingress-api -p order-processor -p notifier

mkdir -p .run
scripts/stop-stack.sh --quiet || true

# A port taken by something else would make a service exit while the
# readiness checks below answered from the other process.
port_in_use() { local addr=$1; (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; }
for addr in "$ORDERFLOW_HTTP_ADDR" "${PROCESSOR_METRICS_ADDR:-127.0.0.1:9091}" \
  "${NOTIFIER_METRICS_ADDR:-127.0.0.1:9092}"; do
  if port_in_use "$addr"; then
    echo "$addr is already in use (another orderflow stack?); stop it or choose other addresses" >&2
    exit 1
  fi
done

start() {
  local name=$1; shift
  env "$@" "target/release/$name" >".run/$name.log" 2>&1 &
  echo $! >".run/$name.pid"
}
start ingress-api
start order-processor ORDERFLOW_METRICS_ADDR="${PROCESSOR_METRICS_ADDR:-127.0.0.1:9091}"
start notifier ORDERFLOW_METRICS_ADDR="${NOTIFIER_METRICS_ADDR:-127.0.0.1:9092}"

# Waits until `url` answers 2xx and, when given, its body contains `want`.
wait_for() {
  local url=$1 name=$2 want=${3:-}
  for _ in $(seq 1 150); do
    if body=$(curl -fsS "$url" 2>/dev/null) && [[ "$body" == *"$want"* ]]; then return 0; fi
    if ! kill -0 "$(cat ".run/$name.pid")" 2>/dev/null; then
      echo "$name exited; see .run/$name.log:" >&2
      tail -n 20 ".run/$name.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "$name did not become ready at $url; see .run/$name.log" >&2
  exit 1
}
# Ready once the broker is connected and the database migrated, with the admin in place.
wait_for "http://$ORDERFLOW_HTTP_ADDR/readyz" ingress-api '"database":"up"'
wait_for "http://${PROCESSOR_METRICS_ADDR:-127.0.0.1:9091}/healthz" order-processor
wait_for "http://${NOTIFIER_METRICS_ADDR:-127.0.0.1:9092}/healthz" notifier

# Prometheus with the same jobs and alert rules as the compose stack's
# (deploy/prometheus/prometheus.yml), pointed at the loopback addresses.
PROMETHEUS_ADDR="${PROMETHEUS_ADDR:-127.0.0.1:9090}"
prometheus_line="  prometheus   not installed (scripts/dev-services.sh installs it)"
if command -v prometheus >/dev/null 2>&1 && port_in_use "$PROMETHEUS_ADDR"; then
  prometheus_line="  prometheus   not started: $PROMETHEUS_ADDR is in use"
elif command -v prometheus >/dev/null 2>&1; then
  mkdir -p .run/prometheus
  cat >.run/prometheus/prometheus.yml <<YAML
global:
  scrape_interval: 15s
  evaluation_interval: 15s
rule_files:
  - $PWD/deploy/prometheus/alerts.yml
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ["$PROMETHEUS_ADDR"]}]
  - job_name: ingress-api
    static_configs: [{targets: ["$ORDERFLOW_HTTP_ADDR"]}]
  - job_name: order-processor
    static_configs: [{targets: ["${PROCESSOR_METRICS_ADDR:-127.0.0.1:9091}"]}]
  - job_name: notifier
    static_configs: [{targets: ["${NOTIFIER_METRICS_ADDR:-127.0.0.1:9092}"]}]
YAML
  prometheus --config.file=.run/prometheus/prometheus.yml \
    --storage.tsdb.path=.run/prometheus/data \
    --web.listen-address="$PROMETHEUS_ADDR" >.run/prometheus.log 2>&1 &
  echo $! >.run/prometheus.pid
  wait_for "http://$PROMETHEUS_ADDR/-/ready" prometheus
  prometheus_line="  prometheus   http://$PROMETHEUS_ADDR  (alerts at /alerts)"
fi

cat <<MSG
orderflow is running:
  API          http://$ORDERFLOW_HTTP_ADDR  (OpenAPI at /openapi.json)
  admin        $ORDERFLOW_ADMIN_EMAIL / (ORDERFLOW_ADMIN_PASSWORD)
  metrics      http://$ORDERFLOW_HTTP_ADDR/metrics, http://${PROCESSOR_METRICS_ADDR:-127.0.0.1:9091}/metrics, http://${NOTIFIER_METRICS_ADDR:-127.0.0.1:9092}/metrics
$prometheus_line
  logs         .run/*.log
  stop with    scripts/stop-stack.sh
MSG
