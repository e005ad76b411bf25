#!/usr/bin/env bash
# Where the CPU goes while loadgen drives the running stack: samples every
# process on the machine with `perf record -a` for a few seconds in the middle
# of a loadgen run and prints each component's share of the machine, with
# PostgreSQL's backends counted under the service they serve (matched through
# their client ports). Keeps perf.data for `perf report` by symbol.
#
#   scripts/profile-stack.sh [--seconds N] [--warmup N] [--out DIR] -- <loadgen run args>
#
# Example (the stack from scripts/start-stack.sh, loadgen built in release):
#   scripts/profile-stack.sh --seconds 8 -- run --shape hot --connections 64 --duration 15 --stock 10000
# Needs perf (Debian: linux-perf) and kernel.perf_event_paranoid <= 1 or root.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=8
warmup=4
out=target/profile
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown option $1 (loadgen's arguments go after --)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--seconds N] [--warmup N] [--out DIR] -- <loadgen run args>" >&2; exit 2; }
command -v perf >/dev/null || { echo "perf is needed (Debian package linux-perf)" >&2; exit 1; }
[ -x target/release/loadgen ] || cargo build --release --locked -p loadgen
kill -0 "$(cat .run/ingress-api.pid 2>/dev/null)" 2>/dev/null ||
  { echo "ingress-api is not running; start the stack with scripts/start-stack.sh" >&2; exit 1; }

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

mkdir -p "$out"
DATABASE_URL="${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/orderflow}"
rate=499

target/release/loadgen "$@" >"$out/loadgen.txt" 2>&1 &
loadgen_pid=$!
sleep "$warmup"

# Which process owns each client port of a PostgreSQL connection, and which
# backend serves each port: together, which process each backend works for.
ss -Htnp state established '( dport = :5432 )' |
  sed -n 's/.*:\([0-9]*\) *[^ ]*:5432 .*pid=\([0-9]*\).*/\1 \2/p' >"$out/client-ports.txt"
psql "$DATABASE_URL" -Atqc \
  "select pid, client_port from pg_stat_activity where client_port is not null" \
  | tr '|' ' ' >"$out/backend-ports.txt"
ps -eo pid=,args= >"$out/processes.txt"

perf record -a -F "$rate" -g -o "$out/perf.data" -- sleep "$seconds" 2>"$out/perf-record.log" >/dev/null
wait "$loadgen_pid" || echo "loadgen exited with status $? (see $out/loadgen.txt)" >&2

perf script -i "$out/perf.data" -F pid 2>/dev/null | awk '{print $1}' >"$out/samples.txt"
awk -v rate="$rate" -v seconds="$seconds" -v cpus="$(nproc)" '
  FILENAME == ARGV[1] { client[$1] = $2; next }              # client port -> client pid
  FILENAME == ARGV[2] { backend[$1] = $2; next }             # backend pid -> client port
  FILENAME == ARGV[3] {                                      # pid -> program
    pid = $1; $1 = ""; cmd = substr($0, 2)
    n = split(cmd, parts, " "); prog = parts[1]; sub(".*/", "", prog)
    if (cmd ~ /^postgres: /) prog = "postgres (" (cmd ~ /walwriter|checkpointer|background|autovacuum|logical|stats/ ? "background" : "other") ")"
    if (cmd ~ /^\[/) prog = "[kernel]"
    if (prog == "") prog = "(no command line)"
    name[pid] = prog; next
  }
  {
    pid = $1; total++
    if (pid in backend && (backend[pid] in client)) {
      owner = client[backend[pid]]
      who = "postgres for " (owner in name ? name[owner] : "pid " owner)
    } else if (pid in name) {
      who = name[pid]
    } else if (pid == 0) {
      who = "idle"
    } else if (name[pid] == "[kernel]") {
      who = "kernel threads"
    } else {
      who = "other (perf itself, processes started later)"
    }
    count[who]++
  }
  END {
    capacity = rate * seconds * cpus
    printf "%-36s %8s %14s\n", "component", "samples", "% of machine"
    sorter = "sort -t \"|\" -k2,2nr | tr -d \"|\""
    for (w in count) printf "%-36s|%8d %13.1f%%\n", w, count[w], 100 * count[w] / capacity | sorter
    close(sorter)
    printf "%-36s %8d %13.1f%%\n", "(all sampled)", total, 100 * total / capacity
  }
' "$out/client-ports.txt" "$out/backend-ports.txt" "$out/processes.txt" "$out/samples.txt" | tee "$out/by-component.txt"
echo
grep -E "accepted/s|decided/s" "$out/loadgen.txt" || true
echo "perf data in $out/perf.data (perf report -i $out/perf.data --pid <pid>)"
