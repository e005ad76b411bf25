#!/usr/bin/env bash
# Finds, or installs and starts, the PostgreSQL and NATS (JetStream) that
# orderflow and its tests use on this machine: PostgreSQL on 127.0.0.1:5432
# (user postgres, password postgres) and nats-server with JetStream on
# 127.0.0.1:4222. Also installs prometheus and promtool, which the
# monitoring tests run themselves (nothing is started for them). Safe to run
# any number of times.
set -euo pipefail

PG_PORT=5432
NATS_PORT=4222
export PGCONNECT_TIMEOUT=3

log() { printf '[dev-services] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local port=$1 what=$2
  for _ in $(seq 1 100); do
    port_open "$port" && return 0
    sleep 0.2
  done
  log "$what did not start listening on 127.0.0.1:$port"
  return 1
}

apt_install() {
  log "installing $*"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  if ! port_open "$PG_PORT"; then
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
      apt_install postgresql
    fi
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$version" ]; then
      version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
      as_root pg_createcluster "$version" main >/dev/null
    fi
    log "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_for_port "$PG_PORT" PostgreSQL
  fi
  # Password login as postgres over TCP: a fresh Debian cluster asks for a
  # password nobody has set; give it the development one.
  if ! PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    log "setting the development password of the postgres role"
    as_root su postgres -c "psql -qc \"alter role postgres password 'postgres'\"" >/dev/null
  fi
  PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null
  log "PostgreSQL ready on 127.0.0.1:$PG_PORT"
}

ensure_nats() {
  if ! port_open "$NATS_PORT"; then
    command -v nats-server >/dev/null 2>&1 || apt_install nats-server
    local dir log_file
    if [ "$(id -u)" -eq 0 ]; then
      dir=/var/lib/nats-server log_file=/var/log/nats-server.log
    else
      dir="${XDG_DATA_HOME:-$HOME/.local/share}/orderflow/nats" log_file="$dir/nats-server.log"
    fi
    mkdir -p "$dir"
    log "starting nats-server with JetStream in $dir"
    nohup nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$dir" -l "$log_file" >/dev/null 2>&1 &
    wait_for_port "$NATS_PORT" nats-server
  fi
  log "NATS ready on 127.0.0.1:$NATS_PORT"
}

# The tests start their own Prometheus on a free port; the package's own
# service (on :9090, with the system configuration) is not wanted, so
# policy-rc.d tells the package scripts not to start it while installing.
ensure_prometheus() {
  if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    return 0
  fi
  local policy=/usr/sbin/policy-rc.d
  if [ -e "$policy" ]; then
    apt_install --no-install-recommends prometheus
  else
    printf '#!/bin/sh\n# Installing without starting services (scripts/dev-services.sh).\nexit 101\n' \
      | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    apt_install --no-install-recommends prometheus || { as_root rm -f "$policy"; return 1; }
    as_root rm -f "$policy"
  fi
  # Nor at the next boot, where systemd would start the enabled unit.
  if [ -d /run/systemd/system ]; then
    as_root systemctl disable prometheus >/dev/null 2>&1 || true
  fi
  log "prometheus and promtool installed"
}

ensure_database() {
  local name=$1
  if [ "$(PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d postgres -Atqc \
        "select 1 from pg_database where datname = '$name'")" != 1 ]; then
    PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d postgres -qc "create database $name" >/dev/null
    log "created database $name"
  fi
}

ensure_postgres
ensure_nats
ensure_prometheus
if [ "${1:-}" = "--database" ] && [ -n "${2:-}" ]; then
  ensure_database "$2"
fi
