#!/usr/bin/env bash
# bench/latency.sh — tail latency side by side: redis-server 7.0 and Damselfly
# (issue #11, target 4), at CLIENTS=50 without pipelining, in four scenarios:
#   plain   the shared latency.sh (1M keys preloaded, SET then GET tests),
#           ROUNDS rounds alternating between the two servers, which run
#           side by side;
#   open    the same side-by-side set-up and alternating rounds, but the load
#           is bench/loadgen (built here): an open loop of CLIENTS connections
#           sending OPEN_RATE requests/s in all, SET then GET for OPEN_SECONDS
#           each, a request's latency counted from when it was due; unlike
#           redis-benchmark it does not saturate its core, so its tail is the
#           server's rather than the client's own queueing;
#   bgsave  1M keys preloaded, then BGSAVE started and restarted as soon as
#           each one ends (rdb_bgsave_in_progress polled) for the whole run;
#   expiry  1M keys preloaded plus EXPIRING keys `exp:N` set with one common
#           PXAT a few seconds ahead (EXPIRE_AFTER_MS after the load ends),
#           so a million keys expire together inside the SET test; repeated
#           ROUNDS times (fresh load each time, latency.sh with ROUNDS=1).
# Each server runs alone, pinned to SERVER_CPU (as bench/run.sh does), in a
# fresh --dir, with `--save ''`; Damselfly with --proactor_threads DF_THREADS.
# The client (latency.sh's redis-benchmark) runs on CLIENT_CPUS.
# Per scenario the script also saves LATENCY LATEST (latency-monitor-threshold
# 1 ms on both servers), the expired-key counter over time, and the BGSAVE
# count. Prints one table: p50/p99/p99.9/max of GET and SET per server and
# scenario (medians over rounds), milliseconds.
#
# Usage: bench/latency.sh
# Env: DF_PORT=6394 REDIS_PORT=6393 SERVER_CPU=1 CLIENT_CPUS=0 DF_THREADS=1
#      CLIENTS=50 N=200000 ROUNDS=3 EXPIRING=1000000 EXPIRE_AFTER_MS=1500
#      OPEN_RATE=30000 OPEN_SECONDS=10
#      SCENARIOS="plain open bgsave expiry" SERVERS="redis damselfly" SKIP_BUILD=0
#      SHARED=../shared REDIS_SERVER=redis-server RESULTS_DIR (default mktemp)
set -euo pipefail

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
LATENCY=$SHARED/bench/latency.sh
DF_PORT=${DF_PORT:-6394}
REDIS_PORT=${REDIS_PORT:-6393}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPUS=${CLIENT_CPUS:-0}
DF_THREADS=${DF_THREADS:-1}
CLIENTS=${CLIENTS:-50}
N=${N:-200000}
ROUNDS=${ROUNDS:-3}
EXPIRING=${EXPIRING:-1000000}
EXPIRE_AFTER_MS=${EXPIRE_AFTER_MS:-1500}
SCENARIOS=${SCENARIOS:-plain open bgsave expiry}
OPEN_RATE=${OPEN_RATE:-30000}
OPEN_SECONDS=${OPEN_SECONDS:-10}
LOADGEN=$ROOT/target/loadgen/release/damselfly-loadgen
SERVERS=${SERVERS:-redis damselfly}
SKIP_BUILD=${SKIP_BUILD:-0}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d /tmp/damselfly-latency.XXXXXX)}
DF_BIN=$ROOT/target/release/damselfly
HOST=127.0.0.1

