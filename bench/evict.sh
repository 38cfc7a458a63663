#!/usr/bin/env bash
# bench/evict.sh — writes at the memory limit: redis-server 7.0 and Damselfly
# side by side, each pinned to one core, SETs of new keys evicting old ones.
#
# Per server and round: start it fresh on SERVER_CPU, CONFIG SET
# maxmemory-policy POLICY and maxmemory LIMIT, fill past the limit with
# FILL SETs of random new keys (`redis-benchmark -t set -r 100000000 -d 32
# -c 50 -P PIPELINE`), then time N more and report the server's CPU per SET
# (/proc/PID/stat, user + system) and the keys evicted meanwhile. Rounds
# alternate the servers; the summary gives medians and the Redis/Damselfly
# ratio of CPU per SET (above 1: Damselfly is cheaper).
#
# Env: POLICY=allkeys-lru LIMIT=64mb PIPELINE=16 FILL=2000000 N=3000000
#      ROUNDS=3 SERVER_CPU=1 CLIENT_CPUS=0 PORT=6398 SKIP_BUILD=0
#      REDIS_SERVER=redis-server RESULTS_DIR (default: mktemp -d)
set -euo pipefail

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
POLICY=${POLICY:-allkeys-lru}
LIMIT=${LIMIT:-64mb}
PIPELINE=${PIPELINE:-16}
FILL=${FILL:-2000000}
N=${N:-3000000}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPUS=${CLIENT_CPUS:-0}
PORT=${PORT:-6398}
SKIP_BUILD=${SKIP_BUILD:-0}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d /tmp/damselfly-evict.XXXXXX)}
DF_BIN=$ROOT/target/release/damselfly
HOST=127.0.0.1

. "$ROOT/bench/lib.sh"
prepare

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
evicted() {
    redis-cli -h $HOST -p "$PORT" INFO stats | tr -d '\r' | awk -F: '$1 == "evicted_keys" { print $2 }'
}
sets() { # requests
    timeout 600 taskset -c "$CLIENT_CPUS" redis-benchmark -h $HOST -p "$PORT" -c 50 \
        -P "$PIPELINE" -d 32 -r 100000000 -n "$1" -t set -q >/dev/null 2>&1
}

HZ=$(getconf CLK_TCK)
echo "# results: $RESULTS_DIR; POLICY=$POLICY LIMIT=$LIMIT PIPELINE=$PIPELINE FILL=$FILL N=$N ROUNDS=$ROUNDS"
echo "server round ns_per_set evicted" > "$RESULTS_DIR/all.txt"
for round in $(seq 1 "$ROUNDS"); do
    for server in redis damselfly; do
        start_pinned "$server" 1 "$SERVER_CPU" "$RESULTS_DIR/$server.log"
        redis-cli -h $HOST -p "$PORT" CONFIG SET maxmemory-policy "$POLICY" >/dev/null
        redis-cli -h $HOST -p "$PORT" CONFIG SET maxmemory "$LIMIT" >/dev/null
        sets "$FILL"
        t0=$(cpu_ticks); e0=$(evicted)
        sets "$N"
        t1=$(cpu_ticks); e1=$(evicted)
        ns=$(( (t1 - t0) * 1000000000 / HZ / N ))
        echo "$server $round $ns $((e1 - e0))" | tee -a "$RESULTS_DIR/all.txt"
        stop_server
    done
done
awk "$AWK_MEDIAN"'
    NR > 1 { ns[$1] = ns[$1] " " $3; ev[$1] = ev[$1] " " $4 }
    END {
        r = median(ns["redis"]); d = median(ns["damselfly"])
        printf "\nserver      CPU ns/SET  evicted/round\n"
        printf "redis       %10d  %13d\n", r, median(ev["redis"])
        printf "damselfly   %10d  %13d\n", d, median(ev["damselfly"])
        printf "ratio redis/damselfly: %.2f\n", r / d
    }' "$RESULTS_DIR/all.txt"
