#!/usr/bin/env bash
# Every figure of BENCHMARKS.md in one sitting: restarts the local stack with
# each setting, runs loadgen, keeps each report under target/benchmarks/ and
# prints a summary. Takes about 15 minutes; run it on a quiet machine.
#
#   scripts/benchmarks.sh [hot|zipf|partitions|batch|linger|latency|all]...   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/benchmarks
mkdir -p "$out"
cargo build --release --locked -p loadgen >/dev/null
L=target/release/loadgen

# Restarts the stack with the given environment (NAME=value ...), without the
# per-client rate limit whatever the shell says: loadgen is one client.
stack() {
  scripts/stop-stack.sh --quiet || true
  env ORDERFLOW_RATE_LIMIT_PER_CLIENT=0 "$@" scripts/start-stack.sh >"$out/start-stack.log" 2>&1 ||
    { cat "$out/start-stack.log" >&2; exit 1; }
}

# Runs loadgen, keeping its report as $out/<name>.txt and .json.
run() {
  local name=$1; shift
  echo "== $name: loadgen $*" >&2
  $L "$@" --json "$out/$name.json" >"$out/$name.txt" 2>"$out/$name.log" ||
    { echo "loadgen failed; see $out/$name.txt" >&2; cat "$out/$name.txt" >&2; exit 1; }
}

# The lines of a report worth a summary.
summary() {
  local name=$1
  echo "-- $name"
  grep -E "^ *(accepted/s|decided/s|POST /orders|send to decision|invariants|decided/s .*x)" \
    "$out/$name.txt" | sed 's/^/   /'
}

hot() {
  stack
  for i in 1 2 3; do
    run "hot-compare-$i" compare --shape hot --connections 64 --orders 50000 --stock 10000
    summary "hot-compare-$i"
  done
}

zipf() {
  stack
  run zipf-compare compare --shape zipf --products 1000 --connections 64 --duration 20 --stock 1000
  summary zipf-compare
  run zipf-lines3 run --shape zipf --products 1000 --lines 3 --connections 64 --duration 20 --stock 1000
  summary zipf-lines3
}

partitions() {
  for p in 1 2 4 8; do
    stack ORDERFLOW_PARTITIONS=$p
    run "zipf-partitions-$p" run --shape zipf --products 1000 --connections 64 --duration 20 --stock 1000
    summary "zipf-partitions-$p"
  done
}

batch() {
  for b in 64 512 2048; do
    stack ORDERFLOW_BATCH_MAX=$b
    run "hot-batch-$b" run --shape hot --connections 64 --duration 20 --stock 10000
    summary "hot-batch-$b"
  done
}

# How long a worker waits to fill a batch, on the workload whose batches are
# small: eight partitions sharing zipf demand.
linger() {
  for l in 0 10 50; do
    stack ORDERFLOW_BATCH_LINGER_MS=$l
    run "zipf-linger-$l" run --shape zipf --products 1000 --connections 64 --duration 20 --stock 1000
    summary "zipf-linger-$l"
  done
}

# Open loop at half the closed-loop maximum of the same workload, measured
# just before. The stock outlasts the runs, so every order is confirmed: the
# heavier case (allocations, ledger rows) than a sold-out product's rejections.
latency() {
  stack
  half_rate_of hot --shape hot
  stack
  half_rate_of zipf --shape zipf --products 1000
}

half_rate_of() {
  local name=$1; shift
  run "$name-max" run "$@" --connections 64 --duration 20 --stock 1000000
  local max
  max=$(awk '/decided\/s/ { print int($2); exit }' "$out/$name-max.txt")
  run "$name-half-rate" run "$@" --rate $((max / 2)) --duration 30 --stock 1000000
  summary "$name-max"
  summary "$name-half-rate"
}

[ $# -gt 0 ] || set -- all
for what in "$@"; do
  case $what in
    all) hot; zipf; partitions; batch; linger; latency ;;
    hot|zipf|partitions|batch|linger|latency) "$what" ;;
    *) echo "unknown benchmark $what" >&2; exit 2 ;;
  esac
done
scripts/stop-stack.sh --quiet || true
echo "reports in $out/"
