#!/usr/bin/env bash
# CPU time per decided order, by component, in the steady middle of a
# loadgen run against the running stack (scripts/start-stack.sh): reads each
# process's user and system time from /proc and the processor's decided-orders
# counter a few seconds after the run starts and again a few seconds before it
# ends, and divides. Unlike a rate, the CPU an order costs moves little when
# other work shares the machine, so it is the figure to compare two builds by.
#
#   scripts/cpu-per-order.sh [--seconds N] [--warmup N] -- <loadgen run args, without --duration>
#
# Example:
#   scripts/cpu-per-order.sh -- run --shape zipf --products 1000 --connections 64 --stock 1000
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=8
warmup=6
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown option $1 (loadgen's arguments go after --)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--seconds N] [--warmup N] -- <loadgen run args>" >&2; exit 2; }
[ -x target/release/loadgen ] || cargo build --release --locked -p loadgen
for service in ingress-api order-processor notifier; do
  kill -0 "$(cat ".run/$service.pid" 2>/dev/null)" 2>/dev/null ||
    { echo "$service is not running; start the stack with scripts/start-stack.sh" >&2; exit 1; }
done
metrics="http://${PROCESSOR_METRICS_ADDR:-127.0.0.1:9091}/metrics"

# Clock ticks (user + system) of the given processes, summed.
ticks() {
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] && total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
  done
  echo "$total"
}
decided() { curl -fsS "$metrics" | awk '/^orderflow_orders_decided_total/ { s += $2 } END { print s + 0 }'; }
# shellcheck disable=SC2046 # one pid per word
snapshot() {
  echo "$(decided) $(ticks "$(cat .run/ingress-api.pid)") $(ticks "$(cat .run/order-processor.pid)")" \
    "$(ticks "$(cat .run/notifier.pid)") $(ticks $(pgrep -x nats-server)) $(ticks $(pgrep -x postgres))" \
    "$(ticks $(pgrep -x loadgen))"
}

report=$(mktemp)
trap 'rm -f "$report"' EXIT
target/release/loadgen "$@" --duration $((warmup + seconds + 4)) >"$report" 2>&1 &
loadgen=$!
sleep "$warmup"
before=$(snapshot)
sleep "$seconds"
after=$(snapshot)
wait "$loadgen" || { cat "$report" >&2; exit 1; }
grep -E "decided/s|invariants" "$report"
hz=$(getconf CLK_TCK)
awk -v before="$before" -v after="$after" -v hz="$hz" -v seconds="$seconds" 'BEGIN {
  split(before, b); split(after, a)
  n = a[1] - b[1]
  if (n <= 0) { print "no order was decided in the window" > "/dev/stderr"; exit 1 }
  split("ingress-api order-processor notifier nats-server postgres loadgen", names, " ")
  total = 0
  for (i = 1; i <= 6; i++) {
    us = (a[i + 1] - b[i + 1]) / hz * 1e6 / n
    total += us
    printf "  %-16s %7.1f us per decided order\n", names[i], us
  }
  printf "  %-16s %7.1f us per decided order (%d decided in %d s, %d/s)\n", "total", total, n, seconds, n / seconds
}'
