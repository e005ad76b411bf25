#!/usr/bin/env bash
# Whether the services hold their memory under sustained load: drives the
# running stack (scripts/start-stack.sh) open loop with loadgen for a while and
# prints the resident memory (RSS) of ingress-api, order-processor and
# notifier at the start, every minute, and at the end.
#
#   scripts/soak.sh [--rate R] [--duration SECONDS] [-- extra loadgen run args]
#
# Defaults: 3000 orders/s for 600 s over 1,000 zipf-distributed products.
# loadgen's own report (and its invariant checks) follows the table.
set -euo pipefail
cd "$(dirname "$0")/.."

rate=3000
duration=600
while [ $# -gt 0 ]; do
  case $1 in
    --rate) rate=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown option $1 (loadgen's arguments go after --)" >&2; exit 2 ;;
  esac
done
[ -x target/release/loadgen ] || cargo build --release --locked -p loadgen
services=(ingress-api order-processor notifier)
for service in "${services[@]}"; do
  kill -0 "$(cat ".run/$service.pid" 2>/dev/null)" 2>/dev/null ||
    { echo "$service is not running; start the stack with scripts/start-stack.sh" >&2; exit 1; }
done

# loadgen is a few customers from one address: a running ingress-api with a
# per-client rate limit would refuse most of its orders.
ingress_env() {
  { tr '\0' '\n' <"/proc/$(cat .run/ingress-api.pid)/environ"; } 2>/dev/null |
    sed -n "s/^$1=//p" || true
}
rate_limit=$(ingress_env ORDERFLOW_RATE_LIMIT_PER_CLIENT)
if [ "${rate_limit:-unset}" != 0 ]; then
  echo "ingress-api runs with ORDERFLOW_RATE_LIMIT_PER_CLIENT=${rate_limit:-unset (50)};" \
    "restart it with 0 (scripts/start-stack.sh does unless told otherwise)" >&2
  exit 1
fi
# loadgen logs its customers in once, before the run.
ttl=$(ingress_env ORDERFLOW_JWT_TTL_SECONDS)
if [ "$duration" -gt $(( ${ttl:-900} - 60 )) ]; then
  echo "a run of $duration s outlives ingress-api's tokens (ORDERFLOW_JWT_TTL_SECONDS=${ttl:-900});" \
    "restart the stack with a longer ORDERFLOW_JWT_TTL_SECONDS" >&2
  exit 1
fi

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$(cat ".run/$1.pid")/status"; }
row() {
  printf "%-10s" "$1"
  for service in "${services[@]}"; do printf " %16s" "$(rss_mib "$service") MiB"; done
  printf "\n"
}

out=$(mktemp -d)
# Stock for the whole run, so orders keep being confirmed (and written) to the end.
target/release/loadgen run --shape zipf --products 1000 --stock 10000000 --rate "$rate" \
  --duration "$duration" "$@" >"$out/loadgen.txt" 2>&1 &
loadgen_pid=$!

printf "%-10s" "elapsed"; for service in "${services[@]}"; do printf " %16s" "$service"; done; printf "\n"
row "0 s"
started=$SECONDS
next=60
while kill -0 "$loadgen_pid" 2>/dev/null; do
  sleep 1
  elapsed=$((SECONDS - started))
  if [ "$elapsed" -ge "$next" ] && [ "$elapsed" -le "$duration" ]; then row "$elapsed s"; next=$((next + 60)); fi
done
status=0
wait "$loadgen_pid" || status=$?
row "end"
echo
cat "$out/loadgen.txt"
rm -rf "$out"
exit "$status"
