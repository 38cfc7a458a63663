#!/usr/bin/env bash
# bench/scaling.sh — throughput against worker threads (issue #11, target 3).
#
# For each T in THREADS: start target/release/damselfly --proactor_threads T
# (fresh --dir, --save ''), preload 1M keys (`key:%012d`, 32-byte values),
# then run redis-benchmark ROUNDS times each on:
#   set, get   uniform load: -t set,get -r 1000000 -d 32 (CLIENTS clients,
#              pipeline PIPELINE);
#   incr_hot   the hot key: -t incr without -r, every client on one key.
# With REDIS=1 the same runs go against redis-server --io-threads T
# (--io-threads-do-reads yes) for reference.
# Prints ops/s (median of rounds) per thread count and the ratio to the first
# thread count's, then the server's CPU ns per request (user+system of all its
# threads, from /proc/PID/stat) and its efficiency against the first count's.
# Servers are pinned to SERVER_CPUS and the client to CLIENT_CPUS with
# redis-benchmark --threads CLIENT_THREADS; the defaults (both "all CPUs", 2
# client threads) suit this 2-core box, where client and server share the
# cores; on a big box give them disjoint CPU sets, e.g.
# THREADS="1 2 4 8 16" SERVER_CPUS=0-15 CLIENT_CPUS=16-31 CLIENT_THREADS=8.
#
# Env: THREADS="1 2" DF_PORT=6396 REDIS_PORT=6395 SERVER_CPUS=all CLIENT_CPUS=all
#      CLIENTS=50 PIPELINE=1 N=500000 ROUNDS=3 CLIENT_THREADS=2 REDIS=0
#      SKIP_BUILD=0 REDIS_SERVER=redis-server RESULTS_DIR (default mktemp)
set -euo pipefail

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
THREADS=${THREADS:-1 2}
DF_PORT=${DF_PORT:-6396}
REDIS_PORT=${REDIS_PORT:-6395}
ALL_CPUS=0-$(( $(nproc) - 1 ))
SERVER_CPUS=${SERVER_CPUS:-all}
CLIENT_CPUS=${CLIENT_CPUS:-all}
[ "$SERVER_CPUS" = all ] && SERVER_CPUS=$ALL_CPUS
[ "$CLIENT_CPUS" = all ] && CLIENT_CPUS=$ALL_CPUS
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-1}
N=${N:-500000}
ROUNDS=${ROUNDS:-3}
CLIENT_THREADS=${CLIENT_THREADS:-2}
REDIS=${REDIS:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d /tmp/damselfly-scaling.XXXXXX)}
DF_BIN=$ROOT/target/release/damselfly
HOST=127.0.0.1

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
prepare

start_server() { # server threads
    if [ "$1" = redis ]; then PORT=$REDIS_PORT; else PORT=$DF_PORT; fi
    start_pinned "$1" "$2" "$SERVER_CPUS" "$RESULTS_DIR/$1_t$2.log"
}

bench() { # label args... -> appends "label,rps" rows from the CSV output
    local label=$1; shift
    timeout 300 taskset -c "$CLIENT_CPUS" redis-benchmark -h $HOST -p "$PORT" --threads "$CLIENT_THREADS" \
        -c "$CLIENTS" -P "$PIPELINE" -n "$N" --csv "$@" 2>/dev/null |
        awk -F'"' -v l="$label" 'NR > 1 && $2 != "" { print l "," tolower($2) "," $4 }'
}

# User+system CPU ticks of the server so far (all its threads).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
TICK_NS=$(( 1000000000 / $(getconf CLK_TCK) ))

# Runs bench with the server's CPU time measured around it: appends
# "server,threads,round,load,ns" (server CPU ns per request, REQS requests) to cpu.csv.
bench_cpu() { # server threads round load reqs bench-args...
    local t0 t1
    t0=$(cpu_ticks)
    bench "$1,$2,$3" "${@:6}" | sed "s/,incr,/,$4,/" >>"$RESULTS_DIR/raw.csv"
    t1=$(cpu_ticks)
    echo "$1,$2,$3,$4,$(( (t1 - t0) * TICK_NS / $5 ))" >>"$RESULTS_DIR/cpu.csv"
}

