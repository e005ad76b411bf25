#!/usr/bin/env bash
# Runs orderflow's whole test suite against a real PostgreSQL and a real NATS
# JetStream, which it finds or starts first (scripts/dev-services.sh), and a
# real headless Chromium (scripts/browser-deps.sh). Each
# test makes its own database and its own streams, so tests run in parallel.
# Extra arguments go to the test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/dev-services.sh
# Chromium and chromedriver for the web console's browser tests.
scripts/browser-deps.sh

export ORDERFLOW_TEST_DATABASE_URL="${ORDERFLOW_TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
export ORDERFLOW_TEST_NATS_URL="${ORDERFLOW_TEST_NATS_URL:-nats://127.0.0.1:4222}"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked "$@"
else
  cargo test --workspace --locked "$@"
fi
