#!/usr/bin/env bash
# The S3 tools the backup tests need, in a virtualenv under target/: moto (an
# S3-compatible server run on loopback) and the AWS CLI that
# deploy/backup/pg-backup.sh and pg-restore.sh call. Made on the first run
# (pip needs PyPI) and reused after: a second run only checks the versions.
# Prints the virtualenv's bin directory, to put first on the PATH.
#
#   scripts/s3-test-tools.sh          # => /…/target/s3-test-venv/bin
#
# Test processes running in parallel share one virtualenv; a lock makes the
# first build it and the others wait for it.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
AWSCLI_VERSION=1.46.3
VENV=target/s3-test-venv

log() { printf '[s3-test-tools] %s\n' "$*" >&2; }

installed() {
  "$VENV/bin/python" - "$MOTO_VERSION" "$AWSCLI_VERSION" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
sys.exit(0 if (version("moto"), version("awscli")) == (sys.argv[1], sys.argv[2]) else 1)
PY
}

if ! installed; then
  command -v python3 >/dev/null || { log "python3 (with venv) is needed"; exit 1; }
  mkdir -p target
  exec 9>target/s3-test-venv.lock
  flock 9
  if ! installed; then
    log "installing moto $MOTO_VERSION and awscli $AWSCLI_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      "moto[server]==$MOTO_VERSION" "awscli==$AWSCLI_VERSION"
  fi
fi
if [ ! -x "$VENV/bin/moto_server" ] || [ ! -x "$VENV/bin/aws" ]; then
  log "$VENV is incomplete; delete it and run this again"
  exit 1
fi
printf '%s\n' "$PWD/$VENV/bin"