[ -r "$LATENCY" ] || { echo "missing $LATENCY (set SHARED=...)" >&2; exit 2; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
prepare
if [[ " $SCENARIOS " == *" open "* ]] && { [ "$SKIP_BUILD" != 1 ] || [ ! -x "$LOADGEN" ]; }; then
    cargo build --release --manifest-path "$ROOT/bench/loadgen/Cargo.toml" --target-dir "$ROOT/target/loadgen"
fi

cli() { timeout 60 redis-cli -h $HOST -p "$PORT" "$@"; }

start_server() { # name tag
    if [ "$1" = redis ]; then PORT=$REDIS_PORT; else PORT=$DF_PORT; fi
    local t=$DF_THREADS
    [ "$1" = redis ] && t=1
    start_pinned "$1" "$t" "$SERVER_CPU" "$RESULTS_DIR/$1_$2.log"
    cli CONFIG SET latency-monitor-threshold 1 >/dev/null
}

# EXPIRING keys sharing one absolute expiry time: EXPIRE_AFTER_MS after the
# load is expected to end (LOAD_MS: twice what the preload just before took,
# scaled to EXPIRING keys),
# so the measurement that follows at once spans the expiry.
load_expiring() { # load_ms
    local at r
    at=$(( $(date +%s%3N) + EXPIRE_AFTER_MS + $1 ))
    r=$(awk -v n="$EXPIRING" -v at="$at" 'BEGIN {
            for (i = 0; i < n; i++) {
                k = sprintf("exp:%d", i)
                printf "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n$4\r\nPXAT\r\n$%d\r\n%s\r\n", length(k), k, length(at), at
            } }' |
        timeout 120 taskset -c "$CLIENT_CPUS" redis-cli -h $HOST -p "$PORT" --pipe 2>&1 | tail -1)
    case "$r" in *"errors: 0, replies: $EXPIRING"*) ;; *) echo "# WARNING: expiring load: $r" >&2 ;; esac
    EXPIRE_AT=$at
}

# Polls expired_keys every 100 ms into FILE as "ms_since_epoch expired_keys".
watch_expired() { # file
    while :; do
        echo "$(date +%s%3N) $(cli INFO stats 2>/dev/null | tr -d '\r' | awk -F: '/^expired_keys:/ { print $2 }')"
        sleep 0.1
    done >"$1"
}

# Runs BGSAVE back to back until killed; counts started saves in FILE.
bgsave_loop() { # file
    local n=0
    while :; do
        if cli INFO persistence 2>/dev/null | tr -d '\r' | grep -q '^rdb_bgsave_in_progress:0'; then
            case "$(cli BGSAVE 2>&1)" in *started*) n=$((n + 1)); echo "$n" >"$1" ;; esac
        fi
        sleep 0.05
    done
}

run_latency() { # server scenario round latency_rounds
    local out=$RESULTS_DIR/$1_$2_r$3
    mkdir -p "$out"
    CLIENTS=$CLIENTS N=$N ROUNDS=$4 PRELOAD=0 CLIENT_CPUS=$CLIENT_CPUS OUT_DIR=$out \
        bash "$LATENCY" "$PORT" >"$out/latency.txt" 2>&1 || true
    awk -F, -v s="$1" -v sc="$2" 'NR > 1 { print s "," sc "," $0 }' "$out/latency.csv" >>"$RESULTS_DIR/all.csv"
    cli LATENCY LATEST >"$out/latency_latest.txt" 2>&1 || true
    cli LATENCY RESET >/dev/null 2>&1 || true
}

echo "server,scenario,clients,round,test,rps,avg,p50,p95,p99,p999,max" >"$RESULTS_DIR/all.csv"
echo "# results: $RESULTS_DIR; git=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?');" \
    "CLIENTS=$CLIENTS N=$N ROUNDS=$ROUNDS EXPIRING=$EXPIRING DF_THREADS=$DF_THREADS"
# plain: both servers run side by side (the idle one costs nothing) and
# their rounds alternate, so a noisy minute on the box hits both alike.
# One round of the open loop: SET then GET, as rows of all.csv.
run_open() { # server round
    local t line
    for t in set get; do
        line=$(timeout $((OPEN_SECONDS * 3 + 30)) taskset -c "$CLIENT_CPUS" "$LOADGEN" --port "$PORT" \
            --clients "$CLIENTS" --rate "$OPEN_RATE" --seconds "$OPEN_SECONDS" --test "$t" 2>&1) ||
            { echo "# WARNING: loadgen on $1: $line" >&2; continue; }
        echo "$line" >>"$RESULTS_DIR/open.txt"
        echo "$line" | awk -v s="$1" -v r="$2" -v c="$CLIENTS" '{
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            printf "%s,open,%s,%s,%s,%s,NA,%s,NA,%s,%s,%s\n", s, c, r, $1, v["achieved"], v["p50"], v["p99"], v["p99.9"], v["max"]
        }' >>"$RESULTS_DIR/all.csv"
    done
}