echo "server,threads,round,test,rps" >"$RESULTS_DIR/raw.csv"
echo "server,threads,round,load,cpu_ns_per_op" >"$RESULTS_DIR/cpu.csv"
echo "# results: $RESULTS_DIR; git=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?');" \
    "THREADS=\"$THREADS\" SERVER_CPUS=$SERVER_CPUS CLIENT_CPUS=$CLIENT_CPUS CLIENT_THREADS=$CLIENT_THREADS" \
    "CLIENTS=$CLIENTS PIPELINE=$PIPELINE N=$N ROUNDS=$ROUNDS"
servers=damselfly
[ "$REDIS" = 1 ] && servers="damselfly redis"
for server in $servers; do
    for t in $THREADS; do
        start_server "$server" "$t"
        preload "$CLIENT_CPUS"
        for round in $(seq 1 "$ROUNDS"); do
            bench_cpu "$server" "$t" "$round" setget $((2 * N)) -t set,get -r 1000000 -d 32
            # No -r: every client INCRs the one key "counter:__rand_int__".
            bench_cpu "$server" "$t" "$round" incr_hot "$N" -t incr
        done
        stop_server
    done
done

awk -F, "$AWK_MEDIAN"'
NR == 1 { next }
{ k = $1 SUBSEP $2; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
  v[k, $4] = v[k, $4] " " $5 }
END {
    printf "\n%-10s %7s %10s %10s %10s %8s %8s %8s\n", "server", "threads", "set", "get", "incr_hot", "set/1", "get/1", "hot/1"
    for (i = 1; i <= n; i++) {
        split(order[i], kk, SUBSEP)
        s = median(v[order[i], "set"]); g = median(v[order[i], "get"]); h = median(v[order[i], "incr_hot"])
        if (!(kk[1] in base_s)) { base_s[kk[1]] = s; base_g[kk[1]] = g; base_h[kk[1]] = h }
        printf "%-10s %7s %10.0f %10.0f %10.0f %8.2f %8.2f %8.2f\n", kk[1], kk[2], s, g, h,
            base_s[kk[1]] ? s / base_s[kk[1]] : 0, base_g[kk[1]] ? g / base_g[kk[1]] : 0,
            base_h[kk[1]] ? h / base_h[kk[1]] : 0
    }
    print "(ops/s, median of rounds; ratios to the first thread count)"
}' "$RESULTS_DIR/raw.csv"

# Server CPU per request: flat as threads are added means the threads add
# no work per request (no contention, no cross-thread hand-offs), which is
# what lets throughput grow with cores where the box has cores to spare.
awk -F, "$AWK_MEDIAN"'
NR == 1 { next }
{ k = $1 SUBSEP $2; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
  v[k, $4] = v[k, $4] " " $5 }
END {
    printf "\n%-10s %7s %14s %14s %10s %10s\n", "server", "threads", "set+get ns/op", "incr_hot ns/op", "eff set+get", "eff hot"
    for (i = 1; i <= n; i++) {
        split(order[i], kk, SUBSEP)
        s = median(v[order[i], "setget"]); h = median(v[order[i], "incr_hot"])
        if (!(kk[1] in base_s)) { base_s[kk[1]] = s; base_h[kk[1]] = h }
        printf "%-10s %7s %14.0f %14.0f %10.2f %10.2f\n", kk[1], kk[2], s, h,
            s ? base_s[kk[1]] / s : 0, h ? base_h[kk[1]] / h : 0
    }
    print "(server CPU ns per request, all threads, median of rounds; eff = first thread count ns/op / this ns/op)"
}' "$RESULTS_DIR/cpu.csv"
