#!/usr/bin/env bash
# bench/run.sh — build damselfly, then benchmark it against Redis on this box.
#
# Usage: bench/run.sh            (from anywhere; paths are relative to the repo)
#
# Steps:
#   1. cargo build --release                       (skip with SKIP_BUILD=1)
#   2. start redis-server (port REDIS_PORT, default 6391, --save '' --appendonly no)
#      and target/release/damselfly (port DF_PORT, default 6392,
#      --save '' --proactor_threads DF_THREADS, default 1), each pinned with
#      `taskset -c SERVER_CPU` (default 1) and run in a fresh temporary dir;
#   3. $SHARED/bench/compare.sh DF_PORT REDIS_PORT damselfly redis
#      (throughput, A = damselfly, B = redis; skip with SKIP_COMPARE=1);
#   4. stop both, start both fresh, $SHARED/bench/memory.sh on each
#      (RSS growth per key; skip with SKIP_MEMORY=1); then fresh again and
#      bench/memory-ttl.sh on each (the same loads with a TTL on every key;
#      skip with SKIP_MEMORY_TTL=1);
#   5. print a summary. Servers are killed on exit, whatever happens.
#
# Everything is written under RESULTS_DIR (default: a new /tmp/damselfly-bench.*):
# compare.txt (full table), compare/ (raw CSVs), memory_damselfly.txt,
# memory_redis.txt, memory_ttl_damselfly.txt, memory_ttl_redis.txt, and the
# servers' logs.
#
# Environment:
#   SHARED=../shared        the shared tools folder (default: the repo's sibling shared/)
#   ONLY, SCALE, ROUNDS     passed through to compare.sh (see its header), e.g.
#                           ONLY=set_p1,get_p16 SCALE=0.2 ROUNDS=3
#   PRELOAD, THREADS, CLIENTS, QUIET_WAIT, RUN_TIMEOUT, CLIENT_CPUS
#                           also passed through to compare.sh
#   LARGE, LOAD_TIMEOUT     passed through to memory.sh
#   DF_PORT=6392 REDIS_PORT=6391 DF_THREADS=1 SERVER_CPU=1
#   SKIP_BUILD=0 SKIP_COMPARE=0 SKIP_MEMORY=0 SKIP_MEMORY_TTL=0
#   REDIS_SERVER=redis-server   which Redis binary to compare against
#
# For a quick smoke run of the whole pipeline see bench/quick.sh.
# Numbers are only meaningful on a quiet box: check the other% column and the
# WARNING lines of compare.sh (other builds on the 2 cores contaminate them).
set -euo pipefail

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
BENCH=$SHARED/bench
DF_PORT=${DF_PORT:-6392}
REDIS_PORT=${REDIS_PORT:-6391}
DF_THREADS=${DF_THREADS:-1}
SERVER_CPU=${SERVER_CPU:-1}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
SKIP_BUILD=${SKIP_BUILD:-0}
SKIP_COMPARE=${SKIP_COMPARE:-0}
SKIP_MEMORY=${SKIP_MEMORY:-0}
RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d /tmp/damselfly-bench.XXXXXX)}
DF_BIN=$ROOT/target/release/damselfly
HOST=127.0.0.1

for f in compare.sh memory.sh; do
    [ -x "$BENCH/$f" ] || [ -r "$BENCH/$f" ] || { echo "missing $BENCH/$f (set SHARED=...)" >&2; exit 2; }
done
for t in "$REDIS_SERVER" redis-cli redis-benchmark taskset ss; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 2; }
done
mkdir -p "$RESULTS_DIR"

# ---- servers ---------------------------------------------------------------
DF_PID=""
REDIS_PID=""
WORKDIRS=()

port_busy() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

wait_ping() { # port pid label
    local i
    for i in $(seq 1 100); do
        if [ "$(timeout 2 redis-cli -h $HOST -p "$1" PING 2>/dev/null)" = PONG ]; then
            return 0
        fi
        kill -0 "$2" 2>/dev/null || { echo "$3 exited during start-up" >&2; return 1; }
        sleep 0.1
    done
    echo "$3 did not answer PING on port $1 within 10 s" >&2
    return 1
}

stop_servers() {
    local pid
    for pid in $DF_PID $REDIS_PID; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $DF_PID $REDIS_PID; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    DF_PID=""
    REDIS_PID=""
}