# plain and open: both servers run side by side (the idle one costs nothing)
# and their rounds alternate, so a noisy minute on the box hits both alike.
for scenario in plain open; do
    [[ " $SCENARIOS " == *" $scenario "* ]] || continue
    declare -A SIDE_PID SIDE_PORT
    for server in $SERVERS; do
        start_server "$server" "$scenario"
        preload "$CLIENT_CPUS"
        SIDE_PID[$server]=$SERVER_PID; SIDE_PORT[$server]=$PORT
        HELPER_PIDS+=("$SERVER_PID"); SERVER_PID=""
    done
    for round in $(seq 1 "$ROUNDS"); do
        for server in $SERVERS; do
            PORT=${SIDE_PORT[$server]}
            if [ "$scenario" = plain ]; then
                run_latency "$server" plain "$round" 1
            else
                run_open "$server" "$round"
            fi
        done
    done
    for server in $SERVERS; do
        SERVER_PID=${SIDE_PID[$server]}
        stop_server
    done
done
for server in $SERVERS; do
    for scenario in $SCENARIOS; do
        [ "$scenario" = plain ] || [ "$scenario" = open ] && continue
        start_server "$server" "$scenario"
        case $scenario in
        bgsave)
            preload "$CLIENT_CPUS"
            bgsave_loop "$RESULTS_DIR/${server}_bgsaves" & HELPER_PIDS+=($!)
            run_latency "$server" bgsave 1 "$ROUNDS"
            kill "${HELPER_PIDS[-1]}" 2>/dev/null || true
            echo "# $server: $(cat "$RESULTS_DIR/${server}_bgsaves" 2>/dev/null || echo 0) BGSAVEs during the run"
            ;;
        expiry)
            for round in $(seq 1 "$ROUNDS"); do
                t0=$(date +%s%3N)
                preload "$CLIENT_CPUS"
                load_expiring $(( ($(date +%s%3N) - t0) * EXPIRING * 2 / 1000000 ))
                watch_expired "$RESULTS_DIR/${server}_expired_r$round" & HELPER_PIDS+=($!)
                start_ms=$(date +%s%3N)
                run_latency "$server" expiry "$round" 1
                end_ms=$(date +%s%3N)
                kill "${HELPER_PIDS[-1]}" 2>/dev/null || true
                # When the mass expiry ran, relative to the measurement.
                awk -v s="$start_ms" -v e="$end_ms" -v at="$EXPIRE_AT" -v n="$EXPIRING" -v who="$server" -v r="$round" '
                    NR == 1 { base = $2 }
                    $2 - base > 0 && first == "" { first = $1 }
                    $2 - base >= n && done == "" { done = $1 }
                    END { printf "# %s expiry round %d: run %.1f s; keys due at +%.1f s, first expired at +%s s, all %d expired at +%s s\n",
                          who, r, (e - s) / 1000, (at - s) / 1000,
                          first == "" ? "never" : sprintf("%.1f", (first - s) / 1000), n,
                          done == "" ? "never (within the run)" : sprintf("%.1f", (done - s) / 1000) }
                ' "$RESULTS_DIR/${server}_expired_r$round"
            done
            ;;
        esac
        stop_server
    done
done

printf "\n%-8s %4s %-10s %9s %7s %7s %7s %7s\n" scenario test server ops/s p50 p99 p99.9 max
awk -F, "$AWK_MEDIAN"'
NR == 1 { next }
{ k = $2 SUBSEP $5 SUBSEP $1; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
  for (f = 6; f <= 12; f++) v[k, f] = v[k, f] " " $f }
END {
    for (i = 1; i <= n; i++) {
        split(order[i], kk, SUBSEP)
        # Sort key: scenario in the order run, then SET before GET, then server.
        printf "%d %s %-8s %4s %-10s %9.0f %7.3f %7.3f %7.3f %7.3f\n",
            index("plain open bgsave expiry", kk[1]), kk[2] == "SET" ? 0 : 1, kk[1], kk[2], kk[3],
            median(v[order[i], 6]), median(v[order[i], 8]), median(v[order[i], 10]),
            median(v[order[i], 11]), median(v[order[i], 12])
    }
}' "$RESULTS_DIR/all.csv" | sort -s -n -k1,1 -k2,2 | cut -d' ' -f3-
echo "(CLIENTS=$CLIENTS clients, pipeline 1; medians over rounds; milliseconds)"
