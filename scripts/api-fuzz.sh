#!/usr/bin/env bash
# API fuzzing: schemathesis against a private ingress-api, generating requests
# from the OpenAPI document the service serves at /openapi.json and checking
# every answer: no 5xx, and status code, content type and body as the
# document declares them. Authenticated as an admin, so every route is
# exercised past its token check.
#
# The ingress-api runs on a free port against a fresh database (created on the
# PostgreSQL of scripts/dev-services.sh and dropped at exit) and a private
# nats-server with its own store, so nothing is shared with a running stack
# or other tests. schemathesis lives in a virtualenv under target/, made on
# the first run and reused after.
#
#   scripts/api-fuzz.sh                       # 25 examples per operation
#   API_FUZZ_EXAMPLES=200 scripts/api-fuzz.sh # longer
#
# Environment:
#   API_FUZZ_EXAMPLES        examples per operation (default 25)
#   API_FUZZ_PHASES          schemathesis phases (default: all of them)
#   API_FUZZ_SEED            a seed, to repeat a run
#   INGRESS_API_BIN          the ingress-api executable (default: built here
#                            with cargo in the dev profile)
#   API_FUZZ_ADMIN_DATABASE_URL  where to create the database (default
#                            postgres://postgres:postgres@127.0.0.1:5432/postgres)
#   NATS_SERVER              the nats-server executable (default: on PATH,
#                            else /usr/sbin/nats-server)
# Exits non-zero when schemathesis reports any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

EXAMPLES=${API_FUZZ_EXAMPLES:-25}
ADMIN_DATABASE_URL=${API_FUZZ_ADMIN_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
SCHEMATHESIS_VERSION=4.32.5
VENV=target/api-fuzz-venv
ADMIN_EMAIL=fuzz-admin@example.com
ADMIN_PASSWORD=fuzz-admin-password

log() { printf '[api-fuzz] %s\n' "$*" >&2; }

command -v python3 >/dev/null || { log "python3 is needed"; exit 1; }
command -v curl >/dev/null || { log "curl is needed"; exit 1; }
command -v psql >/dev/null || { log "psql is needed"; exit 1; }
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
[ -x "$NATS_SERVER" ] || { log "nats-server is needed (scripts/dev-services.sh installs it)"; exit 1; }

if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [ -z "${INGRESS_API_BIN:-}" ]; then
  cargo build --locked --quiet --bin ingress-api -p ingress-api
  INGRESS_API_BIN=target/debug/ingress-api
fi

work=$(mktemp -d)
database="orderflow_api_fuzz_$(date +%s)_$$"
database_created=
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$database_created" ]; then
    psql "$ADMIN_DATABASE_URL" -qc "drop database if exists $database with (force)" >/dev/null 2>&1 || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$work/ingress-api.log" ]; then
    log "the last lines of ingress-api's log:"
    tail -n 30 "$work/ingress-api.log" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until `url` answers 2xx with `want` in its body, while `pid` lives.
wait_for() {
  local url=$1 want=$2 pid=$3 what=$4
  for _ in $(seq 1 300); do
    if body=$(curl -fsS "$url" 2>/dev/null) && [[ "$body" == *"$want"* ]]; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { log "$what exited"; return 1; }
    sleep 0.1
  done
  log "$what did not become ready at $url"
  return 1
}

nats_port=$(free_port)
nats_monitor_port=$(free_port)
"$NATS_SERVER" -js -a 127.0.0.1 -p "$nats_port" -m "$nats_monitor_port" -sd "$work/nats" \
  >"$work/nats.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$nats_monitor_port/healthz" ok "$!" nats-server

psql "$ADMIN_DATABASE_URL" -qc "create database $database" >/dev/null
database_created=yes

http_port=$(free_port)
base="http://127.0.0.1:$http_port"
env DATABASE_URL="${ADMIN_DATABASE_URL%/*}/$database" \
  NATS_URL="nats://127.0.0.1:$nats_port" \
  ORDERFLOW_NAMESPACE=apifuzz \
  ORDERFLOW_HTTP_ADDR="127.0.0.1:$http_port" \
  ORDERFLOW_ADMIN_EMAIL="$ADMIN_EMAIL" \
  ORDERFLOW_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
  ORDERFLOW_RATE_LIMIT_PER_CLIENT=0 \
  ORDERFLOW_PARTITIONS=2 \
  ORDERFLOW_LOG_FORMAT=json \
  RUST_LOG="${RUST_LOG:-warn}" \
  "$INGRESS_API_BIN" >"$work/ingress-api.log" 2>&1 &
pids+=($!)
wait_for "$base/readyz" '"database":"up"' "$!" ingress-api

token=$(curl -fsS -X POST "$base/auth/login" -H 'content-type: application/json' \
  -d "{\"email\": \"$ADMIN_EMAIL\", \"password\": \"$ADMIN_PASSWORD\"}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')

args=(
  run "$base/openapi.json"
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
  --header "Authorization: Bearer $token"
  --max-examples "$EXAMPLES"
  # An event stream never ends; a request of it would only time out.
  --exclude-path /events/stream
  --request-timeout 20
  --workers 1
)
[ -n "${API_FUZZ_PHASES:-}" ] && args+=(--phases "$API_FUZZ_PHASES")
[ -n "${API_FUZZ_SEED:-}" ] && args+=(--seed "$API_FUZZ_SEED")

log "schemathesis $SCHEMATHESIS_VERSION against $base, $EXAMPLES examples per operation"
"$VENV/bin/st" "${args[@]}"
