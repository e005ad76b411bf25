#!/usr/bin/env bash
# The long fault-injection storm: the whole stack over a private PostgreSQL
# and nats-server (never the shared ones), with every service's links to
# them through switchable TCP proxies. For ORDERFLOW_FAULTS_SECONDS (default
# 180) orders flow while the processor, the notifier, ingress-api,
# nats-server and PostgreSQL are killed with SIGKILL and restarted, and links
# are delayed, stalled and dropped; then everything is healed, drained and
# checked, and the table of faults and orders is printed. Fails when an
# accepted order is lost or decided twice, or any invariant breaks.
#   scripts/faults.sh                          # the long storm
#   ORDERFLOW_FAULTS_SECONDS=600 scripts/faults.sh
#   ORDERFLOW_FAULTS_ONLY=stall scripts/faults.sh   # only the faults matching
set -euo pipefail
cd "$(dirname "$0")/.."

export ORDERFLOW_FAULTS_SECONDS="${ORDERFLOW_FAULTS_SECONDS:-180}"

# The nextest profile `faults` (.config/nextest.toml) allows 30 minutes.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --profile faults -p fault-tests --test storm \
    --run-ignored ignored-only --no-capture a_long_storm "$@"
else
  cargo test -p fault-tests --test storm -- --ignored --nocapture a_long_storm "$@"
fi
