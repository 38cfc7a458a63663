#!/usr/bin/env bash
# bench/persistence.sh — snapshot cost side by side: redis-server 7.0 and Damselfly.
#
# For each server in turn (one at a time, pinned to SERVER_CPU, fresh --dir):
#   1. load 1,000,000 mixed keys with `redis-cli --pipe` (500k strings, 200k strings with a
#      TTL, 100k hashes x 10 fields, 100k lists x 10, 50k sets x 10, 50k zsets x 10);
#   2. SAVE: wall time and file size;
#   3. BGSAVE while redis-benchmark overwrites keys (SET on the string keys, client on
#      CLIENT_CPU): peak memory during the save minus memory before it. Memory is the PSS
#      summed over the server and its children (Redis forks; PSS counts a page shared by
#      parent and child once, so copy-on-write growth is what shows);
#   4. restart on the file: seconds from exec to the first PONG (loading done), and the
#      server's own "DB loaded from disk" line.
# Results go to RESULTS_DIR (printed) and a summary table on stdout.
#
# Env: DF_PORT=6394 REDIS_PORT=6393 SERVER_CPU=1 CLIENT_CPU=0 SKIP_BUILD=0 KEYS_SCALE=1
#      (KEYS_SCALE=0.1 for a smoke run), REDIS_SERVER=redis-server
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DF_PORT=${DF_PORT:-6394}
REDIS_PORT=${REDIS_PORT:-6393}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
KEYS_SCALE=${KEYS_SCALE:-1}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d /tmp/damselfly-persist.XXXXXX)}
DF_BIN=$ROOT/target/release/damselfly
HOST=127.0.0.1

for t in "$REDIS_SERVER" redis-cli redis-benchmark taskset python3; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 2; }
done
[ "$SKIP_BUILD" = 1 ] || (cd "$ROOT" && cargo build --release --bin damselfly)
mkdir -p "$RESULTS_DIR"

SERVER_PID=""
BENCH_PID=""
STARTUP_S=""
cleanup() {
    [ -n "$BENCH_PID" ] && kill "$BENCH_PID" 2>/dev/null || true
    [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

now_ns() { date +%s%N; }

# PSS in kB of a process and all its descendants.
pss_tree() {
    local total=0 p kb
    for p in $1 $(pgrep -P "$1" 2>/dev/null || true); do
        kb=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

generate() { # file
    python3 "$ROOT/bench/dataset.py" "$1" "$KEYS_SCALE" str=500000 ttl=200000 hash=100000 list=100000 set=50000 zset=50000
}

wait_pong() { # start_ns port pid -> sets STARTUP_S
    local start=$1 port=$2 pid=$3
    while true; do
        [ "$(timeout 2 redis-cli -h $HOST -p "$port" PING 2>/dev/null)" = PONG ] && break
        kill -0 "$pid" 2>/dev/null || { echo "server on $port exited" >&2; return 1; }
        sleep 0.02
    done
    STARTUP_S=$(echo "scale=2; ($(now_ns) - $start) / 1000000000" | bc)
}

# Not called in $(...): SERVER_PID must be set in this shell.
start_server() { # name port dir -> sets SERVER_PID and STARTUP_S
    local name=$1 port=$2 dir=$3 start
    start=$(now_ns)
    if [ "$name" = redis ]; then
        taskset -c "$SERVER_CPU" "$REDIS_SERVER" --port "$port" --bind $HOST --dir "$dir" \
            --dbfilename dump.rdb --save '' --appendonly no >>"$dir/server.log" 2>&1 &
    else
        taskset -c "$SERVER_CPU" "$DF_BIN" --port "$port" --bind $HOST --dir "$dir" \
            --dbfilename dump.rdb --save '' --proactor_threads 1 --logtostderr \
            >>"$dir/server.log" 2>&1 &
    fi
    SERVER_PID=$!
    wait_pong "$start" "$port" "$SERVER_PID"
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

info_field() { # port field
    redis-cli -h $HOST -p "$1" INFO persistence | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'
}

LOAD=$RESULTS_DIR/load.resp
echo "# generating the dataset (scale $KEYS_SCALE) into $LOAD"
generate "$LOAD"

measure() { # name port
    local name=$1 port=$2 dir start save_s size base peak cur loaded_s keys
    dir=$(mktemp -d "$RESULTS_DIR/$name.XXXX")
    start_server "$name" "$port" "$dir"
    taskset -c "$CLIENT_CPU" redis-cli -h $HOST -p "$port" --pipe <"$LOAD" >"$dir/pipe.log"
    keys=$(redis-cli -h $HOST -p "$port" DBSIZE)

    start=$(now_ns)
    redis-cli -h $HOST -p "$port" SAVE >/dev/null
    save_s=$(echo "scale=2; ($(now_ns) - $start) / 1000000000" | bc)
    size=$(stat -c %s "$dir/dump.rdb")

    taskset -c "$CLIENT_CPU" redis-benchmark -h $HOST -p "$port" -t set -n 100000000 \
        -r "$(python3 -c "print(int(500000 * $KEYS_SCALE))")" -d 32 -c 20 -P 16 -q \
        >/dev/null 2>&1 &
    BENCH_PID=$!
    sleep 1
    base=$(pss_tree "$SERVER_PID")
    peak=$base
    redis-cli -h $HOST -p "$port" BGSAVE >/dev/null
    sleep 0.05
    while [ "$(info_field "$port" rdb_bgsave_in_progress)" = 1 ]; do
        cur=$(pss_tree "$SERVER_PID")
        [ "$cur" -gt "$peak" ] && peak=$cur
        sleep 0.05
    done
    kill "$BENCH_PID" 2>/dev/null || true
    wait "$BENCH_PID" 2>/dev/null || true
    BENCH_PID=""
    stop_server

    start_server "$name" "$port" "$dir"
    loaded_s=$STARTUP_S
    local logline
    logline=$(grep -o 'DB loaded from disk: [0-9.]* seconds' "$dir/server.log" | tail -1 || true)
    stop_server
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$keys" "$save_s" "$size" \
        "$((base / 1024))" "$(((peak - base) / 1024))" "$loaded_s" "${logline:-?}" \
        | tee -a "$RESULTS_DIR/summary.tsv"
}

printf 'server\tkeys\tSAVE_s\trdb_bytes\tpss_before_MiB\tbgsave_extra_MiB\tstartup_load_s\tlog\n' \
    | tee "$RESULTS_DIR/summary.tsv"
measure redis "$REDIS_PORT"
measure damselfly "$DF_PORT"
echo "# results in $RESULTS_DIR"
