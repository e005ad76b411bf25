#!/usr/bin/env bash
# Finds, or installs from Debian's packages, the headless browser the web
# console's tests drive: Chromium (`chromium`) and its WebDriver server
# (`chromium-driver`). ORDERFLOW_CHROMIUM and ORDERFLOW_CHROMEDRIVER name
# other executables, which are then only checked.
set -euo pipefail

log() { printf '[browser-deps] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

chromium=${ORDERFLOW_CHROMIUM:-/usr/bin/chromium}
chromedriver=${ORDERFLOW_CHROMEDRIVER:-/usr/bin/chromedriver}

if [ -x "$chromium" ] && [ -x "$chromedriver" ]; then
  exit 0
fi
if [ -n "${ORDERFLOW_CHROMIUM:-}${ORDERFLOW_CHROMEDRIVER:-}" ]; then
  log "ORDERFLOW_CHROMIUM=$chromium or ORDERFLOW_CHROMEDRIVER=$chromedriver is not executable"
  exit 1
fi
log "installing chromium and chromium-driver"
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  chromium chromium-driver >/dev/null
log "$("$chromium" --version 2>/dev/null || echo chromium) and $("$chromedriver" --version | cut -d' ' -f1-2) installed"
