#!/usr/bin/env bash
# bench/p1.sh — where a server's CPU goes without pipelining (issue #11,
# target 1 at P1), side by side for redis-server 7.0 and Damselfly.
#
# For each server (pinned to SERVER_CPU, 1M keys `key:%012d` preloaded) and
# each of SET and GET (redis-benchmark -c CLIENTS -P 1 -d 32 -r 1000000 on
# CLIENT_CPUS):
#   1. N requests with the server's user and system CPU time read from
#      /proc/PID/stat around the run: user ns/op, system ns/op (the kernel's
#      share: syscalls, and the loopback TCP work done in the server's context);
#   2. STRACE_N requests under `strace -c -f` (if strace is installed): system
#      calls per request, by call (strace slows the server; counts only);
#   3. Damselfly only, with `perf probe` (if perf can add uprobes, i.e. root):
#      mimalloc allocations and frees per request over N requests.
# Prints one table. The probes are removed on exit.
#
# Usage: bench/p1.sh
# Env: PORT=6397 SERVER_CPU=1 CLIENT_CPUS=0 CLIENTS=50 N=400000 STRACE_N=50000
#      DF_THREADS=1 SKIP_BUILD=0 REDIS_SERVER=redis-server RESULTS_DIR (default mktemp)
set -euo pipefail

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${PORT:-6397}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPUS=${CLIENT_CPUS:-0}
CLIENTS=${CLIENTS:-50}
N=${N:-400000}
STRACE_N=${STRACE_N:-50000}
DF_THREADS=${DF_THREADS:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d /tmp/damselfly-p1.XXXXXX)}
DF_BIN=$ROOT/target/release/damselfly
HOST=127.0.0.1

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
prepare

PROBES=0
remove_probes() { [ "$PROBES" = 1 ] && perf probe -q -d 'probe_damselfly:*' 2>/dev/null || true; }
EXIT_HOOK=remove_probes

start_server() { # server
    local t=$DF_THREADS
    [ "$1" = redis ] && t=1
    start_pinned "$1" "$t" "$SERVER_CPU" "$RESULTS_DIR/$1.log"
}

load() { # test requests
    timeout 300 taskset -c "$CLIENT_CPUS" redis-benchmark -h $HOST -p "$PORT" -c "$CLIENTS" \
        -P 1 -d 32 -r 1000000 -n "$2" -t "$1" -q >/dev/null 2>&1
}

# Probes on mimalloc's entry points in our binary (what Rust's allocator calls).
ALLOC_FNS="mi_malloc_aligned mi_zalloc_aligned mi_realloc_aligned mi_free"
if command -v perf >/dev/null; then
    perf probe -q -d 'probe_damselfly:*' 2>/dev/null || true
    PROBES=1
    for f in $ALLOC_FNS; do
        perf probe -q -x "$DF_BIN" --add "$f" 2>/dev/null || PROBES=0
    done
fi

tick_ns=$(( 1000000000 / $(getconf CLK_TCK) ))
echo "server,test,user_ns,sys_ns,read,write,epoll_wait,other_syscalls,allocs,frees" >"$RESULTS_DIR/p1.csv"
for server in redis damselfly; do
    start_server "$server"
    preload "$CLIENT_CPUS"
    for t in set get; do
        read -r u0 s0 < <(awk '{ print $14, $15 }' "/proc/$SERVER_PID/stat")
        load "$t" "$N"
        read -r u1 s1 < <(awk '{ print $14, $15 }' "/proc/$SERVER_PID/stat")
        user=$(( (u1 - u0) * tick_ns / N )); sys=$(( (s1 - s0) * tick_ns / N ))
        calls=",,,"
        if command -v strace >/dev/null; then
            timeout 120 strace -c -f -q -p "$SERVER_PID" -o "$RESULTS_DIR/strace_${server}_$t.txt" &
            tracer=$!
            sleep 1
            load "$t" "$STRACE_N"
            kill -INT "$tracer" 2>/dev/null || true
            wait "$tracer" 2>/dev/null || true
            calls=$(awk -v n="$STRACE_N" '
                $NF ~ /^(read|recvfrom)$/ { r += $4 }
                $NF ~ /^(write|sendto|writev)$/ { w += $4 }
                $NF == "epoll_wait" { e += $4 }
                /^ *[0-9.]+ +[0-9.]+ / && $NF !~ /^(read|recvfrom|write|sendto|writev|epoll_wait|total)$/ { o += $4 + 0 }
                END { printf "%.3f,%.3f,%.3f,%.3f", r / n, w / n, e / n, o / n }' "$RESULTS_DIR/strace_${server}_$t.txt")
        fi
        allocs=","
        if [ "$server" = damselfly ] && [ "$PROBES" = 1 ]; then
            perf stat -x, -e 'probe_damselfly:*' -p "$SERVER_PID" -o "$RESULTS_DIR/allocs_$t.txt" &
            counter=$!
            sleep 0.5
            load "$t" "$N"
            kill -INT "$counter" 2>/dev/null || true
            wait "$counter" 2>/dev/null || true
            allocs=$(awk -F, -v n="$N" '
                $3 ~ /mi_free/ { f += $1 } $3 ~ /mi_(malloc|zalloc|realloc)/ { a += $1 }
                END { printf "%.4f,%.4f", a / n, f / n }' "$RESULTS_DIR/allocs_$t.txt")
        fi
        echo "$server,$t,$user,$sys,$calls,$allocs" >>"$RESULTS_DIR/p1.csv"
    done
    stop_server
done

echo "# results: $RESULTS_DIR; git=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?');" \
    "CLIENTS=$CLIENTS N=$N STRACE_N=$STRACE_N SERVER_CPU=$SERVER_CPU CLIENT_CPUS=$CLIENT_CPUS"
awk -F, 'NR == 1 { next }
{ printf "%-10s %-4s %8d %8d %8d %7.2f %7.2f %7.3f %7.3f %9s %9s\n", $1, $2, $3, $4, $3 + $4,
      $5, $6, $7, $8, $9 == "" ? "-" : $9, $10 == "" ? "-" : $10 }
BEGIN { printf "%-10s %-4s %8s %8s %8s %7s %7s %7s %7s %9s %9s\n", "server", "test", "user", "system", "total",
        "reads", "writes", "epoll", "other", "allocs", "frees" }
END { print "(server CPU ns per request from /proc/PID/stat; system calls and allocations per request)" }' \
    "$RESULTS_DIR/p1.csv"