start_servers() { # tag (names the logs)
    local tag=$1 d
    for p in "$DF_PORT" "$REDIS_PORT"; do
        port_busy "$p" && { echo "port $p is already in use; pick DF_PORT/REDIS_PORT" >&2; return 1; }
    done
    d=$(mktemp -d /tmp/damselfly-bench-redis.XXXXXX); WORKDIRS+=("$d")
    taskset -c "$SERVER_CPU" "$REDIS_SERVER" --port "$REDIS_PORT" --bind $HOST \
        --save '' --appendonly no --dir "$d" >"$RESULTS_DIR/redis_$tag.log" 2>&1 &
    REDIS_PID=$!
    d=$(mktemp -d /tmp/damselfly-bench-df.XXXXXX); WORKDIRS+=("$d")
    # Snapshots off as for redis-server: with Redis's default save rules a
    # run of minutes would include BGSAVEs on one side only.
    taskset -c "$SERVER_CPU" "$DF_BIN" --port "$DF_PORT" --bind $HOST --dir "$d" \
        --save '' --proactor_threads "$DF_THREADS" >"$RESULTS_DIR/damselfly_$tag.log" 2>&1 &
    DF_PID=$!
    wait_ping "$REDIS_PORT" "$REDIS_PID" redis-server
    wait_ping "$DF_PORT" "$DF_PID" damselfly
    echo "# started ($tag): damselfly pid $DF_PID port $DF_PORT, redis pid $REDIS_PID port $REDIS_PORT, both on CPU $SERVER_CPU"
}

# step CMD... -- FILE: runs CMD with its output (stdout and stderr) shown and
# saved to FILE. It runs in the background and is waited for, so that a
# signal reaches our trap at once instead of after the whole step.
STEP_PID=""
step() {
    local args=() out
    while [ "$1" != -- ]; do args+=("$1"); shift; done
    out=$2
    ( "${args[@]}" 2>&1 | tee "$out" ) &
    STEP_PID=$!
    wait "$STEP_PID"
    STEP_PID=""
}

descendants() { # pid -> ids of all its descendants
    local c
    for c in $(ps -e -o pid= -o ppid= | awk -v p="$1" '$2 == p { print $1 }'); do
        echo "$c"
        descendants "$c"
    done
}

cleanup() {
    # Stop the servers, then end whatever the current step still runs.
    stop_servers
    if [ -n "$STEP_PID" ]; then
        # redis-benchmark waits forever on a vanished server: TERM the whole
        # tree under the step, by process id.
        kill $(descendants "$STEP_PID") "$STEP_PID" 2>/dev/null || true
    fi
    local d
    for d in "${WORKDIRS[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build -----------------------------------------------------------------
if [ "$SKIP_BUILD" != 1 ]; then
    echo "# cargo build --release"
    (cd "$ROOT" && cargo build --release --bin damselfly)
fi
[ -x "$DF_BIN" ] || { echo "no binary at $DF_BIN" >&2; exit 2; }

echo "# results: $RESULTS_DIR"
echo "# ONLY=${ONLY:-all} SCALE=${SCALE:-1} ROUNDS=${ROUNDS:-3} git=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"

# ---- throughput ------------------------------------------------------------
if [ "$SKIP_COMPARE" != 1 ]; then
    start_servers compare
    step env OUT_DIR="$RESULTS_DIR/compare" PID_A="$DF_PID" PID_B="$REDIS_PID" \
        bash "$BENCH/compare.sh" "$DF_PORT" "$REDIS_PORT" damselfly redis \
        -- "$RESULTS_DIR/compare.txt"
    stop_servers
fi

# ---- memory ----------------------------------------------------------------
if [ "$SKIP_MEMORY" != 1 ]; then
    start_servers memory
    echo "# memory.sh damselfly"
    step bash "$BENCH/memory.sh" "$DF_PORT" "$DF_PID" -- "$RESULTS_DIR/memory_damselfly.txt"
    echo "# memory.sh redis"
    step bash "$BENCH/memory.sh" "$REDIS_PORT" "$REDIS_PID" -- "$RESULTS_DIR/memory_redis.txt"
    stop_servers
fi

# ---- memory with a TTL on every key (fresh servers again) -------------------
if [ "$SKIP_MEMORY" != 1 ] && [ "${SKIP_MEMORY_TTL:-0}" != 1 ]; then
    start_servers memory_ttl
    echo "# memory-ttl.sh damselfly"
    step bash "$ROOT/bench/memory-ttl.sh" "$DF_PORT" "$DF_PID" -- "$RESULTS_DIR/memory_ttl_damselfly.txt"
    echo "# memory-ttl.sh redis"
    step bash "$ROOT/bench/memory-ttl.sh" "$REDIS_PORT" "$REDIS_PID" -- "$RESULTS_DIR/memory_ttl_redis.txt"
    stop_servers
fi

# ---- summary ---------------------------------------------------------------
echo
echo "# ===== summary ($RESULTS_DIR) ====="
if [ -f "$RESULTS_DIR/compare.txt" ]; then
    echo "throughput, A = damselfly, B = redis:"
    grep -E '^(workload|[a-z0-9]+_p[0-9]+) ' "$RESULTS_DIR/compare.txt" | head -20 || true
    grep -E 'geomean|WARNING' "$RESULTS_DIR/compare.txt" || true
fi
for s in damselfly redis ttl_damselfly ttl_redis; do
    f=$RESULTS_DIR/memory_$s.txt
    if [ -f "$f" ]; then
        echo "memory $s:"
        grep -E '^(strings|hashes|zsets|big |bytes/key)|WARNING' "$f" | sed 's/^/  /' || true
    fi
done
exit 0
